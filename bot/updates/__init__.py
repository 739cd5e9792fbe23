"""One Telegram update's way through the bot: the context a handler gets, the per-update transaction, and
sending the replies it queued once that transaction committed."""
