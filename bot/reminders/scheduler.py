"""APScheduler ticks the planner and the dispatcher (`ReminderScheduler`, `start_reminders`,
`stop_reminders`); all state lives in the `outbox` table.

Design notes: docs/design-notes.md#botremindersschedulerpy
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine
from sqlmodel import Session
from telegram import Bot

from bot import metrics
from bot.clock import Clock, system_clock
from bot.delivery.dispatcher import DEFAULT_BATCH, DEFAULT_CONCURRENCY, DEFAULT_LEASE, dispatch_due
from bot.delivery.outbox import DispatchReport, RenderFn, default_worker_id
from bot.delivery.paid_broadcast import PAID_BATCH, PAID_CONCURRENCY, PaidBroadcast, paid_broadcast_of
from bot.delivery.ratelimit import LIMITER_KEY, RateLimiter
from bot.reminders.content import render_outbox
from bot.reminders.summary_push import plan_summary_pushes
from bot.services.periods_ahead import extend_periods
from bot.services.reminders import plan as plan_reminders
from bot.services.upward import plan_upward_reminders
from storage.db import session_scope
from storage.locks import try_advisory_xact_lock
from storage.processed_updates import forget_old_updates

if TYPE_CHECKING:
    from telegram.ext import Application

log = logging.getLogger(__name__)

SCHEDULER_KEY = "reminder_scheduler"
JOB_ID = "reminders-tick"
PLANNER_LOCK_NAMESPACE = 0x62630002  # advisory lock keys of the planner ("bc", 2; chats use 1)
PLANNER_LOCK_KEY = 1


class _Busy:
    """The planner lock was held by another process: this planning run was skipped."""

    def __repr__(self) -> str:
        return "PLANNER_BUSY"


PLANNER_BUSY: Any = _Busy()


def try_lock_planner(session: Session) -> bool:
    """Try the planner's transaction-level advisory lock; True when held (always on SQLite)."""
    return try_advisory_xact_lock(session, PLANNER_LOCK_NAMESPACE, PLANNER_LOCK_KEY)


def load_default_render(default_tz: str | None = None) -> RenderFn:
    """The dispatcher's renderer: `bot.reminders.content.render_outbox` (in `default_tz` when given)."""
    return render_outbox if default_tz is None else functools.partial(render_outbox, default_tz=default_tz)


def load_default_plan(default_tz: str | None = None) -> Callable[[Session, datetime], Any]:
    """The reminder planner: `bot.services.reminders.plan` (in `default_tz` when given)."""
    return plan_reminders if default_tz is None else functools.partial(plan_reminders, default_tz=default_tz)


def summary_push_planner(default_tz: str | None) -> Callable[[Session, datetime], Any]:
    """The planner of the police summary pushes (in `default_tz`, else Việt Nam's zone)."""
    return functools.partial(plan_summary_pushes, default_tz=default_tz or "Asia/Ho_Chi_Minh")


def plan_locked(engine: Engine, now: datetime, planner: Callable[[Session, datetime], Any]) -> Any:
    """Run `planner` in its own transaction under the planner lock; PLANNER_BUSY when it is held."""
    with session_scope(engine) as session:
        if not try_lock_planner(session):
            return PLANNER_BUSY
        return planner(session, now)


@dataclass
class CycleReport:
    """What one cycle did: the planner's reports and the dispatcher's."""

    plans: list[Any] = field(default_factory=list)
    dispatches: list[DispatchReport] = field(default_factory=list)

    @property
    def sent(self) -> int:
        """Messages sent in this cycle."""
        return sum(d.sent for d in self.dispatches)


TIDY_EVERY = timedelta(hours=1)
EXTEND_EVERY = timedelta(hours=1)  # how often the coming periods of the stored schedules are added
TIDY_BATCH = 10_000


class ReminderScheduler:
    """Ticks plan() and dispatch_due() on the running event loop, never two cycles at once."""

    def __init__(
        self,
        engine: Engine,
        bot: Bot,
        *,
        tick_seconds: float,
        clock: Clock = system_clock,
        limiter: RateLimiter | None = None,
        plan: Callable[[Session, datetime], Any] | None = None,
        render: RenderFn | None = None,
        worker_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        batch: int = DEFAULT_BATCH,
        concurrency: int = DEFAULT_CONCURRENCY,
        cycle_seconds: float | None = None,
        default_tz: str | None = None,
        paid: PaidBroadcast | None = None,
    ) -> None:
        """Configure; nothing runs until `start()` (or `run_cycle()` in tests); `paid`: paid broadcasts."""
        self.engine, self.bot, self.clock = engine, bot, clock
        self.tick_seconds = tick_seconds
        self.limiter = limiter or RateLimiter()
        self._plan, self._render = plan, render
        self.default_tz = default_tz  # for the default planner and renderer (BAOCAO_TIMEZONE)
        self.worker_id = worker_id or default_worker_id()
        self.lease, self.batch, self.concurrency = lease, batch, concurrency
        self.paid = paid
        if paid is not None:  # hundreds a second need more sends in flight than Telegram's free 30
            self.batch, self.concurrency = max(batch, PAID_BATCH), max(concurrency, PAID_CONCURRENCY)
        # while a big wave drains, plan again every 5 minutes (planning 100,000 heads takes ~20 s)
        self.cycle_seconds = cycle_seconds if cycle_seconds is not None else max(300.0, tick_seconds)
        self.ticks = 0
        self.skipped = 0  # ticks that found the previous cycle still running
        self.cycles = 0
        self.planner_skips = 0  # planning runs skipped because another process was planning
        self._scheduler: AsyncIOScheduler | None = None
        self._task: asyncio.Task[CycleReport] | None = None
        self._stop = asyncio.Event()
        self._warned: set[str] = set()
        self._tidied_at: datetime | None = None  # when old update ids were last forgotten
        self._extended_at: datetime | None = None  # when the coming periods were last added

    @property
    def running(self) -> bool:
        """Whether a cycle is under way."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start ticking on the running loop; the first tick comes at once."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.tick_seconds,
            id=JOB_ID,
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("reminders: ticking every %ss as %s", self.tick_seconds, self.worker_id)

    async def tick(self) -> None:
        """The APScheduler job: start a cycle unless one is running (then skip) or we are stopping."""
        self.ticks += 1
        if self._stop.is_set():
            return
        if self.running:
            self.skipped += 1
            log.debug("reminders: previous cycle still running, tick skipped")
            return
        self._task = asyncio.create_task(self.run_cycle(), name="reminders-cycle")

    async def run_cycle(self) -> CycleReport:
        """Plan, then dispatch for at most `cycle_seconds`; again while rows are left and not stopping."""
        self.cycles += 1
        report = CycleReport()
        await self._tidy()
        while not self._stop.is_set():
            planned = await self._plan_once()
            if planned is not None:
                report.plans.append(planned)
            render = self._resolve_render()
            if render is None:
                break
            try:
                sent = await dispatch_due(
                    self.engine,
                    self.bot,
                    self.clock(),
                    render=render,
                    limiter=self.limiter,
                    worker_id=self.worker_id,
                    batch=self.batch,
                    concurrency=self.concurrency,
                    lease=self.lease,
                    clock=self.clock,
                    stop=self._stop,
                    max_seconds=self.cycle_seconds,
                    paid=self.paid,
                )
            except Exception:
                log.exception("reminders: dispatch failed; the next tick tries again")
                break
            report.dispatches.append(sent)
            if sent.results:
                log.info("reminders: %s", sent.summary())
            if not sent.more:
                break
        return report

    async def _tidy(self) -> None:
        """Once an hour: forget update ids old enough that Telegram can no longer re-send them (the table
        that makes a redelivered update a no-op would otherwise grow for as long as the bot runs)."""
        now = self.clock()
        if self._tidied_at is not None and now - self._tidied_at < TIDY_EVERY:
            return

        def forget() -> int:
            total = 0
            while True:  # one short transaction a batch
                with session_scope(self.engine) as session:
                    deleted = forget_old_updates(session, now, limit=TIDY_BATCH)
                total += deleted
                if deleted < TIDY_BATCH or self._stop.is_set():
                    return total

        self._tidied_at = now  # tried: next time in an hour, even if this one fails
        try:
            forgotten = await asyncio.to_thread(forget)
        except Exception as err:
            log.warning("forgetting old update ids failed (%s); trying again in an hour", type(err).__name__)
            return
        if forgotten:
            log.info("forgot %d update ids older than a week", forgotten)

    async def _extend(self) -> None:
        """Once an hour: add the coming periods of every stored schedule (under the planner lock)."""
        now = self.clock()
        if self._extended_at is not None and now - self._extended_at < EXTEND_EVERY:
            return
        self._extended_at = now  # tried: next time in an hour, even if this one fails
        extend = functools.partial(extend_periods, default_tz=self.default_tz or "Asia/Ho_Chi_Minh")
        try:
            created = await asyncio.to_thread(plan_locked, self.engine, now, extend)
        except Exception:
            self._extended_at = None  # a database hiccup: try again on the next tick
            log.exception("periods: adding the coming periods failed; the next tick tries again")
            return
        if created is PLANNER_BUSY:
            self._extended_at = None
        elif created:
            log.info(
                "periods: added %d coming period(s): %s", len(created), ", ".join(p.code for p in created)
            )

    async def _plan_once(self) -> Any:
        if self._plan is None:
            await self._extend()
        try:
            planner = self._plan or load_default_plan(self.default_tz)
        except ImportError as err:
            self._warn_once("plan", "reminders: no planner available (%s); only dispatching", err)
            return None
        try:
            report = await asyncio.to_thread(plan_locked, self.engine, self.clock(), planner)
        except Exception:
            log.exception("reminders: planning failed; dispatching what is already planned")
            report = None
        if report is PLANNER_BUSY:
            self.planner_skips += 1
            log.debug("reminders: another process is planning; only dispatching")
            return None
        metrics.record_planned(getattr(report, "created", 0))  # committed by plan_locked just now
        if self._plan is None:
            try:
                pushes = summary_push_planner(self.default_tz)
                if await asyncio.to_thread(plan_locked, self.engine, self.clock(), pushes) is PLANNER_BUSY:
                    self.planner_skips += 1
            except Exception:
                log.exception("reminders: planning the summary pushes failed; the next tick tries again")
            try:
                upward = functools.partial(
                    plan_upward_reminders, default_tz=self.default_tz or "Asia/Ho_Chi_Minh"
                )
                if await asyncio.to_thread(plan_locked, self.engine, self.clock(), upward) is PLANNER_BUSY:
                    self.planner_skips += 1
            except Exception:
                log.exception("reminders: planning the upward reminders failed; the next tick tries again")
        return report

    def _resolve_render(self) -> RenderFn | None:
        if self._render is not None:
            return self._render
        try:
            self._render = load_default_render(self.default_tz)
        except ImportError as err:
            self._warn_once("render", "reminders: no renderer available (%s); nothing is sent", err)
            return None
        return self._render

    def _warn_once(self, what: str, message: str, err: BaseException) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(message, err)

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop ticking, finish the message in flight, hand back unsent claims, wait for the cycle."""
        self._stop.set()
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            log.warning("reminders: the cycle did not end within %ss; leases will expire", timeout)
            task.cancel()


def start_reminders(application: Application, bot: Bot | None = None) -> ReminderScheduler | None:
    """Start the reminder ticks for a running application (post_init), unless BAOCAO_TICK_SECONDS=0.

    `bot` sends the reminders (default: the application's bot).
    """
    deps = application.bot_data["deps"]
    settings = deps.settings
    if settings.tick_seconds <= 0:
        log.info("reminders: BAOCAO_TICK_SECONDS=0, not ticking")
        return None
    limiter = application.bot_data.setdefault(LIMITER_KEY, RateLimiter())
    scheduler = ReminderScheduler(
        deps.engine,
        bot if bot is not None else application.bot,
        tick_seconds=settings.tick_seconds,
        clock=deps.clock,
        limiter=limiter,
        lease=timedelta(seconds=settings.send_lease_seconds),
        default_tz=str(settings.timezone),
        paid=paid_broadcast_of(settings, deps.engine, deps.clock),
    )
    scheduler.start()
    application.bot_data[SCHEDULER_KEY] = scheduler
    return scheduler


async def stop_reminders(application: Application) -> None:
    """Stop the reminder ticks gracefully (post_stop); a no-op when they were never started."""
    scheduler = application.bot_data.pop(SCHEDULER_KEY, None)
    if scheduler is not None:
        await scheduler.stop()
