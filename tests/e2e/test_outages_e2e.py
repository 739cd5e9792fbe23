"""The real `baocao run` against PostgreSQL behind a TCP proxy that cuts the database in the middle of a wave.

Each send's answer is held 0.6 s by the emulator (the message is in the chat at once), so at the moment of
the cut about eight sends are in flight: Telegram took them, their `sent` mark cannot be written. Leases are
3 s, shorter than the 8 s and 30 s cuts. Every reminder, notice, alert and summary push part arrives exactly
once, every row ends
`sent`, and the dispatcher resumes on its own within a few seconds of the database coming back.

Then a hang (the proxy accepts and stops forwarding) of 30 s, PostgreSQL only, and on the SQLite run another
process holding the write lock for 30 s: the bot's loop never stalls — /healthz answers at once, /readyz says
not ready and ready again (PostgreSQL), people get "thử lại sau ít phút" within the update timeout — and
nothing acknowledged before is lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from bot.emulator.client import EmulatorClient, UserSession
from bot.emulator.server import EmulatorServer
from bot.reminders.summary_push import DUE, KIND_SUMMARY, summary_key
from storage.db import make_engine, session_scope
from storage.models import Outbox, OutboxStatus, Period, Person, PoliceChat
from tests.e2e.conftest import HCM, BotProcess, child_env, free_port, invite, say, write_setup
from tests.e2e.test_reminders_e2e import ReminderBot, wave
from tests.support.tcpproxy import TcpProxy, wait_until

PG = os.environ.get("DATABASE_URL", "").startswith("postgres")
pytestmark = pytest.mark.e2e
PG_ONLY = pytest.mark.skipif(
    not PG, reason="the proxy stands in front of PostgreSQL (DATABASE_URL=postgresql://…)"
)
SQLITE_ONLY = pytest.mark.skipif(PG, reason="SQLite's write lock; the PostgreSQL run has the hang test")
POLITE = "thử lại sau ít phút"
UPDATE_TIMEOUT = 6.0  # BAOCAO_UPDATE_TIMEOUT in the hang tests

LATENCY = 0.6  # seconds each sendMessage answer is held after the message is in the chat


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    """The proxy in front of this test's database server."""
    url = make_url(database_url)
    p = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    yield p
    p.stop()


@pytest.fixture
def proxied_bot(
    emulator: EmulatorServer, database_url: str, proxy: TcpProxy, tmp_path: Path
) -> Iterator[ReminderBot]:
    """`baocao run` (not started) reaching the database through the proxy; ticks of 1 s, leases of 3 s."""
    env = child_env(emulator, proxy.url(database_url), BAOCAO_TICK_SECONDS="1", BAOCAO_SEND_LEASE_SECONDS="3")
    (tmp_path / "logs").mkdir()
    process = ReminderBot(env, tmp_path / "logs", emulator)
    yield process
    process.stop()


def add_stored_rows(database_url: str, chats: list[int]) -> list[int]:
    """A notice and an alert (stored whole, as the outbox holds them) for each of `chats`."""
    now = datetime.now(UTC)
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            people = {p.chat_id: p.id for p in session.exec(select(Person))}
            rows = []
            for chat in chats:
                for kind, text in (("notice", "Báo cáo đã được mở lại"), ("alert", "🚨 Sự cố tại thôn")):
                    rows.append(
                        Outbox(
                            key=f"e2e:{kind}:{chat}",
                            kind=kind,
                            chat_id=chat,
                            person_id=people.get(chat),
                            payload={"steps": [{"text": f"{text} ({chat})"}]},
                            due_at=now,
                            created_at=now,
                        )
                    )
            session.add_all(rows)
            session.flush()
            return [r.id for r in rows]
    finally:
        engine.dispose()


POLICE_GROUP = -100_930_000  # the commune's police group, where the summary push goes


def add_summary_push(database_url: str, emulator: EmulatorServer) -> int:
    """The police group of the wave's commune, and the period's summary push owed to it now (several text
    parts and two charts, sent part by part and recorded part by part)."""
    EmulatorClient(emulator.url).add_group(POLICE_GROUP, "Công an xã Nhắc Việc", [])
    now = datetime.now(UTC)
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            period = session.exec(select(Period).where(Period.code == "E2E-NHAC")).one()
            session.add(PoliceChat(commune_id=period.commune_id, chat_id=POLICE_GROUP, title="Công an xã"))
            row = Outbox(
                key=summary_key(period.id, POLICE_GROUP, DUE),
                kind=KIND_SUMMARY,
                chat_id=POLICE_GROUP,
                period_id=period.id,
                rule=DUE,
                payload={"occasion": DUE, "due_at": period.due_at.isoformat()},
                due_at=now,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return row.id
    finally:
        engine.dispose()


def outbox_rows(database_url: str) -> list[Outbox]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Outbox)))
    finally:
        engine.dispose()


def sends_ok(emulator: EmulatorServer) -> list[tuple[int, str]]:
    """(chat, text) of every sendMessage Telegram accepted."""
    return [
        (int(r.params["chat_id"]), str(r.params.get("text", "")))
        for r in emulator.requests_for("sendMessage")
        if r.status == 200
    ]


def executed(emulator: EmulatorServer, chats: list[int]) -> int:
    """Messages the emulator shows in these chats (a send is shown before its answer goes back)."""
    return sum(len(emulator.bot_messages(chat)) for chat in chats)


def in_flight(emulator: EmulatorServer, at: float) -> int:
    """Sends started before `at` and answered after it."""
    return sum(1 for r in emulator.requests_for("sendMessage") if r.time <= at < r.time + r.duration)


@PG_ONLY
@pytest.mark.parametrize("cut_seconds", [3, 8, 30])
def test_a_cut_during_a_wave_with_sends_in_flight_delivers_everything_exactly_once(
    cut_seconds: int,
    proxied_bot: ReminderBot,
    emulator: EmulatorServer,
    proxy: TcpProxy,
    database_url: str,
    tmp_path: Path,
) -> None:
    chats = wave(proxied_bot, emulator, database_url, tmp_path, 50)
    stored = add_stored_rows(database_url, chats[:15])
    add_summary_push(database_url, emulator)
    total = 50 + len(stored) + 1
    emulator.set_latency("sendMessage", LATENCY)
    proxied_bot.start()

    # cut when Telegram holds answers to messages it already shows (sends in flight), 15 answered before
    every = sorted(set(chats))
    assert wait_until(
        lambda: len(sends_ok(emulator)) >= 15 and executed(emulator, every) - len(sends_ok(emulator)) >= 3,
        60,
        step=0.01,
    ), proxied_bot.log()
    cut_at = time.time()
    proxy.cut_for(cut_seconds)
    time.sleep(LATENCY + 0.2)  # the sends in flight at the cut are answered now
    held = in_flight(emulator, cut_at)
    assert held >= 1, "sends should be in flight at the moment of the cut"
    during = len(sends_ok(emulator))
    assert wait_until(lambda: proxy.mode == "open", cut_seconds + 5)
    restored = time.time()
    # nothing new was sent while the marks could not be written (only the answers already in flight)
    started_during = [
        r for r in emulator.requests_for("sendMessage") if cut_at + LATENCY + 0.2 < r.time < restored - 0.05
    ]
    assert not started_during, f"{len(started_during)} send(s) started while the database was cut"

    def all_sent() -> bool:
        rows = outbox_rows(database_url)
        return len(rows) == total and {r.status for r in rows} == {OutboxStatus.SENT}

    assert wait_until(all_sent, 60, step=0.25), proxied_bot.log()
    first_after = min(
        (r.time for r in emulator.requests_for("sendMessage") if r.time >= restored), default=None
    )
    proxied_bot.stop()

    sent = sends_ok(emulator)
    repeats = {k: n for k, n in Counter(sent).items() if n > 1}
    assert not repeats, f"sent twice: {repeats}"
    expected = Counter(chats) + Counter({c: 2 for c in chats[:15]})
    assert Counter(chat for chat, _ in sent if chat != POLICE_GROUP) == expected
    push_parts = [text for chat, text in sent if chat == POLICE_GROUP]  # each once (the repeats check above)
    charts = [r for r in emulator.requests_for("sendPhoto") if r.status == 200]
    assert push_parts and "Đã hết hạn nộp báo cáo" in push_parts[0], push_parts[:1]
    assert len(charts) <= 2, f"{len(charts)} charts sent for two"
    log = proxied_bot.log()
    assert "kept in memory, it will not be sent again" in log
    assert "dispatching resumes" in log
    resumed_after = None if first_after is None else round(first_after - restored, 2)
    print(
        f"\ncut {cut_seconds}s: {held} send(s) in flight at the cut, {during} delivered before it, "
        f"{total} messages (the push in {len(push_parts)} parts and {len(charts)} charts), 0 repeated, "
        f"first send {resumed_after}s after the database came back"
    )
    if first_after is not None:
        assert first_after - restored < 5, "dispatching resumes within a few seconds"


class Status:
    """GET /healthz and /readyz of the bot, timed."""

    def __init__(self, port: int) -> None:
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def get(self, path: str) -> tuple[int, float]:
        """(status, seconds)."""
        started = time.monotonic()
        return self.http.get(path).status_code, time.monotonic() - started


def status_bot(emulator: EmulatorServer, url: str, tmp_path: Path, port: int) -> BotProcess:
    """`baocao run` with the status server, short update and lock timeouts, no reminders."""
    env = child_env(
        emulator,
        url,
        BAOCAO_STATUS_LISTEN=f"127.0.0.1:{port}",
        BAOCAO_UPDATE_TIMEOUT=str(UPDATE_TIMEOUT),
        BAOCAO_DB_LOCK_TIMEOUT="3",
        BAOCAO_DB_CONNECT_TIMEOUT="3",
    )
    (tmp_path / "logs").mkdir(exist_ok=True)
    return BotProcess(env, tmp_path / "logs", emulator)


def ask_during(users: list[UserSession]) -> list[tuple[str, float]]:
    """Each user sends /help; (the reply, seconds it took), the users' messages sent one after the other."""
    started = []
    for user in users:
        user.send("/help")
        started.append(time.monotonic())
    out = []
    for user, at in zip(users, started, strict=True):
        reply = user.wait_reply(timeout=UPDATE_TIMEOUT + 15).plain
        out.append((reply, time.monotonic() - at))
    return out


@PG_ONLY
def test_a_30s_hang_never_stalls_the_bot_and_loses_nothing(
    emulator: EmulatorServer,
    client: EmulatorClient,
    database_url: str,
    proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    port = free_port()
    bot = status_bot(emulator, proxy.url(database_url), tmp_path, port)
    bot.cli("setup", str(write_setup(tmp_path, datetime.now(HCM))))
    bot.start()
    status = Status(port)
    try:
        head = client.user(7101, "Hoa")
        assert "Thôn Nà Làng" in say(head, f"/start {invite(bot, '--village', 'Thôn Nà Làng')}")
        assert status.get("/readyz")[0] == 200
        others = [client.user(7200 + i, f"Khách {i}") for i in range(3)]

        hung_at = time.monotonic()
        proxy.hang()
        answers = ask_during([head, *others])
        health, health_took = status.get("/healthz")
        ready_during = status.get("/readyz")
        assert wait_until(lambda: time.monotonic() - hung_at >= 30, 40)
        proxy.restore()
        restored = time.monotonic()
        assert wait_until(lambda: status.get("/readyz")[0] == 200, 30, step=0.5), bot.log()
        ready_again = time.monotonic() - restored
        after = say(head, "/help")
    finally:
        bot.stop()
    for reply, took in answers:
        assert POLITE in reply and took < UPDATE_TIMEOUT + 6, (reply, took)
    assert health == 200 and health_took < 1.0, "the event loop answers during the hang"
    assert ready_during[0] == 503 and ready_during[1] < 7
    assert POLITE not in after
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:  # acknowledged before the hang: still there
            assert session.exec(select(Person).where(Person.telegram_user_id == 7101)).one()
    finally:
        engine.dispose()
    print(
        f"\nhang 30s: polite answers after {[round(t, 1) for _, t in answers]}s, /healthz {health_took:.2f}s, "
        f"/readyz 503 in {ready_during[1]:.1f}s, ready again {ready_again:.1f}s after the hang"
    )


@SQLITE_ONLY
def test_sqlite_locked_for_30s_by_another_process_never_stalls_the_bot(
    emulator: EmulatorServer, client: EmulatorClient, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    bot = status_bot(emulator, database_url, tmp_path, port)
    bot.cli("setup", str(write_setup(tmp_path, datetime.now(HCM))))
    bot.start()
    status = Status(port)
    holder: subprocess.Popen[bytes] | None = None
    try:
        head = client.user(7101, "Hoa")
        code = invite(bot, "--village", "Thôn Nà Làng")
        assert "Thôn Nà Làng" in say(head, f"/start {code}")
        others = [client.user(7200 + i, f"Khách {i}") for i in range(2)]
        # another process takes the write lock for 30 s
        path = database_url.removeprefix("sqlite:///")
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys, time\n"
                f"c = sqlite3.connect({path!r}, isolation_level=None)\n"
                "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(30); c.execute('COMMIT')",
            ],
            stdout=subprocess.PIPE,
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        locked_at = time.monotonic()
        answers = ask_during([head, *others])
        health, health_took = status.get("/healthz")
        ready, ready_took = status.get("/readyz")
        holder.wait(40)
        released = time.monotonic() - locked_at
        after = say(head, "/help")
    finally:
        if holder is not None:
            holder.kill()
        bot.stop()
    for reply, took in answers:
        # /help writes (the update's id): it waits for the lock, then the person is told to try again
        assert POLITE in reply and took < UPDATE_TIMEOUT + 6, (reply, took)
    assert health == 200 and health_took < 1.0 and ready_took < 7
    assert POLITE not in after
    assert released >= 29
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            assert session.exec(select(Person).where(Person.telegram_user_id == 7101)).one()
    finally:
        engine.dispose()
    print(
        f"\nSQLite locked 30s: polite answers after {[round(t, 1) for _, t in answers]}s, "
        f"/healthz {health_took:.2f}s, /readyz {ready} in {ready_took:.1f}s"
    )
