"""The calendar as data: periods made from schedules, reminder rules and the pure reminder planner.

Nothing here reads the clock, the database or Telegram; the database side is `bot.services.reminders`.
"""
