"""Several workers on one database: the per-chat update lock, the planner lock, answering after commit.

The locks are PostgreSQL advisory locks; their tests skip on SQLite (one process is the supported
setup there, and SQLite serialises writers anyway). The idempotency key and the webhook answering
after the commit are tested on both backends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session
from telegram import Bot
from telegram.ext import Application

from bot.app import build_application
from bot.auth import Need
from bot.clock import FixedClock
from bot.config import settings_from
from bot.delivery.ratelimit import RateLimiter
from bot.deps import Deps
from bot.emulator.server import EmulatorServer
from bot.handlers.registry import Registry
from bot.reminders.scheduler import (
    PLANNER_BUSY,
    PLANNER_LOCK_NAMESPACE,
    ReminderScheduler,
    plan_locked,
    try_lock_planner,
)
from bot.updates.context import Ctx
from bot.updates.pipeline import CHAT_LOCK_NAMESPACE, ChatBusy, chat_lock_key, lock_chat, try_lock_chat
from storage import audit
from storage.db import session_scope
from storage.models import AuditLog, ProcessedUpdate
from tests.support.client import BotClient, build_app, text_update
from tests.support.telegram import TOKEN, FakeUser, RecordingRequest
from tests.test_dispatch import NOW, add_people, add_rows, delivered, render

PG_ONLY = "advisory locks are PostgreSQL's; on SQLite one process is the supported setup (single writer)"
AN = FakeUser(3001, "An")
BA = FakeUser(3002, "Ba")


@pytest.fixture
def postgres(db_backend: str) -> None:
    """Skip unless the run targets PostgreSQL."""
    if db_backend != "postgresql":
        pytest.skip(PG_ONLY)


def count(engine: Engine, model: Any) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model))


class Probe:
    """A test command `/ghi` that writes an audit row, sleeps inside the transaction and may fail."""

    def __init__(self, *, pause: float = 0.0, failures: int = 0) -> None:
        self.pause, self.failures = pause, failures
        self.events: list[tuple[str, int]] = []
        self.registry = Registry()

        @self.registry.command("ghi", need=Need.ANYONE)
        async def ghi(ctx: Ctx) -> None:
            self.events.append(("enter", ctx.update.update_id))
            audit.record(ctx.session, at=ctx.now, actor="test", action="probe", entity="update")
            ctx.session.flush()
            await asyncio.sleep(self.pause)
            self.events.append(("exit", ctx.update.update_id))
            if self.failures > 0:
                self.failures -= 1
                raise RuntimeError("handler failed after writing")
            ctx.reply_html(f"xong {ctx.update.update_id}")


def application(engine: Engine, database_url: str, clock: FixedClock, probe: Probe) -> Application:
    return build_app(engine, database_url, clock, RecordingRequest(), registry=probe.registry)


# ------------------------------------------------------------------------------ both backends


def test_chat_lock_keys_fit_postgres_int4_and_differ_for_neighbours() -> None:
    chats = [1, 2, 3001, 7_000_000_000, -100_123_456_7890, -1, 2**52 - 1, -(2**52)]
    keys = [chat_lock_key(c) for c in chats]
    assert all(-(2**31) <= k < 2**31 for k in keys)
    assert len(set(keys)) == len(keys)
    assert chat_lock_key(3001) == chat_lock_key(3001)
    assert CHAT_LOCK_NAMESPACE != PLANNER_LOCK_NAMESPACE


async def test_a_failed_handler_leaves_no_mark_and_the_redelivery_applies_it(
    engine: Engine, database_url: str, clock: FixedClock
) -> None:
    """The processed_update row commits with the handler's writes or not at all."""
    probe = Probe(failures=1)
    app = application(engine, database_url, clock, probe)
    async with app:
        harness = BotClient(app, app.bot.request)  # type: ignore[arg-type]
        await harness.feed(text_update(AN, "/ghi", 501))  # fails after writing: rolled back
        assert count(engine, ProcessedUpdate) == 0 and count(engine, AuditLog) == 0
        await harness.feed(text_update(AN, "/ghi", 501))  # Telegram's re-send: applied now
        await harness.feed(text_update(AN, "/ghi", 501))  # and a third delivery is a duplicate
    assert count(engine, ProcessedUpdate) == 1 and count(engine, AuditLog) == 1
    assert [e for e in probe.events if e[0] == "enter"] == [("enter", 501), ("enter", 501)]


def test_on_sqlite_the_locks_are_no_ops(engine: Engine, db_backend: str) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite's behaviour")
    with session_scope(engine) as a, session_scope(engine) as b:
        assert try_lock_chat(a, 1) and try_lock_chat(b, 1)
        assert try_lock_planner(a) and try_lock_planner(b)


# ------------------------------------------------------------------------------ PostgreSQL: locks


def test_a_held_chat_lock_refuses_another_session_until_commit(
    postgres: None, engine: Engine, other_engine: Engine
) -> None:
    with Session(engine) as first, Session(other_engine) as second:
        assert try_lock_chat(first, AN.id)
        assert not try_lock_chat(second, AN.id)  # another worker, same chat
        assert try_lock_chat(second, BA.id)  # another chat is free
        second.commit()
        first.commit()  # transaction-level: the commit releases it
        assert try_lock_chat(second, AN.id)
        second.rollback()


async def test_lock_chat_waits_without_blocking_the_loop_then_gives_up(
    postgres: None, engine: Engine, other_engine: Engine
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    running = asyncio.create_task(ticker())
    try:
        with Session(engine) as holder, Session(other_engine) as waiter:
            assert try_lock_chat(holder, AN.id)
            started = time.monotonic()
            with pytest.raises(ChatBusy):
                await lock_chat(waiter, AN.id, wait=0.3)
            assert time.monotonic() - started >= 0.3 and ticks >= 10  # the loop kept running
            waiter.rollback()
            waiting = asyncio.create_task(lock_chat(waiter, AN.id, wait=10))
            await asyncio.sleep(0.1)
            assert not waiting.done()
            holder.commit()
            await asyncio.wait_for(waiting, 5)  # taken soon after the holder's commit
            waiter.rollback()
    finally:
        running.cancel()


async def test_two_workers_given_the_same_update_process_it_once(
    postgres: None, engine: Engine, other_engine: Engine, database_url: str, clock: FixedClock
) -> None:
    probe = Probe(pause=0.2)
    first, second = (application(e, database_url, clock, probe) for e in (engine, other_engine))
    async with first, second:
        one, two = BotClient(first, first.bot.request), BotClient(second, second.bot.request)  # type: ignore[arg-type]
        await asyncio.gather(one.feed(text_update(AN, "/ghi", 601)), two.feed(text_update(AN, "/ghi", 601)))
    assert probe.events == [("enter", 601), ("exit", 601)]
    assert count(engine, ProcessedUpdate) == 1 and count(engine, AuditLog) == 1
    texts = first.bot.request.texts() + second.bot.request.texts()  # type: ignore[attr-defined]
    assert texts == ["xong 601"]


async def test_one_chats_updates_never_interleave_across_workers_other_chats_do(
    postgres: None, engine: Engine, other_engine: Engine, database_url: str, clock: FixedClock
) -> None:
    probe = Probe(pause=0.2)
    first, second = (application(e, database_url, clock, probe) for e in (engine, other_engine))
    async with first, second:
        one, two = BotClient(first, first.bot.request), BotClient(second, second.bot.request)  # type: ignore[arg-type]
        # update 701 reaches worker one; 702 of the same chat reaches worker two while 701 runs
        first_task = asyncio.create_task(one.feed(text_update(AN, "/ghi", 701)))
        await asyncio.sleep(0.05)
        await asyncio.gather(first_task, two.feed(text_update(AN, "/ghi", 702)))
        assert probe.events == [("enter", 701), ("exit", 701), ("enter", 702), ("exit", 702)]
        probe.events.clear()
        # two chats: the second worker does not wait for the first
        first_task = asyncio.create_task(one.feed(text_update(AN, "/ghi", 703)))
        await asyncio.sleep(0.05)
        await asyncio.gather(first_task, two.feed(text_update(BA, "/ghi", 704)))
        assert probe.events[:2] == [("enter", 703), ("enter", 704)]
    assert count(engine, ProcessedUpdate) == 4 and count(engine, AuditLog) == 4


def test_plan_locked_skips_while_another_process_plans(
    postgres: None, engine: Engine, other_engine: Engine
) -> None:
    calls: list[datetime] = []

    def planner(session: Session, now: datetime) -> str:
        calls.append(now)
        return "planned"

    with Session(other_engine) as elsewhere:
        assert try_lock_planner(elsewhere)
        assert plan_locked(engine, NOW, planner) is PLANNER_BUSY and calls == []
        elsewhere.commit()
    assert plan_locked(engine, NOW, planner) == "planned" and calls == [NOW]


@pytest.fixture
async def server() -> AsyncIterator[EmulatorServer]:
    """The emulator in this loop."""
    srv = EmulatorServer(token=TOKEN)
    await srv.start()
    yield srv
    await srv.stop()


async def test_the_scheduler_skips_planning_but_still_dispatches_while_another_process_plans(
    postgres: None, engine: Engine, other_engine: Engine, server: EmulatorServer
) -> None:
    chats = add_people(engine, server, 2)
    add_rows(engine, [{"chat_id": c} for c in chats])  # planned earlier, due now
    calls: list[datetime] = []

    def planner(session: Session, now: datetime) -> str:
        calls.append(now)
        return "planned"

    async with Bot(TOKEN, base_url=server.base_url) as tg:
        scheduler = ReminderScheduler(
            engine,
            tg,
            tick_seconds=1,
            clock=FixedClock(NOW),
            limiter=RateLimiter(),
            plan=planner,
            render=render,
        )
        with Session(other_engine) as elsewhere:
            assert try_lock_planner(elsewhere)  # another worker is planning
            report = await scheduler.run_cycle()
            elsewhere.commit()
        assert calls == [] and scheduler.planner_skips == 1 and report.plans == []
        assert report.sent == 2 and delivered(server) == {c: 1 for c in chats}
        report = await scheduler.run_cycle()  # the lock is free again: this one plans
    assert calls == [NOW] and report.plans == ["planned"] and scheduler.planner_skips == 1


# ------------------------------------------------------------------------------ webhook: answer after commit


SECRET = "workers-secret_0123456789"


def web_client(engine: Engine, database_url: str, clock: FixedClock, probe: Probe, **kw: Any) -> Any:
    """A TestClient over the webhook app whose application runs `probe`'s registry."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from bot.web.app import create_app

    settings = settings_from(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "DATABASE_URL": database_url,
            "BAOCAO_WEBHOOK_SECRET": SECRET,
            "BAOCAO_TICK_SECONDS": "0",
        }
    )
    app = build_application(
        settings, deps=Deps(engine, clock, settings), request=RecordingRequest(), registry=probe.registry
    )
    return TestClient(create_app(settings, application=app, engine=engine, clock=clock, **kw)), app


def test_the_webhook_answers_only_after_the_commit_and_the_replies(
    engine: Engine, database_url: str, clock: FixedClock
) -> None:
    probe = Probe(pause=0.2)
    client, app = web_client(engine, database_url, clock, probe)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    with client:
        answer = client.post("/telegram/webhook", json=text_update(AN, "/ghi", 801), headers=headers)
        assert answer.status_code == 200
        # no waiting: by the time Telegram has its 200 the update is committed and answered
        assert count(engine, ProcessedUpdate) == 1 and count(engine, AuditLog) == 1
        assert app.bot.request.texts(AN.id) == ["xong 801"]


def test_an_update_outlasting_the_answer_timeout_is_503_and_still_finishes_once(
    engine: Engine, database_url: str, clock: FixedClock
) -> None:
    probe = Probe(pause=0.6)
    client, app = web_client(engine, database_url, clock, probe, answer_timeout=0.1)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    with client:
        answer = client.post("/telegram/webhook", json=text_update(AN, "/ghi", 802), headers=headers)
        assert answer.status_code == 503  # Telegram will send it again
        deadline = time.monotonic() + 10
        while count(engine, ProcessedUpdate) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert count(engine, ProcessedUpdate) == 1
        probe.pause = 0.0
        again = client.post("/telegram/webhook", json=text_update(AN, "/ghi", 802), headers=headers)
        assert again.status_code == 200  # the re-send: a duplicate, skipped
    assert count(engine, AuditLog) == 1 and app.bot.request.texts(AN.id) == ["xong 802"]
    assert [e for e in probe.events if e[0] == "enter"] == [("enter", 802)]


def test_shutdown_waits_for_an_update_that_outlasted_its_answer(
    engine: Engine, database_url: str, clock: FixedClock
) -> None:
    probe = Probe(pause=0.5)
    client, app = web_client(engine, database_url, clock, probe, answer_timeout=0.05)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    with client:
        answer = client.post("/telegram/webhook", json=text_update(AN, "/ghi", 803), headers=headers)
        assert answer.status_code == 503
    assert count(engine, ProcessedUpdate) == 1 and app.bot.request.texts(AN.id) == ["xong 803"]
