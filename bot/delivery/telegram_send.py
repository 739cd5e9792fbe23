"""Sending to Telegram: the requests (`send_part`: HTML text, photo, file, map pin), `retry_after` read
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
    photo_id: str | None = None,
    location: tuple[float, float] | None = None,
    paid: bool = False,
    document_id: str | None = None,
) -> Any:
    """One request of an outbox message: a photo (content, file name, caption), a photo or a file by its
    Telegram file id (`text` as caption), a map pin, or an HTML text; `paid` sends it as a paid broadcast
    (`allow_paid_broadcast`, 0.1 Star: bot/delivery/paid_broadcast.py)."""
    extra: dict[str, Any] = {"allow_paid_broadcast": True} if paid else {}
    if document_id is not None:
        return await bot.send_document(
            chat_id=chat_id,
            document=document_id,
            caption=text[:1024] or None,
            parse_mode=ParseMode.HTML,
            **extra,
        )
    if photo_id is not None:
        return await bot.send_photo(
            chat_id=chat_id, photo=photo_id, caption=text[:1024] or None, parse_mode=ParseMode.HTML, **extra
        )
    if location is not None:
        return await bot.send_location(chat_id=chat_id, latitude=location[0], longitude=location[1], **extra)
    if photo is not None:
        content, filename, caption = photo
        return await bot.send_photo(
            chat_id=chat_id,
            photo=InputFile(content, filename=filename),
            caption=caption or None,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            **extra,
        )
    return await bot.send_message(
        chat_id=chat_id, text=text, parse_mode=ParseMode.HTML, reply_markup=markup, **extra
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request is tried on network errors, the longest single 429 wait, and how long 429s may
    hold it in all (`flood_budget`: None = a 429 counts as a try too)."""

    tries: int
    wait_cap: float  # seconds: longest wait for one retry_after
    label: str  # first word of the retry log lines
    flood_budget: float | None = None  # seconds of 429 waits after which the request is given up


async def send_retrying(send: Callable[[], Awaitable[Any]], policy: RetryPolicy) -> Any:
    """Make the request `send`, waiting out 429s (each capped at `wait_cap`; with a `flood_budget`, as often
    as they come until that much was waited, else each counting as a try) and retrying network errors with
    backoff (1 s, 2 s, …), `policy.tries` tries in all; a BadRequest is final, the last error is raised."""
    attempt = 1
    waited = 0.0
    while True:
        try:
            return await send()
        except RetryAfter as err:
            wait = min(retry_seconds(err), policy.wait_cap)
            if policy.flood_budget is None:
                if attempt >= policy.tries:
                    raise
                attempt += 1
            elif waited + wait > policy.flood_budget:
                raise
            waited += wait
            metrics.record_429()
            log.warning(
                "%s: flood control, retrying in %.1fs (try %d of %d, %.0fs waited)",
                policy.label,
                wait,
                attempt,
                policy.tries,
                waited,
            )
            await asyncio.sleep(wait)
        except BadRequest:
            raise
        except NetworkError as err:  # includes TimedOut; BadRequest (also a NetworkError) is final
            if attempt >= policy.tries:
                raise
            wait = 0.5 * 2**attempt
            attempt += 1
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
