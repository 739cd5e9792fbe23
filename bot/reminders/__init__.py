"""Reminders, the police digest and pushed summaries at send time: message content and the ticks
(`content`, `summary_push`, `scheduler`).

Design notes: docs/design-notes.md#botreminders__init__py
"""
