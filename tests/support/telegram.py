"""In-process bot harness: PTB Application with no updater and a request that records every call.

Modelled on python-telegram-bot's own tests/auxil offline request: nothing leaves the process.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

BOT_ID = 123456
TOKEN = f"{BOT_ID}:TESTTOKENxxxxxxxxxxxxxxxxxxxxxxxxxxxx"


@dataclass
class Call:
    """One Bot API call the bot made."""

    method: str
    params: dict[str, Any]


class RecordingRequest(BaseRequest):
    """Answers every Bot API method with a plausible result and records the call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._ids = itertools.count(1000)

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def read_timeout(self) -> float:
        """Irrelevant offline."""
        return 1.0

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None, **_: Any):
        """Record the call and fake Telegram's answer."""
        name = url.rsplit("/", 1)[-1]
        params = dict(request_data.json_parameters) if request_data else {}
        params = {k: _maybe_json(v) for k, v in params.items()}
        self.calls.append(Call(name, params))
        return 200, json.dumps({"ok": True, "result": self._result(name, params)}).encode()

    def _result(self, name: str, params: dict[str, Any]) -> Any:
        if name == "getMe":
            return {"id": BOT_ID, "is_bot": True, "first_name": "Báo cáo thôn", "username": "baocao_test_bot"}
        if name in ("sendMessage", "editMessageText", "sendDocument", "sendPhoto", "sendLocation"):
            chat_id = int(params.get("chat_id", 0))
            return {
                "message_id": int(params.get("message_id") or next(self._ids)),
                "date": int(datetime.now(UTC).timestamp()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "text": params.get("text", ""),
            }
        return True

    def sent(self, chat_id: int | None = None) -> list[Call]:
        """sendMessage/editMessageText calls, optionally to one chat."""
        return [
            c
            for c in self.calls
            if c.method in ("sendMessage", "editMessageText")
            and (chat_id is None or int(c.params["chat_id"]) == chat_id)
        ]

    def texts(self, chat_id: int | None = None) -> list[str]:
        """Texts of the messages sent."""
        return [c.params["text"] for c in self.sent(chat_id)]


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass
class FakeUser:
    """A Telegram user as seen in updates."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Telegram's User object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        data["language_code"] = "vi"
        return data


@dataclass
class Harness:
    """Feeds updates to the real Application and exposes what it sent."""

    app: Application
    request: RecordingRequest
    _update_ids: Any = field(default_factory=lambda: itertools.count(1))
    _message_ids: Any = field(default_factory=lambda: itertools.count(1))

    async def feed(self, data: dict[str, Any]) -> Update:
        """Process one raw update dict (update_id added if missing)."""
        data = {"update_id": next(self._update_ids), **data}
        update = Update.de_json(data, self.app.bot)
        await self.app.process_update(update)
        return update

    def _message(self, user: FakeUser, chat: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(extra.pop("date", datetime(2026, 5, 15, 2, 0, tzinfo=UTC)).timestamp()),
            "chat": chat,
            "from": user.as_dict(),
            **extra,
        }

    async def send(
        self, user: FakeUser, text: str, *, group: dict[str, Any] | None = None, **extra: Any
    ) -> Update:
        """The user sends a text (commands get their bot_command entity)."""
        chat = group or {"id": user.id, "type": "private", "first_name": user.first_name}
        message = self._message(user, chat, text=text, **extra)
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return await self.feed({"message": message})

    async def send_raw(self, user: FakeUser, kind: str = "message", **payload: Any) -> Update:
        """The user sends a non-text message (sticker, photo, …) or an edit."""
        chat = {"id": user.id, "type": "private", "first_name": user.first_name}
        return await self.feed({kind: self._message(user, chat, **payload)})

    async def press(self, user: FakeUser, data: str, message_id: int = 1) -> Update:
        """The user presses an inline button with callback data `data`."""
        return await self.feed(
            {
                "callback_query": {
                    "id": str(next(self._update_ids)),
                    "from": user.as_dict(),
                    "chat_instance": "ci",
                    "data": data,
                    "message": {
                        "message_id": message_id,
                        "date": int(datetime(2026, 5, 15, tzinfo=UTC).timestamp()),
                        "chat": {"id": user.id, "type": "private"},
                        "text": "…",
                    },
                }
            }
        )
