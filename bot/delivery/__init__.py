"""Delivery of every bot-initiated message (reminders, digests, pushes) from the outbox, within Telegram's
limits, and the one Telegram sender with retry that replies use too."""
