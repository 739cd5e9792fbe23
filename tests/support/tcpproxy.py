"""A loopback TCP proxy in front of a database server, for outage tests: forwards bytes both ways until told to
`cut` (every connection dropped, new ones refused) or to `hang` (connections accepted, nothing forwarded:
bytes wait in the proxy), and `restore` (forwarding again; what waited during a hang goes through).

It runs an asyncio loop in a daemon thread; the control methods may be called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from urllib.parse import urlsplit, urlunsplit

CHUNK = 64 * 1024


class TcpProxy:
    """127.0.0.1:<port> → upstream host:port, with cuts and hangs on demand."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        """Not listening until `start()`."""
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.mode = "open"  # open | cut | hang
        self.accepted = 0
        self.refused = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()

    # ------------------------------------------------------------------ control (any thread)

    def start(self) -> TcpProxy:
        """Listen on a free loopback port (`self.port`)."""
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        """Close everything and end the thread."""
        if self._loop is None:
            return
        self._call(self._close_all)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def cut(self) -> None:
        """Drop every connection now; refuse new ones (accepted, then closed at once) until `restore()`."""
        self.mode = "cut"
        self._call(self._close_all)

    def hang(self) -> None:
        """Stop forwarding (connections stay open, new ones are accepted) until `restore()`."""
        self.mode = "hang"
        self._call(lambda: self._flowing.clear())  # type: ignore[union-attr]

    def restore(self) -> None:
        """Forward again."""
        self.mode = "open"
        self._call(lambda: self._flowing.set())  # type: ignore[union-attr]

    def cut_for(self, seconds: float) -> threading.Timer:
        """Cut now and restore after `seconds` (a timer thread)."""
        self.cut()
        timer = threading.Timer(seconds, self.restore)
        timer.daemon = True
        timer.start()
        return timer

    def url(self, database_url: str) -> str:
        """`database_url` with its host and port replaced by this proxy's."""
        parts = urlsplit(database_url)
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{self.port}"))

    def _call(self, fn: object) -> None:
        assert self._loop is not None
        done = threading.Event()

        def run() -> None:
            try:
                fn()  # type: ignore[operator]
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    # ------------------------------------------------------------------ the loop (proxy thread)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def _close_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            self.refused += 1
            writer.transport.abort()
            return
        self.accepted += 1
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for w in (writer, up_writer):
            self._writers.discard(w)
            with contextlib.suppress(Exception):
                w.transport.abort()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        while True:
            data = await source.read(CHUNK)
            if not data:
                return
            await self._flowing.wait()  # a hang: the bytes wait here
            if sink.transport.is_closing():
                return
            sink.write(data)
            await sink.drain()


def wait_until(predicate: object, timeout: float, step: float = 0.05) -> bool:
    """Poll `predicate()` until true or `timeout` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():  # type: ignore[operator]
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
