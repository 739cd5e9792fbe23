"""Sending to Telegram: the requests (`send_part`: HTML text, photo, edit, map pin), `retry_after` read
without warnings, and `send_retrying`, one retry loop whose `RetryPolicy` each caller gives.

Design notes: docs/design-notes.md#botdeliverytelegram_sendpy
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter

from bot import metrics

log = logging.getLogger(__name__)


def retry_seconds(err: RetryAfter) -> float:
    """`retry_after` in seconds (at least 1), without PTB's int-vs-timedelta deprecation warning."""
    value = getattr(err, "_retry_after", None)
    if not isinstance(value, timedelta):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = err.retry_after
        value = raw if isinstance(raw, timedelta) else timedelta(seconds=float(raw))
    return max(1.0, value.total_seconds())


def inline_keyboard(rows: Sequence[Sequence[tuple[str, str]]] | None) -> InlineKeyboardMarkup | None:
    """Inline keyboard markup for rows of (label, callback data); None when there is no button."""
    built = [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows or ()]
    built = [row for row in built if row]
    return InlineKeyboardMarkup(built) if built else None


async def send_part(
    bot: Any,
    chat_id: int,
    *,
    text: str = "",
    photo: tuple[bytes, str, str] | None = None,
    markup: InlineKeyboardMarkup | None = None,
) -> Any:
    """One request of an outbox message: a photo (content, file name, caption) or an HTML text."""
    if photo is not None:
        content, filename, caption = photo
        return await bot.send_photo(
            chat_id=chat_id,
            photo=InputFile(content, filename=filename),
            caption=caption or None,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
        )
    return await bot.send_message(chat_id=chat_id, text=text, parse_mode=ParseMode.HTML, reply_markup=markup)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request is tried on flood control (429) and network errors, and the longest 429 wait."""

    tries: int
    wait_cap: float  # seconds: longest wait for one retry_after
    label: str  # first word of the retry log lines


async def send_retrying(send: Callable[[], Awaitable[Any]], policy: RetryPolicy) -> Any:
    """Make the request `send`, waiting out 429s (capped) and retrying network errors with backoff
    (1 s, 2 s, …), `policy.tries` times in all; a BadRequest is final, the last error is raised."""
    for attempt in range(1, policy.tries + 1):
        try:
            return await send()
        except RetryAfter as err:
            if attempt == policy.tries:
                raise
            metrics.record_429()
            wait = min(retry_seconds(err), policy.wait_cap)
            log.warning(
                "%s: flood control, retrying in %.1fs (try %d of %d)",
                policy.label,
                wait,
                attempt,
                policy.tries,
            )
            await asyncio.sleep(wait)
        except BadRequest:
            raise
        except NetworkError as err:  # includes TimedOut; BadRequest (also a NetworkError) is final
            if attempt == policy.tries:
                raise
            wait = 0.5 * 2**attempt
            # the class only: an aiohttp error's message can hold the request URL, and with it the token
            log.warning(
                "%s: %s, retrying in %.1fs (try %d of %d)",
                policy.label,
                type(err).__name__,
                wait,
                attempt,
                policy.tries,
            )
            await asyncio.sleep(wait)
    return None
