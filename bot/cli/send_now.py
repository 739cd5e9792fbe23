"""`baocao remind --now`: plan the due reminders and digests and send them once, through the outbox."""

from __future__ import annotations

import argparse

from telegram.error import TelegramError

from bot.cli.common import CliError
from bot.cli.parser import EXIT_USAGE
from bot.config import Settings
from bot.reminders import remind_now


def cmd_remind_now(args: argparse.Namespace, settings: Settings) -> int:
    """Plan and send every message that is due; the dispatcher's exit code."""
    if args.at is not None or args.commune is not None:
        raise CliError("--at và --commune chỉ dùng với --dry-run.", EXIT_USAGE)
    try:
        result = remind_now.run_once(settings)  # looked up at call time: tests replace it
    except TelegramError as err:  # unreachable server, refused certificate, bad token …
        raise CliError(
            f"Không gửi được qua máy chủ Bot API ({settings.api_url}): {type(err).__name__}. "
            "Kiểm tra TELEGRAM_API_URL, TELEGRAM_BOT_TOKEN và chứng chỉ (SSL_CERT_FILE).",
            1,
        ) from None
    return result if isinstance(result, int) else 0
