"""Small local HTTP(S) servers for tests: one aiohttp handler for every path, on a free port of 127.0.0.1."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web


async def serve_everything(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], *, tls: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve `handler` for every method and path; (runner to clean up, port)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
