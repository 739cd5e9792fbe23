"""Sending a handler's queued replies after the commit: in order, each retried (429s waited out for up to
REPLY_FLOOD_BUDGET, network errors REPLY_TRIES times), the pressed button answered at the same time, and the
`alongside` calls started once the first reply is out. Each send is counted in the shared send limiter
(`count_replies_with`, wired by bot.app), so that bulk senders leave replies their headroom."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram.constants import ParseMode

from bot.delivery.telegram_send import RetryPolicy, send_retrying
from bot.updates.context import ButtonRows, OutgoingReply
from bot.views.buttons import ReplyKeyboard

log = logging.getLogger(__name__)

Action = Callable[[Any], Awaitable[None]]
ReplyCounter = Callable[[int], None]

_count_reply: ReplyCounter | None = None  # RateLimiter.note_reply of the running application

REPLY_TRIES = 3  # a reply is tried this often on network errors, then given up
REPLY_WAIT_CAP = 30.0  # seconds: longest wait for one retry_after; the chat's next update waits meanwhile
REPLY_FLOOD_BUDGET = 300.0  # seconds: flood control (429) is waited out as often as it comes, up to this long
# A reply lost after the commit would leave the person without their next question. A timeout may have been
# delivered: at worst the same question arrives twice, which the person can ignore; a missing one they cannot
# see. A 429 says the request was not executed: waiting `retry_after` and sending again never duplicates.
REPLY_POLICY = RetryPolicy(
    tries=REPLY_TRIES, wait_cap=REPLY_WAIT_CAP, label="reply", flood_budget=REPLY_FLOOD_BUDGET
)


def count_replies_with(counter: ReplyCounter | None) -> None:
    """Have every reply, edit and `alongside` call counted by `counter(chat_id)` (None: not counted)."""
    global _count_reply
    _count_reply = counter


def _count(chat_id: int | None, sends: int = 1) -> None:
    """Tell the limiter about `sends` sends to `chat_id` about to go out (they never wait for it); counting
    never stops a reply."""
    if _count_reply is None or chat_id is None:
        return
    try:
        for _ in range(sends):
            _count_reply(chat_id)
    except Exception:
        log.warning("could not count a reply in the send limiter", exc_info=True)


def keyboard(buttons: ButtonRows) -> InlineKeyboardMarkup | None:
    """Inline keyboard markup for queued buttons."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in buttons]
    )


def keyboard_json(buttons: ButtonRows) -> dict[str, Any] | None:
    """`keyboard(buttons).to_dict()`, made directly (a tenth of the CPU)."""
    if not buttons:
        return None
    return {"inline_keyboard": [[{"callback_data": b.data, "text": b.label} for b in row] for row in buttons]}


def _private_keys(keys: ReplyKeyboard | None, chat_id: int) -> ReplyKeyboard | None:
    """`keys` when they may be shown in `chat_id`: a private chat, not a group or channel (negative ids)."""
    if keys is None:
        return None
    if chat_id < 0:
        log.warning("reply keyboard for chat %s dropped: not a private chat", chat_id)
        return None
    return keys


def reply_keyboard_json(keys: ReplyKeyboard | None, chat_id: int) -> dict[str, Any] | None:
    """`reply_keyboard(keys, chat_id).to_dict()`, made directly."""
    keys = _private_keys(keys, chat_id)
    if keys is None:
        return None
    if keys.remove:
        return {"remove_keyboard": True}
    rows = [
        [
            {"request_location": True, "text": b.label} if b.request_location else {"text": b.label}
            for b in row
        ]
        for row in keys.rows
    ]
    if not rows:
        return None
    return {"keyboard": rows, "one_time_keyboard": True, "resize_keyboard": True}


def reply_keyboard(
    keys: ReplyKeyboard | None, chat_id: int
) -> ReplyKeyboardMarkup | ReplyKeyboardRemove | None:
    """The reply keyboard (or its removal) for a private chat; None for a group or channel (negative ids),
    where a keyboard would pop up for every member."""
    keys = _private_keys(keys, chat_id)
    if keys is None:
        return None
    if keys.remove:
        return ReplyKeyboardRemove()
    rows = [
        [KeyboardButton(b.label, request_location=b.request_location or None) for b in row]
        for row in keys.rows
    ]
    if not rows:
        return None
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)


async def quietly(action: Action, bot: Any) -> None:
    """Run an after-commit action; its failure is logged and stops nothing else."""
    try:
        await action(bot)
    except Exception:
        log.warning("after-commit action failed", exc_info=True)


async def deliver(
    bot: Any,
    replies: Sequence[OutgoingReply],
    *,
    chat_id: int | None,
    query: Any = None,
    callback_answer: str | None = None,
    alongside: Sequence[Action] = (),
) -> None:
    """Send the queued replies in order (after commit), answering the pressed button (`query`) at the same
    time; replies without a chat of their own go to `chat_id`."""
    if query is None:
        await send_replies(bot, replies, chat_id=chat_id, alongside=alongside)
        return
    # both round trips at once; wait for both, then raise what the replies raised (the answer logs its own)
    sent, _ = await asyncio.gather(
        send_replies(bot, replies, chat_id=chat_id, alongside=alongside),
        _answer_query(query, callback_answer),
        return_exceptions=True,
    )
    if isinstance(sent, BaseException):
        raise sent


async def _answer_query(query: Any, text: str | None) -> None:
    """Stop the pressed button's spinner; an expired query must not stop the replies."""
    try:
        await query.answer(text)
    except Exception:
        log.warning("could not answer callback query", exc_info=True)


async def send_replies(
    bot: Any, replies: Sequence[OutgoingReply], *, chat_id: int | None, alongside: Sequence[Action] = ()
) -> None:
    """The queued replies, one after the other (the chat shows them in this order); the `alongside` calls
    start once the first reply is out — the next question goes before a cosmetic edit that counts against the
    same per-chat flood limit — and still run when a reply fails, which is raised after them."""
    started: list[asyncio.Task[None]] = []

    def start_alongside() -> None:
        if not started:
            _count(chat_id, len(alongside))  # as a rule an edit of the pressed message: one send each
            started.extend(asyncio.create_task(quietly(action, bot)) for action in alongside)

    try:
        for reply in replies:
            target = reply.chat_id if reply.chat_id is not None else chat_id
            if target is None:
                raise ValueError("a reply without a chat, for an update without one")
            _count(target, 2 if reply.location is not None else 1)  # a map pin follows its text
            await send_reply(bot, reply, target)
            start_alongside()
    except asyncio.CancelledError:  # shutdown: stop the alongside calls too, and wait until they have
        for task in started:
            task.cancel()
        await asyncio.gather(*started, return_exceptions=True)
        raise
    except Exception:
        start_alongside()
        await asyncio.gather(*started)
        raise
    start_alongside()
    await asyncio.gather(*started)


async def post_plain(bot: Any, endpoint: str, data: dict[str, Any]) -> Any:
    """The Bot API call `endpoint` made as python-telegram-bot's own method makes it — the bot's defaults
    inserted, None values dropped, the same request and the same errors (RetryAfter, Forbidden, BadRequest,
    TimedOut…) — with Telegram's answer returned as it came (the message as a dict, or True) rather than made
    into a `telegram.Message`: a reply needs no more than its message_id, and building the Message was a
    fifth of the event loop's work a turn."""
    return await bot._post(endpoint, data)  # PTB 22: the one entry below every bot method


def _with_defaults(data: dict[str, Any], *, link_preview: bool = True) -> dict[str, Any]:
    """`data` with the optional fields PTB's send and edit methods leave to the bot's `Defaults`
    (`telegram.ext.Defaults`: disable_notification, protect_content, link_preview_options), so that the
    request is the one those methods make whatever the defaults."""
    data["disable_notification"] = DEFAULT_NONE
    data["protect_content"] = DEFAULT_NONE
    if link_preview:
        data["link_preview_options"] = DEFAULT_NONE
    return data


def _message_id(result: Any) -> int | None:
    """The message_id of a sent or edited message (a dict or a `telegram.Message`), None for True."""
    if isinstance(result, dict):
        return result.get("message_id")
    return getattr(result, "message_id", None)


async def send_text(bot: Any, chat_id: int, text: str, markup: Any = None) -> int | None:
    """sendMessage as `bot.send_message(chat_id, text, parse_mode=HTML, reply_markup=markup)` sends it; the
    new message's id. A stand-in that is not a `telegram.Bot` (tests' fakes) gets its `send_message`."""
    if not isinstance(bot, Bot):
        return _message_id(
            await bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, reply_markup=markup)
        )
    data = {"chat_id": chat_id, "text": text, "parse_mode": ParseMode.HTML, "reply_markup": markup}
    return _message_id(await post_plain(bot, "sendMessage", _with_defaults(data)))


async def edit_text(bot: Any, chat_id: int, message_id: int, text: str, markup: Any = None) -> int | None:
    """editMessageText as `bot.edit_message_text(text, chat_id=…, message_id=…, parse_mode=HTML,
    reply_markup=markup)` sends it; the edited message's id."""
    if not isinstance(bot, Bot):
        return _message_id(
            await bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML, reply_markup=markup
            )
        )
    data = {
        "chat_id": chat_id,
        "message_id": message_id,
        "text": text,
        "parse_mode": ParseMode.HTML,
        "reply_markup": markup,
    }
    return _message_id(await post_plain(bot, "editMessageText", _with_defaults(data)))


async def remove_buttons(bot: Any, chat_id: int, message_id: int) -> None:
    """editMessageReplyMarkup without a markup, as `bot.edit_message_reply_markup(chat_id=…,
    message_id=…, reply_markup=None)` sends it: the pressed message loses its buttons."""
    if not isinstance(bot, Bot):
        await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None)
        return
    data = {"chat_id": chat_id, "message_id": message_id, "parse_mode": DEFAULT_NONE}
    await post_plain(bot, "editMessageReplyMarkup", _with_defaults(data, link_preview=False))


async def send_reply(bot: Any, reply: OutgoingReply, chat_id: int) -> int | None:
    """One queued reply: a message (or an edit), a photo with its caption, or a message and its map pin;
    the id of the (last) message sent or edited."""
    if reply.photo is not None:
        sent = await send_retrying(
            lambda: bot.send_photo(
                chat_id, reply.photo, caption=reply.text[:1024], parse_mode=ParseMode.HTML
            ),
            REPLY_POLICY,
        )
        return _message_id(sent)
    if reply.location is not None:
        latitude, longitude = reply.location
        await send_retrying(lambda: send_text(bot, chat_id, reply.text), REPLY_POLICY)
        sent = await send_retrying(
            lambda: bot.send_location(chat_id, latitude=latitude, longitude=longitude), REPLY_POLICY
        )
        return _message_id(sent)
    plain = isinstance(bot, Bot)  # a real bot takes the markup as the JSON its PTB object would give
    markup: Any = keyboard_json(reply.buttons) if plain else keyboard(reply.buttons)
    if markup is None and reply.edit_message_id is None:  # an edit takes inline buttons only
        keys = reply.keyboard
        markup = reply_keyboard_json(keys, chat_id) if plain else reply_keyboard(keys, chat_id)
    if reply.edit_message_id is not None:
        message_id = reply.edit_message_id
        return await send_retrying(
            lambda: edit_text(bot, chat_id, message_id, reply.text, markup), REPLY_POLICY
        )
    return await send_retrying(lambda: send_text(bot, chat_id, reply.text, markup), REPLY_POLICY)
