"""The Bot API over HTTPS, as in production: certificates checked, a private CA from the settings, a proxy.

A local HTTPS stand-in for the Bot API (certificates from a throw-away CA made by `trustme`) and a local
HTTP proxy that tunnels with CONNECT, as a company or provincial network's proxy does. Both clients the bot
can use (ours on aiohttp, PTB's on httpx) are built by the app's own `bot_api_request` and must agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from telegram.error import NetworkError

from bot.app import bot_api_request
from bot.config import ConfigError, settings_from
from bot.telegram_request import AiohttpRequest
from tests.support.web import LocalServers, serve_everything

TOKEN = "626262:RequestTokenRequestTokenRequest00"
ME = {"id": 626262, "is_bot": True, "first_name": "Báo cáo thôn", "username": "baocao_tls_bot"}
CLIENTS = ("aiohttp", "httpx")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority no one else trusts."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The CA's certificate as a PEM file, as an operator would point SSL_CERT_FILE at it."""
    path = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


class Api:
    """An HTTPS Bot API stand-in: getMe answers, every call's method name is kept."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        method = request.path.rsplit("/", 1)[-1]
        self.seen.append(method)
        return web.json_response({"ok": True, "result": ME if method == "getMe" else True})


@pytest.fixture
async def https_api(ca: trustme.CA) -> AsyncIterator[Callable[..., Any]]:
    """Start an HTTPS Bot API whose certificate names `hosts` (127.0.0.1 by default)."""
    async with LocalServers() as servers:

        async def start(*hosts: str) -> Api:
            api = Api()
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert(*(hosts or ("127.0.0.1", "localhost"))).configure_cert(tls)
            api.url = f"https://127.0.0.1:{await servers.start(api.handle, tls=tls)}/bot{TOKEN}"
            return api

        yield start


class ConnectProxy:
    """A plain HTTP proxy that only tunnels (CONNECT host:port), keeping each request line it was sent."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.server: asyncio.AbstractServer | None = None
        self.url = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        line = head.split("\r\n", 1)[0]
        self.requests.append(line)
        verb, target, _ = line.split(" ", 2)
        if verb != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def client(environ: dict[str, str]) -> AsyncIterator[Any]:
    """The app's reply pool for these settings, opened and shut down."""
    request = bot_api_request(settings_from(environ))
    await request.initialize()
    try:
        yield request
    finally:
        await request.shutdown()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy from the machine's environment, so a test decides."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def test_a_certificate_nobody_vouches_for_is_refused(https_api, no_proxy_env) -> None:
    """Verification is on: with certifi's bundle a server signed by an unknown CA gets nothing."""
    api = await https_api()
    request = AiohttpRequest(2)  # no CA given: certifi's bundle
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match=r"(?i)certificate"):
            await request.post(f"{api.url}/getMe")
    finally:
        await request.shutdown()
    assert api.seen == []


@pytest.mark.parametrize("http_client", CLIENTS)
async def test_a_private_ca_named_by_ssl_cert_file_is_trusted(
    https_api, ca_file: str, http_client: str, no_proxy_env
) -> None:
    """A self-hosted telegram-bot-api behind the commune's own CA: SSL_CERT_FILE, for either client."""
    api = await https_api()
    async with client({"SSL_CERT_FILE": ca_file, "BAOCAO_HTTP_CLIENT": http_client}) as request:
        assert (await request.post(f"{api.url}/getMe"))["username"] == "baocao_tls_bot"
    async with client({"BAOCAO_HTTP_CLIENT": http_client}) as request:  # without it: refused
        with pytest.raises(NetworkError):
            await request.post(f"{api.url}/getMe")
    assert api.seen == ["getMe"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to hash the directory")
async def test_a_private_ca_in_ssl_cert_dir_is_trusted(
    https_api, ca_file: str, tmp_path: Path, no_proxy_env
) -> None:
    """SSL_CERT_DIR: a hashed directory of CA certificates (as /etc/ssl/certs)."""
    hashed = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", ca_file], capture_output=True, text=True, check=True
    ).stdout.strip()
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(ca_file, certs / f"{hashed}.0")
    api = await https_api()
    async with client({"SSL_CERT_DIR": str(certs)}) as request:
        assert (await request.post(f"{api.url}/getMe"))["id"] == ME["id"]


@pytest.mark.parametrize("http_client", CLIENTS)
async def test_a_certificate_for_another_host_is_refused(
    https_api, ca_file: str, http_client: str, no_proxy_env
) -> None:
    """A trusted CA is not enough: the certificate must name the server the bot dialled."""
    api = await https_api("api.telegram.example")
    async with client({"SSL_CERT_FILE": ca_file, "BAOCAO_HTTP_CLIENT": http_client}) as request:
        with pytest.raises(NetworkError):
            await request.post(f"{api.url}/getMe")
    assert api.seen == []


@pytest.mark.parametrize("http_client", CLIENTS)
async def test_https_goes_through_the_proxy_named_by_https_proxy(
    https_api, ca_file: str, http_client: str, no_proxy_env
) -> None:
    """Behind a network proxy: the TLS connection is tunnelled with CONNECT, the certificate still checked."""
    api = await https_api()
    proxy = ConnectProxy()
    await proxy.start()
    try:
        no_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        async with client({"SSL_CERT_FILE": ca_file, "BAOCAO_HTTP_CLIENT": http_client}) as request:
            assert (await request.post(f"{api.url}/getMe"))["username"] == "baocao_tls_bot"
            assert await request.post(f"{api.url}/sendMessage") is True  # the tunnel is kept or reopened
    finally:
        await proxy.stop()
    host_port = api.url.split("/")[2]
    assert proxy.requests and all(line == f"CONNECT {host_port} HTTP/1.1" for line in proxy.requests)
    assert api.seen == ["getMe", "sendMessage"]


@pytest.mark.parametrize(
    ("name", "value"), [("SSL_CERT_FILE", "/nonexistent/ca.pem"), ("SSL_CERT_DIR", "/nonexistent/certs")]
)
def test_a_missing_ca_is_a_configuration_error(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        settings_from({name: value})
    assert "chứng chỉ" in str(caught.value)


def test_a_ca_directory_is_not_a_file_and_back(tmp_path: Path, ca_file: str) -> None:
    pem = Path(ca_file)
    with pytest.raises(ConfigError, match="SSL_CERT_FILE"):
        settings_from({"SSL_CERT_FILE": str(tmp_path)})
    with pytest.raises(ConfigError, match="SSL_CERT_DIR"):
        settings_from({"SSL_CERT_DIR": str(pem)})
    settings = settings_from({"SSL_CERT_FILE": f" {pem} ", "SSL_CERT_DIR": ""})
    assert (settings.ca_file, settings.ca_dir) == (ca_file, None)


class TlsFront:
    """An https front (the throw-away CA's certificate) for the Bot API emulator, in a thread of its own,
    so that synchronous commands (`remind --now`, `invite`) can be run against it from the test."""

    def __init__(self, ca: trustme.CA, upstream: str) -> None:
        import threading

        self.ca, self.upstream, self.url = ca, upstream, ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> TlsFront:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import aiohttp

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(tls)
        async with aiohttp.ClientSession() as upstream:

            async def forward(request: web.Request) -> web.Response:
                async with upstream.request(
                    request.method,
                    self.upstream + request.path_qs,
                    data=await request.read(),
                    headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
                ) as answer:
                    body = await answer.read()
                    return web.Response(body=body, status=answer.status, content_type=answer.content_type)

            runner, port = await serve_everything(forward, tls=tls)
            self.url = f"https://127.0.0.1:{port}"
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()


def test_the_commands_that_call_telegram_check_the_ca_too(
    ca: trustme.CA, ca_file: str, database_url: str, no_proxy_env, tmp_path: Path, capsys
) -> None:
    """`webhook info`, `invite` (asking getMe for the bot's name) and `remind --now` use the same clients and
    CA as the running bot: they work behind a private CA named by SSL_CERT_FILE, and refuse without it."""
    import argparse

    from bot.cli.common import CliError
    from bot.cli.invites import bot_username
    from bot.cli.running import WebhookError, webhook_call
    from bot.cli.send_now import run_once
    from bot.emulator.server import EmulatorServer

    emulator = EmulatorServer(token=TOKEN, bot_username="baocao_tls_bot")
    emulator.start_in_thread()
    try:
        with TlsFront(ca, emulator.url) as front:
            env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": front.url, "DATABASE_URL": database_url}
            trusted, untrusted = settings_from({**env, "SSL_CERT_FILE": ca_file}), settings_from(env)
            args = argparse.Namespace(drop_pending=False, max_connections=40)
            assert asyncio.run(webhook_call(trusted, "info", args)).url == ""
            assert bot_username(trusted) == "baocao_tls_bot"
            lines: list[str] = []
            assert run_once(trusted, plan=lambda *_: "0 mới", out=lines.append) == 0
            assert lines[0] == "Lập lịch: 0 mới"

            with pytest.raises(WebhookError):
                asyncio.run(webhook_call(untrusted, "info", args))
            with pytest.raises(CliError):
                bot_username(untrusted)
            with pytest.raises(NetworkError):
                run_once(untrusted, plan=lambda *_: "0 mới", out=lines.append)
            # the command itself: one line saying what to check, no traceback
            from bot.cli import main

            no_proxy_env.chdir(tmp_path)
            for name, value in env.items():
                no_proxy_env.setenv(name, value)
            no_proxy_env.delenv("SSL_CERT_FILE", raising=False)
            no_proxy_env.delenv("SSL_CERT_DIR", raising=False)
            assert main(["remind", "--now"]) == 1
            err = capsys.readouterr().err
            assert "Không gửi được qua máy chủ Bot API" in err and "SSL_CERT_FILE" in err
            assert "Traceback" not in err and TOKEN not in err
    finally:
        emulator.stop_thread()
    assert len(emulator.requests_for("getMe")) >= 2  # the trusted calls got through


@pytest.mark.parametrize(
    "content", ["", "không phải chứng chỉ\n", "-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n"]
)
def test_a_ca_file_that_holds_no_certificate_is_a_configuration_error(tmp_path: Path, content: str) -> None:
    """Caught at start with the setting's name — not a traceback at the first call, restarted ten times."""
    path = tmp_path / "ca.pem"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match="SSL_CERT_FILE") as caught:
        settings_from({"SSL_CERT_FILE": str(path)})
    assert "PEM" in str(caught.value)


def test_ssl_cert_dir_may_list_several_directories(tmp_path: Path, ca_file: str) -> None:
    """As OpenSSL reads it: directories separated by ':' — each must exist."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    both = f"{tmp_path / 'a'}:{tmp_path / 'b'}"
    assert settings_from({"SSL_CERT_DIR": both}).ca_dir == both
    for wrong in (f"{both}:{tmp_path / 'c'}", f"{both}:", f"{tmp_path / 'a'}::{tmp_path / 'b'}"):
        with pytest.raises(ConfigError, match="SSL_CERT_DIR"):  # a missing or an empty entry
            settings_from({"SSL_CERT_DIR": wrong})


def test_only_the_commands_that_call_telegram_parse_the_ca_bundle(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A broken SSL_CERT_FILE stops `remind --now` at start with the setting's name, but not `periods` or
    `remind --dry-run`, which only read the database (parsing a system bundle costs every command ~35 ms)."""
    from bot.cli import main
    from bot.cli.parser import COMMANDS, OFFLINE

    broken = tmp_path / "ca.pem"
    broken.write_text("không phải chứng chỉ\n", encoding="utf-8")
    monkeypatch.setenv("SSL_CERT_FILE", str(broken))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert main(["remind", "--now"]) == 2
    assert "SSL_CERT_FILE" in capsys.readouterr().err
    assert main(["periods"]) == 0
    assert main(["remind", "--dry-run"]) == 0
    assert "SSL_CERT_FILE" not in capsys.readouterr().err
    monkeypatch.setenv(
        "SSL_CERT_FILE", str(tmp_path / "missing.pem")
    )  # a missing file: every command says so
    assert main(["periods"]) == 2
    assert "SSL_CERT_FILE" in capsys.readouterr().err
    assert set(COMMANDS) > OFFLINE and not OFFLINE & {"run", "serve", "webhook", "invite", "remind --now"}
    with pytest.raises(ConfigError, match="SSL_CERT_FILE"):
        settings_from({"SSL_CERT_FILE": str(broken)})
    assert settings_from({"SSL_CERT_FILE": str(broken)}, check_ca=False).ca_file == str(broken)
