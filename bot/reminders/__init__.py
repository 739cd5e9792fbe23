"""Reminders, the police digest and pushed summaries at send time: message content and the ticks.

`content` renders an outbox row when it is sent; `summary_push` plans and builds the summary pushed after a
deadline; `scheduler` ticks planning and sending. The rules and the pure planner are `bot.calendar`, the
database side is `bot.services.reminders`, sending itself is `bot.delivery`.
"""
