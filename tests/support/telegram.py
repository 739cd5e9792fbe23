"""The offline Bot API request that records every call (and uploaded files), and the fake Telegram user.

Modelled on python-telegram-bot's own tests/auxil offline request: nothing leaves the process.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telegram.request import BaseRequest, RequestData

BOT_ID = 123456
TOKEN = f"{BOT_ID}:TESTTOKENxxxxxxxxxxxxxxxxxxxxxxxxxxxx"


@dataclass
class Call:
    """One Bot API call the bot made."""

    method: str
    params: dict[str, Any]


class OfflineRequest(BaseRequest):
    """A Bot API request that never opens a connection; subclasses answer `do_request`."""

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def read_timeout(self) -> float:
        """Irrelevant offline."""
        return 1.0


class RecordingRequest(OfflineRequest):
    """Answers every Bot API method with a plausible result and records the call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._ids = itertools.count(1000)

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


class DocumentRecorder(RecordingRequest):
    """A recording request that also keeps uploaded files (multipart parts, e.g. sendDocument)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    async def do_request(self, url: str, method: str, request_data: Any = None, **kwargs: Any):
        """Record the upload, then answer as the base class does."""
        if request_data is not None and request_data.multipart_data:
            params = dict(request_data.json_parameters)
            self.files.append((url.rsplit("/", 1)[-1], params, dict(request_data.multipart_data)))
        return await super().do_request(url, method, request_data, **kwargs)

    def documents(self, chat_id: int | None = None) -> list[tuple[str, bytes, dict[str, Any]]]:
        """(file name, bytes, params) of every sendDocument, optionally to one chat."""
        out = []
        for method, params, parts in self.files:
            if method != "sendDocument" or (chat_id is not None and int(params["chat_id"]) != chat_id):
                continue
            filename, content, _mime = parts["document"]
            out.append((filename, content.read() if hasattr(content, "read") else content, params))
        return out


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
