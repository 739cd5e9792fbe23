"""SQLite answers on the event loop (bot.updates.pipeline.in_sqlite, storage/sqlite_loop.py).

An answer's short transaction runs on the loop's own connection when the process's write slot and SQLite's
write lock are both free at once; when another connection holds the lock (here a real second sqlite3
connection in `BEGIN IMMEDIATE`), it goes to the writer thread as before, and the loop is never stalled. Two
transactions never write at once, on the loop or off it; a loop transaction past its time, or failing, is
rolled back; a redelivered update is processed once; WAL checkpoints run in the writer thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from telegram.ext import Application

from bot.app import build_application
from bot.auth import Need
from bot.clock import FixedClock
from bot.config import settings_from
from bot.deps import Deps
from bot.handlers.registry import Registry
from bot.updates import pipeline
from bot.updates.context import Ctx
from storage import audit, sqlite_loop
from storage.db import session_scope
from storage.models import AuditLog, ProcessedUpdate
from storage.sqlite_loop import WriteSlot
from tests.support.client import BotClient, text_update
from tests.support.telegram import TOKEN, FakeUser, RecordingRequest

PEOPLE = [FakeUser(5001 + i, f"Người {i}") for i in range(4)]


@pytest.fixture(autouse=True)
def _sqlite_only(db_backend: str) -> None:
    if db_backend != "sqlite":
        pytest.skip(
            "the loop path is SQLite's (PostgreSQL's transactions stay in the pool of update threads)"
        )


class Probe:
    """A catch-all text handler (an answer, for the pipeline) that writes an audit row and notes where it ran;
    a text "hold" waits for `release`, "boom" raises after writing."""

    def __init__(self) -> None:
        self.ran: list[tuple[int, str]] = []
        self.inside = 0
        self.most = 0
        self.holding = asyncio.Event()
        self.release = asyncio.Event()
        self.registry = Registry()

        @self.registry.message("probe", need=Need.ANYONE)
        async def probe(ctx: Ctx) -> None:
            text = ctx.update.effective_message.text
            self.inside += 1
            self.most = max(self.most, self.inside)
            self.ran.append((ctx.update.update_id, threading.current_thread().name))
            try:
                audit.record(ctx.session, at=ctx.now, actor="test", action=f"probe.{text}", entity="update")
                ctx.session.flush()
                if text == "hold":
                    self.holding.set()
                    if threading.current_thread() is threading.main_thread():
                        await self.release.wait()
                if text == "boom":
                    raise RuntimeError("the handler failed")
            finally:
                self.inside -= 1
            ctx.reply_html(f"xong {ctx.update.update_id}")

        self.writer_holding = threading.Event()
        self.gate_held: list[bool] = []
        self.writer_release = threading.Event()

        @self.registry.command("ghi", need=Need.ANYONE)
        async def ghi(ctx: Ctx) -> None:
            """Not an answer (a command): runs in the writer thread; `/ghi giu` holds it until released."""
            self.ran.append((ctx.update.update_id, threading.current_thread().name))
            self.gate_held.append(ctx.deps.write_slot.gate.locked())
            audit.record(ctx.session, at=ctx.now, actor="test", action="ghi", entity="update")
            if ctx.args == ("giu",):
                self.writer_holding.set()
                self.writer_release.wait(30)


@pytest.fixture
async def probed(engine: Engine, database_url: str, clock: FixedClock) -> AsyncIterator[tuple[Any, ...]]:
    probe = Probe()
    settings = settings_from(
        {"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url, "BAOCAO_UPDATE_TIMEOUT": "1"}
    )
    deps = Deps(engine, clock, settings)
    app: Application = build_application(
        settings, deps=deps, request=RecordingRequest(), registry=probe.registry
    )
    async with app:
        yield probe, deps, BotClient(app, app.bot.request), app  # type: ignore[arg-type]
    deps.write_slot.close()


def _actions(engine: Engine) -> list[str]:
    with session_scope(engine) as s:
        return [a.action for a in s.exec(select(AuditLog).order_by(AuditLog.id))]


def _update_ids(engine: Engine) -> list[int]:
    with session_scope(engine) as s:
        return sorted(u.update_id for u in s.exec(select(ProcessedUpdate)))


async def test_an_answer_runs_on_the_loop_when_the_write_lock_is_free(probed, engine: Engine) -> None:
    probe, deps, client, app = probed
    await client.feed(text_update(PEOPLE[0], "3", 100))
    await client.feed(text_update(PEOPLE[1], "4", 101))
    assert probe.ran == [(100, "MainThread"), (101, "MainThread")]
    assert deps.write_slot.on_loop == 2 and deps.write_slot.fallbacks == 0
    assert _actions(engine) == ["probe.3", "probe.4"] and _update_ids(engine) == [100, 101]
    assert app.bot.request.texts()[-2:] == ["xong 100", "xong 101"]
    conn = deps.write_slot.connection(engine)
    raw = conn.connection.dbapi_connection
    assert raw.execute("PRAGMA busy_timeout").fetchone() == (0,)
    assert raw.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    assert raw.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert not raw.in_transaction


async def test_a_command_still_runs_in_the_writer_thread(probed, engine: Engine) -> None:
    probe, deps, client, _app = probed
    await client.feed(text_update(PEOPLE[0], "/ghi", 110))  # not an answer: never on the loop
    assert probe.ran == [(110, "update-db-writer_0")]
    assert probe.gate_held == [True], "the writer thread writes holding the slot"
    assert deps.write_slot.on_loop == 0 and _update_ids(engine) == [110]


async def test_a_write_lock_held_by_another_connection_sends_the_answer_to_the_writer_thread(
    probed, engine: Engine
) -> None:
    probe, deps, client, _app = probed
    await client.feed(text_update(PEOPLE[0], "1", 120))  # the loop's connection is open
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process, say, holds SQLite's write lock
    try:
        turn = asyncio.create_task(client.feed(text_update(PEOPLE[1], "2", 121)))
        ticks = 0
        while deps.write_slot.fallbacks == 0:  # the loop goes on meanwhile: this coroutine runs
            ticks += 1
            await asyncio.sleep(0.005)
        for _ in range(3):
            ticks += 1
            await asyncio.sleep(0.005)
        while deps.write_slot.pending == 0:
            await asyncio.sleep(0.005)
        assert not turn.done(), "the writer thread waits for the lock, the loop does not"
        assert probe.ran == [(120, "MainThread")]
        other.execute("COMMIT")
        await turn
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()
    assert ticks > 0
    assert probe.ran[1][0] == 121 and probe.ran[1][1].startswith("update-db-writer")
    assert deps.write_slot.on_loop == 1 and deps.write_slot.fallbacks == 1
    assert _actions(engine) == ["probe.1", "probe.2"] and _update_ids(engine) == [120, 121]
    assert not deps.write_slot.connection(engine).connection.dbapi_connection.in_transaction
    await client.feed(text_update(PEOPLE[2], "3", 122))  # free again: back on the loop
    assert probe.ran[2] == (122, "MainThread")


async def test_two_loop_transactions_never_interleave_the_second_waits_its_turn_on_the_loop(
    probed, engine: Engine
) -> None:
    probe, deps, client, _app = probed
    first = asyncio.create_task(client.feed(text_update(PEOPLE[0], "hold", 130)))
    await probe.holding.wait()  # the first holds the slot, suspended inside its transaction
    second = asyncio.create_task(client.feed(text_update(PEOPLE[1], "2", 131)))
    for _ in range(50):  # the loop runs on: the second waits for its turn without blocking it
        await asyncio.sleep(0)
    assert [u for u, _ in probe.ran] == [130], "the second did not start while the first holds the slot"
    assert not second.done() and deps.write_slot.pending == 0
    probe.release.set()
    await asyncio.gather(first, second)
    assert probe.most == 1
    assert probe.ran == [(130, "MainThread"), (131, "MainThread")]
    assert _actions(engine) == ["probe.hold", "probe.2"] and _update_ids(engine) == [130, 131]


async def test_an_answer_waits_on_the_loop_while_the_writer_thread_works_then_runs_on_the_loop(
    probed, engine: Engine
) -> None:
    probe, deps, client, _app = probed
    held = asyncio.create_task(client.feed(text_update(PEOPLE[0], "/ghi giu", 135)))
    while not probe.writer_holding.is_set():  # the writer thread is inside its transaction
        await asyncio.sleep(0.005)
    answer = asyncio.create_task(client.feed(text_update(PEOPLE[1], "2", 136)))
    for _ in range(50):
        await asyncio.sleep(0)
    assert [u for u, _ in probe.ran] == [135] and not answer.done(), "no write beside the writer's"
    assert deps.write_slot.pending == 1, "the answer waits on the loop, not in the writer's queue"
    probe.writer_release.set()
    await asyncio.gather(held, answer)
    assert probe.ran[0] == (135, "update-db-writer_0") and probe.ran[1] == (136, "MainThread")
    assert _actions(engine) == ["ghi", "probe.2"] and _update_ids(engine) == [135, 136]


async def test_the_writer_thread_waits_for_a_loop_transaction_to_finish(probed, engine: Engine) -> None:
    probe, deps, client, _app = probed
    first = asyncio.create_task(client.feed(text_update(PEOPLE[0], "hold", 133)))
    await probe.holding.wait()  # on the loop, suspended inside its transaction, holding the slot
    command = asyncio.create_task(client.feed(text_update(PEOPLE[1], "/ghi", 134)))
    while deps.write_slot.pending == 0:
        await asyncio.sleep(0.005)
    for _ in range(20):  # the writer thread has the command and waits for the slot
        await asyncio.sleep(0.005)
    assert [u for u, _ in probe.ran] == [133] and not command.done(), "no write beside the loop's"
    probe.release.set()
    await asyncio.gather(first, command)
    assert probe.ran == [(133, "MainThread"), (134, "update-db-writer_0")]
    assert _actions(engine) == ["probe.hold", "ghi"] and _update_ids(engine) == [133, 134]


async def test_an_answer_waiting_past_its_time_for_the_writer_never_runs(probed, engine: Engine) -> None:
    probe, _deps, client, app = probed
    held = asyncio.create_task(client.feed(text_update(PEOPLE[0], "/ghi giu", 137)))
    while not probe.writer_holding.is_set():
        await asyncio.sleep(0.005)
    await client.feed(text_update(PEOPLE[1], "2", 138))  # BAOCAO_UPDATE_TIMEOUT=1: gives up waiting
    probe.writer_release.set()
    await held  # past its time too: rolled back, its person told
    told = app.bot.request.texts()
    assert [u for u, _ in probe.ran] == [137], "the answer whose time was up never ran"
    assert len(told) == 2 and "xong" not in "".join(told)
    assert _update_ids(engine) == []
    await client.feed(text_update(PEOPLE[1], "2", 138))  # redelivered: now on the loop
    assert probe.ran[-1] == (138, "MainThread") and _update_ids(engine) == [138]


async def test_a_loop_transaction_past_its_time_is_rolled_back_and_the_person_told(
    probed, engine: Engine
) -> None:
    probe, deps, client, app = probed
    await client.feed(text_update(PEOPLE[0], "hold", 140))  # BAOCAO_UPDATE_TIMEOUT=1: never released
    told = app.bot.request.texts()
    assert len(told) == 1 and "xong" not in told[0]  # the error handler's "try again"
    assert _actions(engine) == [] and _update_ids(engine) == [], "nothing committed behind their back"
    assert not deps.write_slot.gate.locked()
    probe.release.set()
    await client.feed(text_update(PEOPLE[0], "hold", 140))  # Telegram redelivers: processed now, once
    assert _actions(engine) == ["probe.hold"] and _update_ids(engine) == [140]
    assert app.bot.request.texts()[-1] == "xong 140"


async def test_an_error_on_the_loop_rolls_back_and_frees_the_slot(probed, engine: Engine) -> None:
    probe, deps, client, _app = probed
    await client.feed(text_update(PEOPLE[0], "boom", 150))
    assert probe.ran == [(150, "MainThread")]
    assert _actions(engine) == [] and _update_ids(engine) == []
    assert not deps.write_slot.gate.locked()
    assert not deps.write_slot.connection(engine).connection.dbapi_connection.in_transaction
    await client.feed(text_update(PEOPLE[0], "ok", 151))
    assert _actions(engine) == ["probe.ok"] and probe.ran[-1] == (151, "MainThread")


async def test_a_redelivered_update_is_processed_once_on_the_loop_or_off_it(probed, engine: Engine) -> None:
    probe, deps, client, app = probed
    update = text_update(PEOPLE[0], "1", 160)
    await client.feed(update)
    await client.feed(update)  # on the loop again: the processed_update row says it was done
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    turn = asyncio.create_task(client.feed(update))  # now through the writer thread
    while deps.write_slot.fallbacks == 0:
        await asyncio.sleep(0.005)
    other.execute("ROLLBACK")
    other.close()
    await turn
    assert [u for u, _ in probe.ran] == [160]
    assert _actions(engine) == ["probe.1"] and _update_ids(engine) == [160]
    assert app.bot.request.texts() == ["xong 160"]


async def test_wal_checkpoints_run_in_the_writer_thread_holding_the_slot(
    probed, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _probe, deps, client, _app = probed
    monkeypatch.setattr(sqlite_loop, "CHECKPOINT_EVERY", 3)
    seen: list[tuple[str, bool, tuple[int, int, int]]] = []
    real = pipeline.checkpoint

    def recorded(bound: Engine) -> tuple[int, int, int]:
        result = real(bound)
        seen.append((threading.current_thread().name, deps.write_slot.gate.locked(), result))
        return result

    monkeypatch.setattr(pipeline, "checkpoint", recorded)
    for i in range(7):
        await client.feed(text_update(PEOPLE[i % 4], str(i), 170 + i))
        while deps.write_slot.pending:  # a checkpoint queued: wait for it
            await asyncio.sleep(0.005)
    assert [p[0].startswith("update-db-writer") for p in seen] == [True, True]
    assert all(locked for _, locked, _ in seen), "the checkpoint held the write slot"
    for busy, frames, copied in (r for _, _, r in seen):
        assert busy == 0 and frames > 0 and copied == frames  # the whole WAL copied into the database
    assert deps.write_slot.on_loop == 7


async def test_a_real_answer_runs_on_the_loop(engine: Engine, database_url: str, clock: FixedClock) -> None:
    from tests.test_report_conversation import AN, heads_bot

    async with heads_bot(engine, database_url, clock, RecordingRequest()) as bot:
        deps = bot.app.bot_data["deps"]
        await bot.send(AN, "/baocao")
        await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
        before = deps.write_slot.on_loop
        await bot.send(AN, "3")
        assert "Câu 2/" in bot.texts(AN)[-1]
        assert deps.write_slot.on_loop == before + 1
        deps.write_slot.close()


async def test_the_slot_lets_one_writer_in_at_a_time_and_the_loop_never_blocks_on_it() -> None:
    slot = WriteSlot()
    await slot.take_for_loop()
    given_up = threading.Event()
    given_up.set()
    assert await asyncio.to_thread(slot.wait_gate, given_up, 0.01) is False, "held by the loop"
    slot.release_loop()
    assert await asyncio.to_thread(slot.wait_gate, threading.Event()) is True  # the writer thread's now
    slot.queued()
    waiting = asyncio.create_task(slot.take_for_loop())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done(), "the loop's transaction waits while the writer thread works"
    slot.gate.release()
    await asyncio.to_thread(slot.finished)  # the writer's work done, from its thread: wakes the loop
    await waiting
    assert slot.gate.locked() and slot.pending == 0
    slot.release_loop()
    assert not slot.gate.locked()
