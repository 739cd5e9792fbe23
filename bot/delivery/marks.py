"""What this process sent but could not record yet (`MarkLedger`), and whether the database answers (its
circuit): shared by every dispatcher run of the process on one engine (the reminder ticks and the urgent
sends after an update).

A row Telegram accepted is never sent again while this process lives: when its `sent` mark (or, for a
message in parts, its progress) cannot be committed, the mark is kept here and tried again — one attempt at
a time, in a worker thread, bounded in time — until it goes through. While anything is kept here, or the last
database step failed, the circuit is open: no dispatcher of this process claims or sends a row; they wait for
`recover()`, which records the kept marks first and then closes the circuit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import bindparam, text, update
from sqlalchemy.engine import Connection, Engine

from bot.delivery import outbox
from storage.models import OutboxStatus
from storage.outbox_claims import OUTBOX, mark_connection
from storage.watchdog import WATCHDOG

log = logging.getLogger(__name__)

RETRY_DELAYS: Final = (0.05, 0.2, 0.5, 1.0)  # seconds between recovery tries; the last one repeats
ATTEMPT_TIMEOUT: Final = 15.0  # seconds one recovery try may take (a hung database) before the next wait


@dataclass(eq=False)
class PendingMark:
    """A write this process owes the database for a row Telegram accepted."""

    row_id: int
    worker_id: str
    at: datetime  # Telegram's ok
    message_id: int | None = None
    progress: dict[str, Any] | None = None  # a part of several: the payload with `parts_sent`, else `sent`
    result: bool | None = None  # once recorded: True, or False when the row was not ours/already sent
    since: float = field(default_factory=time.monotonic)


class MarkLedger:
    """The kept marks and the circuit of one engine, for this process (see the module doc)."""

    def __init__(self, engine: Engine) -> None:
        """Empty and closed (the database is presumed to answer)."""
        self._engine = weakref.ref(engine)
        self.pending: dict[int, PendingMark] = {}
        self.down_since: float | None = None  # monotonic time of the first failure, None when closed
        self.last_error = ""
        self.recorded_late = 0  # marks recorded by a recovery (not at once)
        self.longest_wait = 0.0  # seconds the slowest of those waited
        self._attempt: asyncio.Future[Any] | None = None

    @property
    def healthy(self) -> bool:
        """Nothing kept and the last database step went through."""
        return self.down_since is None and not self.pending

    def trip(self, err: BaseException | str) -> None:
        """A database step failed: open the circuit (claims and sends pause)."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning("database unreachable (%s): dispatching paused until it answers", _short(err))
        self.last_error = _short(err)

    def keep(self, mark: PendingMark) -> None:
        """Keep `mark` until it is recorded (the circuit opens)."""
        self.pending[mark.row_id] = mark
        if self.down_since is None:
            self.down_since = time.monotonic()
        log.warning(
            "outbox row %s sent but not recorded yet; kept in memory, it will not be sent again", mark.row_id
        )

    async def recover(self, timeout: float = ATTEMPT_TIMEOUT) -> bool:
        """One try: record every kept mark, or probe with SELECT 1 when none is kept; True when healthy.

        Tries never overlap: a caller arriving while one runs waits for that one (at most `timeout`).
        """
        if self.healthy:
            return True
        engine = self._engine()
        if engine is None:  # pragma: no cover - the engine is gone with its dispatchers
            return False
        if self._attempt is None or self._attempt.done():
            marks = list(self.pending.values())
            self._attempt = asyncio.ensure_future(asyncio.to_thread(_record, engine, marks))
            self._attempt.add_done_callback(lambda done, marks=marks: self._settle(done, marks))
        with contextlib.suppress(TimeoutError, Exception):
            await asyncio.wait_for(asyncio.shield(self._attempt), timeout)
        return self.healthy

    def _settle(self, done: asyncio.Future[Any], marks: list[PendingMark]) -> None:
        """On the loop, after a try: drop the marks recorded, close the circuit when all went through."""
        if done.cancelled():
            return
        err = done.exception()
        results = done.result() if err is None else getattr(err, "results", {})
        now = time.monotonic()
        for mark in marks:
            if mark.row_id in results and self.pending.get(mark.row_id) is mark:
                mark.result = results[mark.row_id]
                del self.pending[mark.row_id]
                self.recorded_late += 1
                self.longest_wait = max(self.longest_wait, now - mark.since)
                log.info("outbox row %s: recorded after %.1fs", mark.row_id, now - mark.since)
        if err is not None:
            self.trip(err)
        elif not self.pending and self.down_since is not None:
            log.info("database answers again after %.1fs: dispatching resumes", now - self.down_since)
            self.down_since = None

    async def wait_recorded(self, mark: PendingMark, give_up: Callable[[], bool]) -> bool | None:
        """Wait until `mark` is recorded (its result), or None once `give_up()` says so (it stays kept)."""
        tries = 0
        while self.pending.get(mark.row_id) is mark:
            if give_up():
                return None
            if not await self.recover():
                await asyncio.sleep(retry_delay(tries))
                tries += 1
        return mark.result


def _mark_sent_statement() -> Any:
    """`outbox.mark_sent`'s UPDATE with bound parameters (mark_row_id, mark_at, mark_message_id)."""
    c = OUTBOX.c
    return (
        update(OUTBOX)
        .where(c.id == bindparam("mark_row_id"), c.status != OutboxStatus.SENT.value)
        .values(
            status=OutboxStatus.SENT.value,
            sent_at=bindparam("mark_at", type_=c.sent_at.type),
            telegram_message_id=bindparam("mark_message_id", type_=c.telegram_message_id.type),
            claimed_until=None,
            last_error=None,
        )
    )


# built once: building the UPDATE (and its cache key) for every message cost 4x its execution (py-spy, a
# paid wave at 300/s: 0.67 ms of CPU a message, of which ~0.08 ms ran the statement)
MARK_SENT: Final = _mark_sent_statement()


def mark_sent(conn: Connection, row_id: int, at: datetime, message_id: int | None) -> bool:
    """`status = 'sent'` unless it is already (as `outbox.mark_sent`, its statement built once); False when
    someone else marked it first."""
    params = {"mark_row_id": row_id, "mark_at": at, "mark_message_id": message_id}
    return bool(conn.execute(MARK_SENT, params).rowcount)


def retry_delay(tries: int) -> float:
    """Seconds to wait after the `tries`-th failed recovery try (the last delay repeats)."""
    return RETRY_DELAYS[min(tries, len(RETRY_DELAYS) - 1)] if RETRY_DELAYS else 0.0


def _record(engine: Engine, marks: list[PendingMark]) -> dict[int, bool]:
    """In a worker thread: write `marks` (each its own autocommit statement) on a fresh connection; raise on
    the first error (those written before it count)."""
    results: dict[int, bool] = {}
    conn = mark_connection(engine)
    try:
        with WATCHDOG.guard(conn, ATTEMPT_TIMEOUT):  # a hung database: the thread is freed too
            if not marks:
                conn.execute(text("SELECT 1")).scalar_one()
            for mark in marks:
                if mark.progress is not None:
                    results[mark.row_id] = outbox.record_progress(
                        conn, mark.row_id, mark.worker_id, mark.progress
                    )
                else:
                    results[mark.row_id] = mark_sent(conn, mark.row_id, mark.at, mark.message_id)
    except Exception as err:
        with contextlib.suppress(Exception):
            conn.invalidate()
        raise _Partial(results, err) from err
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return results


class _Partial(Exception):
    """A try that failed after recording some marks."""

    def __init__(self, results: dict[int, bool], err: BaseException) -> None:
        super().__init__(_short(err))
        self.results = results


def _short(err: BaseException | str) -> str:
    if isinstance(err, str):
        return err[:200]
    orig = getattr(err, "orig", None) or err
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"[:200]


_LEDGERS: weakref.WeakKeyDictionary[Engine, MarkLedger] = weakref.WeakKeyDictionary()


def ledger_for(engine: Engine) -> MarkLedger:
    """This process's ledger for `engine` (made on first use)."""
    ledger = _LEDGERS.get(engine)
    if ledger is None:
        ledger = _LEDGERS[engine] = MarkLedger(engine)
    return ledger
