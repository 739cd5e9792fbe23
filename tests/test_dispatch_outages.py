"""The dispatcher while the database goes away: a row Telegram accepted is never sent again by this process,
nothing is claimed or sent while what was sent cannot be recorded, and dispatching resumes on its own.

The outage is injected at the engine (every statement fails with an OperationalError, as a refused or dropped
connection does) and ends after a number of failed statements, not after a time; the clock jumps a minute at
every failure, so leases run out during the outage. Recovery waits are shrunk to a millisecond.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from telegram import Bot

import bot.delivery.dispatcher as dispatch_module
from bot.clock import FixedClock
from bot.delivery import marks
from bot.delivery.dispatcher import dispatch_due, send_now
from bot.delivery.marks import ledger_for
from bot.delivery.outbox import SendOutcome
from bot.delivery.ratelimit import ManualTime, RateLimiter
from bot.emulator.server import EmulatorServer
from storage.models import Outbox, OutboxStatus
from storage.outage import is_outage
from tests.test_dispatch import NOW, TOKEN, add_people, add_rows, delivered, parts_render, render, rows_by_id


@pytest.fixture(name="server")
async def _server() -> AsyncIterator[EmulatorServer]:
    """The emulator, listening in the test's loop."""
    srv = EmulatorServer(token=TOKEN)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture(name="tg")
async def _tg(server: EmulatorServer) -> AsyncIterator[Bot]:
    """A PTB Bot talking to it."""
    async with Bot(TOKEN, base_url=server.base_url) as bot:
        yield bot


@pytest.fixture(name="limiter")
def _limiter() -> RateLimiter:
    """Telegram's limits, waiting in virtual time."""
    vtime = ManualTime(1000.0)
    return RateLimiter(clock=vtime.clock, sleep=vtime.sleep)


class Outage:
    """Every statement on `engine` fails while `on`; it ends by itself after `ends_after` failures."""

    def __init__(self, engine: Engine, clock: FixedClock | None = None) -> None:
        self.on = False
        self.failures = 0
        self.ends_after = 0
        self.clock = clock
        self.statements_while_on: Counter[str] = Counter()
        event.listen(engine, "before_cursor_execute", self._check)

    def start(self, ends_after: int) -> None:
        """Cut the database now, for `ends_after` failed statements."""
        self.on, self.failures, self.ends_after = True, 0, ends_after

    def _check(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if not self.on:
            return
        self.failures += 1
        self.statements_while_on[statement.split()[0].upper()] += 1
        if self.clock is not None:
            self.clock.advance(minutes=1)  # leases (2 min) run out during the outage
        if self.failures >= self.ends_after:
            self.on = False
        raise OperationalError(statement, params, ConnectionRefusedError("connection refused (test)"))


@pytest.fixture(autouse=True)
def quick_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recovery tries a millisecond apart."""
    monkeypatch.setattr(marks, "RETRY_DELAYS", (0.001,))


class Sends(list):
    """Telegram requests of the dispatcher; `hooks`: "outage" (to note a cut at start), "after_ok"."""

    hooks: dict[str, Any]


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sends]:
    """Every Telegram request of the dispatcher, with whether the database was cut when it started."""
    log = Sends()
    real = dispatch_module.send_part
    hooks: dict[str, Any] = {}

    async def send_part(bot: Any, chat_id: int, **kw: Any) -> Any:
        entry = {"chat_id": chat_id, "cut_at_start": hooks["outage"].on if "outage" in hooks else False}
        log.append(entry)
        message = await real(bot, chat_id, **kw)
        after = hooks.get("after_ok")
        if after is not None:
            after(len(log))
        return message

    monkeypatch.setattr(dispatch_module, "send_part", send_part)
    log.hooks = hooks
    yield log


def sent_rows(engine: Engine) -> list[Outbox]:
    with Session(engine) as session:
        return list(session.scalars(select(Outbox).where(Outbox.status == OutboxStatus.SENT)))


def test_outage_errors_are_told_from_bugs() -> None:
    assert is_outage(OperationalError("x", {}, ConnectionRefusedError("refused")))
    assert is_outage(TimeoutError())
    assert not is_outage(RuntimeError("a bug"))
    assert not is_outage(ValueError("bad value"))


async def test_a_cut_after_telegrams_ok_marks_later_and_never_sends_twice(
    engine,
    server,
    tg,
    limiter,
    sends,
) -> None:
    clock = FixedClock(NOW)
    outage = Outage(engine, clock)
    sends.hooks["outage"] = outage
    chats = add_people(engine, server, 8)
    add_rows(engine, [{"chat_id": c} for c in chats])

    def cut(count: int) -> None:
        if count >= 3 and not outage.failures and not outage.on:  # the database goes, for 40 failures
            outage.start(ends_after=40)

    sends.hooks["after_ok"] = cut
    report = await dispatch_due(
        engine,
        tg,
        NOW,
        render=render,
        limiter=limiter,
        worker_id="w1",
        concurrency=3,
        lease=dispatch_module.timedelta(minutes=2),
        clock=clock,
    )
    assert outage.failures == 40 and not outage.on
    assert delivered(server) == Counter(chats), "each chat exactly once"
    assert not [s for s in sends if s["cut_at_start"]], "no send started while the database was cut"
    assert report.sent == 8 and report.late_marks >= 1 and report.unmarked == 0
    assert {r.status for r in rows_by_id(engine).values()} == {OutboxStatus.SENT}
    # while cut, the dispatcher only tried to record its marks and probe: it claimed nothing
    # (SET on PostgreSQL, PRAGMA on SQLite: the mark connection's own time limits)
    assert set(outage.statements_while_on) <= {"UPDATE", "SELECT", "SET", "PRAGMA"}
    assert ledger_for(engine).healthy


async def test_a_send_is_held_back_when_the_database_goes_between_its_checks_and_its_start(
    engine,
    server,
    tg,
    limiter,
    sends,
    monkeypatch,
) -> None:
    """The send starts a loop turn after its step checked the ledger and the lease; when another send's mark
    trips the ledger in that turn, this one is not made until the database is back, and then made once."""
    clock = FixedClock(NOW)
    outage = Outage(engine, clock)
    sends.hooks["outage"] = outage
    chats = add_people(engine, server, 1)
    add_rows(engine, [{"chat_id": c} for c in chats])
    real_hold = dispatch_module._Dispatch._hold_lease
    trips: list[bool] = []

    async def hold_then_trip(self: Any, row: Any) -> bool:
        held = await real_hold(self, row)
        if not trips:  # as another worker's mark finding the database gone, right after this step's checks
            trips.append(True)
            outage.start(ends_after=5)
            self.ledger.trip(OperationalError("UPDATE", {}, ConnectionRefusedError("refused (test)")))
        return held

    monkeypatch.setattr(dispatch_module._Dispatch, "_hold_lease", hold_then_trip)
    report = await dispatch_due(
        engine, tg, NOW, render=render, limiter=limiter, worker_id="w1", concurrency=1, clock=clock
    )
    assert trips == [True] and outage.failures == 5 and not outage.on
    assert not [s for s in sends if s["cut_at_start"]], "no send started while the ledger was down"
    assert len(sends) == 1 and delivered(server) == Counter(chats)
    assert report.sent == 1 and report.unmarked == 0
    assert {r.status for r in rows_by_id(engine).values()} == {OutboxStatus.SENT}
    assert ledger_for(engine).healthy


async def test_a_claim_that_fails_pauses_and_the_run_resumes_by_itself(
    engine,
    server,
    tg,
    limiter,
    sends,
) -> None:
    outage = Outage(engine)
    chats = add_people(engine, server, 3)
    add_rows(engine, [{"chat_id": c} for c in chats])
    outage.start(ends_after=15)  # down before the first claim
    report = await dispatch_due(engine, tg, NOW, render=render, limiter=limiter, worker_id="w1")
    assert outage.failures == 15
    assert report.sent == 3 and delivered(server) == Counter(chats)


async def test_a_stop_during_the_outage_keeps_the_mark_and_the_next_run_records_it_first(
    engine,
    server,
    tg,
    limiter,
    sends,
    monkeypatch,
) -> None:
    monkeypatch.setattr(dispatch_module, "STOP_MARK_WAIT", 0.0)
    clock = FixedClock(NOW)
    outage = Outage(engine, clock)
    sends.hooks["outage"] = outage
    chats = add_people(engine, server, 2)
    first, second = add_rows(engine, [{"chat_id": c} for c in chats])
    stop = asyncio.Event()

    def cut(count: int) -> None:
        if count == 1:
            outage.start(ends_after=10**9)  # down until the test says so
            stop.set()  # and the process is asked to stop

    sends.hooks["after_ok"] = cut
    report = await dispatch_due(
        engine, tg, NOW, render=render, limiter=limiter, worker_id="w1", concurrency=1, clock=clock, stop=stop
    )
    assert report.unmarked == 1 and report.count(SendOutcome.SENT) == 1
    assert first in ledger_for(engine).pending
    outage.on = False
    clock.advance(minutes=5)  # the outage lasted longer than the lease
    rows = rows_by_id(engine)
    assert rows[first].status == OutboxStatus.SENDING and rows[first].claimed_until < clock()  # lease over

    # a later run of this process, under another worker id: the kept mark first, then the rest
    later = await dispatch_due(
        engine, tg, clock(), render=render, limiter=limiter, worker_id="w2", clock=clock
    )
    rows = rows_by_id(engine)
    assert rows[first].status == OutboxStatus.SENT and rows[second].status == OutboxStatus.SENT
    assert later.sent == 1 and delivered(server) == Counter(chats)
    assert not ledger_for(engine).pending


async def test_a_part_sent_during_the_cut_is_recorded_before_the_next_part(
    engine,
    server,
    tg,
    limiter,
    sends,
) -> None:
    outage = Outage(engine)
    sends.hooks["outage"] = outage
    (chat,) = add_people(engine, server, 1)
    (row_id,) = add_rows(engine, [{"chat_id": chat, "key": "parts"}])

    def cut(count: int) -> None:
        if count == 1:
            outage.start(ends_after=12)

    sends.hooks["after_ok"] = cut
    report = await dispatch_due(engine, tg, NOW, render=parts_render, limiter=limiter, worker_id="w1")
    assert report.sent == 1 and report.late_marks == 1
    assert [m["plain"] for m in server.bot_messages(chat)] == [f"Phần {i} của parts" for i in (1, 2, 3)]
    assert not [s for s in sends if s["cut_at_start"]]
    assert rows_by_id(engine)[row_id].status == OutboxStatus.SENT


async def test_an_urgent_send_and_a_tick_share_what_is_kept(engine, server, tg, limiter, sends) -> None:
    """An alert sent at once after an update, its mark cut: the next tick (another worker id) does not send
    it again, though its lease ran out."""
    clock = FixedClock(NOW)
    outage = Outage(engine, clock)
    sends.hooks["outage"] = outage
    (chat,) = add_people(engine, server, 1)
    (row_id,) = add_rows(
        engine,
        [{"chat_id": chat, "kind": "notice", "payload": {"steps": [{"text": "Đã mở lại"}]}, "rule": None}],
    )

    def cut(count: int) -> None:
        if count == 1:
            outage.start(ends_after=10**9)

    sends.hooks["after_ok"] = cut
    urgent = asyncio.ensure_future(
        send_now(
            engine,
            tg,
            [row_id],
            NOW,
            render=lambda s, row, now: dispatch_module.outbox.render_stored(row),
            limiter=limiter,
            worker_id="urgent",
            timeout=30,
        )
    )
    for _ in range(5000):
        if row_id in ledger_for(engine).pending:
            break
        await asyncio.sleep(0.001)
    assert row_id in ledger_for(engine).pending, "the cut mark should be kept"
    tick = asyncio.ensure_future(
        dispatch_due(
            engine,
            tg,
            clock(),
            render=lambda s, row, now: dispatch_module.outbox.render_stored(row),
            limiter=limiter,
            worker_id="tick",
            clock=clock,
        )
    )
    await asyncio.sleep(0.05)
    assert not tick.done()  # paused: nothing claimed while the mark is owed
    outage.on = False
    assert await urgent == {row_id}
    await tick
    assert delivered(server) == Counter({chat: 1})
    assert rows_by_id(engine)[row_id].status == OutboxStatus.SENT
