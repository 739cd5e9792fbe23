"""AiohttpRequest, the Bot API client: what it sends, and how it fails (as PTB's HTTPXRequest does)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InputFile
from telegram.error import NetworkError, RetryAfter, TimedOut

from bot.config import ConfigError, settings_from
from bot.emulator.server import EmulatorServer
from bot.telegram_request import POOL_TIMEOUT_MESSAGE, AiohttpRequest
from tests.support.web import LocalServers

TOKEN = "626262:RequestTokenRequestTokenRequest00"
USER = 7001


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """The Bot API emulator in a thread of this process, with one user who has started the bot."""
    server = EmulatorServer(token=TOKEN, bot_username="baocao_request_bot")
    server.start_in_thread()
    server.add_user(USER, "An")
    server.send_text(USER, "/start")  # the bot may write to An
    server.drop_pending_updates()
    yield server
    server.stop_thread()


@pytest.fixture
async def bot(emulator: EmulatorServer) -> AsyncIterator[Bot]:
    request = AiohttpRequest(4)
    async with Bot(TOKEN, base_url=f"{emulator.url}/bot", request=request, get_updates_request=request) as b:
        yield b


@contextlib.asynccontextmanager
async def opened(size: int, **timeouts: float) -> AsyncIterator[AiohttpRequest]:
    """An initialized AiohttpRequest of `size` connections, shut down afterwards."""
    request = AiohttpRequest(size, **timeouts)
    await request.initialize()
    try:
        yield request
    finally:
        await request.shutdown()


class Stub:
    """A tiny Bot API server whose answer to every call is `behaviour(request)`; counts what reached it."""

    def __init__(self, behaviour: Callable[[web.Request], Any]) -> None:
        self.behaviour = behaviour
        self.seen: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.path.rsplit("/", 1)[-1])
        return await self.behaviour(request)


@pytest.fixture
async def stub() -> AsyncIterator[Callable[[Callable[[web.Request], Any]], Any]]:
    async with LocalServers() as servers:

        async def start(behaviour: Callable[[web.Request], Any]) -> Stub:
            server = Stub(behaviour)
            server.url = f"http://127.0.0.1:{await servers.start(server.handle)}/bot{TOKEN}"
            return server

        yield start


async def test_messages_with_keyboards_and_html_reach_the_server(bot: Bot, emulator: EmulatorServer) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Có", callback_data="f:1:2:y")]])
    sent = await bot.send_message(USER, "<b>Câu 1/20</b>: Số buổi & số người?", reply_markup=markup)
    assert sent.message_id and sent.chat.id == USER
    (call,) = emulator.requests_for("sendMessage")
    assert call.params["text"] == "<b>Câu 1/20</b>: Số buổi & số người?"
    assert "f:1:2:y" in str(call.params["reply_markup"])
    assert (await bot.get_me()).username == "baocao_request_bot"


async def test_a_file_is_uploaded_as_multipart(bot: Bot, emulator: EmulatorServer) -> None:
    content = "Thôn,Số buổi\nNà Làng,3\n".encode()
    message = await bot.send_document(USER, content, filename="Tổng hợp tháng 5.csv", caption="Tổng hợp")
    assert message.document is not None and message.document.file_name == "Tổng hợp tháng 5.csv"
    (call,) = emulator.requests_for("sendDocument")
    assert call.params["caption"] == "Tổng hợp" and call.status == 200


async def test_flood_control_is_retry_after(stub) -> None:
    async def too_many(_: web.Request) -> web.Response:
        body = {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests",
            "parameters": {"retry_after": 7},
        }
        return web.json_response(body, status=429)

    server = await stub(too_many)
    async with opened(2) as request:
        with pytest.raises(RetryAfter) as caught:
            await request.post(f"{server.url}/sendMessage")
        assert caught.value.retry_after in (7, 7.0) or caught.value.retry_after.total_seconds() == 7


async def test_a_full_pool_times_out_without_sending(stub) -> None:
    release = asyncio.Event()

    async def slow(_: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"ok": True, "result": True})

    server = await stub(slow)
    async with opened(1, pool_timeout=0.2) as request:
        try:
            first = asyncio.create_task(request.post(f"{server.url}/first"))
            while not server.seen:
                await asyncio.sleep(0.01)
            with pytest.raises(TimedOut, match="Pool timeout"):
                await request.post(f"{server.url}/second")
            assert server.seen == ["first"]  # the second never left
            release.set()
            assert await first is True
            assert await request.post(f"{server.url}/third") is True  # its connection came back to the pool
            assert server.seen == ["first", "third"]
        finally:
            release.set()
    assert "not* sent" in POOL_TIMEOUT_MESSAGE


async def test_a_server_that_does_not_answer_is_timed_out(stub) -> None:
    async def silent(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"ok": True, "result": True})

    server = await stub(silent)
    async with opened(2, read_timeout=0.2) as request:
        with pytest.raises(TimedOut):
            await request.post(f"{server.url}/sendMessage")


async def test_a_dropped_connection_is_a_network_error(stub) -> None:
    async def drop(request: web.Request) -> web.Response:
        request.transport.close()  # type: ignore[union-attr]
        await asyncio.sleep(1)
        return web.json_response({"ok": True, "result": True})

    server = await stub(drop)
    async with opened(2) as request:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"{server.url}/sendMessage")
        assert not isinstance(caught.value, TimedOut) and "aiohttp." in str(caught.value)


async def test_a_refused_connection_is_a_network_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    async with opened(2) as request:
        with pytest.raises(NetworkError):
            await request.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")


async def test_it_must_be_initialized_and_shuts_down_twice() -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/x", "POST")
    await request.initialize()
    await request.shutdown()
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/x", "POST")
    await request.initialize()  # may be opened again
    await request.shutdown()


def test_the_http_client_setting() -> None:
    assert settings_from({}).http_client == "aiohttp"
    assert settings_from({"BAOCAO_HTTP_CLIENT": " HTTPX "}).http_client == "httpx"
    with pytest.raises(ConfigError, match="BAOCAO_HTTP_CLIENT"):
        settings_from({"BAOCAO_HTTP_CLIENT": "requests"})


async def test_a_redirect_is_not_followed(stub) -> None:
    """As with httpx: a Bot API answer of 307 is an error, the call is never sent again elsewhere."""

    async def moved(request: web.Request) -> web.Response:
        if request.path.endswith("/elsewhere"):
            return web.json_response({"ok": True, "result": True})
        raise web.HTTPTemporaryRedirect(location=f"{request.path.rsplit('/', 1)[0]}/elsewhere")

    server = await stub(moved)
    async with opened(2) as request:
        with pytest.raises(NetworkError):
            await request.post(f"{server.url}/sendMessage")
        assert server.seen == ["sendMessage"]


@pytest.mark.filterwarnings("ignore:Please use")  # do_api_request: the stub answers True, not a Message
async def test_a_vietnamese_file_name_goes_out_as_utf8(stub) -> None:
    """Telegram keeps the multipart file name as sent: it must be UTF-8, not percent-encoded."""
    bodies: list[bytes] = []

    async def keep(request: web.Request) -> web.Response:
        if request.path.endswith("/getMe"):
            me = {
                "id": 626262,
                "is_bot": True,
                "first_name": "Báo cáo thôn",
                "username": "baocao_request_bot",
            }
            return web.json_response({"ok": True, "result": me})
        bodies.append(await request.read())
        return web.json_response({"ok": True, "result": True})

    server = await stub(keep)
    name = 'Báo cáo 6 tháng — Xã "Hiệp Lực".xlsx'
    base_url = server.url.rsplit("/bot", 1)[0] + "/bot"
    async with Bot(TOKEN, base_url=base_url, request=AiohttpRequest(2)) as b:  # opens and closes the pool
        await b.do_api_request(
            "send_document",
            {"chat_id": USER, "document": InputFile(b"PK\x03\x04", filename=name), "caption": "Tổng hợp"},
        )
    (body,) = [x for x in bodies if b"PK\x03\x04" in x]
    assert 'filename="Báo cáo 6 tháng — Xã \\"Hiệp Lực\\".xlsx"'.encode() in body
    assert b"%C3%A1" not in body
    assert "Tổng hợp".encode() in body


async def test_proxies_come_from_the_environment_as_with_httpx(stub, monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY is used, NO_PROXY skips it — read once per server, not on every call."""

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"ok": True, "result": True})

    proxy, api = await stub(ok), await stub(ok)
    proxy_root = proxy.url.split("/bot", 1)[0]
    monkeypatch.setenv("HTTP_PROXY", proxy_root)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with opened(2) as through:
        assert await through.post(f"{api.url}/getMe") is True
        assert await through.post(f"{api.url}/getMe") is True
    assert proxy.seen == ["getMe", "getMe"] and api.seen == []  # both went through the proxy

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with opened(2) as direct:
        assert await direct.post(f"{api.url}/getMe") is True
    assert api.seen == ["getMe"] and len(proxy.seen) == 2
