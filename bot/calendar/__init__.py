"""The calendar as data: periods made from schedules, reminder rules and the pure reminder planner.

Nothing here reads the clock, the database or Telegram; the database side is `bot.services.reminders`.
"""

from typing import Final

DEFAULT_TZ: Final = "Asia/Ho_Chi_Minh"
"""The time zone of a commune that names none (the reminder planner's and the exports' default)."""
REPORTER_POLICE: Final = "police"
"""A period the commune police write themselves (`reporter: police`): no unit deadline, no unit reminders."""
