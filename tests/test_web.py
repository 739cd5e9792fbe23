"""Webhook mode's ASGI app: the secret, bad bodies, health, readiness and metrics, with the real Application.

The app runs with its lifespan under Starlette's TestClient; the PTB Application inside it talks to a
recording request (nothing leaves the process) and processes the updates the webhook queues.
"""

from __future__ import annotations

import io
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

with warnings.catch_warnings():  # Starlette 1.x would rather have httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from bot import metrics
from bot.app import build_application
from bot.clock import FixedClock
from bot.config import Settings, settings_from
from bot.deps import Deps
from bot.logging_setup import REDACTED, configure_logging, redact
from bot.reminders.scheduler import SCHEDULER_KEY
from bot.services.accounts import create_invite
from bot.web.app import MAX_BODY_BYTES, SECRET_HEADER, create_app, parse_update
from storage.db import make_engine, session_scope
from storage.models import Outbox, ProcessedUpdate, Role
from tests.support.client import text_update
from tests.support.telegram import TOKEN, FakeUser, RecordingRequest
from tests.support.world import seed_communes

SECRET = "webhook-secret_0123456789"
PATH = "/telegram/webhook"
AN = FakeUser(1001, "An")


def make_settings(database_url: str, **env: str) -> Settings:
    """Settings for webhook mode; reminders off unless asked."""
    return settings_from(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "DATABASE_URL": database_url,
            "BAOCAO_WEBHOOK_SECRET": SECRET,
            "BAOCAO_TICK_SECONDS": "0",
            **env,
        }
    )


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `predicate` until truthy (the update is processed in the app's own loop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


class Web:
    """The running app, its client and what the bot sent."""

    def __init__(self, client: TestClient, request: RecordingRequest, engine: Engine) -> None:
        self.client, self.request, self.engine = client, request, engine

    def post(self, body: Any = None, *, secret: str | None = SECRET, **kwargs: Any) -> Any:
        """POST to the webhook path, JSON unless `content=` is given."""
        headers = dict(kwargs.pop("headers", {}))
        if secret is not None:
            headers[SECRET_HEADER] = secret
        if body is not None:
            kwargs["json"] = body
        return self.client.post(PATH, headers=headers, **kwargs)

    def processed(self) -> int:
        """How many updates the registry recorded."""
        with session_scope(self.engine) as s:
            return len(s.exec(select(ProcessedUpdate)).all())


def _web(engine: Engine, settings: Settings, clock: FixedClock) -> Iterator[Web]:
    request = RecordingRequest()
    application = build_application(settings, deps=Deps(engine, clock, settings), request=request)
    app = create_app(settings, application=application, engine=engine, clock=clock)
    with TestClient(app) as client:
        yield Web(client, request, engine)


@pytest.fixture
def web(engine: Engine, database_url: str, clock: FixedClock) -> Iterator[Web]:
    """The app on a migrated database with Hiệp Lực seeded; reminders off."""
    with session_scope(engine) as s:
        seed_communes(s, clock())
    yield from _web(engine, make_settings(database_url), clock)


def test_a_good_update_is_answered_200_and_processed_by_the_application(
    web: Web, engine: Engine, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    with session_scope(engine) as s:
        code = create_invite(
            s, now=clock(), actor="cli:test", role=Role.VILLAGE_HEAD, village="Thôn Bản Mới"
        ).code
    caplog.set_level(logging.INFO)
    answer = web.post(text_update(AN, f"/start {code}", 7001))
    assert answer.status_code == 200
    texts = wait_until(lambda: web.request.texts(AN.id))
    assert "Đăng ký thành công" in texts[0] and "Thôn Bản Mới" in texts[0]
    line = wait_until(lambda: [r for r in caplog.records if getattr(r, "update_id", None) == 7001])[0]
    assert (line.chat_id, line.handler, line.outcome) == (AN.id, "command:start", "ok")
    assert line.role == "stranger" and line.duration_ms >= 0
    assert code not in caplog.text and TOKEN not in caplog.text and SECRET not in caplog.text
    # the same update delivered again is skipped, and said so
    assert web.post(text_update(AN, f"/start {code}", 7001)).status_code == 200
    wait_until(lambda: [r for r in caplog.records if getattr(r, "outcome", None) == "duplicate"])
    assert len(web.request.texts(AN.id)) == 1


@pytest.mark.parametrize("secret", [None, "", "wrong-secret_0123456789", SECRET + "x", SECRET[:-1]])
def test_a_missing_or_wrong_secret_is_403_logged_without_it_and_nothing_is_processed(
    web: Web, secret: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = web.post(text_update(AN, "/start", 7101), secret=secret)
    assert answer.status_code == 403 and answer.json() == {"ok": False, "error": "forbidden"}
    time.sleep(0.2)
    assert web.request.texts() == [] and web.processed() == 0
    refused = [r for r in caplog.records if getattr(r, "status", None) == 403]
    assert refused and "secret token" in refused[0].getMessage()
    if secret:
        assert secret not in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"not json at all", "body is not JSON"),
        (b"\xff\xfe\x00garbage", "body is not JSON"),
        (b"", "body is not JSON"),
        (b"[1, 2, 3]", "JSON is not an object"),
        (b'{"hello": "world"}', "no integer update_id"),
        (b'{"update_id": "12"}', "no integer update_id"),
        (b'{"update_id": true, "message": {}}', "no integer update_id"),
        (b'{"update_id": 5}', "no update content"),
        (b'{"update_id": 5, "message": "text"}', "no update content"),
        (b'{"update_id": 5, "message": {"chat": 3}}', "unreadable update"),
    ],
)
def test_bodies_that_are_not_updates_are_400_and_the_app_keeps_serving(
    web: Web, content: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = web.post(content=content, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"] == "not an update"
    assert any(why in r.getMessage() for r in caplog.records if getattr(r, "status", None) == 400)
    assert web.client.get("/healthz").status_code == 200
    assert web.post(text_update(AN, "/start", 7201)).status_code == 200
    wait_until(lambda: web.request.texts(AN.id))


def test_huge_bodies_are_413_whether_declared_or_streamed(web: Web) -> None:
    huge = b'{"update_id": 1, "message": {"text": "' + b"x" * MAX_BODY_BYTES + b'"}}'
    assert web.post(content=huge).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the app stops reading past the cap
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536

    assert web.post(content=chunks()).status_code == 413
    assert web.post(content=b"{}", headers={"Content-Length": "abc"}).status_code in (400, 413)
    assert web.processed() == 0


def test_other_methods_and_paths(web: Web) -> None:
    assert web.client.get(PATH).status_code == 405
    assert web.client.post("/other", json={}).status_code == 404


def test_parse_update_accepts_every_update_kind_shape() -> None:
    assert parse_update(b'{"update_id": 0, "callback_query": {"id": "1"}}') == {
        "update_id": 0,
        "callback_query": {"id": "1"},
    }
    assert parse_update(b'{"update_id": -1, "message": {}}') == "no integer update_id"


def test_healthz_and_readyz_when_all_is_well(web: Web) -> None:
    assert web.client.get("/healthz").json() == {"status": "ok"}
    ready = web.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert (
        body["ready"] is True and body["checks"]["database"] == "ok" and body["checks"]["migrations"] == "ok"
    )
    assert body["checks"]["scheduler"].startswith("tắt")


def test_readyz_is_503_with_a_reason_when_migrations_are_behind(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    for web in _web(empty, make_settings(database_url), clock):
        ready = web.client.get("/readyz")
        assert ready.status_code == 503
        assert "migrations" in ready.json()["reason"] and "baocao db upgrade" in ready.json()["reason"]
        assert web.client.get("/healthz").status_code == 200
    empty.dispose()


def test_readyz_is_503_when_the_database_is_unreachable(
    tmp_path: Path, database_url: str, clock: FixedClock
) -> None:
    gone = make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}")
    for web in _web(gone, make_settings(database_url), clock):
        ready = web.client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False and body["checks"]["database"].startswith("không kết nối được")
        # /metrics still answers, counting the failed read
        assert web.client.get("/metrics").status_code == 200
    gone.dispose()


def test_readyz_follows_the_reminder_scheduler(engine: Engine, database_url: str, clock: FixedClock) -> None:
    for web in _web(engine, make_settings(database_url, BAOCAO_TICK_SECONDS="3600"), clock):
        ready = web.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["scheduler"] == "ok"
        app = web.client.app.state.web.application  # type: ignore[attr-defined]
        scheduler = app.bot_data[SCHEDULER_KEY]
        web.client.portal.call(_pause, scheduler._scheduler)  # type: ignore[union-attr]
        paused = web.client.get("/readyz")
        assert paused.status_code == 503 and "không còn việc định kỳ" in paused.json()["reason"]
        web.client.portal.call(scheduler.stop)  # type: ignore[union-attr]
        stopped = web.client.get("/readyz")
        assert stopped.status_code == 503 and "scheduler" in stopped.json()["reason"]


async def _pause(aps: Any) -> None:
    aps.get_job("reminders-tick").pause()


def test_metrics_expose_updates_latency_webhook_statuses_and_the_outbox(
    web: Web, engine: Engine, clock: FixedClock
) -> None:
    with session_scope(engine) as s:
        for i, due in enumerate((clock() - timedelta(minutes=5), clock() + timedelta(days=1))):
            s.add(Outbox(key=f"k{i}", kind="reminder", chat_id=1001, due_at=due, created_at=clock()))
    web.post(text_update(AN, "/start", 7301), secret="nope-nope-nope-nope")
    web.post(text_update(AN, "/start", 7302))
    wait_until(lambda: web.request.texts(AN.id))
    metrics.record_sent(2)
    metrics.record_429()
    metrics.record_dispatch("obsolete")
    answer = web.client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    for line in (
        'baocao_webhook_requests_total{status="403"}',
        'baocao_webhook_requests_total{status="200"}',
        'baocao_updates_total{handler="command:start",outcome="ok"}',
        'baocao_handler_duration_seconds_bucket{handler="command:start",le="0.5"}',
        'baocao_outbox_messages{status="pending"} 2.0',
        'baocao_outbox_messages{status="sent"} 0.0',
        "baocao_outbox_due_messages 1.0",
        "baocao_reminders_sent_total",
        "baocao_reminders_planned_total",
        "baocao_reminders_failed_total",
        "baocao_telegram_429_total",
        'baocao_outbox_results_total{outcome="obsolete"}',
        "process_resident_memory_bytes",
    ):
        assert line in text, line
    assert TOKEN not in text and SECRET not in text


def test_create_app_needs_the_secret(engine: Engine, database_url: str, clock: FixedClock) -> None:
    from bot.config import ConfigError

    settings = settings_from({"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url})
    application = build_application(settings, deps=Deps(engine, clock, settings), request=RecordingRequest())
    with pytest.raises(ConfigError, match="BAOCAO_WEBHOOK_SECRET"):
        create_app(settings, application=application, engine=engine)


# ---------------------------------------------------------------------- logs


def test_json_logs_carry_the_fields_and_never_the_token_or_secret() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("json", secrets=(TOKEN, SECRET), stream=stream)
        log = logging.getLogger("bot.test")
        log.info("update %s chat %s", 1, 2, extra={"update_id": 1, "chat_id": 2, "handler": "command:start"})
        log.info("calling https://api.telegram.org/bot%s/getMe with %s", TOKEN, SECRET)
        try:
            raise RuntimeError(f"failed POST /bot{TOKEN}/sendMessage")
        except RuntimeError:
            log.exception("boom")
        assert logging.getLogger("httpx").level == logging.WARNING
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["msg"] == "update 1 chat 2" and lines[0]["update_id"] == 1
    assert lines[0]["handler"] == "command:start" and lines[0]["level"] == "INFO" and "ts" in lines[0]
    assert REDACTED in lines[1]["msg"] and "exc" in lines[2]
    everything = stream.getvalue()
    assert TOKEN not in everything and SECRET not in everything and TOKEN.split(":")[1] not in everything


def test_text_logs_are_scrubbed_too() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("text", stream=stream)
        logging.getLogger("telegram.ext").warning("GET /bot123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/getMe")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "AAAAAAAAAAAAAAAAAAAA" not in stream.getvalue() and " WARNING telegram.ext: " in stream.getvalue()
    assert redact("x 123:short y") == "x 123:short y"
