"""The outbox dispatcher: sends due `Outbox` rows exactly once, within Telegram's limits, across crashes.

The database is the only state. One row goes through four steps, each in a short transaction of
its own (or none), never holding a lock while talking to Telegram:

1. **claim** — a short transaction moves up to `batch` due rows to `sending` with
   `claimed_by = worker_id` and `claimed_until = now + lease`: first rows whose lease has passed
   (their dispatcher died; this counts an attempt and notes it in `last_error`), then `pending`
   rows with `due_at <= now`, oldest first. Each is one `UPDATE … WHERE id IN (picked) AND
   <status/lease condition> RETURNING …`. On PostgreSQL the rows are picked by
   `SELECT … ORDER BY … FOR UPDATE SKIP LOCKED` in a materialised CTE, so two bot processes never
   take the same row and never wait for each other; on SQLite the statement runs under SQLite's
   single writer lock, so a second process's claim, serialised after ours, no longer matches the
   rows we took (the returned rows are the rowcount check).
2. **render** — `render(session, row, now)` (default `bot.reminders.content.render_outbox`) builds
   the text at send time from the current database; `None` means no longer useful → `obsolete`.
3. **send** — through the shared `RateLimiter` (30/s, 1/s per chat, 20/min per group). Just before
   the request the lease is checked and, if less than `min(lease/2, 60 s)` is left, renewed with an
   `UPDATE … WHERE claimed_by = me AND status = 'sending'`; a row whose lease another dispatcher
   took over is dropped without sending.
4. **mark** — only after Telegram answered ok: `UPDATE … SET status='sent', sent_at,
   telegram_message_id WHERE id = … AND status <> 'sent'`, one statement in autocommit on a
   connection kept for the marks (one round trip), run on the event loop right after the answer
   (no thread hop, no other await in between; on PostgreSQL with `synchronous_commit = off` on
   that connection, so it does not wait for the server's fsync; retried a few times on a database
   error, and never turned into a retry of the send). Send and mark run shielded from task
   cancellation. Claims, renders and the other steps run in worker threads (`db_threads`), so the
   bot keeps answering village heads during a wave.

**Messages in several parts** (`Parts`: photos, then texts of at most 4096 characters each, e.g. the
police summary with its chart): each part is one request, sent in order through the limiter with the
lease checked before each. After Telegram's ok for a part that is not the last, the number of parts
sent is written into the row's payload (`parts_sent`, one autocommit UPDATE on the mark connection,
only while we hold the row); after the last part the row is marked `sent`. A retry — after an error,
a 429 pause, a crash and the lease taken over — renders the row again and sends only the parts after
`parts_sent`, so a part is sent twice only in the same window as above (ok received, progress not yet
committed). The parts are rendered afresh on a retry: if the text grew by a part in between, the
parts already sent are not repeated and the rest follows the new text. A photo Telegram refuses (400)
is skipped and the text still goes.

Telegram's answers: 429 `RetryAfter` pauses the shared limiter for `retry_after` (every sender
waits) and the same row is sent again; 403 `Forbidden` (blocked, deactivated, kicked) → `failed`,
the person `active = False` and `blocked_at = now` (audited), every other pending row for that chat
`failed` too, and nothing more is sent there in this run; 400 `BadRequest` ("chat not found", or a
text Telegram refuses) → `failed`; `ChatMigrated` → the row follows the group to its new id;
`TimedOut`, `NetworkError`, 5xx and anything unexpected → the claim is released with exponential
backoff (`due_at` pushed by 30 s · 2^(attempts−1), at most 1 h; `attempts` + 1; `last_error`), and
after `max_attempts` the row is `failed`. Nothing is ever marked sent without Telegram's ok.

**What a crash does, window by window** (SIGKILL, OOM kill, power cut — no code of ours runs):

- claim committed, request not yet written (waiting in the queue, rendering, waiting for the
  limiter): the rows stay `sending` until their lease ends (`BAOCAO_SEND_LEASE_SECONDS`, default
  120 s); then any dispatcher takes them over (`attempts` + 1) and sends them. Nothing was sent,
  nothing is duplicated; those messages are late by at most the lease. A crash inside the claim
  transaction rolls it back: the rows stay `pending`.
- request written but not (completely) received or not executed by Telegram: the same.
- **Telegram executed the request, our `sent` commit has not happened**: the message was delivered
  and the row is still `sending`; after the lease it is sent again. This is the only window in
  which a crash duplicates a message. It is the answer's way back (half a round trip: well under
  a millisecond to the local emulator, on the order of 100 ms from Việt Nam to api.telegram.org —
  not measured here), PTB parsing the answer, and the one-row UPDATE. That last part, measured by
  `bench/reminders.py` on a 2-CPU VM loaded by other work: median ≈ 1 ms (SQLite) / ≈ 6 ms
  (PostgreSQL), 99th percentile ≈ 35 ms (the GIL shared with render threads, busy CPUs), worst
  seen 0.4 s; see bench/README.md. During a wave at Telegram's 30 messages/s, about
  30/s × (half RTT + commit) ≈ 3 messages are in this window at any moment, so a SIGKILL in the
  middle of a wave duplicates about that many; between waves, none. At most `concurrency` rows
  can be in it at once.
- after the commit: nothing is redone. The commit is safe from a crash of the bot process at
  once; a crash of the database server or of the machine may lose the last ones (SQLite in WAL
  mode with `synchronous=NORMAL`: the last commits before a power cut; PostgreSQL with
  `synchronous_commit = off` for the mark: about the last 0.6 s), whose rows are then sent again
  after the lease.

A graceful stop (`stop` event, set by the scheduler on SIGINT/SIGTERM) lets the sends in flight
finish and be marked, and hands every claimed row not yet sent back to `pending` untouched.

Telegram has no idempotency key, so one more case is outside any dispatcher's control: a request
that Telegram executed but whose answer was lost (read timeout, connection reset) looks exactly
like one it never received; it is retried, and may then arrive twice (at-least-once, as every
Telegram bot). The emulator's `timeout_after` fault reproduces this; `timeout` does not duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Protocol

from sqlalchemy import and_, literal, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot import metrics
from bot.reminders.ratelimit import RateLimiter
from storage import audit
from storage.db import session_scope
from storage.models import Outbox, OutboxStatus, Person

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.config import Settings

log = logging.getLogger(__name__)

OUTBOX = Outbox.__table__
DEFAULT_LEASE: Final = timedelta(seconds=120)
DEFAULT_BATCH: Final = 30
DEFAULT_CONCURRENCY: Final = 8
MAX_ATTEMPTS: Final = 10
BACKOFF_BASE: Final = timedelta(seconds=30)
BACKOFF_CAP: Final = timedelta(hours=1)
MAX_FLOOD_RETRIES: Final = 20  # 429s for one message before it is handed back for later
MARK_RETRY_DELAYS: Final = (0.05, 0.25, 1.0, 3.0)  # seconds between tries of the `sent` commit
LEASE_GUARD_CAP: Final = timedelta(seconds=60)  # renew before sending when less than this is left
ERROR_LEN: Final = 300


class Outgoing(Protocol):
    """What a render function returns: an HTML text and inline buttons as rows of (label, data)."""

    text: str
    buttons: Sequence[Sequence[tuple[str, str]]]


RenderFn = Callable[[Session, Outbox, datetime], "Outgoing | None"]
PARTS_SENT: Final = "parts_sent"  # payload key: parts of a multi-part message already sent


@dataclass(frozen=True)
class Photo:
    """A picture sent before the text parts: PNG (or JPEG) bytes, a file name and an HTML caption ≤ 1024."""

    content: bytes = field(repr=False)
    filename: str
    caption: str = ""


@dataclass(frozen=True)
class Parts:
    """A message in several parts: photos first, then texts (each ≤ 4096); buttons on the last text.

    Each part is recorded in the row's payload (`parts_sent`) as soon as Telegram accepted it, so a
    retry goes on with the next part; the row is marked sent after the last one.
    """

    texts: tuple[str, ...]
    photos: tuple[Photo, ...] = ()
    buttons: Sequence[Sequence[tuple[str, str]]] = ()

    @property
    def text(self) -> str:
        """The first text part (what a one-part reader shows)."""
        return self.texts[0] if self.texts else ""


@dataclass(frozen=True)
class Step:
    """One request of a message: a photo or a text, with the buttons if it is the last text."""

    text: str = ""
    photo: Photo | None = None
    markup: InlineKeyboardMarkup | None = None


def message_steps(out: Outgoing) -> list[Step]:
    """The requests an outgoing message takes: its photos, then its texts (buttons on the last text)."""
    photos = tuple(getattr(out, "photos", ()) or ())
    texts = tuple(getattr(out, "texts", ()) or ()) or (out.text,)
    markup = _markup(out.buttons)
    steps = [Step(photo=p) for p in photos]
    steps += [Step(text=t, markup=markup if i == len(texts) - 1 else None) for i, t in enumerate(texts)]
    return steps


class Outcome(StrEnum):
    """What became of one claimed row in this run."""

    SENT = "sent"
    FAILED = "failed"
    OBSOLETE = "obsolete"
    RETRY = "retry"  # handed back with backoff after a transient error
    RELEASED = "released"  # handed back untouched (graceful stop before sending)
    LOST = "lost"  # another dispatcher took the row over (our lease had ended); not sent by us


_LABELS: Final = {
    Outcome.SENT: "đã gửi",
    Outcome.FAILED: "thất bại",
    Outcome.OBSOLETE: "không cần nữa",
    Outcome.RETRY: "gửi lại sau",
    Outcome.RELEASED: "trả lại",
    Outcome.LOST: "bỏ qua",
}


@dataclass(frozen=True)
class Claimed:
    """A row this dispatcher holds, as returned by the claim."""

    id: int
    key: str
    kind: str
    chat_id: int
    person_id: int | None
    rule: str | None
    attempts: int
    due_at: datetime
    claimed_until: datetime


@dataclass(frozen=True)
class DispatchResult:
    """The outcome for one row."""

    row_id: int
    key: str
    kind: str
    chat_id: int
    outcome: Outcome
    detail: str = ""
    message_id: int | None = None
    retry_at: datetime | None = None

    def line(self) -> str:
        """One line for the command line."""
        head = f"{_LABELS[self.outcome]:<14} #{self.row_id} {self.kind} → chat {self.chat_id} [{self.key}]"
        if self.outcome is Outcome.SENT:
            return f"{head} (tin nhắn {self.message_id})"
        if self.outcome is Outcome.RETRY and self.retry_at is not None:
            return f"{head}: {self.detail} — thử lại lúc {self.retry_at:%Y-%m-%d %H:%M:%S} UTC"
        return f"{head}: {self.detail}" if self.detail else head


@dataclass
class DispatchReport:
    """Everything one `dispatch_due` run did."""

    results: list[DispatchResult] = field(default_factory=list)
    claimed: int = 0
    flood_waits: int = 0  # 429s answered by pausing and sending again
    already_sent: int = 0  # marks that found the row sent by someone else (a duplicate happened)
    unmarked: int = 0  # sent, but the `sent` commit failed every try (will be sent again after the lease)
    more: bool = False  # stopped by the time budget with rows possibly still due
    commit_windows: list[float] = field(default_factory=list)  # seconds from Telegram's ok to commit

    def count(self, outcome: Outcome) -> int:
        """How many rows ended with `outcome`."""
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def sent(self) -> int:
        """Rows sent."""
        return self.count(Outcome.SENT)

    @property
    def failed(self) -> int:
        """Rows given up."""
        return self.count(Outcome.FAILED)

    @property
    def obsolete(self) -> int:
        """Rows no longer useful."""
        return self.count(Outcome.OBSOLETE)

    @property
    def retried(self) -> int:
        """Rows handed back for a later attempt."""
        return self.count(Outcome.RETRY)

    def summary(self) -> str:
        """One Vietnamese line: counts by outcome."""
        counts = Counter(r.outcome for r in self.results)
        parts = [f"{_LABELS[o]} {counts[o]}" for o in Outcome if counts[o] or o is Outcome.SENT]
        extra = f"; {self.flood_waits} lần Telegram bảo chờ (429)" if self.flood_waits else ""
        return f"Tin nhắn đến hạn: {self.claimed} — " + ", ".join(parts) + extra


def default_worker_id() -> str:
    """host:pid:random — unique per process, readable in `claimed_by`."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{secrets.token_hex(3)}"


def retry_delay(attempts: int) -> timedelta:
    """Backoff after the `attempts`-th failed try: 30 s, 1 min, 2 min, … at most 1 h."""
    exponent = max(0, attempts - 1)
    if exponent >= 20:
        return BACKOFF_CAP
    return min(BACKOFF_CAP, BACKOFF_BASE * (2**exponent))


def claim_due(
    session: Session, *, worker_id: str, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Claim up to `limit` due rows for `worker_id` in the caller's transaction (commit to publish).

    Rows whose lease ran out (their dispatcher died) come first, then pending rows by `due_at`;
    each kind is taken by one `UPDATE … RETURNING` whose rows are picked by an index range scan
    (with `FOR UPDATE SKIP LOCKED` on PostgreSQL) and checked again by the UPDATE's own condition.
    """
    c = OUTBOX.c
    expired = and_(c.status == OutboxStatus.SENDING.value, c.claimed_until < now)
    pending = and_(c.status == OutboxStatus.PENDING.value, c.due_at <= now)
    rows = _claim_where(
        session, expired, (c.claimed_until, c.id), worker_id, now + lease, limit, retaken=True
    )
    if len(rows) < limit:
        rows += _claim_where(session, pending, (c.due_at, c.id), worker_id, now + lease, limit - len(rows))
    return rows


def _claim_where(
    session: Session,
    condition: Any,
    order: tuple[Any, ...],
    worker_id: str,
    until: datetime,
    limit: int,
    *,
    retaken: bool = False,
) -> list[Claimed]:
    c = OUTBOX.c
    pick = select(c.id).where(condition).order_by(*order).limit(limit)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        pick = pick.with_for_update(skip_locked=True)
    picked = pick.cte("picked")
    if postgres:
        picked = picked.prefix_with("MATERIALIZED")
    values: dict[str, Any] = {
        "status": OutboxStatus.SENDING.value,
        "claimed_by": worker_id,
        "claimed_until": until,
    }
    if retaken:  # a dispatcher died holding it: it may or may not have been sent
        values["attempts"] = c.attempts + 1
        values["last_error"] = literal("lease expired, taken over from ") + c.claimed_by
    stmt = (
        update(OUTBOX)
        .where(c.id.in_(select(picked.c.id)), condition)
        .values(**values)
        .returning(c.id, c.key, c.kind, c.chat_id, c.person_id, c.rule, c.attempts, c.due_at, c.claimed_until)
    )
    rows = [Claimed(*row) for row in session.execute(stmt)]
    return sorted(rows, key=lambda r: (r.due_at, r.id))


def _elapsed_clock(start: datetime) -> Clock:
    """`start` moved on by the real time elapsed since now (leases stay honest in long runs)."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def load_default_render(default_tz: str | None = None) -> RenderFn:
    """`bot.reminders.content.render_outbox` (imported lazily; ImportError until it exists)."""
    from bot.reminders.content import render_outbox

    return render_outbox if default_tz is None else functools.partial(render_outbox, default_tz=default_tz)


def load_default_plan(default_tz: str | None = None) -> Callable[[Session, datetime], Any]:
    """`bot.services.reminders.plan` (imported lazily; ImportError until it exists)."""
    from bot.services.reminders import plan

    return plan if default_tz is None else functools.partial(plan, default_tz=default_tz)


def _markup(buttons: Sequence[Sequence[tuple[str, str]]] | None) -> InlineKeyboardMarkup | None:
    rows = [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in buttons or ()]
    rows = [row for row in rows if row]
    return InlineKeyboardMarkup(rows) if rows else None


def retry_seconds(err: RetryAfter) -> float:
    """`retry_after` in seconds (at least 1), without PTB's int-vs-timedelta deprecation warning."""
    value = getattr(err, "_retry_after", None)
    if not isinstance(value, timedelta):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = err.retry_after
        value = raw if isinstance(raw, timedelta) else timedelta(seconds=float(raw))
    return max(1.0, value.total_seconds())


def _short(err: BaseException | str) -> str:
    text = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    return text[:ERROR_LEN]


class _Dispatch:
    """One run of the dispatcher: a claim queue fed in batches and `concurrency` workers."""

    def __init__(
        self,
        engine: Engine,
        bot: Bot,
        *,
        render: RenderFn,
        limiter: RateLimiter,
        worker_id: str,
        batch: int,
        concurrency: int,
        lease: timedelta,
        clock: Clock,
        stop: asyncio.Event | None,
        max_attempts: int,
        max_seconds: float | None,
        db_threads: bool,
    ) -> None:
        self.db_threads = db_threads
        self.postgres = engine.dialect.name == "postgresql"
        self.mark_conn: Connection | None = None  # used on the event loop only
        self.engine, self.bot, self.render, self.limiter = engine, bot, render, limiter
        self.worker_id, self.batch, self.concurrency, self.lease = worker_id, batch, concurrency, lease
        self.clock, self.stop, self.max_attempts = clock, stop, max_attempts
        self.guard = min(lease / 2, LEASE_GUARD_CAP)
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.report = DispatchReport()
        self.queue: deque[Claimed] = deque()
        self.leases: dict[int, datetime] = {}
        self.payloads: dict[int, dict[str, Any]] = {}  # payload of each row as rendered (for progress)
        self.blocked: set[int] = set()
        self.exhausted = False
        self.claim_lock = asyncio.Lock()

    # ------------------------------------------------------------------ the run

    async def run(self) -> DispatchReport:
        workers = [asyncio.create_task(self._worker()) for _ in range(max(1, self.concurrency))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            self._close_mark_connection()
            leftover = list(self.queue)
            self.queue.clear()
            if leftover:
                await self._db(self._release_unsent, [row.id for row in leftover])
                self.report.results.extend(
                    self._result(row, Outcome.RELEASED, "dừng trước khi gửi") for row in leftover
                )
        return self.report

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A database step: in a worker thread (the loop keeps serving updates) or, if asked, inline."""
        if self.db_threads:
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    async def _next(self) -> Claimed | None:
        if self._stopping():
            return None
        if not self.queue and not self.exhausted:
            async with self.claim_lock:
                if not self.queue and not self.exhausted and not self._stopping():
                    if self.deadline is not None and time.monotonic() >= self.deadline:
                        self.exhausted = True
                        self.report.more = True
                    else:
                        rows = await self._db(self._claim)
                        self.report.claimed += len(rows)
                        self.queue.extend(rows)
                        self.exhausted = not rows
        return self.queue.popleft() if self.queue and not self._stopping() else None

    async def _worker(self) -> None:
        while (row := await self._next()) is not None:
            try:
                result = await self._handle(row)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a bug or an unexpected error: hand the row back for later
                log.exception("dispatching outbox row %s failed", row.id)
                result = await self._db(self._retry_later, row, _short(err))
            self.report.results.append(result)
            metrics.record_dispatch(result.outcome)
            self.leases.pop(row.id, None)
            self.payloads.pop(row.id, None)

    async def _handle(self, row: Claimed) -> DispatchResult:
        if row.chat_id in self.blocked:
            return self._result(row, Outcome.FAILED, "chat đã chặn bot (403) trong lần gửi này")
        state, out, done = await self._db(self._render, row)
        if state == "lost":
            return self._result(row, Outcome.LOST, "không còn được giữ")
        if out is None:
            finished = await self._db(self._finish, row, OutboxStatus.OBSOLETE, None)
            return self._result(row, Outcome.OBSOLETE if finished else Outcome.LOST)
        steps = message_steps(out)
        chat_id = row.chat_id
        if done >= len(steps):  # every part went out before; only the `sent` mark was missing
            return await self._finish_parts(row, chat_id)
        for index in range(done, len(steps)):
            answer = await self._send_step(row, chat_id, steps[index], index, len(steps))
            if isinstance(answer, DispatchResult):
                return answer
            chat_id = answer
        return await self._finish_parts(row, chat_id)  # pragma: no cover - the last step returns

    async def _send_step(
        self, row: Claimed, chat_id: int, step: Step, index: int, count: int
    ) -> DispatchResult | int:
        """One part of the message, with the limiter, the lease and Telegram's answers handled.

        Returns the (possibly migrated) chat id when a part that is not the last went out (its
        progress recorded), else the row's final result.
        """
        floods = 0
        last = index == count - 1
        while True:
            if not await self._acquire(chat_id):
                await self._db(self._release_unsent, [row.id])
                return self._result(row, Outcome.RELEASED, "dừng trước khi gửi")
            if not await self._hold_lease(row):
                return self._result(row, Outcome.LOST, "đã có dispatcher khác giữ")
            sending = asyncio.ensure_future(self._send_and_mark(row, chat_id, step, index + 1, last))
            answer = await asyncio.shield(sending)
            if isinstance(answer, DispatchResult):
                return answer
            if answer is None:
                return chat_id
            err = answer
            if isinstance(err, RetryAfter):
                self.limiter.pause(retry_seconds(err))
                self.report.flood_waits += 1
                metrics.record_429()
                floods += 1
                if floods > MAX_FLOOD_RETRIES:
                    return await self._db(self._retry_later, row, _short(err))
                continue
            if isinstance(err, ChatMigrated) and chat_id != int(err.new_chat_id):
                chat_id = int(err.new_chat_id)
                await self._db(self._move_chat, row, chat_id)
                continue
            if isinstance(err, Forbidden):
                await self._db(self._mark_blocked, row, chat_id, _short(err))
                self.blocked.add(chat_id)
                return self._result(row, Outcome.FAILED, _short(err))
            if isinstance(err, BadRequest):
                if step.photo is not None and not last:  # a picture Telegram refuses: the text still goes
                    log.warning("outbox row %s: photo %s refused (%s), skipped", row.id, index + 1, err)
                    if await self._progress_retrying(row, index + 1) is None:
                        self.report.unmarked += 1
                    return chat_id
                await self._db(self._finish, row, OutboxStatus.FAILED, _short(err))
                return self._result(row, Outcome.FAILED, _short(err))
            return await self._db(self._retry_later, row, _short(err))

    async def _finish_parts(self, row: Claimed, chat_id: int) -> DispatchResult:
        fresh = await self._mark_sent_retrying(row, None)
        if fresh is None:
            self.report.unmarked += 1
        return self._result(row, Outcome.SENT, chat_id=chat_id)

    async def _acquire(self, chat_id: int) -> bool:
        """Wait for the limiter; False when a stop was asked for first."""
        if self.stop is None:
            await self.limiter.acquire(chat_id)
            return True
        if self.stop.is_set():
            return False
        acquiring = asyncio.ensure_future(self.limiter.acquire(chat_id))
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if acquiring.done() and not acquiring.cancelled():
            acquiring.result()
            return not self.stop.is_set()
        acquiring.cancel()
        return False

    async def _hold_lease(self, row: Claimed) -> bool:
        until = self.leases.get(row.id, row.claimed_until)
        if until - self.clock() >= self.guard:
            return True
        renewed = await self._db(self._renew, row)
        return renewed

    async def _send_and_mark(
        self, row: Claimed, chat_id: int, step: Step, parts_done: int, last: bool
    ) -> DispatchResult | TelegramError | None:
        """The critical section: the request, then at once the commit (run shielded).

        The last part is followed by the `sent` mark (its result returned); any other part by the
        number of parts sent, stored in the row's payload (None returned), so a retry after a crash or
        an error goes on with the next part instead of sending this one again.
        """
        try:
            if step.photo is not None:
                message = await self.bot.send_photo(
                    chat_id=chat_id,
                    photo=InputFile(step.photo.content, filename=step.photo.filename),
                    caption=step.photo.caption or None,
                    parse_mode=ParseMode.HTML,
                    reply_markup=step.markup,
                )
            else:
                message = await self.bot.send_message(
                    chat_id=chat_id, text=step.text, parse_mode=ParseMode.HTML, reply_markup=step.markup
                )
        except TelegramError as err:
            return err
        ok_at = time.perf_counter()
        if not last:
            if await self._progress_retrying(row, parts_done) is None:
                self.report.unmarked += 1
            else:
                self.report.commit_windows.append(time.perf_counter() - ok_at)
            return None
        fresh = await self._mark_sent_retrying(row, message.message_id)
        if fresh is None:
            self.report.unmarked += 1
            return self._result(
                row,
                Outcome.SENT,
                "đã gửi nhưng chưa ghi được vào cơ sở dữ liệu; sẽ gửi lại khi hết hạn giữ",
                message_id=message.message_id,
                chat_id=chat_id,
            )
        self.report.commit_windows.append(time.perf_counter() - ok_at)
        if not fresh:
            self.report.already_sent += 1
            log.warning("outbox row %s was already marked sent by another dispatcher", row.id)
        return self._result(row, Outcome.SENT, message_id=message.message_id, chat_id=chat_id)

    async def _progress_retrying(self, row: Claimed, parts_done: int) -> bool | None:
        """Record `parts_done` in the row, tried again on a database error (None: it never went through)."""
        for delay in (*MARK_RETRY_DELAYS, None):
            try:
                return self._mark_progress(row, parts_done)
            except Exception:
                log.warning("outbox row %s: part %s sent, progress not recorded yet", row.id, parts_done)
                if delay is None:
                    log.error("outbox row %s: part %s may be sent again after the lease", row.id, parts_done)
                    return None
                await asyncio.sleep(delay)
        return None  # pragma: no cover - the loop always returns

    async def _mark_sent_retrying(self, row: Claimed, message_id: int | None) -> bool | None:
        """The `sent` commit, tried again on a database error (None: it never went through)."""
        for delay in (*MARK_RETRY_DELAYS, None):
            try:
                # on the loop, not in a worker thread: no queueing between Telegram's ok and the commit
                return self._mark_sent(row, message_id)
            except Exception:
                log.warning("outbox row %s was sent but not marked yet", row.id, exc_info=True)
                if delay is None:
                    log.error(
                        "outbox row %s: sent, never marked; it will be sent again after its lease", row.id
                    )
                    return None
                await asyncio.sleep(delay)
        return None  # pragma: no cover - the loop always returns

    def _result(
        self,
        row: Claimed,
        outcome: Outcome,
        detail: str = "",
        *,
        message_id: int | None = None,
        chat_id: int | None = None,
        retry_at: datetime | None = None,
    ) -> DispatchResult:
        return DispatchResult(
            row.id,
            row.key,
            row.kind,
            row.chat_id if chat_id is None else chat_id,
            outcome,
            detail,
            message_id,
            retry_at,
        )

    # ------------------------------------------------------------------ database steps (in threads)

    def _mine(self, row_id: int) -> Any:
        c = OUTBOX.c
        return and_(c.id == row_id, c.claimed_by == self.worker_id, c.status == OutboxStatus.SENDING.value)

    def _claim(self) -> list[Claimed]:
        with session_scope(self.engine) as session:
            rows = claim_due(
                session, worker_id=self.worker_id, now=self.clock(), lease=self.lease, limit=self.batch
            )
        # a row of ours whose lease ran out while a worker of this run still holds it (e.g. waiting out
        # a long 429) is not taken twice: that worker renews the lease before sending
        rows = [row for row in rows if row.id not in self.leases]
        for row in rows:
            self.leases[row.id] = row.claimed_until
        return rows

    def _render(self, row: Claimed) -> tuple[str, Outgoing | None, int]:
        with Session(self.engine) as session:
            try:
                obj = session.get(Outbox, row.id)
                if obj is None or obj.status != OutboxStatus.SENDING or obj.claimed_by != self.worker_id:
                    return "lost", None, 0
                payload = dict(obj.payload or {})
                self.payloads[row.id] = payload
                done = payload.get(PARTS_SENT, 0)
                return "ok", self.render(session, obj, self.clock()), done if isinstance(done, int) else 0
            finally:
                session.rollback()  # rendering reads; it never writes

    def _renew(self, row: Claimed) -> bool:
        until = self.clock() + self.lease
        with self.engine.begin() as conn:
            done = conn.execute(update(OUTBOX).where(self._mine(row.id)).values(claimed_until=until)).rowcount
        if done:
            self.leases[row.id] = until
        return bool(done)

    def _mark_connection(self) -> Connection:
        """A connection of its own for the `sent` marks, in autocommit: one round trip per mark."""
        conn = self.mark_conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self.postgres:
                # durable against a crash of this process at once; the server flushes its WAL within
                # ~0.6 s (like SQLite's synchronous=NORMAL): no fsync wait between ok and commit
                conn.exec_driver_sql("SET synchronous_commit TO OFF")
            self.mark_conn = conn
        return conn

    def _close_mark_connection(self) -> None:
        conn, self.mark_conn = self.mark_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _mark_progress(self, row: Claimed, parts_done: int) -> bool:
        """`payload.parts_sent = parts_done` on a row we hold: one autocommit statement."""
        payload = {**self.payloads.get(row.id, {}), PARTS_SENT: parts_done}
        conn = self._mark_connection()
        try:
            done = conn.execute(update(OUTBOX).where(self._mine(row.id)).values(payload=payload)).rowcount
        except Exception:
            self._close_mark_connection()
            raise
        if done:
            self.payloads[row.id] = payload
        return bool(done)

    def _mark_sent(self, row: Claimed, message_id: int | None) -> bool:
        c = OUTBOX.c
        conn = self._mark_connection()
        try:
            done = conn.execute(  # a single statement in autocommit: committed when it returns
                update(OUTBOX)
                .where(c.id == row.id, c.status != OutboxStatus.SENT.value)
                .values(
                    status=OutboxStatus.SENT.value,
                    sent_at=self.clock(),
                    telegram_message_id=message_id,
                    claimed_until=None,
                    last_error=None,
                )
            ).rowcount
        except Exception:
            self._close_mark_connection()
            raise
        return bool(done)

    def _finish(self, row: Claimed, status: OutboxStatus, error: str | None) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(OUTBOX)
                .where(self._mine(row.id))
                .values(status=status.value, claimed_until=None, last_error=error)
            ).rowcount
        return bool(done)

    def _retry_later(self, row: Claimed, error: str) -> DispatchResult:
        attempts = row.attempts + 1
        now = self.clock()
        c = OUTBOX.c
        if attempts >= self.max_attempts:
            values: dict[str, Any] = {"status": OutboxStatus.FAILED.value, "claimed_until": None}
            outcome, retry_at = Outcome.FAILED, None
        else:
            retry_at = now + retry_delay(attempts)
            values = {
                "status": OutboxStatus.PENDING.value,
                "claimed_by": None,
                "claimed_until": None,
                "due_at": retry_at,
            }
            outcome = Outcome.RETRY
        with self.engine.begin() as conn:
            done = conn.execute(
                update(OUTBOX)
                .where(self._mine(row.id))
                .values(attempts=c.attempts + 1, last_error=error, **values)
            ).rowcount
        if not done:
            return self._result(row, Outcome.LOST, error)
        if outcome is Outcome.FAILED:
            error = f"bỏ sau {attempts} lần: {error}"
        return self._result(row, outcome, error, retry_at=retry_at)

    def _release_unsent(self, row_ids: list[int]) -> None:
        c = OUTBOX.c
        with self.engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(
                    c.id.in_(row_ids),
                    c.claimed_by == self.worker_id,
                    c.status == OutboxStatus.SENDING.value,
                )
                .values(status=OutboxStatus.PENDING.value, claimed_by=None, claimed_until=None)
            )

    def _move_chat(self, row: Claimed, chat_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(OUTBOX).where(self._mine(row.id)).values(chat_id=chat_id))

    def _mark_blocked(self, row: Claimed, chat_id: int, error: str) -> None:
        c = OUTBOX.c
        now = self.clock()
        with session_scope(self.engine) as session:
            session.execute(
                update(OUTBOX)
                .where(self._mine(row.id))
                .values(status=OutboxStatus.FAILED.value, claimed_until=None, last_error=error)
            )
            others = session.execute(
                update(OUTBOX)
                .where(
                    c.chat_id == chat_id,
                    c.id != row.id,
                    or_(
                        c.status == OutboxStatus.PENDING.value,
                        and_(c.status == OutboxStatus.SENDING.value, c.claimed_by == self.worker_id),
                    ),
                )
                .values(
                    status=OutboxStatus.FAILED.value,
                    claimed_until=None,
                    last_error=f"chat đã chặn bot (xem #{row.id})",
                )
            ).rowcount
            people: list[Person] = []
            if chat_id > 0 or row.person_id is not None:
                who = [Person.chat_id == chat_id] if chat_id > 0 else []
                if row.person_id is not None:
                    who.append(Person.id == row.person_id)
                people = list(session.scalars(select(Person).where(or_(*who), Person.active.is_(True))))
            for person in people:
                person.active = False
                person.blocked_at = now
                person.updated_at = now
                audit.record(
                    session,
                    at=now,
                    actor="dispatcher",
                    action="person.blocked",
                    entity="person",
                    entity_id=person.id,
                    chat_id=chat_id,
                    error=error,
                    outbox_id=row.id,
                    also_failed=others,
                )
        log.info("chat %s refused the bot (%s): row %s and %s others failed", chat_id, error, row.id, others)


async def dispatch_due(
    engine: Engine,
    bot: Bot,
    now: datetime,
    *,
    render: RenderFn | None = None,
    limiter: RateLimiter,
    worker_id: str,
    batch: int = DEFAULT_BATCH,
    concurrency: int = DEFAULT_CONCURRENCY,
    lease: timedelta = DEFAULT_LEASE,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    max_seconds: float | None = None,
    db_threads: bool = True,
) -> DispatchReport:
    """Send every outbox row due by `now` (and any that fall due while it runs) exactly once; see module doc.

    `clock` gives the times written to the database (default: `now` moved on by the real time
    elapsed); `stop` ends the run gracefully; `max_seconds` stops claiming after that long
    (`report.more` then says rows may be left).
    """
    if now.tzinfo is None:
        raise ValueError("dispatch_due needs an aware datetime")
    run = _Dispatch(
        engine,
        bot,
        render=render or load_default_render(),
        limiter=limiter,
        worker_id=worker_id,
        batch=max(1, batch),
        concurrency=concurrency,
        lease=lease,
        clock=clock or _elapsed_clock(now),
        stop=stop,
        max_attempts=max_attempts,
        max_seconds=max_seconds,
        db_threads=db_threads,
    )
    return await run.run()


def plan_now(engine: Engine, now: datetime, plan: Callable[[Session, datetime], Any] | None = None) -> Any:
    """Run the planner once in its own transaction (default `bot.services.reminders.plan`)."""
    planner = plan or load_default_plan()
    with session_scope(engine) as session:
        return planner(session, now)


def run_once(
    settings: Settings,
    *,
    plan: Callable[[Session, datetime], Any] | None = None,
    render: RenderFn | None = None,
    clock: Clock | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """`baocao remind --now`: plan, send everything due, print one line per message and a summary."""
    from bot.clock import system_clock
    from storage.db import make_engine, upgrade

    now_clock = clock or system_clock
    tz = str(settings.timezone)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        planned = plan_now(engine, now_clock(), plan or load_default_plan(tz))
        if plan is None:
            from bot.reminders.summary_push import plan_summary_pushes

            plan_now(engine, now_clock(), functools.partial(plan_summary_pushes, default_tz=tz))
        if planned is not None:
            out(f"Lập lịch: {planned}")

        async def main() -> DispatchReport:
            from bot.app import command_bot

            async with command_bot(settings) as bot:
                return await dispatch_due(
                    engine,
                    bot,
                    now_clock(),
                    render=render or load_default_render(tz),
                    limiter=RateLimiter(),
                    worker_id=default_worker_id(),
                    lease=timedelta(seconds=settings.send_lease_seconds),
                    clock=clock,
                )

        report = asyncio.run(main())
    finally:
        engine.dispose()
    for result in report.results:
        out(result.line())
    out(report.summary())
    return 0
