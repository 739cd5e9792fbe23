"""Reminders, the police digest and nudges: rules (data), the pure planner, message content.

`rules` parses the setup file's `reminders` and `quiet_hours`; `planner` decides what should be sent
and when (pure, no clock reads); `content` renders an outbox row at send time. The database side is
`bot.services.reminders`; `scheduler` ticks planning and sending, and `remind_now` is `baocao remind --now`.
Sending itself (outbox dispatcher, rate limiter) is `bot.delivery`.
"""
