"""Small local HTTP(S) servers for tests: one aiohttp handler for every path, on a free port of 127.0.0.1."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve_everything(
    handler: Handler, *, tls: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve `handler` for every method and path; (runner to clean up, port)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


class LocalServers:
    """Servers started during a test, all stopped when the `async with` block ends."""

    def __init__(self) -> None:
        self._runners: list[web.AppRunner] = []

    async def start(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> int:
        """Serve `handler` on a new port; the port."""
        runner, port = await serve_everything(handler, tls=tls)
        self._runners.append(runner)
        return port

    async def __aenter__(self) -> LocalServers:
        return self

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        for runner in self._runners:
            await runner.cleanup()
