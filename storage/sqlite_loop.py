"""SQLite's one writer inside the process: short transactions on the event loop's own connection when the
write lock is free at once, the rest in the writer thread (`WriteSlot`), never both at the same time.

The loop's connection is one of the engine's, taken out of its pool for good (`detach`), with the driver's
implicit transactions off, a zero busy timeout and no automatic WAL checkpoint: its transaction starts with
`BEGIN IMMEDIATE`, which takes the write lock or fails at once when another connection (a reminder thread,
another process) holds it — the loop never waits for SQLite's lock, and never fsyncs a
checkpoint. Checkpoints run in the writer thread instead (`checkpoint`), holding the gate.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 250  # commits on the loop between two checkpoints (~1,000 WAL pages, SQLite's default)
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


class WriteSlot:
    """Who writes SQLite in this process now: a transaction on the event loop, or the writer thread.

    `gate` is held by whoever writes. The writer thread waits for it (`wait_gate`); the loop never does: a
    transaction for the loop first takes its turn among the loop's (an asyncio lock, FIFO), then waits,
    without blocking the loop, until the writer thread has no work queued or running (`pending`), and only
    then takes the gate, which is free by then (`take_for_loop`). So the writer thread's queue is never
    starved by the loop, and answers do not pile into that queue while it works.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        """`enabled=False`: every transaction goes to the writer thread (as before the loop path existed)."""
        self.enabled = enabled
        self.gate = threading.Lock()
        self._count = threading.Lock()
        self._pending = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turn = asyncio.Lock()
        self._idle = asyncio.Event()
        self._connection: Connection | None = None
        self._commits = 0
        self.on_loop = 0  # transactions run on the loop (for tests and the benchmark's notes)
        self.fallbacks = 0  # loop tries that found the write lock held by another connection
        self.in_writer = 0  # transactions handed to the writer thread

    @property
    def pending(self) -> int:
        """Work queued for or running in the writer thread."""
        return self._pending

    def queued(self) -> None:
        """One more piece of work handed to the writer thread (called on the event loop)."""
        self._bind_loop()
        with self._count:
            self._pending += 1

    def finished(self, _future: Any = None) -> None:
        """One piece of the writer thread's work done, failed or dropped (a future's done callback, from
        whichever thread): the last one wakes the loop's waiting transaction."""
        with self._count:
            self._pending -= 1
            idle = self._pending == 0
        loop = self._loop
        if idle and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._idle.set)

    async def take_for_loop(self) -> None:
        """Wait (on the loop, never blocking it) for this transaction's turn and for the writer thread to be
        idle, then hold the gate; `release_loop` gives both back. Cancelled: nothing held."""
        self._bind_loop()
        await self._turn.acquire()
        try:
            while not (self._pending == 0 and self.gate.acquire(blocking=False)):
                if self._pending == 0:  # the writer's last work is letting go of the gate this moment
                    await asyncio.sleep(0.001)
                    continue
                self._idle.clear()
                if self._pending:
                    await self._idle.wait()
        except BaseException:
            self._turn.release()
            raise

    def release_loop(self) -> None:
        """Give back the gate and the loop's turn (after `take_for_loop`)."""
        self.gate.release()
        self._turn.release()

    def wait_gate(self, abandoned: threading.Event, poll: float = 0.05) -> bool:
        """In the writer thread: wait for the gate until `abandoned` is set; True when held."""
        while not self.gate.acquire(timeout=poll):
            if abandoned.is_set():
                return False
        return True

    @contextmanager
    def holding_gate(self, abandoned: threading.Event) -> Iterator[bool]:
        """In the writer thread: the gate held for the block (`wait_gate`); False, nothing held, when
        `abandoned` was set first."""
        if not self.wait_gate(abandoned):
            yield False
            return
        try:
            yield True
        finally:
            self.gate.release()

    def _bind_loop(self) -> None:
        """Use the running loop's asyncio primitives (made anew when the slot meets another event loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._turn, self._idle = loop, asyncio.Lock(), asyncio.Event()

    def connection(self, engine: Engine) -> Connection | None:
        """The loop's own connection (opened at the first use); None for an in-memory database."""
        if self._connection is None:
            if engine.url.database in (None, "", ":memory:") or "mode=memory" in str(engine.url):
                self.enabled = False
                return None
            self._connection = open_loop_connection(engine)
        return self._connection

    def committed(self) -> bool:
        """Count a commit on the loop; True every CHECKPOINT_EVERY (time to queue a checkpoint)."""
        self._commits += 1
        self.on_loop += 1
        return self._commits % CHECKPOINT_EVERY == 0

    def close(self) -> None:
        """Close the loop's connection (the next use opens another)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def open_loop_connection(engine: Engine) -> Connection:
    """One of `engine`'s connections, out of its pool for good, set up for the loop (see the module doc)."""
    conn = engine.connect()
    conn.detach()  # closed for real when closed: never handed back to the pool with these settings
    raw = _raw(conn)
    raw.isolation_level = None  # no implicit BEGIN: `begin_immediate` starts every transaction
    raw.execute("PRAGMA busy_timeout=0")
    raw.execute("PRAGMA wal_autocheckpoint=0")
    return conn


def begin_immediate(conn: Connection) -> bool:
    """Start a write transaction on the loop's connection; False (nothing started) when another connection
    holds the write lock."""
    try:
        _raw(conn).execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as err:
        if getattr(err, "sqlite_errorcode", 0) & 0xFF in _BUSY:  # SQLITE_BUSY, SQLITE_BUSY_RECOVERY, …
            return False
        raise
    return True


def rollback_if_open(conn: Connection) -> None:
    """Roll back what the loop's connection still has open (after an error before the session took over)."""
    raw = _raw(conn)
    if raw.in_transaction:
        raw.rollback()


def checkpoint(engine: Engine) -> tuple[int, int, int]:
    """`PRAGMA wal_checkpoint(PASSIVE)` on one of the engine's pooled connections: (busy, WAL frames,
    frames checkpointed)."""
    with engine.connect() as conn:
        row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    return int(row[0]), int(row[1]), int(row[2])


def gated(slot: WriteSlot, abandoned: threading.Event, work: Callable[[], Any]) -> Any:
    """Run `work()` holding the slot's gate (in the writer thread); None when `abandoned` first."""
    with slot.holding_gate(abandoned) as held:
        return work() if held else None


def _raw(conn: Connection) -> sqlite3.Connection:
    """The driver's connection under a SQLAlchemy connection."""
    return conn.connection.dbapi_connection  # type: ignore[return-value]
