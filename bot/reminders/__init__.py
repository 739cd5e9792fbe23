"""Reminders, the police digest and nudges: rules (data), the pure planner, message content.

`rules` parses the setup file's `reminders` and `quiet_hours`; `planner` decides what should be sent
and when (pure, no clock reads); `content` renders an outbox row at send time. The database side is
`bot.services.reminders`; the sending side (dispatcher, rate limiter, scheduler) lives next to these.
"""
