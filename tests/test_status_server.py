"""The status server of long-polling mode (BAOCAO_STATUS_LISTEN): /healthz, /readyz, /metrics beside `run`.

The real Application (recording request, nothing leaves the process) is started and stopped the way
`run_polling` does it, with the status server chained onto its hooks; the routes are asked over real HTTP.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from bot import cli
from bot.app import build_application
from bot.clock import FixedClock
from bot.config import ConfigError, Settings, settings_from
from bot.deps import Deps
from bot.web.app import run_application
from bot.web.status import attach_status_server, check_port_free
from tests.support.telegram import TOKEN, RecordingRequest


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program is listening on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def status_settings(database_url: str, port: int, **env: str) -> Settings:
    """Long-polling settings with the status server on 127.0.0.1:port; reminders off unless asked."""
    return settings_from(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "DATABASE_URL": database_url,
            "BAOCAO_TICK_SECONDS": "0",
            "BAOCAO_STATUS_LISTEN": f"127.0.0.1:{port}",
            **env,
        }
    )


# ----------------------------------------------------------------------------- configuration


def test_the_status_server_is_off_unless_asked() -> None:
    assert settings_from({}).status_listen is None
    assert settings_from({"BAOCAO_STATUS_LISTEN": "  "}).status_listen is None
    assert settings_from({"BAOCAO_STATUS_LISTEN": "127.0.0.1:9090"}).status_listen == ("127.0.0.1", 9090)
    assert settings_from({"BAOCAO_STATUS_LISTEN": ":9090"}).status_listen == ("0.0.0.0", 9090)


@pytest.mark.parametrize("raw", ["9090", "localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:70000", "a:b"])
def test_a_bad_status_address_is_one_clear_error(raw: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_from({"BAOCAO_STATUS_LISTEN": raw})
    assert "BAOCAO_STATUS_LISTEN" in str(err.value)
    assert "địa chỉ:cổng" in str(err.value)


def test_a_taken_port_is_refused_before_anything_starts(taken_port: int) -> None:
    with pytest.raises(ConfigError) as err:
        check_port_free("127.0.0.1", taken_port)
    assert f"127.0.0.1:{taken_port}" in str(err.value)
    assert "không mở được cổng" in str(err.value)
    check_port_free("127.0.0.1", free_port())  # a free one passes


@pytest.fixture
def kept_logging() -> Iterator[None]:
    """`baocao`'s main configures the root logger; put it back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.mark.usefixtures("kept_logging")
def test_baocao_run_with_a_taken_port_exits_with_a_usage_error(
    taken_port: int, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "DATABASE_URL": database_url,
        "BAOCAO_STATUS_LISTEN": f"127.0.0.1:{taken_port}",
    }.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["--env-file", "/nonexistent/.env", "run"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("Lỗi cấu hình: BAOCAO_STATUS_LISTEN=")
    assert TOKEN not in err


# ----------------------------------------------------------------------------- the routes, really served


async def test_status_routes_while_the_application_runs_and_gone_after(
    engine: Engine, database_url: str, clock: FixedClock
) -> None:
    port = free_port()
    settings = status_settings(database_url, port)
    request = RecordingRequest()
    application = build_application(settings, deps=Deps(engine, clock, settings), request=request)
    attach_status_server(application, settings, engine)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        async with run_application(application):
            health = await http.get("/healthz")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["ready"] is True
            assert body["checks"]["database"] == "ok" and body["checks"]["migrations"] == "ok"
            assert body["checks"]["scheduler"].startswith("tắt")
            scrape = await http.get("/metrics")
            assert scrape.status_code == 200
            assert scrape.headers["content-type"].startswith("text/plain")
            assert "baocao_outbox_due_messages 0.0" in scrape.text  # read from the database
            # no webhook here, and only GET
            assert (await http.post(settings.webhook_path, json={"update_id": 1})).status_code == 404
            assert (await http.post("/healthz")).status_code == 405
            assert (await http.get("/nothing-here")).status_code == 404
        with pytest.raises(httpx.ConnectError):  # stopped with the application
            await http.get("/healthz")
    check_port_free("127.0.0.1", port)  # and the port is released


async def test_readyz_says_why_when_the_scheduler_is_not_running(
    engine: Engine, database_url: str, clock: FixedClock
) -> None:
    port = free_port()
    settings = status_settings(database_url, port, BAOCAO_TICK_SECONDS="30")
    application = build_application(settings, deps=Deps(engine, clock, settings), request=RecordingRequest())
    attach_status_server(application, settings, engine)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
        run_application(application),
    ):
        ok = await http.get("/readyz")
        assert ok.status_code == 200, ok.text
        application.bot_data.clear()  # the scheduler's handle gone: as if it had died
        bad = await http.get("/readyz")
        assert bad.status_code == 503
        assert "bộ hẹn giờ nhắc hạn" in bad.json()["reason"]


async def test_a_status_server_that_cannot_listen_stops_the_start(
    engine: Engine, database_url: str, clock: FixedClock, taken_port: int
) -> None:
    settings = status_settings(database_url, taken_port)
    application = build_application(settings, deps=Deps(engine, clock, settings), request=RecordingRequest())
    attach_status_server(application, settings, engine)
    with pytest.raises(ConfigError, match="không mở được cổng"):
        async with run_application(application):
            pytest.fail("the application must not run without its status server")


def test_without_the_setting_nothing_is_attached(
    engine: Engine, database_url: str, clock: FixedClock
) -> None:
    settings = settings_from({"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url})
    application = build_application(settings, deps=Deps(engine, clock, settings), request=RecordingRequest())
    hooks = (application.post_init, application.post_stop, application.post_shutdown)
    attach_status_server(application, settings, engine)
    assert (application.post_init, application.post_stop, application.post_shutdown) == hooks


async def test_the_status_server_stops_even_if_the_application_never_started(
    engine: Engine, database_url: str, clock: FixedClock
) -> None:
    """PTB skips post_stop when start() never ran (a failure after post_init): post_shutdown stops it."""
    port = free_port()
    settings = status_settings(database_url, port)
    application = build_application(settings, deps=Deps(engine, clock, settings), request=RecordingRequest())
    attach_status_server(application, settings, engine)
    await application.initialize()
    await application.post_init(application)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        assert (await http.get("/healthz")).status_code == 200
        not_ready = await http.get("/readyz")  # initialised, never started
        assert not_ready.status_code == 503 and "ứng dụng bot chưa chạy" in not_ready.json()["reason"]
        await application.shutdown()
        await application.post_shutdown(application)
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz")
    check_port_free("127.0.0.1", port)
