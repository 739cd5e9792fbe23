"""Báo cáo thôn: the Telegram bot through which village heads file periodic reports to the commune police."""
