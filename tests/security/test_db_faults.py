"""Database faults (item 7), against the real `baocao run` process.

(a) PostgreSQL gone and back under load: the bot reaches PostgreSQL through a TCP proxy in the test,
    which cuts every connection and refuses new ones for a few seconds while heads are answering (the
    shared server is never stopped). Every acknowledged answer is in the database; an answer sent
    during the outage got the Vietnamese error message and was not applied; afterwards the bot serves
    again without a restart and the same answer is accepted.
(b) SQLite locked by another process (BEGIN EXCLUSIVE held longer than the 30 s busy timeout) while a
    head answers: the head is told to try again, nothing is half-written, and after the lock is
    released the same answer is accepted.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.emulator.client import EmulatorClient, UserSession
from bot.emulator.server import EmulatorServer
from bot.texts.templates import render
from storage.db import make_engine, session_scope
from storage.models import Village
from tests.security.conftest import Figures
from tests.security.test_crash_restart import (
    QUESTIONS,
    PollingBot,
    bot_env,
    db_state,
    keyboard_tokens,
    next_screen,
    screen_index,
    seed_village_heads,
    write_short_setup,
)

pytestmark = [pytest.mark.e2e, pytest.mark.security]

ERROR = render("common/error.html")
VILLAGES = ["Thôn Mất Điện", "Thôn Khoá Sổ"]
HEADS = {name: 960_001 + i for i, name in enumerate(VILLAGES)}
SQLITE_BUSY_TIMEOUT = 30.0  # storage.db.make_engine: connect_args timeout


class FlakyProxy:
    """A TCP proxy to PostgreSQL that can cut every connection and refuse new ones for a while."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refusing = False
        self.cuts = self.refused = 0
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                self.refused += 1
                conn.close()
                continue
            try:
                up = socket.create_connection(self.upstream)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._sockets.update({conn, up})
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._drop(s)

    def _drop(self, s: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(s)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def cut(self) -> None:
        """PostgreSQL "stops": every open connection is reset and new ones are refused."""
        self.refusing = True
        self.cuts += 1
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            self._drop(s)

    def restore(self) -> None:
        """PostgreSQL is back."""
        self.refusing = False

    def close(self) -> None:
        """Stop the proxy."""
        self._closed = True
        self.cut()
        self.listener.close()


def _start(
    emulator: EmulatorServer,
    database_url: str,
    bot_url: str,
    tmp_path: Path,
    mode: str = "run",
    **env: str,
) -> tuple[PollingBot, dict[str, int]]:
    """The commune set up, its heads seeded, and the bot started on `bot_url`: `baocao run` (long polling)
    or `baocao serve` with its webhook set (the emulator POSTs each update and waits for the answer)."""
    (tmp_path / "logs").mkdir()
    setup = PollingBot(bot_env(emulator, database_url), tmp_path / "logs", emulator)
    setup.cli("setup", str(write_short_setup(tmp_path, VILLAGES)))
    seed_village_heads(database_url, HEADS)
    if mode == "serve":
        from tests.e2e.test_webhook_e2e import ServeProcess, _env

        root, serve_env = _env(emulator, bot_url, BAOCAO_TICK_SECONDS="0", **env)
        bot: Any = ServeProcess(serve_env, tmp_path / "logs", emulator, root)
        bot.start()
        done = bot.run("webhook", "set")
        assert done.returncode == 0, done.stderr.decode()
    else:
        bot = PollingBot(bot_env(emulator, bot_url, **env), tmp_path / "logs", emulator)
        bot.start()
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        ids = {v.name: v.id for v in s.exec(select(Village))}
    engine.dispose()
    return bot, ids


def _open(user: UserSession) -> int | None:
    """/baocao and the report's button: the question shown."""
    user.send("/baocao")
    next_screen(user)
    message = user.latest(with_keyboard=True)
    button = next(b for b in message.flat_buttons if (b.callback_data or "").startswith("rp:"))
    user.press(data=button.callback_data, message_id=message.message_id)
    return screen_index(next_screen(user))


@pytest.fixture
def stopped_after() -> Iterator[list[Any]]:
    """Bot processes stopped when the test ends, even when it failed half-way (stop is idempotent)."""
    bots: list[Any] = []
    yield bots
    for bot in bots:
        bot.stop()


@pytest.fixture
def proxy(db_backend: str, database_url: str) -> Iterator[FlakyProxy]:
    """A flaky TCP proxy in front of the test's PostgreSQL server."""
    if db_backend != "postgresql":
        pytest.skip("PostgreSQL outage: needs DATABASE_URL=postgresql://… (a TCP proxy cuts the server off)")
    url = make_url(database_url)
    p = FlakyProxy((url.host or "127.0.0.1", url.port or 5432))
    yield p
    p.close()


@pytest.mark.parametrize("mode", ["run", "serve"])
def test_postgresql_gone_and_back_under_load_loses_nothing_and_recovers_without_restart(
    mode: str,
    proxy: FlakyProxy,
    emulator: EmulatorServer,
    client: EmulatorClient,
    database_url: str,
    tmp_path: Path,
    figures: Figures,
    stopped_after: list[Any],
) -> None:
    """Two heads answer; PostgreSQL vanishes for 4 s mid-form; answers in the outage get the error message."""
    via_proxy = make_url(database_url).set(port=proxy.port).render_as_string(hide_password=False)
    bot, ids = _start(emulator, database_url, via_proxy, tmp_path, mode)
    stopped_after.append(bot)
    engine = make_engine(database_url)
    users = {name: client.user(uid, f"Trưởng {name}") for name, uid in HEADS.items()}
    acknowledged: dict[str, dict[str, int]] = {name: {} for name in VILLAGES}
    position = {name: _open(user) for name, user in users.items()}
    told = applied = 0

    def answer(name: str, value: int, timeout: float = 20.0) -> str:
        user, at = users[name], position[name]
        user.send(str(value))
        shown = next_screen(user, timeout)
        if screen_index(shown) == at + 1:
            acknowledged[name][QUESTIONS[at - 1]] = value
            position[name] = at + 1
        return shown

    for name in VILLAGES:
        answer(name, 11)
    proxy.cut()
    figures.fault("PostgreSQL connections cut")
    outage_answers: list[tuple[str, str, int, str]] = []
    started = time.monotonic()
    while time.monotonic() - started < 4.0:
        for name in VILLAGES:
            at = position[name]
            if at > len(QUESTIONS):
                continue
            value = 50 + len(outage_answers)
            shown = answer(name, value)
            outage_answers.append((name, QUESTIONS[at - 1], value, shown))
        time.sleep(0.3)
    refused = proxy.refused
    proxy.restore()
    figures.fault("PostgreSQL refused new connections", refused)
    for name, _qid, value, shown in outage_answers:
        if screen_index(shown) is None:
            assert ERROR in shown, (
                f"{name}: answer {value} in the outage got {shown!r}, not the error message"
            )
            told += 1
        else:
            applied += 1
    assert told > 0, f"the outage was not felt: {outage_answers}"
    for name in VILLAGES:  # an answer refused with the error was not applied, not even in part
        answers, _ = db_state(engine, ids[name])
        assert answers == acknowledged[name], (name, answers, acknowledged[name])

    # the bot serves again without a restart; the same answers are accepted now
    for name in VILLAGES:
        while position[name] <= len(QUESTIONS):
            shown = answer(name, 7)
            assert screen_index(shown) is not None, (
                f"{name}: after the outage: {shown!r}\n{bot.log()[-3000:]}"
            )
    assert bot.proc is not None and bot.proc.poll() is None and bot.starts == 1
    found = 0
    for name in VILLAGES:
        answers, _ = db_state(engine, ids[name])
        got = sum((answers or {}).get(k) == v for k, v in acknowledged[name].items())
        figures.answers(len(acknowledged[name]), got, f"PostgreSQL outage: {name}")
        found += got
    figures.updates += emulator.counters["updates"]
    engine.dispose()
    bot.stop()
    print(
        f"PostgreSQL outage ({mode}): {proxy.cuts} cut, {refused} connections refused; {len(outage_answers)} answers "
        f"in the outage: {told} told the error, {applied} applied; {found} acknowledged answers found"
    )
    assert found == sum(map(len, acknowledged.values()))


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


def test_sqlite_locked_by_another_process_tells_the_head_to_try_again_and_keeps_nothing_half_done(
    db_backend: str,
    emulator: EmulatorServer,
    client: EmulatorClient,
    database_url: str,
    tmp_path: Path,
    figures: Figures,
    stopped_after: list[Any],
) -> None:
    """BEGIN EXCLUSIVE in another process for longer than the busy timeout while a head answers."""
    if db_backend != "sqlite":
        pytest.skip(
            "SQLite lock: runs on the SQLite backend only (PostgreSQL has row locks, tested elsewhere)"
        )
    bot, ids = _start(emulator, database_url, database_url, tmp_path)
    stopped_after.append(bot)
    engine = make_engine(database_url)
    name = VILLAGES[0]
    user = client.user(HEADS[name], f"Trưởng {name}")
    other = client.user(HEADS[VILLAGES[1]], "Trưởng khác")
    assert _open(user) == 1
    user.send("12")
    assert screen_index(next_screen(user)) == 2
    before, _ = db_state(engine, ids[name])

    db_path = make_url(database_url).database
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db_path), str(SQLITE_BUSY_TIMEOUT + 3)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    figures.fault("SQLite exclusive lock held by another process")
    locked_at = time.monotonic()
    user.send("34")
    shown = next_screen(user, SQLITE_BUSY_TIMEOUT + 15)
    waited = time.monotonic() - locked_at
    assert ERROR in shown, f"the head got {shown!r} instead of the try-again message"
    assert "thử lại" in shown
    locker.wait(30)
    after, _ = db_state(engine, ids[name])
    assert after == before, "an answer refused with an error must not be half-applied"

    # after the lock: the same answer is accepted, and the others were served too
    user.send("34")
    assert screen_index(next_screen(user)) == 3
    assert _open(other) == 1
    answers, _ = db_state(engine, ids[name])
    acknowledged = {"so_hop": 12, "so_ho": 34}
    found = sum(answers.get(k) == v for k, v in acknowledged.items())
    figures.answers(len(acknowledged), found, "SQLite lock")
    figures.updates += emulator.counters["updates"]
    engine.dispose()
    bot.stop()
    print(f"SQLite lock: the head waited {waited:.1f}s for the error message; {found} answers found")
    assert found == len(acknowledged)
    assert "thử lại" in ERROR and keyboard_tokens(user)
