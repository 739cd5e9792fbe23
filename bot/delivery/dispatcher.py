"""The outbox dispatcher's loop, `dispatch_due` (and `plan_now`): sends due `Outbox` rows exactly once,
within Telegram's limits, across crashes.

Design notes: docs/design-notes.md#botdeliverydispatcherpy
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session
from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError

from bot import metrics
from bot.clock import Clock
from bot.delivery import outbox
from bot.delivery.marks import PendingMark, ledger_for, mark_sent
from bot.delivery.marks import retry_delay as recovery_delay
from bot.delivery.outbox import (
    KIND_ALERT,
    PARTS_SENT,
    STORED_KINDS,
    URGENT_MAX_ATTEMPTS,
    DispatchReport,
    DispatchResult,
    Outgoing,
    RenderFn,
    SendOutcome,
    SendStep,
    message_steps,
    retry_delay,
)
from bot.delivery.paid_broadcast import PaidBroadcast
from bot.delivery.ratelimit import RateLimiter, SendTicket
from bot.delivery.telegram_send import retry_seconds, send_part
from storage.db import session_scope
from storage.models import Outbox, OutboxStatus
from storage.outage import is_outage
from storage.outbox_claims import Claimed, claim_due, claim_rows, mark_connection
from storage.watchdog import WATCHDOG

log = logging.getLogger(__name__)

OUTBOX = Outbox.__table__
DEFAULT_LEASE: Final = timedelta(seconds=120)
DEFAULT_BATCH: Final = 30
DEFAULT_CONCURRENCY: Final = 8
MAX_ATTEMPTS: Final = 10
MAX_FLOOD_RETRIES: Final = 20  # 429s for one message before it is handed back for later
MARK_TIMEOUT: Final = 3.0  # seconds a mark on the loop may take (then its socket is cut, the mark kept)
STOP_MARK_WAIT: Final = 20.0  # seconds a stopping run still tries its kept marks (then left in memory)
LEASE_GUARD_CAP: Final = timedelta(seconds=60)  # renew before sending when less than this is left
ERROR_LEN: Final = 300
Rendered = tuple[str, "Outgoing | None", int] | Exception  # a row's `_render_one` answer, or what it raised
# rows rendered in one database step (one session and one thread hop for all): a quarter of the sends in
# flight, at most RENDER_AHEAD — 1 at concurrency 1-7 (each row rendered just before its send), 2 at the free
# default of 8, 8 for paid broadcasts (32): a row is then rendered at most 7 rows before a worker takes it
RENDER_AHEAD: Final = 8
_AGAIN: Final = object()  # a row's render was cancelled with the row it was rendered with: render it again
_HELD_BACK: Final = object()  # a send not started: the database went away since its step checked it


def _elapsed_clock(start: datetime) -> Clock:
    """`start` moved on by the real time elapsed since now (leases stay honest in long runs)."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def _not_sent(ticket: SendTicket | None, paid: PaidBroadcast | None) -> None:
    """A granted send that was not made: its limiter slot freed, its paid message back in the budget."""
    if ticket is not None:
        ticket.answered()
    if paid is not None:
        paid.unused()


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
        only: list[int] | None = None,
        paid: PaidBroadcast | None = None,
    ) -> None:
        self.db_threads = db_threads
        self.paid = paid  # bulk kinds go out as paid broadcasts while today's Stars last
        self.only = only  # claim just these rows, once
        # the marks' autocommit connection, used on the event loop only (no queue between Telegram's ok and
        # the commit); each mark bounded by the watchdog, so a hung database cannot stall the loop for long
        self.mark_conn: Connection | None = None
        self.engine, self.bot, self.render, self.limiter = engine, bot, render, limiter
        self.worker_id, self.batch, self.concurrency, self.lease = worker_id, batch, concurrency, lease
        self.clock, self.stop, self.max_attempts = clock, stop, max_attempts
        self.guard = min(lease / 2, LEASE_GUARD_CAP)
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.report = DispatchReport()
        self.queue: deque[Claimed] = deque()
        self.leases: dict[int, datetime] = {}
        self.payloads: dict[int, dict[str, Any]] = {}  # payload of each row as rendered (for progress)
        # rows of the queue rendered (or being rendered) with an earlier row, by id (`_rendered`)
        self.renders: dict[int, asyncio.Future[Rendered | object]] = {}
        self.render_ahead = max(1, min(RENDER_AHEAD, concurrency // 4))
        self.blocked: set[int] = set()
        self.exhausted = False
        self.claim_lock = asyncio.Lock()
        self.prefetch: asyncio.Future[None] | None = None  # the next batch claimed while the last rows go
        self.ledger = ledger_for(engine)  # what this process sent and could not record yet; the circuit
        self.stop_seen: float | None = None

    # ------------------------------------------------------------------ the run

    async def run(self) -> DispatchReport:
        workers = [asyncio.create_task(self._worker()) for _ in range(max(1, self.concurrency))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            if self.prefetch is not None and not self.prefetch.done():
                with contextlib.suppress(BaseException):
                    await self.prefetch  # its rows join the queue and are handed back below
            self._close_mark_connection()
            if self.paid is not None:
                await self.paid.close(self._db)
            leftover = list(self.queue)
            self.queue.clear()
            if leftover:
                try:
                    await self._db(self._release_unsent, [row.id for row in leftover])
                except Exception as err:  # never sent: they go again when their lease ends
                    log.warning("could not hand back %s unsent row(s): %s", len(leftover), _short(err))
                self.report.results.extend(
                    self._result(row, SendOutcome.RELEASED, "dừng trước khi gửi") for row in leftover
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
        """The next claimed row (claiming a batch when none is left); None when done or stopping.

        Nothing is claimed or handed out while the circuit is open: the marks kept in memory are recorded
        first (`_recovered`). When few rows are left, the next batch is claimed in the background while they
        go out, so the senders do not stand idle for a claim's round trip at every batch (a wave kept the
        limiter's slots empty for one claim a second).
        """
        while not self._stopping():
            if not await self._recovered():
                return None
            if (
                self.queue
                and len(self.queue) <= self.concurrency
                and not self.exhausted
                and self.only is None
                and (self.prefetch is None or self.prefetch.done())
                and not self.claim_lock.locked()
            ):
                self.prefetch = asyncio.ensure_future(self._claim_more(background=True))
            if not self.queue and not self.exhausted and await self._claim_more(background=False):
                continue  # the database went away: wait for it (`_recovered`), then claim again
            return self.queue.popleft() if self.queue and not self._stopping() else None
        return None

    async def _claim_more(self, *, background: bool) -> bool:
        """Claim the next batch into the queue (unless another claim filled it or the run is over); True when
        the database went away (the circuit is open)."""
        async with self.claim_lock:
            if self.exhausted or self._stopping() or (self.queue and not background):
                return False
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.exhausted = True
                self.report.more = True
                return False
            try:
                rows = await self._db(self._claim)
            except Exception as err:
                if background and not is_outage(err):  # the next claim in the foreground raises it
                    log.warning("claiming the next batch failed: %s", _short(err))
                    return False
                if not is_outage(err):
                    raise
                self.ledger.trip(err)
                return True
            self.report.claimed += len(rows)
            self.queue.extend(rows)
            self.exhausted = not rows or self.only is not None
            return False

    async def _recovered(self) -> bool:
        """Wait until the kept marks are recorded and the database answers; False when stopping first."""
        tries = 0
        while not self.ledger.healthy:
            if self._stopping():
                return False
            if await self.ledger.recover():
                break
            await asyncio.sleep(recovery_delay(tries))
            tries += 1
        return True

    def _give_up_marks(self) -> bool:
        """A stopping run waits STOP_MARK_WAIT more for its marks, then leaves them kept in memory."""
        if not self._stopping():
            return False
        if self.stop_seen is None:
            self.stop_seen = time.monotonic()
        return time.monotonic() - self.stop_seen >= STOP_MARK_WAIT

    async def _worker(self) -> None:
        while (row := await self._next()) is not None:
            try:
                try:
                    result = await self._handle(row)
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    if is_outage(err):
                        raise
                    log.exception("dispatching outbox row %s failed", row.id)  # a bug: handed back for later
                    result = await self._db(self._retry_later, row, _short(err))
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the database went away before this row was sent: again once it is back
                if not is_outage(err):
                    raise
                self.ledger.trip(err)
                self.queue.appendleft(row)
                continue
            self.report.results.append(result)
            metrics.record_dispatch(result.outcome)
            if result.outcome is SendOutcome.SENT and (row.kind == KIND_ALERT or result.chat_id < 0):
                try:
                    await self._db(self._mark_reachable, result.chat_id)
                except Exception:
                    log.warning(
                        "could not clear the unreachable mark of chat %s", result.chat_id, exc_info=True
                    )
            self.leases.pop(row.id, None)
            self.payloads.pop(row.id, None)

    async def _handle(self, row: Claimed) -> DispatchResult:
        if row.chat_id in self.blocked:
            if row.kind == KIND_ALERT:  # kept for when the police chat takes the bot back
                return await self._db(self._retry_later, row, "chat từ chối bot (403) trong lần gửi này")
            return self._result(row, SendOutcome.FAILED, "chat đã chặn bot (403) trong lần gửi này")
        if row.kind == KIND_ALERT and await self._db(self._readdress, row) is not None:
            return self._result(row, SendOutcome.OBSOLETE, "gửi tới nhóm Công an xã mới")
        state, out, done = await self._rendered(row)
        if state == "lost":
            return self._result(row, SendOutcome.LOST, "không còn được giữ")
        if out is None:
            finished = await self._db(self._finish, row, OutboxStatus.OBSOLETE, None)
            return self._result(row, SendOutcome.OBSOLETE if finished else SendOutcome.LOST)
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

    async def _rendered(self, row: Claimed) -> tuple[str, Outgoing | None, int]:
        """`_render_one`'s answer for `row`: rendered with an earlier row, or now together with the next rows of
        the queue not rendered yet (up to `render_ahead` in one database step)."""
        pending = self.renders.pop(row.id, None)
        answer = _AGAIN if pending is None else await pending
        if answer is _AGAIN:
            answer = await self._render_with_next(row)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]

    async def _render_with_next(self, row: Claimed) -> Rendered:
        rows = [row]
        if self.render_ahead > 1:
            ahead = (r for r in self.queue if r.id not in self.renders)
            rows += itertools.islice(ahead, self.render_ahead - 1)
        loop = asyncio.get_running_loop()
        futures: dict[int, asyncio.Future[Rendered | object]] = {r.id: loop.create_future() for r in rows[1:]}
        self.renders.update(futures)
        try:
            answers: list[Rendered] = await self._db(self._render_many, rows)
        except asyncio.CancelledError:
            for future in futures.values():
                future.set_result(_AGAIN)  # the worker that takes it renders it itself
            raise
        except Exception as err:  # e.g. the database went away: each row raises it when taken
            answers = [err] * len(rows)
        for other, answer in zip(rows[1:], answers[1:], strict=True):
            futures[other.id].set_result(answer)
        return answers[0]

    async def _send_step(
        self, row: Claimed, chat_id: int, step: SendStep, index: int, count: int
    ) -> DispatchResult | int:
        """One part of the message, with the limiter, the lease and Telegram's answers handled.

        Returns the (possibly migrated) chat id when a part that is not the last went out (its
        progress recorded), else the row's final result.
        """
        floods = 0
        last = index == count - 1
        while True:
            paid = await self._paid_for(row)
            ticket: SendTicket | None = None
            try:
                ticket = await self._acquire(chat_id, self.limiter if paid is None else paid.limiter)
                ready = ticket is not None and await self._recovered()
                held = ready and await self._hold_lease(row)
            except BaseException:  # e.g. the database went away renewing the lease: nothing was sent
                _not_sent(ticket, paid)
                raise
            if not ready:
                _not_sent(ticket, paid)
                with contextlib.suppress(Exception):  # else it goes again when its lease ends
                    await self._db(self._release_unsent, [row.id])
                return self._result(row, SendOutcome.RELEASED, "dừng trước khi gửi")
            if not held:
                _not_sent(ticket, paid)
                return self._result(row, SendOutcome.LOST, "đã có dispatcher khác giữ")
            assert ticket is not None
            sending = asyncio.ensure_future(
                self._send_and_mark(row, chat_id, step, index + 1, last, ticket, paid is not None)
            )
            answer = await asyncio.shield(sending)
            if answer is _HELD_BACK:  # nothing went out: wait for the database (`_recovered`), then try again
                if paid is not None:
                    paid.unused()
                continue
            if isinstance(answer, DispatchResult):
                return answer
            if answer is None:
                return chat_id
            err = answer
            if paid is not None:
                paid.unused()  # Telegram charges only for messages it delivered
            if isinstance(err, RetryAfter):
                (self.limiter if paid is None else paid.limiter).pause(retry_seconds(err))
                self.report.flood_waits += 1
                metrics.record_429()
                floods += 1
                if floods > MAX_FLOOD_RETRIES:
                    return await self._db(self._retry_later, row, _short(err))
                continue
            if isinstance(err, ChatMigrated) and chat_id != int(err.new_chat_id):
                old, chat_id = chat_id, int(err.new_chat_id)
                await self._db(self._move_chat, row, old, chat_id)
                continue
            if isinstance(err, Forbidden):
                self.blocked.add(chat_id)
                await self._db(self._mark_unreachable, chat_id, _short(err))  # if it is a police chat
                if row.kind == KIND_ALERT:  # kept and retried: the police chat may take the bot back
                    return await self._db(self._retry_later, row, _short(err))
                await self._db(self._mark_blocked, row, chat_id, _short(err))
                return self._result(row, SendOutcome.FAILED, _short(err))
            if isinstance(err, BadRequest) and "chat not found" in str(err).lower():
                return await self._db(self._retry_later, row, _short(err))  # may exist later: not dropped
            if isinstance(err, BadRequest):
                if step.optional and (index > 0 or not last):  # a picture, file or pin Telegram refuses
                    log.warning("outbox row %s: part %s refused (%s), skipped", row.id, index + 1, err)
                    if last:  # the rest went out: the message is delivered without it
                        return await self._finish_parts(row, chat_id)
                    if await self._progress_retrying(row, index + 1) is None:
                        self.report.unmarked += 1
                        return self._result(row, SendOutcome.RELEASED, "dừng khi chưa ghi được phần đã gửi")
                    return chat_id
                await self._db(self._finish, row, OutboxStatus.FAILED, _short(err))
                return self._result(row, SendOutcome.FAILED, _short(err))
            return await self._db(self._retry_later, row, _short(err))

    async def _finish_parts(self, row: Claimed, chat_id: int) -> DispatchResult:
        fresh = await self._mark_sent_retrying(row, None)
        if fresh is None:
            self.report.unmarked += 1
        return self._result(row, SendOutcome.SENT, chat_id=chat_id)

    async def _paid_for(self, row: Claimed) -> PaidBroadcast | None:
        """The paid broadcast setting when this row goes out paid: a bulk kind (never a stored alert or notice,
        never `send_now`'s urgent rows) while today's Stars last; None: the free rate."""
        paid = self.paid
        if paid is None or self.only is not None or row.kind in STORED_KINDS:
            return None
        return paid if await paid.take(self._db) else None

    async def _acquire(self, chat_id: int, limiter: RateLimiter) -> SendTicket | None:
        """Wait for `limiter`; its ticket (answer it once Telegram did), None when a stop was asked for first."""
        if self.stop is None:
            return await limiter.acquire_send(chat_id)
        if self.stop.is_set():
            return None
        acquiring = asyncio.ensure_future(limiter.acquire_send(chat_id))
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if acquiring.done() and not acquiring.cancelled():
            ticket = acquiring.result()
            if self.stop.is_set():
                ticket.answered()  # granted but not sent
                return None
            return ticket
        acquiring.cancel()
        return None

    async def _hold_lease(self, row: Claimed) -> bool:
        until = self.leases.get(row.id, row.claimed_until)
        if until - self.clock() >= self.guard:
            return True
        renewed = await self._db(self._renew, row)
        return renewed

    async def _send_and_mark(
        self,
        row: Claimed,
        chat_id: int,
        step: SendStep,
        parts_done: int,
        last: bool,
        ticket: SendTicket,
        paid: bool = False,
    ) -> DispatchResult | TelegramError | object | None:
        """The critical section: the request, then at once the commit (run shielded).

        It starts a loop turn after `_send_step` checked the database: when another send's mark found the
        database gone meanwhile (the ledger tripped), nothing is sent and `_HELD_BACK` is returned.

        The limiter's slot is stamped when Telegram answers (`ticket`); `paid` sends it as a paid broadcast.

        The last part is followed by the `sent` mark (its result returned); any other part by the
        number of parts sent, stored in the row's payload (None returned), so a retry after a crash or
        an error goes on with the next part instead of sending this one again.
        """
        if not self.ledger.healthy:
            ticket.answered()  # granted but not used
            return _HELD_BACK
        try:
            photo = step.photo
            message = await send_part(
                self.bot,
                chat_id,
                text=step.text,
                photo=None if photo is None else (photo.content, photo.filename, photo.caption),
                markup=step.markup,
                photo_id=step.photo_id,
                location=step.location,
                document_id=step.document_id,
                paid=paid,
            )
        except TelegramError as err:
            return err
        finally:
            ticket.answered()
        ok_at = time.perf_counter()
        if not last:
            if await self._progress_retrying(row, parts_done, ok_at) is None:
                self.report.unmarked += 1  # kept in memory; the next part is not sent by this run
                return self._result(row, SendOutcome.RELEASED, "dừng khi chưa ghi được phần đã gửi")
            return None
        fresh = await self._mark_sent_retrying(row, message.message_id, ok_at)
        if fresh is None:
            self.report.unmarked += 1
            return self._result(
                row,
                SendOutcome.SENT,
                "đã gửi nhưng chưa ghi được vào cơ sở dữ liệu; giữ trong bộ nhớ, không gửi lại",
                message_id=message.message_id,
                chat_id=chat_id,
            )
        if not fresh:
            self.report.already_sent += 1
            log.warning("outbox row %s was already marked sent by another dispatcher", row.id)
        return self._result(row, SendOutcome.SENT, message_id=message.message_id, chat_id=chat_id)

    async def _progress_retrying(
        self, row: Claimed, parts_done: int, ok_at: float | None = None
    ) -> bool | None:
        """Record `parts_done` in the row; on a database error kept in memory and recorded when the database
        answers again (None: this run stopped first — the mark stays kept for the next run)."""
        payload = {**self.payloads.get(row.id, {}), PARTS_SENT: parts_done}
        mark = PendingMark(row.id, self.worker_id, self.clock(), progress=payload)
        done = await self._record(mark, lambda: self._mark_progress(row, parts_done), ok_at)
        if done:
            self.payloads[row.id] = payload
        return done

    async def _mark_sent_retrying(
        self, row: Claimed, message_id: int | None, ok_at: float | None = None
    ) -> bool | None:
        """The `sent` commit; on a database error kept in memory and recorded when the database answers again
        (None: this run stopped first — the mark stays kept for the next run, never sent again meanwhile)."""
        mark = PendingMark(row.id, self.worker_id, self.clock(), message_id=message_id)
        return await self._record(mark, lambda: self._mark_sent(row, message_id), ok_at)

    async def _record(
        self, mark: PendingMark, inline: Callable[[], bool], ok_at: float | None
    ) -> bool | None:
        """Write `mark` at once on the loop (no queueing between Telegram's ok and the commit; bounded by the
        watchdog) when the database answers, else keep it in the ledger and wait for a recovery to record it.

        One statement a mark, not one per flush of several: grouping the marks of each turn of the event loop
        was measured (bench/reminders.py, paid wave at 300/s): no CPU saved, and Telegram's ok waited for the
        commit 16-20 ms at the median instead of 0.2 ms (p99 110-240 ms instead of ~30 ms) — the crash-duplicate
        window grew — because the other callbacks of the turn, and the render thread they let take the GIL,
        ran first. What a mark cost was building its UPDATE: it is built once (`marks.MARK_SENT`).
        """
        if self.ledger.healthy:
            try:
                done = inline()
            except Exception as err:
                log.warning("outbox row %s was sent but not marked yet", mark.row_id, exc_info=True)
                self.ledger.trip(err)
            else:
                if ok_at is not None:
                    self.report.commit_windows.append(time.perf_counter() - ok_at)
                return done
        self.ledger.keep(mark)
        done = await self.ledger.wait_recorded(mark, self._give_up_marks)
        if done is None:
            log.error(
                "outbox row %s: sent, still not recorded at stop; kept in memory, recorded when the database "
                "answers (another process may send it again after its lease if this one ends first)",
                mark.row_id,
            )
        else:
            self.report.late_marks += 1
        return done

    def _result(
        self,
        row: Claimed,
        outcome: SendOutcome,
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

    def _claim(self) -> list[Claimed]:
        with session_scope(self.engine) as session:
            if self.only is not None:
                rows = claim_rows(
                    session, self.only, worker_id=self.worker_id, now=self.clock(), lease=self.lease
                )
            else:
                rows = claim_due(
                    session, worker_id=self.worker_id, now=self.clock(), lease=self.lease, limit=self.batch
                )
        # a row of ours whose lease ran out while a worker of this run still holds it (e.g. waiting out
        # a long 429) is not taken twice: that worker renews the lease before sending
        rows = [row for row in rows if row.id not in self.leases and row.id not in self.ledger.pending]
        for row in rows:
            self.leases[row.id] = row.claimed_until
        return rows

    def _render_many(self, rows: list[Claimed]) -> list[Rendered]:
        """Each row's (state, message, parts sent) — or the error its render raised — in one read-only
        session: the rows loaded with one query, then rendered one by one."""
        answers: list[Rendered] = []
        with Session(self.engine) as session:
            try:
                if len(rows) == 1:
                    found = session.get(Outbox, rows[0].id)
                    loaded = {} if found is None else {found.id: found}
                else:
                    ids = [r.id for r in rows]
                    loaded = {o.id: o for o in session.scalars(select(Outbox).where(OUTBOX.c.id.in_(ids)))}
                for row in rows:
                    try:
                        answers.append(self._render_one(session, row, loaded.get(row.id)))
                    except Exception as err:
                        session.rollback()
                        answers.append(err)
            finally:
                session.rollback()  # rendering reads; it never writes
        return answers

    def _render_one(
        self, session: Session, row: Claimed, obj: Outbox | None
    ) -> tuple[str, Outgoing | None, int]:
        if obj is None or obj.status != OutboxStatus.SENDING or obj.claimed_by != self.worker_id:
            return "lost", None, 0
        payload = dict(obj.payload or {})
        self.payloads[row.id] = payload
        done = payload.get(PARTS_SENT, 0)
        return "ok", self.render(session, obj, self.clock()), done if isinstance(done, int) else 0

    def _renew(self, row: Claimed) -> bool:
        until = self.clock() + self.lease
        with self.engine.begin() as conn:
            done = outbox.renew_lease(conn, row.id, self.worker_id, until)
        if done:
            self.leases[row.id] = until
        return done

    def _mark_connection(self) -> Connection:
        """A connection of its own for the `sent` marks, in autocommit: one round trip per mark."""
        conn = self.mark_conn
        if conn is None or conn.closed or conn.invalidated:
            conn = mark_connection(self.engine, busy_timeout=MARK_TIMEOUT)
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
            with WATCHDOG.guard(conn, MARK_TIMEOUT):
                done = outbox.record_progress(conn, row.id, self.worker_id, payload)
        except Exception:
            self._close_mark_connection()
            raise
        if done:
            self.payloads[row.id] = payload
        return done

    def _mark_sent(self, row: Claimed, message_id: int | None) -> bool:
        conn = self._mark_connection()
        try:  # a single statement in autocommit: committed when it returns
            with WATCHDOG.guard(conn, MARK_TIMEOUT):
                return mark_sent(conn, row.id, self.clock(), message_id)
        except Exception:
            self._close_mark_connection()
            raise

    def _finish(self, row: Claimed, status: OutboxStatus, error: str | None) -> bool:
        with self.engine.begin() as conn:
            return outbox.finish(conn, row.id, self.worker_id, status, error)

    def _retry_later(self, row: Claimed, error: str) -> DispatchResult:
        attempts = row.attempts + 1
        most = URGENT_MAX_ATTEMPTS if row.kind in STORED_KINDS else self.max_attempts
        retry_at = None if attempts >= most else self.clock() + retry_delay(attempts, row.kind)
        with self.engine.begin() as conn:
            done = outbox.hand_back(conn, row.id, self.worker_id, error, retry_at)
        if not done:
            return self._result(row, SendOutcome.LOST, error)
        if retry_at is None:
            return self._result(row, SendOutcome.FAILED, f"bỏ sau {attempts} lần: {error}")
        return self._result(row, SendOutcome.RETRY, error, retry_at=retry_at)

    def _release_unsent(self, row_ids: list[int]) -> None:
        with self.engine.begin() as conn:
            outbox.release_unsent(conn, row_ids, self.worker_id)

    def _move_chat(self, row: Claimed, old: int, new: int) -> None:
        with session_scope(self.engine) as session:
            moved = outbox.follow_migration(session, row, self.worker_id, old, new, self.clock())
        log.info("chat %s became supergroup %s: row %s and %s police chat(s) moved", old, new, row.id, moved)

    def _readdress(self, row: Claimed) -> int | None:
        with session_scope(self.engine) as session:
            copies = outbox.readdress_alert(session, row, self.worker_id, self.clock())
        if copies is not None:
            log.info(
                "alert row %s: chat %s is no longer a police chat; %s new row(s)", row.id, row.chat_id, copies
            )
        return copies

    def _mark_unreachable(self, chat_id: int, error: str) -> None:
        with session_scope(self.engine) as session:
            newly = outbox.mark_chat_unreachable(session, chat_id, error, self.clock())
        if newly:
            log.warning(
                "police chat %s refused the bot (%s); its alerts are kept and retried", chat_id, error
            )

    def _mark_reachable(self, chat_id: int) -> None:
        with self.engine.begin() as conn:
            if outbox.mark_chat_reachable(conn, chat_id):
                log.info("police chat %s reached again", chat_id)

    def _mark_blocked(self, row: Claimed, chat_id: int, error: str) -> None:
        with session_scope(self.engine) as session:
            others = outbox.fail_blocked_chat(session, row, self.worker_id, chat_id, error, self.clock())
        log.info("chat %s refused the bot (%s): row %s and %s others failed", chat_id, error, row.id, others)


async def dispatch_due(
    engine: Engine,
    bot: Bot,
    now: datetime,
    *,
    render: RenderFn,
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
    paid: PaidBroadcast | None = None,
) -> DispatchReport:
    """Send every outbox row due by `now` (and any that fall due while it runs) exactly once; see module doc.

    `clock` gives the times written to the database (default: `now` moved on by the real time
    elapsed); `stop` ends the run gracefully; `max_seconds` stops claiming after that long
    (`report.more` then says rows may be left); `paid` sends bulk kinds as paid broadcasts
    (BAOCAO_PAID_BROADCAST) at its own rate while its daily Stars last.
    """
    if now.tzinfo is None:
        raise ValueError("dispatch_due needs an aware datetime")
    run = _Dispatch(
        engine,
        bot,
        render=render,
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
        paid=paid,
    )
    return await run.run()


async def send_now(
    engine: Engine,
    bot: Bot,
    row_ids: list[int],
    now: datetime,
    *,
    render: RenderFn,
    limiter: RateLimiter,
    worker_id: str,
    timeout: float,
    lease: timedelta = DEFAULT_LEASE,
) -> set[int]:
    """Send these rows at once (e.g. an alert just committed), each as the dispatcher would; returns the ids
    sent. After `timeout` seconds nothing more is started (a send in flight finishes), and what was not sent
    stays in the table for the next tick (a failed try counts an attempt and backs off)."""
    if not row_ids:
        return set()
    stop = asyncio.Event()
    timer = asyncio.get_running_loop().call_later(timeout, stop.set)
    try:
        report = await _Dispatch(
            engine,
            bot,
            render=render,
            limiter=limiter,
            worker_id=worker_id,
            batch=len(row_ids),
            concurrency=min(len(row_ids), DEFAULT_CONCURRENCY),
            lease=lease,
            clock=_elapsed_clock(now),
            stop=stop,
            max_attempts=MAX_ATTEMPTS,
            max_seconds=None,
            db_threads=True,
            only=list(row_ids),
        ).run()
    finally:
        timer.cancel()
    return {r.row_id for r in report.results if r.outcome is SendOutcome.SENT}


def plan_now(engine: Engine, now: datetime, plan: Callable[[Session, datetime], Any]) -> Any:
    """Run the planner `plan` once in its own transaction."""
    with session_scope(engine) as session:
        return plan(session, now)
