"""Screens: turning form events, summaries and notices into Telegram-agnostic text and buttons."""
