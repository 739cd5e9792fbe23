"""A client-side bound on one database call made on the event loop: past its deadline the connection's socket is
shut down (PostgreSQL), so a call blocked on a database that hangs returns with an OperationalError instead of
stalling the loop. SQLite needs none: its busy timeout bounds a locked call."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

POLL = 0.1  # seconds between two looks of the watchdog thread


def socket_fd(conn: Connection) -> int | None:
    """The file descriptor of a psycopg connection's socket (None for other drivers or when closed)."""
    with contextlib.suppress(Exception):
        pgconn = getattr(conn.connection.dbapi_connection, "pgconn", None)
        if pgconn is not None:
            fd = int(pgconn.socket)
            return fd if fd >= 0 else None
    return None


class Watchdog:
    """One daemon thread shutting down the sockets of guarded calls that outlast their deadline."""

    def __init__(self) -> None:
        """Idle until the first guard."""
        self._slots: dict[int, tuple[float, int]] = {}
        self._keys = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.fired = 0

    @contextlib.contextmanager
    def guard(self, conn: Connection, seconds: float) -> Iterator[None]:
        """Bound what runs inside to `seconds` on `conn` (a no-op when its driver has no socket to cut)."""
        fd = socket_fd(conn)
        if fd is None:
            yield
            return
        key = next(self._keys)
        with self._lock:
            self._slots[key] = (time.monotonic() + seconds, fd)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._slots.pop(key, None)

    def _run(self) -> None:
        while True:
            time.sleep(POLL)
            now = time.monotonic()
            with self._lock:
                late = [(key, fd) for key, (deadline, fd) in self._slots.items() if now >= deadline]
                for key, _fd in late:
                    del self._slots[key]
            for _key, fd in late:
                self.fired += 1
                log.warning("a database call outlasted its time: its connection is closed")
                with contextlib.suppress(OSError):
                    dup = socket.socket(fileno=os.dup(fd))
                    try:
                        dup.shutdown(socket.SHUT_RDWR)
                    finally:
                        dup.close()


WATCHDOG = Watchdog()
