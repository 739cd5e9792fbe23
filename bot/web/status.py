"""/healthz, /readyz and /metrics beside long polling: `baocao run` with BAOCAO_STATUS_LISTEN=host:port."""

# Webhook mode (`baocao serve`) has these routes on its own port; a commune without a public HTTPS address
# runs long polling instead and still wants a process supervisor's health check and a Prometheus scrape.
# The same route functions as in webhook mode answer here, on a small uvicorn server that runs in the bot's
# event loop: it starts after the application has initialised and stops before it shuts down. It installs
# no signal handlers — `run_polling` owns SIGINT/SIGTERM — and it has no webhook route.

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.routing import Route
from telegram.ext import Application

from bot.clock import Clock, system_clock
from bot.config import ConfigError, Settings
from bot.web.app import WebState, healthz, metrics_endpoint, readyz
from storage.db import head_revision

log = logging.getLogger(__name__)

START_WAIT = 10.0  # seconds the bot waits for the status server to listen before giving up
STOP_WAIT = 5.0  # seconds a stop waits for the status server to close


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the bot's `run_polling` handles SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the process's signal handlers alone."""
        yield


def create_status_app(
    settings: Settings, *, application: Application, engine: Engine, clock: Clock = system_clock
) -> Starlette:
    """The ASGI app with /healthz, /readyz and /metrics only (no webhook route)."""
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )
    app.state.web = WebState(settings, application, engine, b"", clock, head_revision())
    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on host:port; ConfigError, in Vietnamese, when that is impossible (port taken…)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise ConfigError(
            f"BAOCAO_STATUS_LISTEN={host}:{port}: không mở được cổng ({err.strerror or err}); "
            "chọn cổng khác hoặc tắt chương trình đang dùng cổng này."
        ) from None
    return sock


def check_port_free(host: str, port: int) -> None:
    """Raise ConfigError when host:port cannot be listened on; checked before the bot starts."""
    listening_socket(host, port).close()


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    """Run the server on `sock`; a failure is logged, never raised into the bot's event loop."""
    try:
        await server.serve(sockets=[sock])
    except (Exception, SystemExit):  # uvicorn ends a failed start with sys.exit()
        log.error("status server stopped unexpectedly", exc_info=True)
    finally:
        sock.close()


def attach_status_server(application: Application, settings: Settings, engine: Engine) -> None:
    """Serve the status routes while `application` runs (chained onto its post_init and post_stop)."""
    if settings.status_listen is None:
        return
    host, port = settings.status_listen
    config = uvicorn.Config(
        create_status_app(settings, application=application, engine=engine),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off",
    )
    server = QuietServer(config)
    running: dict[str, asyncio.Task[None]] = {}

    async def start(app: Application) -> None:
        sock = listening_socket(host, port)  # bound here: a taken port is our error, not uvicorn's exit
        running["task"] = asyncio.create_task(_serve(server, sock), name="status-server")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_WAIT
        while not server.started:
            if running["task"].done() or loop.time() > deadline:
                raise ConfigError(
                    f"BAOCAO_STATUS_LISTEN={host}:{port}: máy chủ trạng thái không khởi động được."
                )
            await asyncio.sleep(0.02)
        log.info("status server: /healthz /readyz /metrics on %s:%s", host, port, extra={"port": port})

    async def stop(app: Application) -> None:
        task = running.pop("task", None)
        if task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(task, STOP_WAIT)
        except (TimeoutError, Exception):  # a stop must not fail because the status server did
            log.warning("status server did not stop cleanly", exc_info=True)

    # up first, so /healthz answers while the bot sets its menu and starts its scheduler; stopped in
    # post_stop and, should start-up fail after post_init (PTB then skips post_stop), in post_shutdown
    application.post_init = _chain(application.post_init, start, first=True)
    application.post_stop = _chain(application.post_stop, stop, first=True)
    application.post_shutdown = _chain(application.post_shutdown, stop)


def _chain(
    existing: Callable[[Application], Awaitable[Any]] | None,
    added: Callable[[Application], Awaitable[None]],
    *,
    first: bool = False,
) -> Callable[[Application], Awaitable[None]]:
    """One hook that runs `existing` and `added` (added first when `first`)."""

    async def both(app: Application) -> None:
        order = (added, existing) if first else (existing, added)
        for hook in order:
            if hook is not None:
                await hook(app)

    return both
