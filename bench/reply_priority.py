"""Heads answering during a reminder wave, against the emulator with flood control on (on demand, not in CI).

The real `baocao run` process (reminders ticking every second) against the Bot API emulator with Telegram's
global limit (30 sends in any second; nothing per chat, so that only the shared global window is measured).
`--heads` village heads each open the report from their reminder and answer a long form of whole-number
questions, `--think` seconds (± half, at random) after each reply (a person reading the next question). After `--floor` seconds of
answering with nothing else going on (counted once every head has its first question), `--wave` more village heads are written into the database: the next tick
plans their reminders and the wave runs while the heads keep answering, until every reminder is delivered.

Reported: the reply delay (the head's answer to the next question arriving, measured by the head) with no wave
(the floor) and during the wave, p50 / p99 and their ratio; the wave's rate (successful sends a second, first
to last) beside the configured 30/s; 429s met by replies and by the wave; reminders delivered twice or not at
all; every reply checked to be the next question.

    .venv/bin/python bench/reply_priority.py                          # 100 heads, a wave of 1,000
    .venv/bin/python bench/reply_priority.py --reserve off            # before: replies not counted
    .venv/bin/python bench/reply_priority.py --heads 30 --wave 300 --think 3 --floor 6   # the e2e size

tests/e2e/test_reply_priority_e2e.py runs `run_scenario` at a CI size and asserts on what it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlmodel import Session, select  # noqa: E402

from bot.emulator.client import EmulatorClient, UserSession  # noqa: E402
from bot.emulator.limits import FloodLimits  # noqa: E402
from bot.emulator.server import EmulatorServer  # noqa: E402
from storage.db import make_engine, session_scope  # noqa: E402
from storage.models import Commune, Membership, Outbox, Person, Role, Village  # noqa: E402

TOKEN = "424243:PrioTokenPrioTokenPrioTokenPrio00"
BAOCAO = str(Path(sys.executable).with_name("baocao"))
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
COMMUNE = "uu-tien"
HEAD_UID = 960_001  # answering heads: HEAD_UID + i
WAVE_UID = 970_001  # heads of the wave: WAVE_UID + i
ANSWER = "3"


def label(n: int) -> str:
    """The text of question `n` (1-based), unique in the form and easy to find in a reply."""
    return f"Chỉ tiêu số {n:03d} của thôn trong kỳ là bao nhiêu?"


def form_yaml(questions: int) -> str:
    """A periodic form of `questions` whole-number questions."""
    lines = ["id: dai", "title: Báo cáo dài", "version: 1", "kind: periodic", "questions:"]
    for n in range(1, questions + 1):
        lines += [
            f"  - id: q{n:03d}",
            "    type: integer",
            f"    label: {label(n)}",
            "    min: 0",
            "    max: 1000",
        ]
    return "\n".join(lines) + "\n"


def setup_yaml(villages: list[str], due: datetime, opens: datetime) -> str:
    """One commune, no quiet hours, the long form due at `due`, reminded one day before (already past)."""
    names = "\n".join(f"      - {name}" for name in villages)
    return f"""
version: 1
communes:
  - code: {COMMUNE}
    name: Xã Ưu Tiên
    quiet_hours: false
    villages:
{names}
    forms: [forms/dai.yaml]
    schedules:
      - form: dai
        main: true
        reminders:
          before: ["1d"]
          after: false
        periods:
          - id: "UT-1"
            label: "Kỳ thử ưu tiên"
            opens: "{opens.astimezone(HCM):%d/%m/%Y}"
            due: "{due.astimezone(HCM):%d/%m/%Y %H:%M}"
"""


def seed_heads(database_url: str, heads: dict[str, int], joined_at: datetime) -> None:
    """Each named village's head as a person with a membership since `joined_at`."""
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            commune = session.exec(select(Commune).where(Commune.code == COMMUNE)).one()
            villages = {
                v.name: v.id for v in session.exec(select(Village).where(Village.commune_id == commune.id))
            }
            for name, uid in heads.items():
                person = Person(
                    telegram_user_id=uid,
                    chat_id=uid,
                    full_name=f"Trưởng {name}",
                    created_at=joined_at,
                    updated_at=joined_at,
                )
                session.add(person)
                session.flush()
                session.add(
                    Membership(
                        person_id=person.id,
                        role=Role.VILLAGE_HEAD,
                        commune_id=commune.id,
                        village_id=villages[name],
                        created_at=joined_at,
                    )
                )
    finally:
        engine.dispose()


def outbox_rows(database_url: str) -> list[Outbox]:
    """Every outbox row."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Outbox)))
    finally:
        engine.dispose()


@dataclass
class Turn:
    """One answer of one head and what came back."""

    head: int
    question: int  # the question answered (1-based)
    sent: float  # wall clock, when the head sent the answer
    replied: float  # when the next question was read (0: never)
    ok: bool  # the reply was the next question (or the review after the last)


@dataclass
class Scenario:
    """Sizes and pace."""

    heads: int = 100
    wave: int = 1000
    questions: int = 120
    think: float = 10.0  # seconds a head reads before answering again (±50 %)
    floor_seconds: float = 30.0  # answering with no wave first (the floor figures)
    global_rate: int = 30
    reserve: str | None = None  # BAOCAO_REPLY_RESERVE for the bot; None: the default
    reply_timeout: float = 60.0  # a head gives up waiting for one reply after this long (a dropped reply)
    wave_timeout: float = 600.0


@dataclass
class Outcome:
    """What happened, and the figures."""

    scenario: Scenario
    turns: list[Turn] = field(default_factory=list)
    wave_times: list[float] = field(default_factory=list)  # successful sends to the wave's chats
    wave_delivered: dict[int, int] = field(default_factory=dict)  # chat → successful sends
    reply_429: int = 0  # 429s met by sends to the answering heads' chats while the wave ran
    reply_429_outside: int = 0  # and before or after it (the heads' own bursts: replies never wait)
    wave_429: int = 0
    outbox_status: dict[str, int] = field(default_factory=dict)
    seeded: float = 0.0  # when the wave's heads were written (the floor is measured in the half before)
    wave_started: float = 0.0
    wave_ended: float = 0.0
    head_errors: list[str] = field(default_factory=list)
    bot_log: str = ""

    @property
    def wave_rate(self) -> float:
        """Successful wave sends a second, first to last."""
        if len(self.wave_times) < 2:
            return 0.0
        return (len(self.wave_times) - 1) / (self.wave_times[-1] - self.wave_times[0])

    def delays(self, *, during_wave: bool) -> list[float]:
        """Reply delays (s) of the answers sent during the wave, or before it started."""
        if during_wave:
            chosen = [t for t in self.turns if self.wave_started <= t.sent <= self.wave_ended]
        else:
            since = self.seeded - self.scenario.floor_seconds / 2  # past the heads' own start-up
            chosen = [t for t in self.turns if since <= t.sent < min(self.seeded, self.wave_started)]
        return [t.replied - t.sent for t in chosen if t.replied]

    def summary(self) -> dict[str, Any]:
        """The figures, JSON-friendly."""
        floor, wave = self.delays(during_wave=False), self.delays(during_wave=True)
        f50, f99, w50, w99 = pct(floor, 50), pct(floor, 99), pct(wave, 50), pct(wave, 99)
        duplicates = sum(1 for n in self.wave_delivered.values() if n > 1)
        missing = self.scenario.wave - sum(1 for n in self.wave_delivered.values() if n >= 1)
        return {
            "heads": self.scenario.heads,
            "wave": self.scenario.wave,
            "think_s": self.scenario.think,
            "reserve": self.scenario.reserve or "default",
            "global_rate": self.scenario.global_rate,
            "wave_rate": round(self.wave_rate, 2),
            "wave_rate_share": round(self.wave_rate / self.scenario.global_rate, 3),
            "wave_seconds": round(self.wave_ended - self.wave_started, 1),
            "turns": len(self.turns),
            "turns_floor": len(floor),
            "turns_during_wave": len(wave),
            "reply_rate_during_wave": round(len(wave) / max(1e-9, self.wave_ended - self.wave_started), 2),
            "floor_p50_s": f50,
            "floor_p99_s": f99,
            "wave_p50_s": w50,
            "wave_p99_s": w99,
            "p50_ratio": round(w50 / f50, 2) if f50 else None,
            "p99_ratio": round(w99 / f99, 2) if f99 else None,
            "not_the_next_question": sum(1 for t in self.turns if t.replied and not t.ok),
            "no_reply": sum(1 for t in self.turns if not t.replied),
            "reply_429": self.reply_429,
            "reply_429_outside_wave": self.reply_429_outside,
            "wave_429": self.wave_429,
            "wave_duplicates": duplicates,
            "wave_missing": missing,
            "outbox": self.outbox_status,
            "head_errors": len(self.head_errors),
        }


def pct(values: list[float], q: int) -> float:
    """The q-th percentile (nearest rank), rounded to ms; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank], 3)


class Head(threading.Thread):
    """A village head: opens the report from the reminder, then answers until told to stop."""

    def __init__(self, index: int, url: str, scenario: Scenario, stop: threading.Event, out: Outcome) -> None:
        super().__init__(daemon=True, name=f"head-{index}")
        self.index, self.scenario, self.stop_event, self.out = index, scenario, stop, out
        self.client = EmulatorClient(url, timeout=30)
        self.user = UserSession(self.client, HEAD_UID + index, f"Trưởng {index}")
        self.turns: list[Turn] = []
        self.ready = threading.Event()  # the first question is on screen
        self.random = random.Random(index)  # think times vary, as people do (half to one and a half times)

    def run(self) -> None:
        """Answer question after question, `think` seconds apart."""
        try:
            reminder = self.user.wait_reply(timeout=60, settle=0).last
            if self.stop_event.wait(
                self.random.uniform(0, self.scenario.think)
            ):  # not all at the same instant
                return
            self.user.press(data=reminder.flat_buttons[0].callback_data, message_id=reminder.message_id)
            self._until(label(1))
            self.ready.set()
            for n in range(1, self.scenario.questions + 1):
                if self.stop_event.wait(self.scenario.think * self.random.uniform(0.5, 1.5)):
                    break  # told to stop while reading: no last answer all at once
                sent = time.time()
                self.user.send(ANSWER)
                expected = label(n + 1) if n < self.scenario.questions else ""
                replied, ok = self._until(expected)
                self.turns.append(Turn(self.index, n, sent, replied, ok))
                if not replied:
                    break
        except Exception as err:  # reported, never hidden
            self.out.head_errors.append(f"head {self.index}: {type(err).__name__}: {err}")
        finally:
            self.client.close()

    def _until(self, expected: str) -> tuple[float, bool]:
        """Read messages until one holds `expected` (any message when empty); (when, whether it did)."""
        deadline = time.time() + self.scenario.reply_timeout
        while time.time() < deadline:
            events = self.user.wait_events(deadline - time.time(), count=1, settle=0)
            for event in events:
                message = event.get("message") or {}
                text = message.get("text") or ""
                if event.get("type") in {"sent", "edited"} and (not expected or expected in text):
                    return time.time(), True
        return 0.0, False


def run_scenario(database_url: str, workdir: Path, scenario: Scenario, *, log: Any = print) -> Outcome:
    """Run it all (emulator in a thread, the bot as a child process) and collect what happened."""
    out = Outcome(scenario)
    now = datetime.now(UTC)
    head_names = [f"Thôn Hỏi {i:03d}" for i in range(scenario.heads)]
    wave_names = [f"Thôn Nhắc {i:04d}" for i in range(scenario.wave)]
    (workdir / "forms").mkdir(parents=True, exist_ok=True)
    (workdir / "forms" / "dai.yaml").write_text(form_yaml(scenario.questions), encoding="utf-8")
    due = (now + timedelta(hours=12)).replace(second=0, microsecond=0)
    setup = workdir / "setup.yaml"
    setup.write_text(setup_yaml(head_names + wave_names, due, now - timedelta(days=3)), encoding="utf-8")

    emulator = EmulatorServer(token=TOKEN, bot_username="baocao_prio_bot")
    emulator.start_in_thread()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BAOCAO_", "DATABASE_URL"))}
    env.update(
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=emulator.url,
        DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
        BAOCAO_TICK_SECONDS="1",
        BAOCAO_SEND_LEASE_SECONDS="5",
    )
    if scenario.reserve is not None:
        env["BAOCAO_REPLY_RESERVE"] = scenario.reserve
    proc: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    heads: list[Head] = []
    log_path = workdir / "bot.log"
    try:
        done = subprocess.run([BAOCAO, "setup", str(setup)], env=env, capture_output=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode())
        head_uids = {name: HEAD_UID + i for i, name in enumerate(head_names)}
        wave_uids = {name: WAVE_UID + i for i, name in enumerate(wave_names)}
        seed_heads(database_url, head_uids, now - timedelta(days=2))
        for uid in [*head_uids.values(), *wave_uids.values()]:
            emulator.add_user(uid, f"Trưởng thôn {uid}")
            emulator.send_text(uid, "/start")
        emulator.drop_pending_updates()
        emulator.set_flood_control(
            FloodLimits(
                global_per_second=scenario.global_rate, per_chat_per_second=None, per_group_per_minute=None
            )
        )
        # sessions first: a session reads what the bot sends from its creation on, the reminder included
        heads = [Head(i, emulator.url, scenario, stop, out) for i in range(scenario.heads)]
        with log_path.open("wb") as bot_log:
            proc = subprocess.Popen([BAOCAO, "run"], env=env, stdout=bot_log, stderr=subprocess.STDOUT)
        for head in heads:
            head.start()
        for head in heads:  # every head in its report (the start-up bursts are over), then the floor phase
            head.ready.wait(120)
        log(f"{scenario.heads} heads answering; floor phase {scenario.floor_seconds:g} s")
        time.sleep(scenario.floor_seconds)

        out.seeded = out.wave_started = time.time()
        seed_heads(database_url, wave_uids, now - timedelta(days=2))  # the next tick plans their reminders
        log(f"wave of {scenario.wave} seeded")
        wave_chats = set(wave_uids.values())
        deadline, seen, sent = time.time() + scenario.wave_timeout, 0, set()
        while time.time() < deadline and proc.poll() is None:  # a look twice a second, not at every request
            records = emulator.requests_for("sendMessage")
            sent.update(int(r.params["chat_id"]) for r in records[seen:] if r.status == 200)
            seen = len(records)
            if wave_chats <= sent:
                break
            time.sleep(0.5)
        out.wave_ended = time.time()
        log(f"wave over after {out.wave_ended - out.wave_started:.1f} s")
    finally:
        stop.set()
        for head in heads:
            head.join(scenario.reply_timeout + 10)
        if proc is not None and proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        emulator.stop_thread()
        out.bot_log = log_path.read_text(errors="replace") if log_path.exists() else ""

    head_chats = {HEAD_UID + i for i in range(scenario.heads)}
    wave_chats = {WAVE_UID + i for i in range(scenario.wave)}
    delivered: Counter[int] = Counter()
    flooded: list[tuple[float, bool]] = []
    for record in emulator.requests:
        if record.method not in {"sendMessage", "editMessageText", "editMessageReplyMarkup"}:
            continue
        chat = int(record.params.get("chat_id", 0) or 0)
        if record.status == 429:
            flooded.append((record.time, chat in head_chats))
            out.wave_429 += chat in wave_chats
        elif record.status == 200 and record.method == "sendMessage" and chat in wave_chats:
            delivered[chat] += 1
            out.wave_times.append(record.time)
    out.wave_times.sort()
    out.wave_delivered = dict(delivered)
    if out.wave_times:  # the wave as it reached "Telegram": first to last send
        out.wave_started, out.wave_ended = out.wave_times[0], out.wave_times[-1]
    for at, to_head in flooded:
        if to_head and out.wave_started <= at <= out.wave_ended:
            out.reply_429 += 1
        elif to_head:
            out.reply_429_outside += 1
    (workdir / "requests.jsonl").write_text(
        "".join(
            json.dumps({"m": r.method, "chat": r.params.get("chat_id"), "status": r.status, "t": r.time})
            + "\n"
            for r in emulator.requests
            if r.method != "getUpdates"
        ),
        encoding="utf-8",
    )
    out.turns = sorted((t for head in heads for t in head.turns), key=lambda t: t.sent)
    statuses = Counter(row.status for row in outbox_rows(database_url))
    out.outbox_status = {str(getattr(k, "value", k)): v for k, v in statuses.items()}
    return out


def _throwaway_sqlite(directory: Path) -> str:
    from storage.db import upgrade

    url = f"sqlite:///{directory / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def main() -> None:
    """Command line: run once and print the figures as JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--heads", type=int, default=100)
    parser.add_argument("--wave", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--think", type=float, default=10.0, help="seconds a head reads (±50 %%)")
    parser.add_argument("--floor", type=float, default=30.0, help="seconds of answering before the wave")
    parser.add_argument("--reserve", default=None, help="BAOCAO_REPLY_RESERVE for the bot (e.g. off, 3, 5)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the bot log and request log here")
    parser.add_argument("--database-url", default=None, help="a migrated, empty database (default: SQLite)")
    args = parser.parse_args()
    scenario = Scenario(
        heads=args.heads,
        wave=args.wave,
        questions=args.questions,
        think=args.think,
        floor_seconds=args.floor,
        reserve=args.reserve,
    )
    with tempfile.TemporaryDirectory(prefix="baocao-prio-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        url = args.database_url or _throwaway_sqlite(Path(tmp))
        started = time.time()
        out = run_scenario(url, work, scenario, log=lambda m: print(m, file=sys.stderr))
        figures = out.summary()
        figures["bench_seconds"] = round(time.time() - started, 1)
        figures["machine"] = (
            f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        figures["load_after"] = [round(x, 2) for x in os.getloadavg()]
        if out.head_errors:
            figures["head_error_samples"] = out.head_errors[:5]
        print(json.dumps({"scenario": asdict(scenario), "figures": figures}, ensure_ascii=False, indent=2))
        if "Traceback" in out.bot_log:
            print("the bot logged a traceback; see the log below", file=sys.stderr)
            print(out.bot_log[-4000:], file=sys.stderr)


if __name__ == "__main__":
    main()
