"""Every text the bot writes: the one template renderer with its overrides, the Vietnamese number and
date filters, and how an answer reads as text. Below the screens (`bot.views`) and the services."""
