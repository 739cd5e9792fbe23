"""Synchronous HTTP client for the emulator's control API: act as users and read what the bot did."""

# client = EmulatorClient(server.url)
# alice = client.user(1001, "Nguyễn Văn An")
# alice.send("/start ABCD")
# reply = alice.wait_reply()          # AssertionError with context when the bot stays silent
# alice.press("Quay lại")             # inline button by label, index or callback data

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from bot.emulator.limits import FaultPlan, FloodLimits
from bot.emulator.tghtml import render_plain

__all__ = [
    "BotMessage",
    "BotReplies",
    "EmulatorClient",
    "EmulatorError",
    "SeenButton",
    "UserSession",
    "sample_png",
]

#: Event types that count as "the bot answered" (answers to button presses are collected too).
REPLY_EVENTS = ("sent", "edited")
SEEN_EVENTS = ("sent", "edited", "deleted", "answer")


class EmulatorError(RuntimeError):
    """The control API refused a request."""


def sample_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A tiny valid PNG image generated in code."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class SeenButton:
    """An inline keyboard button as a user sees it in the emulator."""

    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass
class BotMessage:
    """A message in a chat as the emulator stores it (latest state, with edit history)."""

    chat_id: int
    message_id: int
    kind: str
    text: str | None  # raw, as the bot sent it (HTML tags and escapes included)
    plain: str | None  # what a user reads: tags stripped, entities unescaped
    parse_mode: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    keyboard: list[list[SeenButton]] = field(default_factory=list)
    reply_keyboard: list[list[str]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    document: dict[str, Any] | None = None
    photo: dict[str, Any] | None = None
    location: dict[str, float] | None = None
    edited: bool = False
    deleted: bool = False
    edits: list[dict[str, Any]] = field(default_factory=list)
    from_bot: bool = True
    date: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BotMessage:
        """Build from a control-API message snapshot."""
        return cls(
            chat_id=data["chat_id"],
            message_id=data["message_id"],
            kind=data["kind"],
            text=data.get("text"),
            plain=data.get("plain"),
            parse_mode=data.get("parse_mode"),
            entities=list(data.get("entities") or []),
            keyboard=[[SeenButton(**b) for b in row] for row in data.get("buttons") or []],
            reply_keyboard=[list(row) for row in data.get("reply_keyboard") or []],
            reply_markup=data.get("reply_markup"),
            document=data.get("document"),
            photo=data.get("photo"),
            location=data.get("location"),
            edited=bool(data.get("edited")),
            deleted=bool(data.get("deleted")),
            edits=list(data.get("edits") or []),
            from_bot=bool(data.get("from_bot", True)),
            date=int(data.get("date") or 0),
            raw=data,
        )

    @property
    def buttons(self) -> list[str]:
        """Labels of the inline keyboard, row by row."""
        return [b.text for row in self.keyboard for b in row]

    @property
    def flat_buttons(self) -> list[SeenButton]:
        """Inline buttons, row by row."""
        return [b for row in self.keyboard for b in row]

    def render(self, *, ansi: bool = False) -> str:
        """The plain text (or caption); bold/italic as ANSI styles when ``ansi``."""
        return render_plain(self.plain or "", self.entities, ansi=ansi)


class BotReplies(list[BotMessage]):
    """The bot messages that arrived together (new or edited), plus button-press answers."""

    def __init__(self, messages: Iterable[BotMessage] = (), answers: Iterable[dict[str, Any]] = ()) -> None:
        """Collect messages and answers."""
        super().__init__(messages)
        self.answers: list[dict[str, Any]] = list(answers)

    @property
    def text(self) -> str:
        """Raw texts joined by newlines."""
        return "\n".join(m.text or "" for m in self)

    @property
    def plain(self) -> str:
        """Plain texts joined by newlines."""
        return "\n".join(m.plain or "" for m in self)

    @property
    def last(self) -> BotMessage:
        """The most recent message."""
        if not self:
            raise AssertionError("no bot message in this reply")
        return self[-1]

    @property
    def buttons(self) -> list[str]:
        """Labels of the last inline keyboard among these messages."""
        for message in reversed(self):
            if message.keyboard:
                return message.buttons
        return []

    @property
    def documents(self) -> list[dict[str, Any]]:
        """Documents among these messages."""
        return [m.document for m in self if m.document]


class EmulatorClient:
    """Small synchronous client over the emulator's /_emu control routes."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        """Connect to an emulator at ``base_url`` (e.g. server.url)."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> EmulatorClient:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close on exit."""
        self.close()

    # ------------------------------------------------------------------ transport

    def _call(
        self,
        verb: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        wait: float = 0.0,
    ) -> Any:
        response = self._http.request(
            verb,
            f"/_emu{path}",
            json=json,
            params={k: v for k, v in (params or {}).items() if v is not None},
            timeout=self.timeout + wait,
        )
        try:
            body = response.json()
        except ValueError:
            raise EmulatorError(
                f"{verb} {path}: HTTP {response.status_code}: {response.text[:200]}"
            ) from None
        if not body.get("ok"):
            raise EmulatorError(f"{verb} {path}: {body.get('error') or body}")
        return body["result"]

    @staticmethod
    def _date(date: datetime | float | None) -> float | None:
        return date.timestamp() if isinstance(date, datetime) else date

    # ------------------------------------------------------------------ world

    def info(self) -> dict[str, Any]:
        """Bot identity, url and the current event cursor."""
        return self._call("GET", "")

    def add_user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "vi",
    ) -> dict[str, Any]:
        """Create a user."""
        return self._call(
            "POST",
            "/users",
            json={
                "user_id": user_id,
                "first_name": first_name,
                "last_name": last_name,
                "username": username,
                "language_code": language_code,
            },
        )

    def add_group(self, chat_id: int, title: str, members: Iterable[int]) -> dict[str, Any]:
        """Create a group with these members."""
        return self._call(
            "POST", "/groups", json={"chat_id": chat_id, "title": title, "members": list(members)}
        )

    def remove_bot(self, chat_id: int) -> dict[str, Any]:
        """The bot is kicked from the group (sends there get 403)."""
        return self._call("POST", f"/groups/{chat_id}/remove_bot")

    def readd_bot(self, chat_id: int) -> dict[str, Any]:
        """The bot is added back to the group."""
        return self._call("POST", f"/groups/{chat_id}/readd_bot")

    def upgrade_group(self, chat_id: int, new_chat_id: int) -> dict[str, Any]:
        """The group becomes the supergroup `new_chat_id` (sends to the old id get 400 with its new id)."""
        return self._call("POST", f"/groups/{chat_id}/upgrade", json={"new_chat_id": new_chat_id})

    def user(
        self,
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "vi",
    ) -> UserSession:
        """Create the user and return a session that acts as them in their private chat."""
        self.add_user(user_id, first_name, last_name, username, language_code)
        return UserSession(self, user_id, first_name)

    def chat(self, chat_id: int) -> dict[str, Any]:
        """Chat info (type, members, current reply keyboard)."""
        return self._call("GET", f"/chats/{chat_id}")

    # ------------------------------------------------------------------ acting

    def _send(
        self, user_id: int, payload: dict[str, Any], chat_id: int | None, date: datetime | float | None
    ) -> dict[str, Any]:
        payload = {**payload, "chat_id": chat_id, "date": self._date(date)}
        return self._call(
            "POST", f"/users/{user_id}/send", json={k: v for k, v in payload.items() if v is not None}
        )

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a text; returns the delivery (update_id, message_id, ...)."""
        return self._send(user_id, {"text": text, "reply_to_message_id": reply_to_message_id}, chat_id, date)

    def send_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> dict[str, Any]:
        """The user sends a photo."""
        return self._send(
            user_id, {"photo_b64": base64.b64encode(data).decode(), "caption": caption}, chat_id, date
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
    ) -> dict[str, Any]:
        """The user sends a document."""
        payload = {
            "document_b64": base64.b64encode(data).decode(),
            "filename": filename,
            "mime_type": mime_type,
            "caption": caption,
        }
        return self._send(user_id, payload, chat_id, date)

    def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> dict[str, Any]:
        """The user shares a location."""
        return self._send(
            user_id, {"location": {"latitude": latitude, "longitude": longitude}}, chat_id, date
        )

    def send_sticker(
        self,
        user_id: int,
        emoji: str = "👍",
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> dict[str, Any]:
        """The user sends a sticker."""
        return self._send(user_id, {"sticker": {"emoji": emoji}}, chat_id, date)

    def send_voice(
        self,
        user_id: int,
        data: bytes = b"OggS\x00voice",
        duration: int = 1,
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> dict[str, Any]:
        """The user sends a voice note."""
        return self._send(
            user_id, {"voice_b64": base64.b64encode(data).decode(), "duration": duration}, chat_id, date
        )

    def send_contact(
        self,
        user_id: int,
        phone_number: str,
        first_name: str | None = None,
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> dict[str, Any]:
        """The user shares a contact (their own by default)."""
        contact = {"phone_number": phone_number, "first_name": first_name}
        return self._send(
            user_id, {"contact": {k: v for k, v in contact.items() if v is not None}}, chat_id, date
        )

    def edit_text(
        self,
        user_id: int,
        message_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        date: datetime | float | None = None,
    ) -> dict[str, Any]:
        """The user edits their message."""
        payload = {"message_id": message_id, "text": text, "chat_id": chat_id, "date": self._date(date)}
        return self._call(
            "POST", f"/users/{user_id}/edit", json={k: v for k, v in payload.items() if v is not None}
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
    ) -> dict[str, Any]:
        """The user presses an inline button; the delivery carries callback_query_id."""
        payload = {"message_id": message_id, "data": data, "text": text, "chat_id": chat_id, "force": force}
        return self._call(
            "POST", f"/users/{user_id}/press", json={k: v for k, v in payload.items() if v is not None}
        )

    def block(self, user_id: int) -> None:
        """The user blocks the bot."""
        self._call("POST", f"/block/{user_id}")

    def unblock(self, user_id: int) -> None:
        """The user unblocks the bot."""
        self._call("POST", f"/unblock/{user_id}")

    def redeliver(self, update_id: int) -> dict[str, Any]:
        """Enqueue the same update again."""
        return self._call("POST", f"/updates/{update_id}/redeliver")

    # ------------------------------------------------------------------ reading

    def messages(
        self,
        chat_id: int,
        after: int = 0,
        *,
        since: int | None = None,
        wait: float = 0.0,
        count: int = 1,
        include_users: bool = False,
    ) -> list[BotMessage]:
        """Bot messages with id > ``after`` (and those edited after event ``since``), long-polling."""
        result = self._call(
            "GET",
            f"/chats/{chat_id}/messages",
            params={
                "after": after,
                "since": since,
                "wait": wait,
                "count": count,
                "all": 1 if include_users else None,
            },
            wait=wait,
        )
        return [BotMessage.from_json(m) for m in result["messages"]]

    def events(
        self,
        chat_id: int | None = None,
        after: int = 0,
        *,
        wait: float = 0.0,
        count: int = 1,
        types: Iterable[str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Bot-side events after ``after`` (long-polling for ``count``); returns (events, cursor)."""
        path = f"/chats/{chat_id}/events" if chat_id is not None else "/events"
        result = self._call(
            "GET",
            path,
            params={
                "after": after,
                "wait": wait,
                "count": count,
                "types": ",".join(types) if types else None,
            },
            wait=wait,
        )
        return result["events"], result["cursor"]

    def callback(self, query_id: str, *, wait: float = 0.0) -> dict[str, Any]:
        """A callback query and the bot's answer (waits up to ``wait`` for the answer)."""
        return self._call("GET", f"/callbacks/{query_id}", params={"wait": wait}, wait=wait)

    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates the bot has not confirmed yet."""
        return self._call("GET", "/updates")

    def requests(self, method: str | None = None, after: int = -1) -> list[dict[str, Any]]:
        """The bot's request log (optionally one method, entries with index > ``after``)."""
        return self._call("GET", "/requests", params={"method": method, "after": after})

    def stats(self) -> dict[str, Any]:
        """Counters."""
        return self._call("GET", "/stats")

    def webhook(self) -> dict[str, Any]:
        """The webhook set by the bot (secret hidden) and every POST made to it: {webhook, deliveries}."""
        return self._call("GET", "/webhook")

    def commands(self) -> list[dict[str, Any]]:
        """What setMyCommands stored: [{scope, language_code, commands}]."""
        return self._call("GET", "/commands")

    def set_flood(self, limits: FloodLimits | None) -> dict[str, Any]:
        """Turn flood control on with ``limits`` or off with None."""
        return self._call("POST", "/flood", json=limits.to_dict() if limits else {"enabled": False})

    def set_faults(self, plan: FaultPlan | None) -> dict[str, Any]:
        """Install a fault plan or remove it with None."""
        return self._call("POST", "/faults", json=plan.to_dict() if plan else {"enabled": False})

    def file_bytes(self, file_id: str) -> bytes:
        """Download a stored file's bytes."""
        response = self._http.get(f"/_emu/files/{file_id}")
        if response.status_code != 200:
            raise EmulatorError(f"file {file_id}: HTTP {response.status_code}")
        return response.content


class UserSession:
    """Acts as one user in one chat and reads the bot's answers since the last read."""

    def __init__(self, client: EmulatorClient, user_id: int, name: str, chat_id: int | None = None) -> None:
        """Start reading from now on (earlier bot messages are not "new")."""
        self.client = client
        self.user_id = user_id
        self.name = name
        self.chat_id = chat_id if chat_id is not None else user_id
        self.cursor: int = client.info()["event_seq"]
        self.answers: list[dict[str, Any]] = []

    def in_group(self, chat_id: int) -> UserSession:
        """A session for the same user inside a group."""
        return UserSession(self.client, self.user_id, self.name, chat_id)

    @property
    def _group(self) -> int | None:
        return self.chat_id if self.chat_id != self.user_id else None

    # ------------------------------------------------------------------ acting

    def send(
        self, text: str, *, date: datetime | float | None = None, reply_to_message_id: int | None = None
    ) -> dict[str, Any]:
        """Send a text message (commands get a bot_command entity)."""
        return self.client.send_text(
            self.user_id, text, chat_id=self._group, date=date, reply_to_message_id=reply_to_message_id
        )

    def send_photo(self, data: bytes | None = None, *, caption: str | None = None) -> dict[str, Any]:
        """Send a photo (a generated sample PNG by default)."""
        return self.client.send_photo(
            self.user_id, data if data is not None else sample_png(), caption=caption, chat_id=self._group
        )

    def send_document(
        self, data: bytes, filename: str, mime_type: str | None = None, *, caption: str | None = None
    ) -> dict[str, Any]:
        """Send a document."""
        return self.client.send_document(
            self.user_id, data, filename, mime_type, caption=caption, chat_id=self._group
        )

    def send_location(self, latitude: float, longitude: float) -> dict[str, Any]:
        """Share a location."""
        return self.client.send_location(self.user_id, latitude, longitude, chat_id=self._group)

    def send_contact(self, phone_number: str) -> dict[str, Any]:
        """Share the user's own contact."""
        return self.client.send_contact(self.user_id, phone_number, chat_id=self._group)

    def send_sticker(self, emoji: str = "👍") -> dict[str, Any]:
        """Send a sticker."""
        return self.client.send_sticker(self.user_id, emoji, chat_id=self._group)

    def send_voice(self, duration: int = 1) -> dict[str, Any]:
        """Send a voice note."""
        return self.client.send_voice(self.user_id, duration=duration, chat_id=self._group)

    def edit(self, message_id: int, text: str) -> dict[str, Any]:
        """Edit one of the user's messages."""
        return self.client.edit_text(self.user_id, message_id, text, chat_id=self._group)

    def block(self) -> None:
        """Block the bot."""
        self.client.block(self.user_id)

    def unblock(self) -> None:
        """Unblock the bot."""
        self.client.unblock(self.user_id)

    # ------------------------------------------------------------------ reading

    def messages(self) -> list[BotMessage]:
        """All bot messages in this chat (current state)."""
        return self.client.messages(self.chat_id)

    def latest(self, *, with_keyboard: bool = False) -> BotMessage | None:
        """The newest bot message that is not deleted (optionally: that has an inline keyboard)."""
        for message in reversed(self.messages()):
            if not message.deleted and (message.keyboard or not with_keyboard):
                return message
        return None

    def keyboard(self) -> list[list[SeenButton]]:
        """Rows of the latest inline keyboard."""
        message = self.latest(with_keyboard=True)
        return message.keyboard if message else []

    def buttons(self) -> list[str]:
        """Labels of the latest inline keyboard."""
        return [b.text for row in self.keyboard() for b in row]

    def reply_keyboard(self) -> list[list[str]]:
        """The reply keyboard currently shown in this chat."""
        markup = self.client.chat(self.chat_id).get("reply_keyboard") or {}
        return [
            [b if isinstance(b, str) else b.get("text", "") for b in row]
            for row in markup.get("keyboard", [])
        ]

    def press(
        self, which: str | int | None = None, *, data: str | None = None, message_id: int | None = None
    ) -> str:
        """Press a button of the latest inline keyboard by label, 0-based index or callback data.

        Returns the callback query id.
        """
        if message_id is not None:
            found = [m for m in self.messages() if m.message_id == message_id]
            message = found[0] if found else None
        else:
            message = self.latest(with_keyboard=True)
        if message is None or not message.keyboard:
            raise AssertionError(
                f"{self.name}: no bot message with an inline keyboard to press in chat {self.chat_id}"
            )
        buttons = message.flat_buttons
        chosen: SeenButton | None = None
        if data is not None:
            chosen = next((b for b in buttons if b.callback_data == data), None)
        elif isinstance(which, int):
            chosen = buttons[which] if -len(buttons) <= which < len(buttons) else None
        elif isinstance(which, str):
            chosen = next((b for b in buttons if b.text == which), None) or next(
                (b for b in buttons if b.text.strip().casefold() == which.strip().casefold()), None
            )
        if chosen is None:
            wanted = data if data is not None else which
            raise AssertionError(
                f"{self.name}: no button {wanted!r} on message {message.message_id}; buttons are {message.buttons}"
            )
        if chosen.callback_data is None:
            raise AssertionError(
                f"{self.name}: button {chosen.text!r} is a URL button, not a callback button"
            )
        delivery = self.client.press(
            self.user_id, message.message_id, chosen.callback_data, chat_id=self._group
        )
        return str(delivery["callback_query_id"])

    def wait_events(
        self,
        timeout: float = 5.0,
        *,
        count: int = 1,
        settle: float = 0.3,
        types: Iterable[str] = SEEN_EVENTS,
        counted: Iterable[str] = REPLY_EVENTS,
    ) -> list[dict]:
        """New bot-side events since the last read: wait for ``count`` counted ones, then until quiet.

        After the first events arrive it keeps long-polling while more come within ``settle``
        seconds, so a bot answering with several messages is read in one go.
        """
        types, counted = tuple(types), set(counted)
        deadline = time.monotonic() + timeout
        collected: list[dict] = []
        while True:  # at least one read, even with timeout 0
            remaining = max(0.0, deadline - time.monotonic())
            events, self.cursor = self.client.events(self.chat_id, self.cursor, wait=remaining, types=types)
            collected.extend(events)
            if sum(e["type"] in counted for e in collected) >= count or remaining <= 0:
                break
        if collected:
            while True:
                events, self.cursor = self.client.events(self.chat_id, self.cursor, wait=settle, types=types)
                if not events:
                    break
                collected.extend(events)
        self.answers.extend(e["answer"] for e in collected if e["type"] == "answer")
        return collected

    def poll(self) -> BotReplies:
        """Whatever arrived since the last read, without waiting."""
        return self._reply(self.wait_events(0.0, count=1, settle=0.0))

    @staticmethod
    def _reply(events: list[dict]) -> BotReplies:
        latest: dict[int, BotMessage] = {}
        for event in events:
            if "message" in event:
                latest[event["message_id"]] = BotMessage.from_json(event["message"])
        return BotReplies(latest.values(), [e["answer"] for e in events if e["type"] == "answer"])

    def wait_reply(self, timeout: float = 5.0, *, count: int = 1, settle: float = 0.3) -> BotReplies:
        """The next bot message(s) (new or edited) in this chat; AssertionError if none comes in time."""
        events = self.wait_events(timeout, count=count, settle=settle)
        reply = self._reply(events)
        got = sum(e["type"] in REPLY_EVENTS for e in events)
        if got < count:
            raise AssertionError(self._silence_report(timeout, count, got, reply))
        return reply

    def _silence_report(self, timeout: float, count: int, got: int, reply: BotReplies) -> str:
        lines = [
            f"{self.name} (chat {self.chat_id}) expected {count} bot message(s) within {timeout}s, got {got}."
        ]
        for message in reply:
            lines.append(f"  received #{message.message_id}: {message.plain!r}")
        if reply.answers:
            lines.append(f"  button answers: {reply.answers}")
        earlier = [m for m in self.messages() if m.message_id not in {r.message_id for r in reply}][-3:]
        for message in earlier:
            lines.append(f"  earlier #{message.message_id}: {(message.plain or message.kind)!r}")
        failures = [r for r in self.client.requests() if r["status"] not in (200, 499)][-5:]
        for record in failures:
            lines.append(f"  bot request {record['method']} -> {record['status']} {record['description']}")
        pending = self.client.pending_updates()
        if pending:
            lines.append(f"  {len(pending)} update(s) not yet confirmed by the bot (is it polling?)")
        return "\n".join(lines)
