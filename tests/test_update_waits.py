"""Where an update waits: SQLite's one writer thread, the update threads' timeouts, the switch interval.

On SQLite the transactions of all updates run one after the other in the one writer thread
(`Deps.db_writer`) instead of taking turns at an asyncio lock and hopping to a pool thread each; on
PostgreSQL they run in the pool of update threads. A try still waiting for its thread when its time is up
is dropped, never run. `baocao run`/`serve` shorten the interpreter's switch interval.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from telegram.ext import Application

from bot.app import SWITCH_INTERVAL, build_application, shorten_switch_interval
from bot.auth import Need
from bot.clock import FixedClock
from bot.config import settings_from
from bot.deps import Deps
from bot.handlers.registry import Registry
from bot.updates.context import Ctx
from bot.updates.pipeline import DatabaseUnavailable, in_db_thread
from storage import audit
from storage.dialect import is_sqlite
from tests.support.client import BotClient, text_update
from tests.support.telegram import TOKEN, FakeUser, RecordingRequest

PEOPLE = [FakeUser(4001 + i, f"Người {i}") for i in range(6)]


@pytest.fixture
def switch_interval() -> Iterator[None]:
    """Put the interpreter's switch interval back after the test."""
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


class Overlap:
    """A test command `/ghi` that writes, yields inside its transaction and notes who ran where."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.threads: set[str] = set()
        self.entered: list[int] = []
        self.lock = threading.Lock()
        self.registry = Registry()
        self.release = threading.Event()

        @self.registry.command("ghi", need=Need.ANYONE)
        async def ghi(ctx: Ctx) -> None:
            with self.lock:
                self.inside += 1
                self.most = max(self.most, self.inside)
                self.threads.add(threading.current_thread().name)
                self.entered.append(ctx.update.update_id)
            try:
                audit.record(ctx.session, at=ctx.now, actor="test", action="probe", entity="update")
                ctx.session.flush()
                for _ in range(5):
                    await asyncio.sleep(0.01)
                while ctx.update.update_id == 900 and not self.release.wait(0.01):
                    await asyncio.sleep(0)
            finally:
                with self.lock:
                    self.inside -= 1
            ctx.reply_html(f"xong {ctx.update.update_id}")


def _app(engine: Engine, database_url: str, clock: FixedClock, overlap: Overlap, **env: str) -> Application:
    settings = settings_from({"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url, **env})
    deps = Deps(engine, clock, settings)
    return build_application(settings, deps=deps, request=RecordingRequest(), registry=overlap.registry)


async def test_sqlite_runs_every_transaction_in_its_one_writer_thread_postgresql_in_the_pool(
    engine: Engine, database_url: str, clock: FixedClock
) -> None:
    overlap = Overlap()
    app = _app(engine, database_url, clock, overlap)
    async with app:
        client = BotClient(app, app.bot.request)  # type: ignore[arg-type]
        await asyncio.gather(*(client.feed(text_update(p, "/ghi", 800 + i)) for i, p in enumerate(PEOPLE)))
    assert sorted(overlap.entered) == [800 + i for i in range(len(PEOPLE))]
    assert sorted(app.bot.request.texts()) == sorted(f"xong {800 + i}" for i in range(len(PEOPLE)))  # type: ignore[attr-defined]
    if is_sqlite(engine):
        assert overlap.most == 1, "SQLite's transactions never overlap"
        assert len(overlap.threads) == 1 and next(iter(overlap.threads)).startswith("update-db-writer")
    else:
        assert all(name.startswith("update-db_") for name in overlap.threads)


async def test_a_turn_queued_behind_a_hung_one_times_out_and_never_runs(
    engine: Engine, database_url: str, clock: FixedClock, db_backend: str
) -> None:
    if db_backend != "sqlite":
        pytest.skip("the one writer thread is SQLite's")
    overlap = Overlap()
    app = _app(engine, database_url, clock, overlap, BAOCAO_UPDATE_TIMEOUT="1")
    async with app:
        client = BotClient(app, app.bot.request)  # type: ignore[arg-type]
        hung = asyncio.create_task(client.feed(text_update(PEOPLE[0], "/ghi", 900)))
        while 900 not in overlap.entered:
            await asyncio.sleep(0.01)
        await client.feed(text_update(PEOPLE[1], "/ghi", 901))  # waits for the writer, then gives up
        overlap.release.set()
        await hung
        told = app.bot.request.texts()  # type: ignore[attr-defined]
        await client.feed(text_update(PEOPLE[2], "/ghi", 902))  # the writer is free again
    assert overlap.entered == [900, 902], "the try whose time was up never ran"
    assert len(told) == 2 and "xong" not in told[0] + told[1]  # 900 and 901 were told to try again
    assert app.bot.request.texts()[-1] == "xong 902"  # type: ignore[attr-defined]


async def test_in_db_thread_drops_a_try_still_queued_when_its_time_is_up() -> None:
    from concurrent.futures import ThreadPoolExecutor

    one = ThreadPoolExecutor(max_workers=1)
    busy, ran = threading.Event(), []

    async def hold(abandoned: threading.Event) -> str:
        busy.wait(10)
        return "held"

    async def queued(abandoned: threading.Event) -> str:
        ran.append(abandoned.is_set())
        return "ran"

    try:
        first = asyncio.create_task(in_db_thread(hold, 10, one))
        await asyncio.sleep(0)
        with pytest.raises(DatabaseUnavailable):
            await in_db_thread(queued, 0.05, one)
        busy.set()
        assert await first == "held"
        assert await in_db_thread(queued, 10, one) == "ran"
    finally:
        busy.set()
        one.shutdown(wait=True)
    assert ran == [False], "only the second, unexpired try ran"


def test_the_running_bot_shortens_the_switch_interval_tests_requests_leave_it(
    switch_interval: None, engine: Engine, database_url: str, clock: FixedClock
) -> None:
    sys.setswitchinterval(0.005)
    _app(engine, database_url, clock, Overlap())  # a test request: nothing changes
    assert sys.getswitchinterval() == pytest.approx(0.005)
    settings = settings_from(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": "http://127.0.0.1:9",
            "DATABASE_URL": database_url,
            "BAOCAO_TICK_SECONDS": "0",
        }
    )
    build_application(settings, deps=Deps(engine, clock, settings), polling=False)  # as `baocao serve`
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    shorten_switch_interval(0.002)
    assert sys.getswitchinterval() == pytest.approx(0.002)
