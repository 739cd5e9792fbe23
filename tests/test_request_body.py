"""AiohttpRequest's body for a call without files: the url-encoded bytes and content type aiohttp made of the
fields before (its FormData of a dict), made directly; files still go as multipart."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.telegram_request import AiohttpRequest
from tests.support.web import LocalServers

TOKEN = "626262:RequestTokenRequestTokenRequest00"
FIELDS: list[dict[str, Any]] = [
    {
        "chat_id": 20_000_001,
        "text": "<b>Câu 3/20</b>: Số buổi tuyên truyền & hoà giải? 100% + 5 = x; 😀 «ệ»",
        "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": [[{"callback_data": "f:1:2:skip", "text": "⏭ Bỏ qua"}]]},
    },
    {"chat_id": -100123, "message_id": 41, "disable_notification": True},
    {"chat_id": 7, "latitude": 21.0285, "longitude": 105.8542},
    {},
]


async def received(fields: dict[str, Any]) -> tuple[bytes, str]:
    """The raw body and content type a server gets for a call with these fields."""
    seen: list[tuple[bytes, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers.get("Content-Type", "")))
        return web.json_response({"ok": True, "result": True})

    data = RequestData([RequestParameter.from_input(k, v) for k, v in fields.items()])
    async with LocalServers() as servers:
        port = await servers.start(handle)
        request = AiohttpRequest(2)
        await request.initialize()
        try:
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/sendMessage", request_data=data)
        finally:
            await request.shutdown()
    (got,) = seen
    return got


@pytest.mark.parametrize("fields", FIELDS, ids=range(len(FIELDS)))
async def test_fields_arrive_as_aiohttp_encoded_them_before(fields: dict[str, Any]) -> None:
    body, content_type = await received(fields)
    wire = RequestData([RequestParameter.from_input(k, v) for k, v in fields.items()]).json_parameters
    before = aiohttp.FormData(wire)()  # what AiohttpRequest passed aiohttp before: the fields as a dict
    assert body == before._value
    assert content_type.split(";")[0] == before.content_type == "application/x-www-form-urlencoded"
    assert dict(parse_qsl(body.decode(), keep_blank_values=True)) == wire
