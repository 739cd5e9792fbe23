"""Webhook mode: an ASGI app (Starlette) in front of the same PTB Application as long polling."""

# Routes::
#
#     POST {BAOCAO_WEBHOOK_PATH}   Telegram's updates. The X-Telegram-Bot-Api-Secret-Token header must
#                                  equal BAOCAO_WEBHOOK_SECRET (else 403, logged, nothing read or
#                                  processed); the body must be one JSON update of at most 1 MiB
#                                  (else 400 / 413). A good update is processed first — through the
#                                  application's update processor, one update at a time per process —
#                                  and answered 200 only once its transaction committed and its replies
#                                  went out (see "Answering after processing" below).
#     GET  /healthz                the process is up (always 200)
#     GET  /readyz                 200 when the database answers SELECT 1, its migrations are at head,
#                                  the application runs and the reminder scheduler ticks; else 503 with
#                                  the reason as JSON
#     GET  /metrics                Prometheus text (bot.metrics), the outbox gauges read at scrape time
#
# The lifespan runs the application like `run_polling` does (initialize, post_init — which starts the
# reminder ticks —, start; on shutdown stop, post_stop, shutdown), so queued updates are finished and
# the reminder cycle ends cleanly when uvicorn gets SIGTERM/SIGINT.
#
# Answering after processing. Telegram deletes an update once its webhook POST got a 2xx and re-sends
# it (later, with backoff) after anything else. Answering 200 at once and processing from a queue would
# lose the update whenever the process dies in between (deploy, OOM, machine lost); answering after the
# commit makes "never lost" hold: a worker that dies mid-update leaves no commit and no answer, so
# Telegram re-sends it, to this worker or another, and the `processed_update` row written in the same
# transaction as the handler's writes makes a re-send of a committed update a no-op. Telegram's Bot API
# server keeps a webhook queue per chat and POSTs a chat's next update only after the previous one was
# answered (different chats go in parallel, up to `max_connections`) — how its open-source server
# works, not a documented promise — so answering late is also what keeps one chat's updates in order
# across several workers. The per-chat advisory lock (bot.updates.pipeline) covers the rest: a re-send
# overlapping a slow first delivery, or two updates of one chat in flight at once, are applied one
# after the other, never interleaved (in that last case in the order the workers got the lock).
#
# Timeout fallback: an update not processed within ANSWER_TIMEOUT seconds (a stuck database, a chat
# lock held elsewhere) is answered 503 while its processing goes on here; Telegram re-sends it later
# and that delivery is skipped as a duplicate if the first one committed meanwhile, processed if it did
# not. Telegram does not document how long it waits for an answer; 40 s stays under a reverse proxy's
# usual 60 s read timeout (nginx's default), so the answer Telegram gets is ours, not the proxy's. A
# handler error is answered 200: the transaction was rolled back and the person was told to try again
# (the application's error handler), as in long polling. On shutdown, updates still being processed
# after a timeout are waited for (up to SHUTDOWN_WAIT) before the application stops.

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from bot import metrics
from bot.clock import Clock, system_clock
from bot.config import Settings
from bot.reminders.scheduler import JOB_ID, SCHEDULER_KEY
from storage.db import current_revision, head_revision

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1024 * 1024  # Telegram's updates are a few KiB; anything near this is not one
CHECK_TIMEOUT = 5.0  # seconds for each database check of /readyz and /metrics
SCHEDULER_GRACE = timedelta(seconds=60)  # a tick this late past its time means the loop is stuck
ANSWER_TIMEOUT = 40.0  # seconds an update may take before Telegram is told 503 (it re-sends later)
SHUTDOWN_WAIT = 30.0  # seconds a stop waits for updates still processing after their 503


@dataclass
class WebState:
    """What the routes share."""

    settings: Settings
    application: Application
    engine: Engine
    secret: bytes
    clock: Clock = system_clock
    head: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    answer_timeout: float = ANSWER_TIMEOUT
    pending: set[asyncio.Future[None]] = field(default_factory=set)  # updates being processed


def _state(request: Request) -> WebState:
    return request.app.state.web


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _reject(status: int, reason: str, request: Request, why: str) -> Response:
    """Answer an error, count it and log it (never the body, never the token)."""
    metrics.record_webhook(status)
    log.warning(
        "webhook: %s from %s refused: %s",
        request.method,
        _client(request),
        why,
        extra={"status": status, "client": _client(request), "reason": reason},
    )
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than `limit` (read no further than that)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def parse_update(body: bytes) -> dict[str, Any] | str:
    """The update as a dict, or the reason it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "body is not JSON"
    if not isinstance(data, dict):
        return "JSON is not an object"
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        return "no integer update_id"
    if not any(isinstance(v, dict) for k, v in data.items() if k != "update_id"):
        return "no update content"
    return data


async def webhook(request: Request) -> Response:
    """Telegram's POST: check the secret, the size and the shape, process the update, then answer 200."""
    state = _state(request)
    given = request.headers.get(SECRET_HEADER)
    if given is None:
        return _reject(403, "forbidden", request, "no secret token header")
    if not hmac.compare_digest(given.encode("utf-8", "replace"), state.secret):
        return _reject(403, "forbidden", request, "wrong secret token")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        return _reject(413, "body too large", request, f"declared length {declared[:20]}")
    try:
        body = await _read_body(request, MAX_BODY_BYTES)
    except ClientDisconnect:
        return _reject(400, "client disconnected", request, "client went away mid-body")
    if body is None:
        return _reject(413, "body too large", request, f"body over {MAX_BODY_BYTES} bytes")
    parsed = parse_update(body)
    if isinstance(parsed, str):
        return _reject(400, "not an update", request, parsed)
    try:
        update = Update.de_json(parsed, state.application.bot)
    except Exception as err:  # PTB refuses the shape of some field
        return _reject(400, "not an update", request, f"unreadable update ({type(err).__name__})")
    if not state.application.running:
        return _reject(503, "not running", request, "application not running (starting or stopping)")
    if not await process(state, update):
        return _reject(503, "still processing", request, f"update {update.update_id} not done yet")
    metrics.record_webhook(200)
    log.debug("webhook: update %s processed", update.update_id, extra={"update_id": update.update_id})
    return Response(status_code=200)


async def process(state: WebState, update: Update) -> bool:
    """Process the update as the application's queue would; False when it outlasted the answer timeout.

    The processing is shielded: a timeout or a client that hangs up never cancels it half-way.
    """
    application = state.application
    task = asyncio.ensure_future(
        application.update_processor.process_update(update, application.process_update(update))
    )
    state.pending.add(task)
    task.add_done_callback(state.pending.discard)
    try:
        await asyncio.wait_for(asyncio.shield(task), state.answer_timeout)
    except TimeoutError:
        return False
    return True


async def healthz(request: Request) -> Response:
    """The process is up."""
    return JSONResponse({"status": "ok"})


def _database_checks(engine: Engine, head: str | None) -> tuple[str | None, str | None]:
    """(database problem, migrations problem); None means fine. Blocking."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
    except Exception as err:
        return f"không kết nối được cơ sở dữ liệu: {_short(err)}", "chưa kiểm tra được"
    try:
        current = current_revision(engine)
    except Exception as err:
        return None, f"không đọc được phiên bản cơ sở dữ liệu: {_short(err)}"
    if current != head:
        return (
            None,
            f"cơ sở dữ liệu ở phiên bản {current or '(trống)'}, mới nhất {head}: chạy baocao db upgrade",
        )
    return None, None


def _short(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    lines = str(orig).strip().splitlines()
    return (lines[0] if lines else type(err).__name__)[:200]


def scheduler_problem(state: WebState) -> str | None:
    """Why the reminder scheduler is not alive, or None when it is (or is turned off)."""
    if state.settings.tick_seconds <= 0:
        return None
    scheduler = state.application.bot_data.get(SCHEDULER_KEY)
    if scheduler is None:
        return "bộ hẹn giờ nhắc hạn chưa chạy"
    aps = getattr(scheduler, "_scheduler", None)
    if aps is None or not aps.running:
        return "bộ hẹn giờ nhắc hạn đã dừng"
    job = aps.get_job(JOB_ID)
    if job is None or job.next_run_time is None:
        return "bộ hẹn giờ nhắc hạn không còn việc định kỳ"
    late = datetime.now(UTC) - job.next_run_time
    if late > SCHEDULER_GRACE:
        return f"bộ hẹn giờ nhắc hạn bị trễ {late.total_seconds():.0f} giây"
    return None


async def readyz(request: Request) -> Response:
    """Ready when the database answers, migrations are at head and the scheduler ticks."""
    state = _state(request)
    try:
        db, migrations = await asyncio.wait_for(
            asyncio.to_thread(_database_checks, state.engine, state.head), CHECK_TIMEOUT
        )
    except TimeoutError:
        db, migrations = f"cơ sở dữ liệu không trả lời trong {CHECK_TIMEOUT:g} giây", "chưa kiểm tra được"
    checks = {
        "application": None if state.application.running else "ứng dụng bot chưa chạy",
        "database": db,
        "migrations": migrations,
        "scheduler": scheduler_problem(state),
    }
    problems = {k: v for k, v in checks.items() if v is not None}
    body: dict[str, Any] = {
        "ready": not problems,
        "checks": {k: v or "ok" for k, v in checks.items()},
    }
    if state.settings.tick_seconds <= 0:
        body["checks"]["scheduler"] = "tắt (BAOCAO_TICK_SECONDS=0)"
    if problems:
        body["reason"] = "; ".join(f"{k}: {v}" for k, v in problems.items())
        log.warning("readyz: not ready: %s", body["reason"])
    return JSONResponse(body, status_code=503 if problems else 200)


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text; the outbox gauges are refreshed from the database first."""
    state = _state(request)
    try:
        await asyncio.wait_for(
            asyncio.to_thread(metrics.refresh_outbox, state.engine, state.clock()), CHECK_TIMEOUT
        )
    except Exception as err:
        metrics.SCRAPE_ERRORS.inc()
        log.warning("metrics: outbox not read: %s", _short(err))
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)


@asynccontextmanager
async def run_application(application: Application) -> AsyncIterator[None]:
    """Run the application as `run_polling` would, minus the polling."""
    await application.initialize()
    try:
        if application.post_init:
            await application.post_init(application)
        await application.start()
        try:
            yield
        finally:
            await application.stop()  # processes what is queued, then stops
            if application.post_stop:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)


def create_app(
    settings: Settings,
    *,
    application: Application,
    engine: Engine,
    manage_application: bool = True,
    clock: Clock = system_clock,
    answer_timeout: float = ANSWER_TIMEOUT,
) -> Starlette:
    """The ASGI app; with `manage_application` its lifespan starts and stops the application."""
    secret = settings.require_webhook_secret()
    state = WebState(settings, application, engine, secret.encode(), clock, head_revision())
    state.answer_timeout = answer_timeout

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not manage_application:
            yield
            return
        async with run_application(application):
            log.info(
                "webhook mode: ready for updates on %s",
                settings.webhook_path,
                extra={"path": settings.webhook_path},
            )
            yield
            if state.pending:  # updates that outlasted their answer: finish them before stopping
                log.info("webhook mode: finishing %s update(s) in progress", len(state.pending))
                await asyncio.wait(set(state.pending), timeout=SHUTDOWN_WAIT)
        log.info("webhook mode: stopped")

    app = Starlette(
        routes=[
            Route(settings.webhook_path, webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.web = state
    return app


def serve(settings: Settings, *, application: Application, engine: Engine) -> None:
    """Serve `application` (built without an updater) with uvicorn until SIGTERM/SIGINT."""
    settings.require_webhook_secret()
    app = create_app(settings, application=application, engine=engine)
    config = uvicorn.Config(
        app,
        host=settings.listen_host,
        port=settings.listen_port,
        log_config=None,  # our handlers (text or JSON, scrubbed) carry uvicorn's lines too
        access_log=False,  # one line per update comes from the handler registry instead
        server_header=False,
        proxy_headers=True,
        timeout_graceful_shutdown=30,
    )
    log.info(
        "webhook mode: listening on %s:%s, webhook path %s, Bot API %s",
        settings.listen_host,
        settings.listen_port,
        settings.webhook_path,
        settings.api_url,
    )
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down cleanly; with these handlers in place
    # that ends nothing, and the process exits 0 after a graceful stop
    previous = {sig: signal.signal(sig, _after_shutdown) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _after_shutdown(signum: int, frame: Any) -> None:
    log.debug("signal %s after shutdown", signum)
