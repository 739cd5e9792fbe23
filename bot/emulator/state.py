"""The emulator's world: users, chats, stored messages, files and the update queue."""

# Everything here is synchronous and guarded by one re-entrant lock, so it can be called from the
# server's event loop and, thread-safely, from any other thread. Waiters (long polls in any event
# loop, or plain threads) are woken whenever the state changes.

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import json
import mimetypes
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from telegram import (
    Chat,
    Contact,
    Document,
    InlineKeyboardMarkup,
    Location,
    Message,
    MessageEntity,
    PhotoSize,
    Sticker,
    User,
    Voice,
)

from bot.emulator.tghtml import EntityParseError, parse_html, trim_text, utf16_len

__all__ = [
    "ApiError",
    "CallbackRecord",
    "Delivery",
    "EmuChat",
    "EmuUser",
    "EmulatorState",
    "Params",
    "RequestRecord",
    "StoredFile",
    "StoredMessage",
    "UploadedFile",
]

T = TypeVar("T")

#: Update types delivered when the bot never asked for specific ones (Telegram's default).
DEFAULT_ALLOWED_UPDATES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)


#: Parameters that carry JSON objects/arrays (decoded for the request log).
_OBJECT_PARAMS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "link_preview_options",
        "entities",
        "caption_entities",
        "scope",
        "commands",
        "allowed_updates",
        "menu_button",
    }
)


class ApiError(Exception):
    """A Bot API error answer: HTTP status = error_code, Telegram's description."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        """Remember code, description and optional ResponseParameters."""
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def to_json(self) -> dict[str, Any]:
        """The JSON body Telegram answers with."""
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str) -> ApiError:
    """400 with the "Bad Request: " prefix Telegram uses."""
    return ApiError(400, f"Bad Request: {text}")


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str | None
    data: bytes


class Params:
    """Request parameters from JSON, query string, form or multipart, read with Telegram's typing.

    Form values are strings in which objects, numbers and booleans are JSON-encoded (what PTB
    sends); JSON bodies carry real types. The accessors accept both.
    """

    def __init__(self, values: Mapping[str, Any], files: Mapping[str, UploadedFile] | None = None) -> None:
        """Wrap parsed ``values`` and uploaded ``files``."""
        self.values = dict(values)
        self.files = dict(files or {})

    def has(self, name: str) -> bool:
        """True when the parameter is present (a file part counts)."""
        return name in self.values or name in self.files

    def raw(self, name: str) -> Any:
        """The value as received, or None."""
        return self.values.get(name)

    def string(self, name: str, default: str | None = None) -> str | None:
        """A string parameter."""
        value = self.values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)

    def integer(self, name: str, default: int | None = None) -> int | None:
        """An integer parameter; 400 when it is not one."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise bad_request(f"invalid {name} specified")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def number(self, name: str, default: float | None = None) -> float | None:
        """A float parameter; 400 when it is not one."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean parameter (true/false/1/0)."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in {"true", "1", "yes", "on"}

    def obj(self, name: str, error: str | None = None) -> Any:
        """A JSON object/array parameter (decoded when it arrived as a string)."""
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise bad_request(error or f"can't parse {name} JSON object") from None
        return value

    def file_or_str(self, name: str) -> UploadedFile | str | None:
        """A file parameter: an uploaded part (directly or via attach://) or a file_id/URL string."""
        if name in self.files:
            return self.files[name]
        value = self.values.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            part = self.files.get(value.removeprefix("attach://"))
            if part is None:
                raise bad_request(f"file {value} not found in the request")
            return part
        return value if isinstance(value, str) and value else None

    def loggable(self) -> dict[str, Any]:
        """Parameters for the request log: JSON-decoded where possible, files summarised."""
        out: dict[str, Any] = {}
        for key, value in self.values.items():
            if key in _OBJECT_PARAMS and isinstance(value, str) and value[:1] in "[{":
                try:
                    out[key] = json.loads(value)
                    continue
                except json.JSONDecodeError:
                    pass
            out[key] = value
        for key, part in self.files.items():
            out[key] = {"filename": part.filename, "mime_type": part.content_type, "size": len(part.data)}
        return out


@dataclass
class EmuUser:
    """A Telegram user that the tests act as."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = "vi"
    started: bool = False  # has a private chat with the bot
    blocked: bool = False
    seen: bool = False  # the bot has seen the user somewhere (e.g. in a group)

    def tg(self) -> User:
        """The PTB User object."""
        return User(
            id=self.id,
            first_name=self.first_name,
            is_bot=False,
            last_name=self.last_name,
            username=self.username,
            language_code=self.language_code,
        )

    @property
    def full_name(self) -> str:
        """First and last name."""
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the control API."""
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "language_code": self.language_code,
            "started": self.started,
            "blocked": self.blocked,
        }


@dataclass
class StoredFile:
    """Bytes the bot or a user uploaded, addressable by file_id and downloadable by file_path."""

    file_id: str
    file_unique_id: str
    data: bytes
    filename: str | None
    mime_type: str | None
    kind: str  # document, photo, voice, sticker
    file_path: str
    width: int = 0
    height: int = 0
    duration: int = 0

    def info(self) -> dict[str, Any]:
        """Metadata without the bytes."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.filename,
            "mime_type": self.mime_type,
            "file_size": len(self.data),
            "file_path": self.file_path,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
        }


@dataclass
class StoredMessage:
    """A message in a chat, from the bot or from a user, with its current state and history."""

    chat_id: int
    message_id: int
    from_bot: bool
    sender_id: int
    date: int
    kind: str  # text, photo, document, location, sticker, voice, contact
    text: str | None = None  # as sent (raw HTML for the bot); caption for media
    parse_mode: str | None = None
    plain: str | None = None  # what Telegram stores after entity parsing
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    files: list[StoredFile] = field(default_factory=list)
    location: dict[str, float] | None = None
    contact: dict[str, Any] | None = None
    emoji: str | None = None
    reply_to_message_id: int | None = None
    disable_notification: bool = False
    link_preview_options: dict[str, Any] | None = None
    edit_date: int | None = None
    edits: list[dict[str, Any]] = field(default_factory=list)
    original: dict[str, Any] | None = None
    deleted: bool = False

    def version(self) -> dict[str, Any]:
        """The editable content right now."""
        return {
            "text": self.text,
            "parse_mode": self.parse_mode,
            "plain": self.plain,
            "entities": [dict(e) for e in self.entities],
            "reply_markup": self.reply_markup,
            "date": self.edit_date or self.date,
        }


@dataclass
class EmuChat:
    """A private chat (id = user id) or a group (negative id)."""

    id: int
    type: str  # private, group, supergroup
    title: str | None = None
    user_id: int | None = None
    members: set[int] = field(default_factory=set)
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    reply_keyboard: dict[str, Any] | None = None
    bot_removed: bool = False  # a group the bot was kicked from: sends get 403
    migrated_to: int | None = (
        None  # a group upgraded to this supergroup: sends get 400 with migrate_to_chat_id
    )

    @property
    def is_group(self) -> bool:
        """True for groups and supergroups."""
        return self.type != "private"

    def allocate_message_id(self) -> int:
        """Next message id in this chat (shared by both sides, like Telegram)."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class Delivery:
    """What a user action produced: the queued update and the message/query it concerns."""

    update_id: int
    chat_id: int
    message_id: int | None = None
    callback_query_id: str | None = None
    update: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "update_id": self.update_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "callback_query_id": self.callback_query_id,
            "update": self.update,
        }


@dataclass
class RequestRecord:
    """One Bot API request the bot made, as logged by the server."""

    method: str
    params: dict[str, Any]
    time: float
    status: int
    description: str | None = None
    fault: str | None = None
    duration: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "method": self.method,
            "params": self.params,
            "time": self.time,
            "status": self.status,
            "description": self.description,
            "fault": self.fault,
            "duration": self.duration,
        }


@dataclass
class CallbackRecord:
    """A callback query a user created by pressing an inline button."""

    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str | None
    created: float
    answered: bool = False
    answer: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "data": self.data,
            "answered": self.answered,
            "answer": self.answer,
        }


@dataclass
class _QueuedUpdate:
    update_id: int
    kind: str
    payload: dict[str, Any]
    pinned: bool = False  # a redelivery: kept until delivered even if its id is below the offset
    delivered: bool = False


def _event_seq(event: dict[str, Any]) -> int:
    return event["seq"]


def _timestamp(date: datetime | float | None, default: float) -> int:
    if date is None:
        return int(default)
    if isinstance(date, datetime):
        return int(date.timestamp())
    return int(date)


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG image, or None when unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 9 < len(data):
            if data[pos] != 0xFF:
                pos += 1
                continue
            marker = data[pos + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                pos += 2
                continue
            (seg_len,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return width, height
            pos += 2 + seg_len
    return None


_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
    "web_app",
    "copy_text",
)

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


class EmulatorState:
    """Users, chats, messages, files, updates and the bot-side semantics of the Bot API."""

    def __init__(
        self,
        *,
        bot_id: int = 1,
        bot_username: str = "baocao_demo_bot",
        bot_name: str = "Báo cáo thôn (demo)",
        callback_ttl: float | None = 15.0,
        strict_html: bool = True,
        clock: Callable[[], float] = time.time,
        first_update_id: int | None = None,
    ) -> None:
        """Create an empty world for one bot.

        Update ids start from ``first_update_id`` or, by default, from a number derived from the
        clock, so a bot that remembers processed update ids keeps working across emulator restarts
        (Telegram's ids also only ever grow).
        """
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.callback_ttl = callback_ttl
        self.strict_html = strict_html
        self.clock = clock
        self._lock = threading.RLock()
        self._tcond = threading.Condition(self._lock)
        self._async_waiters: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}
        self._stopping = False
        self.users: dict[int, EmuUser] = {}
        self.chats: dict[int, EmuChat] = {}
        self.files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = 0
        self._updates: list[_QueuedUpdate] = []
        self._all_updates: dict[int, _QueuedUpdate] = {}
        self._next_update_id = (
            first_update_id if first_update_id is not None else max(1, int((clock() - 1_700_000_000) * 10))
        )
        self.allowed_updates: list[str] | None = None
        self.webhook: dict[str, Any] | None = None
        self.callbacks: dict[str, CallbackRecord] = {}
        self._next_query = 1
        self._events: list[dict[str, Any]] = []
        self._seq = 0
        self.commands: dict[tuple[tuple[Any, ...], str], list[dict[str, str]]] = {}
        self.bot_settings: dict[tuple[str, str], Any] = {}
        self.requests: list[RequestRecord] = []
        self.counters: Counter[str] = Counter()

    # ------------------------------------------------------------------ waking and waiting

    def _changed(self) -> None:
        """Wake every waiter (call with the lock held)."""
        self._tcond.notify_all()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for fut, loop in list(self._async_waiters.items()):
            if loop is running:
                if not fut.done():
                    fut.set_result(None)
            else:
                with contextlib.suppress(RuntimeError):  # that loop is closed
                    loop.call_soon_threadsafe(_resolve, fut)

    async def wait_for(self, predicate: Callable[[], T], timeout: float) -> T:
        """Await until ``predicate()`` (run under the lock) is truthy or ``timeout`` ends; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._async_waiters[fut] = loop
                result = predicate()
            try:
                remaining = deadline - loop.time()
                if result or self._stopping or remaining <= 0:
                    return result
                await asyncio.wait([fut], timeout=remaining)
            finally:
                with self._lock:
                    self._async_waiters.pop(fut, None)

    def wait_for_sync(self, predicate: Callable[[], T], timeout: float) -> T:
        """Block this (non-loop) thread until ``predicate()`` is truthy or ``timeout`` ends."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("wait_for_sync would block the event loop; use 'await wait_for(...)' there")
        with self._tcond:
            self._tcond.wait_for(lambda: bool(predicate()) or self._stopping, timeout)
            return predicate()

    # ------------------------------------------------------------------ Telegram objects

    def bot_user(self) -> User:
        """The bot as a PTB User."""
        return User(id=self.bot_id, first_name=self.bot_name, is_bot=True, username=self.bot_username)

    def _chat_obj(self, chat: EmuChat) -> Chat:
        if chat.type == "private":
            user = self.users[chat.user_id or chat.id]
            return Chat(
                id=chat.id,
                type="private",
                first_name=user.first_name,
                last_name=user.last_name,
                username=user.username,
            )
        return Chat(id=chat.id, type=chat.type, title=chat.title)

    def _message_obj(self, m: StoredMessage, *, nested: bool = False) -> Message:
        chat = self.chats[m.chat_id]
        sender = self.bot_user() if m.from_bot else self.users[m.sender_id].tg()
        kwargs: dict[str, Any] = {}
        entities = [MessageEntity.de_json(e, None) for e in m.entities] or None
        if m.kind == "text":
            kwargs["text"] = m.plain
            kwargs["entities"] = entities
        else:
            if m.plain:
                kwargs["caption"] = m.plain
                kwargs["caption_entities"] = entities
            if m.kind == "photo":
                kwargs["photo"] = [
                    PhotoSize(f.file_id, f.file_unique_id, f.width, f.height, file_size=len(f.data))
                    for f in m.files
                ]
            elif m.kind == "document":
                f = m.files[0]
                kwargs["document"] = Document(
                    f.file_id,
                    f.file_unique_id,
                    file_name=f.filename,
                    mime_type=f.mime_type,
                    file_size=len(f.data),
                )
            elif m.kind == "voice":
                f = m.files[0]
                kwargs["voice"] = Voice(
                    f.file_id, f.file_unique_id, f.duration, mime_type=f.mime_type, file_size=len(f.data)
                )
            elif m.kind == "sticker":
                f = m.files[0]
                kwargs["sticker"] = Sticker(
                    f.file_id, f.file_unique_id, 512, 512, False, False, "regular", emoji=m.emoji
                )
            elif m.kind == "location" and m.location:
                kwargs["location"] = Location(m.location["longitude"], m.location["latitude"])
            elif m.kind == "contact" and m.contact:
                kwargs["contact"] = Contact(**m.contact)
        if not nested and m.reply_to_message_id is not None:
            target = chat.messages.get(m.reply_to_message_id)
            if target is not None and not target.deleted:
                kwargs["reply_to_message"] = self._message_obj(target, nested=True)
        if m.edit_date is not None:
            kwargs["edit_date"] = _dt(m.edit_date)
        if m.reply_markup and "inline_keyboard" in m.reply_markup:
            kwargs["reply_markup"] = InlineKeyboardMarkup.de_json(m.reply_markup, None)
        return Message(m.message_id, _dt(m.date), self._chat_obj(chat), from_user=sender, **kwargs)

    def message_dict(self, m: StoredMessage) -> dict[str, Any]:
        """The Telegram Message JSON for a stored message."""
        return self._message_obj(m).to_dict()

    def snapshot(self, m: StoredMessage) -> dict[str, Any]:
        """A JSON view of a stored message for tests and the control API."""
        markup = m.reply_markup or {}
        buttons = [
            [{k: b.get(k) for k in ("text", "callback_data", "url") if b.get(k) is not None} for b in row]
            for row in markup.get("inline_keyboard", [])
        ]
        keyboard = [
            [b if isinstance(b, str) else b.get("text", "") for b in row]
            for row in markup.get("keyboard", [])
        ]
        files = [f.info() for f in m.files]
        return {
            "chat_id": m.chat_id,
            "message_id": m.message_id,
            "from_bot": m.from_bot,
            "sender_id": m.sender_id,
            "date": m.date,
            "kind": m.kind,
            "text": m.text,
            "parse_mode": m.parse_mode,
            "plain": m.plain,
            "entities": [dict(e) for e in m.entities],
            "reply_markup": m.reply_markup,
            "buttons": buttons,
            "reply_keyboard": keyboard,
            "files": files,
            "document": files[0] if m.kind == "document" else None,
            "photo": files[-1] if m.kind == "photo" else None,
            "location": m.location,
            "contact": m.contact,
            "emoji": m.emoji,
            "reply_to_message_id": m.reply_to_message_id,
            "disable_notification": m.disable_notification,
            "link_preview_options": m.link_preview_options,
            "edit_date": m.edit_date,
            "edited": bool(m.edits),
            "edits": [dict(e) for e in m.edits],
            "original": m.original,
            "deleted": m.deleted,
        }

    # ------------------------------------------------------------------ events (bot-side changes)

    def _event(self, kind: str, chat_id: int, message: StoredMessage | None = None, **extra: Any) -> None:
        self._seq += 1
        event: dict[str, Any] = {"seq": self._seq, "type": kind, "chat_id": chat_id, "time": self.clock()}
        if message is not None:
            event["message_id"] = message.message_id
            event["message"] = self.snapshot(message)
        event.update(extra)
        self._events.append(event)
        self._changed()

    @property
    def event_seq(self) -> int:
        """Sequence number of the latest event (a cursor for ``events``)."""
        with self._lock:
            return self._seq

    def events(
        self, chat_id: int | None = None, after: int = 0, kinds: Iterable[str] | None = None
    ) -> list[dict]:
        """Bot-side events (sent/edited/deleted/answer) with seq > ``after``, optionally per chat.

        Events are appended in seq order and never removed, so the first one after ``after`` is found by
        bisection: a reader polling with its cursor no longer walks every event since the start (which made
        each poll, and each wake-up of a waiting poll, cost more the longer the emulator ran)."""
        wanted = set(kinds) if kinds is not None else None
        with self._lock:
            first = bisect.bisect_right(self._events, after, key=_event_seq)
            return [
                e
                for e in self._events[first:]
                if (chat_id is None or e["chat_id"] == chat_id) and (wanted is None or e["type"] in wanted)
            ]

    async def wait_events(
        self,
        chat_id: int | None,
        after: int = 0,
        count: int = 1,
        timeout: float = 5.0,
        kinds: Iterable[str] | None = None,
    ) -> list[dict]:
        """Await until at least ``count`` events after ``after`` exist (or timeout); return them."""
        kinds = list(kinds) if kinds is not None else None

        def ready() -> list[dict] | None:
            found = self.events(chat_id, after, kinds)
            return found if len(found) >= count else None

        await self.wait_for(ready, timeout)
        return self.events(chat_id, after, kinds)

    def wait_events_sync(
        self,
        chat_id: int | None,
        after: int = 0,
        count: int = 1,
        timeout: float = 5.0,
        kinds: Iterable[str] | None = None,
    ) -> list[dict]:
        """Thread version of ``wait_events`` (not from the server's own loop thread)."""
        kinds = list(kinds) if kinds is not None else None
        self.wait_for_sync(lambda: len(self.events(chat_id, after, kinds)) >= count, timeout)
        return self.events(chat_id, after, kinds)

    def bot_messages(self, chat_id: int, *, after: int = 0, include_deleted: bool = True) -> list[dict]:
        """Snapshots of the bot's messages in a chat with message_id > ``after``."""
        with self._lock:
            chat = self.chats.get(chat_id)
            if chat is None:
                return []
            return [
                self.snapshot(m)
                for m in sorted(chat.messages.values(), key=lambda m: m.message_id)
                if m.from_bot and m.message_id > after and (include_deleted or not m.deleted)
            ]

    # ------------------------------------------------------------------ updates

    def _enqueue(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        queued = _QueuedUpdate(update_id, kind, {"update_id": update_id, kind: payload})
        self._updates.append(queued)
        self._all_updates[update_id] = queued
        self.counters["updates"] += 1
        self._changed()
        return update_id

    def redeliver(self, update_id: int) -> Delivery:
        """Enqueue the very same update (same update_id and payload) again."""
        with self._lock:
            original = self._all_updates.get(update_id)
            if original is None:
                raise KeyError(f"no update with id {update_id}")
            copy = _QueuedUpdate(
                update_id, original.kind, json.loads(json.dumps(original.payload)), pinned=True
            )
            self._updates.append(copy)
            self.counters["redeliveries"] += 1
            self._changed()
            body = copy.payload[copy.kind]
            chat = body.get("chat") or (body.get("message") or {}).get("chat") or {}
            return Delivery(update_id, chat.get("id", 0), body.get("message_id"), None, copy.payload)

    def _confirm(self, offset: int | None) -> None:
        if offset is None:
            return
        if offset < 0:
            keep = self._updates[offset:] if -offset < len(self._updates) else self._updates[:]
            self._updates = keep
            return
        self._updates = [u for u in self._updates if u.update_id >= offset or (u.pinned and not u.delivered)]

    def _take_updates(self, limit: int) -> list[dict[str, Any]]:
        allowed = set(self.allowed_updates) if self.allowed_updates else DEFAULT_ALLOWED_UPDATES
        batch = [u for u in self._updates if u.kind in allowed][:limit]
        for u in batch:
            u.delivered = True
        return [u.payload for u in batch]

    def drop_pending_updates(self) -> int:
        """Forget every queued update (as if the bot had confirmed them); returns how many."""
        with self._lock:
            dropped = len(self._updates)
            self._updates.clear()
            self._changed()
            return dropped

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates queued and not yet confirmed by the bot (diagnostics)."""
        with self._lock:
            return [u.payload for u in self._updates]

    # ------------------------------------------------------------------ files

    def _store_file(
        self,
        data: bytes,
        kind: str,
        filename: str | None = None,
        mime_type: str | None = None,
        *,
        width: int = 0,
        height: int = 0,
        duration: int = 0,
    ) -> StoredFile:
        self._file_counter += 1
        n = self._file_counter
        digest = hashlib.sha1(data + str(n).encode()).hexdigest()
        prefix = {"photo": "AgAC", "document": "BQAC", "voice": "AwAC", "sticker": "CAAC"}.get(kind, "BAAC")
        ext = ""
        if filename and "." in filename:
            ext = filename[filename.rfind(".") :]
        elif kind == "photo":
            ext = ".jpg"
        elif kind == "voice":
            ext = ".oga"
        elif kind == "sticker":
            ext = ".webp"
        folder = {"photo": "photos", "voice": "voice", "sticker": "stickers"}.get(kind, "documents")
        stored = StoredFile(
            file_id=f"{prefix}EmU{n:06d}{digest[:24]}",
            file_unique_id=f"AQAD{n:04d}{digest[24:32]}",
            data=data,
            filename=filename,
            mime_type=mime_type,
            kind=kind,
            file_path=f"{folder}/file_{n}{ext}",
            width=width,
            height=height,
            duration=duration,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _store_photo(self, data: bytes) -> list[StoredFile]:
        width, height = image_size(data) or (1280, 960)
        scale = min(1.0, 90 / max(width, height, 1))
        thumb = self._store_file(
            data, "photo", width=max(1, round(width * scale)), height=max(1, round(height * scale))
        )
        full = self._store_file(data, "photo", width=width, height=height)
        return [thumb, full]

    def file_by_path(self, file_path: str) -> StoredFile | None:
        """The stored file served at ``file_path``."""
        with self._lock:
            return self._files_by_path.get(file_path)

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes behind a file_id (KeyError when unknown)."""
        with self._lock:
            return self.files[file_id].data

    # ------------------------------------------------------------------ acting as users

    def add_user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "vi",
    ) -> EmuUser:
        """Create (or update the names of) a user; idempotent."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        with self._lock:
            user = self.users.get(user_id)
            if user is None:
                user = self.users[user_id] = EmuUser(user_id, first_name, last_name, username, language_code)
            else:
                user.first_name, user.last_name, user.username = first_name, last_name, username
                user.language_code = language_code
            self._changed()
            return user

    def add_group(
        self, chat_id: int, title: str, members: Iterable[int] = (), *, supergroup: bool | None = None
    ) -> EmuChat:
        """Create a group with the bot and ``members`` in it (ids <= -10**12 become supergroups)."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        with self._lock:
            is_super = supergroup if supergroup is not None else chat_id <= -1_000_000_000_000
            chat = self.chats.get(chat_id)
            if chat is None:
                chat = self.chats[chat_id] = EmuChat(chat_id, "supergroup" if is_super else "group", title)
            chat.title = title
            for member in members:
                if member not in self.users:
                    raise ValueError(f"unknown user {member}; add_user first")
                chat.members.add(member)
            self._changed()
            return chat

    def add_member(self, chat_id: int, user_id: int) -> None:
        """Put an existing user into an existing group."""
        with self._lock:
            if user_id not in self.users:
                raise ValueError(f"unknown user {user_id}")
            self.chats[chat_id].members.add(user_id)

    def _user_chat(
        self, user_id: int, chat_id: int | None, *, restart: bool = True
    ) -> tuple[EmuUser, EmuChat]:
        user = self.users.get(user_id)
        if user is None:
            raise ValueError(f"unknown user {user_id}; add_user first")
        if chat_id is None or chat_id == user_id:
            chat = self.chats.get(user_id)
            if chat is None:
                chat = self.chats[user_id] = EmuChat(user_id, "private", user_id=user_id)
            if user.blocked and restart:  # writing to the bot again restarts it, as in the Telegram apps
                self._set_blocked(user, False)
            user.started = True
            return user, chat
        chat = self.chats.get(chat_id)
        if chat is None or not chat.is_group:
            raise ValueError(f"unknown group {chat_id}; add_group first")
        if user_id not in chat.members:
            raise ValueError(f"user {user_id} is not a member of group {chat_id}")
        return user, chat

    def _user_message(
        self,
        user_id: int,
        chat_id: int | None,
        kind: str,
        date: datetime | float | None,
        reply_to_message_id: int | None = None,
        **fields: Any,
    ) -> Delivery:
        with self._lock:
            user, chat = self._user_chat(user_id, chat_id)
            user.seen = True
            if reply_to_message_id is not None and reply_to_message_id not in chat.messages:
                raise ValueError(f"no message {reply_to_message_id} in chat {chat.id}")
            message = StoredMessage(
                chat_id=chat.id,
                message_id=chat.allocate_message_id(),
                from_bot=False,
                sender_id=user_id,
                date=_timestamp(date, self.clock()),
                kind=kind,
                reply_to_message_id=reply_to_message_id,
                **fields,
            )
            chat.messages[message.message_id] = message
            # a one-time keyboard hides once used: a typed text or a key, or a shared location (📍 key)
            if (
                kind in ("text", "location")
                and chat.reply_keyboard
                and chat.reply_keyboard.get("one_time_keyboard")
            ):
                chat.reply_keyboard = None
            payload = self.message_dict(message)
            update_id = self._enqueue("message", payload)
            return Delivery(
                update_id, chat.id, message.message_id, None, {"update_id": update_id, "message": payload}
            )

    def _command_entities(self, text: str) -> list[dict[str, Any]]:
        if not text.startswith("/"):
            return []
        token = text.split(maxsplit=1)[0] if text.strip() else text
        if len(token) < 2:
            return []
        return [{"type": "bot_command", "offset": 0, "length": utf16_len(token)}]

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
        reply_to_message_id: int | None = None,
    ) -> Delivery:
        """The user sends a text message (a leading /command gets a bot_command entity)."""
        if not text:
            raise ValueError("text must be non-empty")
        return self._user_message(
            user_id,
            chat_id,
            "text",
            date,
            reply_to_message_id,
            text=text,
            plain=text,
            entities=self._command_entities(text),
        )

    def send_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> Delivery:
        """The user sends a photo (bytes are stored; the update carries a PhotoSize list)."""
        with self._lock:
            sizes = self._store_photo(data)
            return self._user_message(
                user_id, chat_id, "photo", date, files=sizes, text=caption, plain=caption
            )

    def send_document(
        self,
        user_id: int,
        data: bytes,
        filename: str,
        mime_type: str | None = None,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> Delivery:
        """The user sends a file as a document."""
        mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        with self._lock:
            stored = self._store_file(data, "document", filename, mime)
            return self._user_message(
                user_id, chat_id, "document", date, files=[stored], text=caption, plain=caption
            )

    def send_voice(
        self,
        user_id: int,
        data: bytes = b"OggS\x00voice",
        duration: int = 1,
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> Delivery:
        """The user sends a voice note."""
        with self._lock:
            stored = self._store_file(data, "voice", None, "audio/ogg", duration=duration)
            return self._user_message(user_id, chat_id, "voice", date, files=[stored])

    def send_sticker(
        self,
        user_id: int,
        emoji: str = "👍",
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> Delivery:
        """The user sends a sticker."""
        with self._lock:
            stored = self._store_file(b"RIFF\x00\x00\x00\x00WEBP", "sticker", None, "image/webp")
            return self._user_message(user_id, chat_id, "sticker", date, files=[stored], emoji=emoji)

    def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> Delivery:
        """The user shares a location."""
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValueError("latitude/longitude out of range")
        return self._user_message(
            user_id,
            chat_id,
            "location",
            date,
            location={"latitude": float(latitude), "longitude": float(longitude)},
        )

    def send_contact(
        self,
        user_id: int,
        phone_number: str,
        first_name: str | None = None,
        last_name: str | None = None,
        *,
        contact_user_id: int | None = None,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> Delivery:
        """The user shares a contact (by default their own, as with a request_contact button)."""
        with self._lock:
            user = self.users.get(user_id)
            if user is None:
                raise ValueError(f"unknown user {user_id}")
            contact: dict[str, Any] = {
                "phone_number": phone_number,
                "first_name": first_name or user.first_name,
            }
            last = last_name if first_name is not None else user.last_name
            if last is not None:
                contact["last_name"] = last
            contact["user_id"] = contact_user_id if contact_user_id is not None else user_id
            return self._user_message(user_id, chat_id, "contact", date, contact=contact)

    def edit_text(
        self,
        user_id: int,
        message_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> Delivery:
        """The user edits one of their text messages (an edited_message update)."""
        with self._lock:
            _user, chat = self._user_chat(user_id, chat_id)
            message = chat.messages.get(message_id)
            if message is None or message.from_bot or message.sender_id != user_id or message.kind != "text":
                raise ValueError(f"user {user_id} has no text message {message_id} in chat {chat.id}")
            if message.original is None:
                message.original = message.version()
            message.text = message.plain = text
            message.entities = self._command_entities(text)
            message.edit_date = _timestamp(date, self.clock())
            message.edits.append(message.version())
            payload = self.message_dict(message)
            update_id = self._enqueue("edited_message", payload)
            return Delivery(
                update_id, chat.id, message_id, None, {"update_id": update_id, "edited_message": payload}
            )

    def press(
        self,
        user_id: int,
        message_id: int,
        data: str | None = None,
        *,
        text: str | None = None,
        chat_id: int | None = None,
        force: bool = False,
    ) -> Delivery:
        """The user presses an inline button (by callback ``data`` or label ``text``)."""
        with self._lock:
            user, chat = self._user_chat(user_id, chat_id, restart=False)
            message = chat.messages.get(message_id)
            if message is None or message.deleted or not message.from_bot:
                raise ValueError(f"no bot message {message_id} in chat {chat.id}")
            buttons = [b for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]
            chosen = None
            for button in buttons:
                if (data is not None and button.get("callback_data") == data) or (
                    data is None and text is not None and button.get("text") == text
                ):
                    chosen = button
                    break
            if chosen is None and not force:
                labels = [(b.get("text"), b.get("callback_data")) for b in buttons]
                raise ValueError(
                    f"message {message_id} has no button data={data!r} text={text!r}; has {labels}"
                )
            if chosen is not None and "callback_data" not in chosen:
                raise ValueError(f"button {chosen.get('text')!r} is not a callback button")
            query_data = chosen["callback_data"] if chosen is not None else data
            query_id = str(4_000_000_000_000_000 + self._next_query * 7919)
            self._next_query += 1
            self.callbacks[query_id] = CallbackRecord(
                query_id, user_id, chat.id, message_id, query_data, time.monotonic()
            )
            chat_instance = str(-(abs(chat.id) * 7 + 12345))
            payload: dict[str, Any] = {
                "id": query_id,
                "from": user.tg().to_dict(),
                "message": self.message_dict(message),
                "chat_instance": chat_instance,
            }
            if query_data is not None:
                payload["data"] = query_data
            update_id = self._enqueue("callback_query", payload)
            return Delivery(
                update_id, chat.id, message_id, query_id, {"update_id": update_id, "callback_query": payload}
            )

    def callback_answer(self, query_id: str) -> CallbackRecord | None:
        """The callback query record (answered flag and the bot's answer)."""
        with self._lock:
            return self.callbacks.get(query_id)

    def _set_blocked(self, user: EmuUser, blocked: bool) -> None:
        if user.blocked == blocked:
            return
        user.blocked = blocked
        if user.started:
            chat = self.chats[user.id]
            member = {"status": "member", "user": self.bot_user().to_dict()}
            kicked = {"status": "kicked", "user": self.bot_user().to_dict(), "until_date": 0}
            self._enqueue(
                "my_chat_member",
                {
                    "chat": self._chat_obj(chat).to_dict(),
                    "from": user.tg().to_dict(),
                    "date": int(self.clock()),
                    "old_chat_member": member if blocked else kicked,
                    "new_chat_member": kicked if blocked else member,
                },
            )
        self._changed()

    def block(self, user_id: int) -> None:
        """The user blocks the bot: sends to them get 403 (a my_chat_member update is queued)."""
        with self._lock:
            self._set_blocked(self.users[user_id], True)

    def unblock(self, user_id: int) -> None:
        """The user unblocks the bot."""
        with self._lock:
            self._set_blocked(self.users[user_id], False)

    def remove_bot(self, chat_id: int) -> None:
        """The bot is removed (kicked) from a group: sends there get 403 until `readd_bot`."""
        with self._lock:
            self.chats[chat_id].bot_removed = True
            self._changed()

    def readd_bot(self, chat_id: int) -> None:
        """The bot is added back to a group it was removed from."""
        with self._lock:
            self.chats[chat_id].bot_removed = False
            self._changed()

    def upgrade_group(self, chat_id: int, new_chat_id: int) -> EmuChat:
        """The group becomes the supergroup `new_chat_id` (same title and members, the bot in it); sends to
        the old id get 400 "group chat was upgraded to a supergroup chat" with `migrate_to_chat_id`."""
        with self._lock:
            old = self.chats[chat_id]
            if old.type != "group" or new_chat_id >= 0:
                raise ValueError("only a basic group becomes a supergroup, with a negative id")
            new = self.chats.setdefault(new_chat_id, EmuChat(new_chat_id, "supergroup", old.title))
            new.members |= old.members
            old.migrated_to = new_chat_id
            self._changed()
            return new

    def chat_info(self, chat_id: int) -> dict[str, Any]:
        """JSON description of a chat (KeyError when unknown)."""
        with self._lock:
            chat = self.chats[chat_id]
            return {
                "id": chat.id,
                "type": chat.type,
                "title": chat.title,
                "user_id": chat.user_id,
                "members": sorted(chat.members),
                "reply_keyboard": chat.reply_keyboard,
                "message_count": len(chat.messages),
                "bot_removed": chat.bot_removed,
                "migrated_to": chat.migrated_to,
            }

    def stored_commands(self) -> list[dict[str, Any]]:
        """Everything setMyCommands stored, one entry per scope + language."""
        with self._lock:
            return [
                {"scope": _scope_from_key(key), "language_code": lang, "commands": [dict(c) for c in cmds]}
                for (key, lang), cmds in self.commands.items()
            ]

    def stats(self) -> dict[str, Any]:
        """Counters plus a few sizes."""
        with self._lock:
            return {
                "counters": dict(self.counters),
                "pending_updates": len(self._updates),
                "requests": len(self.requests),
                "users": len(self.users),
                "chats": len(self.chats),
            }

    # ------------------------------------------------------------------ bot-side helpers

    def resolve_chat(self, p: Params, *, for_send: bool = True, name: str = "chat_id") -> EmuChat:
        """The chat a bot request targets, with Telegram's errors."""
        raw = p.raw(name)
        if raw is None or raw == "":
            raise bad_request(f"{name} is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            raise bad_request("chat not found")
        chat_id = p.integer(name)
        assert chat_id is not None
        chat = self.chats.get(chat_id)
        user = self.users.get(chat_id)
        if chat is None or (chat.type == "private" and user is not None and not user.started):
            if user is not None and user.seen and chat_id > 0:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            raise bad_request("chat not found")
        if for_send and chat.type == "private" and user is not None and user.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if for_send and chat.is_group and chat.bot_removed:
            raise ApiError(403, "Forbidden: bot was kicked from the group chat")
        return chat

    def format_text(
        self, text: str | None, parse_mode: str | None, entities: Any, *, caption: bool = False
    ) -> tuple[str, list[dict[str, Any]]]:
        """Parse a text/caption like Telegram; return (plain, entities) or raise ApiError."""
        text = text or ""
        mode = (parse_mode or "").strip()
        if mode.lower() == "html":
            try:
                plain, ents = parse_html(text, strict_ampersand=self.strict_html)
            except EntityParseError as err:
                raise bad_request(f"can't parse entities: {err}") from None
        elif mode == "" or mode.lower() in ("markdown", "markdownv2"):
            plain, ents = text, []
            if mode == "" and isinstance(entities, list):
                ents = [dict(e) for e in entities if isinstance(e, dict)]
        else:
            raise bad_request("unsupported parse_mode")
        plain, ents = trim_text(plain, ents)
        if not caption and not plain:
            raise bad_request("message text is empty")
        limit = 1024 if caption else 4096
        if utf16_len(plain) > limit:
            raise bad_request("message caption is too long" if caption else "message is too long")
        return plain, ents

    def validate_markup(self, markup: Any) -> dict[str, Any] | None:
        """Check a reply_markup object like Telegram; return it normalised."""
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request("can't parse inline keyboard markup JSON object")
            if sum(len(r) for r in rows) > 100:
                raise bad_request("reply markup is too long")
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise bad_request(
                            'can\'t parse inline keyboard button: Field "text" must be of type String'
                        )
                    actions = [k for k in _BUTTON_ACTIONS if k in button]
                    if not actions:
                        raise bad_request(
                            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                        )
                    if "callback_data" in button:
                        data = button["callback_data"]
                        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                            raise bad_request("BUTTON_DATA_INVALID")
                    if "url" in button:
                        url = str(button["url"])
                        if not url.startswith(("http://", "https://", "tg://")):
                            raise bad_request(
                                f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL"
                            )
            return markup
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request("can't parse reply keyboard markup JSON object")
            for row in rows:
                for button in row:
                    if not (isinstance(button, str) or (isinstance(button, dict) and "text" in button)):
                        raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
            return markup
        if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
            return markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    def apply_chat_markup(self, chat: EmuChat, markup: dict[str, Any] | None) -> None:
        """Remember the reply keyboard shown in a chat."""
        if not markup:
            return
        if "keyboard" in markup:
            chat.reply_keyboard = markup
        elif markup.get("remove_keyboard"):
            chat.reply_keyboard = None

    def reply_target(self, p: Params, chat: EmuChat) -> int | None:
        """The message a send replies to (reply_parameters or reply_to_message_id)."""
        params = p.obj("reply_parameters", "can't parse reply parameters JSON object")
        allow = p.flag("allow_sending_without_reply")
        target: int | None = None
        if isinstance(params, dict) and params.get("message_id") is not None:
            target = int(params["message_id"])
            allow = bool(params.get("allow_sending_without_reply", allow))
        elif p.has("reply_to_message_id"):
            target = p.integer("reply_to_message_id")
        if target is None:
            return None
        existing = chat.messages.get(target)
        if existing is None or existing.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return target

    def bot_message(self, chat: EmuChat, kind: str, **fields: Any) -> StoredMessage:
        """Store a new message from the bot and emit a "sent" event."""
        message = StoredMessage(
            chat_id=chat.id,
            message_id=chat.allocate_message_id(),
            from_bot=True,
            sender_id=self.bot_id,
            date=int(self.clock()),
            kind=kind,
            **fields,
        )
        chat.messages[message.message_id] = message
        self.apply_chat_markup(chat, message.reply_markup)
        self._event("sent", chat.id, message)
        return message

    def file_input(
        self, p: Params, name: str, kind: str, *, filename_param: str | None = None
    ) -> list[StoredFile]:
        """Resolve an uploaded file or an existing file_id for sendDocument/sendPhoto."""
        value = p.file_or_str(name)
        if value is None:
            raise bad_request(f"there is no {name} in the request")
        if isinstance(value, UploadedFile):
            if not value.data:
                raise bad_request("file must be non-empty")
            if kind == "photo":
                if image_size(value.data) is None:
                    raise bad_request("IMAGE_PROCESS_FAILED")
                return self._store_photo(value.data)
            filename = (p.string(filename_param) if filename_param else None) or value.filename or "file"
            mime = value.content_type
            if not mime or mime == "application/octet-stream":
                mime = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            return [self._store_file(value.data, kind, filename, mime)]
        if value.startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")
        stored = self.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if kind == "photo":
            if stored.kind != "photo":
                raise bad_request(f"type of file mismatch: can't use file of type {stored.kind} as Photo")
            group = [f for f in self.files.values() if f.kind == "photo" and f.data is stored.data]
            return group[-2:] if len(group) >= 2 else [stored]
        return [stored]


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def scope_key(scope: Any) -> tuple[Any, ...]:
    """The storage key of a BotCommandScope object (400 when invalid)."""
    if scope is None:
        return ("default",)
    if not isinstance(scope, dict) or not isinstance(scope.get("type"), str):
        raise bad_request("can't parse BotCommandScope JSON object")
    kind = scope["type"]
    if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
        return (kind,)
    if kind in ("chat", "chat_administrators"):
        if scope.get("chat_id") is None:
            raise bad_request("chat_id is empty")
        return (kind, int(scope["chat_id"]))
    if kind == "chat_member":
        if scope.get("chat_id") is None or scope.get("user_id") is None:
            raise bad_request("chat_id and user_id are required")
        return (kind, int(scope["chat_id"]), int(scope["user_id"]))
    raise bad_request("unsupported BotCommandScope type specified")


def _scope_from_key(key: tuple[Any, ...]) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": key[0]}
    if len(key) >= 2:
        scope["chat_id"] = key[1]
    if len(key) == 3:
        scope["user_id"] = key[2]
    return scope
