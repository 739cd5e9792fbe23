"""Crash and restart (item 4): a hypothesis state machine drives village heads through a form over HTTP
while the real `baocao run` process is SIGKILLed and restarted at random points.

An answer is acknowledged when the bot's next screen for it has arrived. After every step: every
acknowledged answer is in the database (the village's draft or its submission), no village has two
submissions, and a kill in the middle of an answer leaves the draft either with that answer or
without it (never half), which /baocao shows by resuming at the right question.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import select

from bot.emulator.client import EmulatorClient, UserSession
from bot.emulator.server import EmulatorServer
from storage.db import make_engine, session_scope
from storage.models import Draft, Submission, Village
from tests.e2e.conftest import BAOCAO, HCM, BotProcess, child_env
from tests.e2e.test_reminders_e2e import seed_heads
from tests.security.conftest import Figures

pytestmark = [pytest.mark.e2e, pytest.mark.security]

QUESTIONS = ("so_hop", "so_ho", "so_vu")
SHORT_FORM = """\
id: ngan
title: Báo cáo ngắn
version: 1
kind: periodic
questions:
  - id: so_hop
    type: integer
    label: Số buổi họp dân
  - id: so_ho
    type: integer
    label: Số hộ tham gia
  - id: so_vu
    type: integer
    label: Số vụ việc đã hoà giải
"""
VILLAGES_PER_EXAMPLE = 3
MAX_EXAMPLES = int(os.environ.get("BAOCAO_CRASH_EXAMPLES", "4"))
STEPS = int(os.environ.get("BAOCAO_CRASH_STEPS", "30"))
KILLS_PER_EXAMPLE = 4
REPLY = 20.0
QUESTION_RE = re.compile(r"Câu (\d+)/(\d+)")


def write_short_setup(tmp: Path, villages: list[str], *, schedule: str | None = None) -> Path:
    """One commune with `villages` and the three-question form; `schedule`: the form's schedule lines
    below `main: true` (default: one period open since yesterday, due in ten days)."""
    (tmp / "forms").mkdir(exist_ok=True)
    (tmp / "forms" / "ngan.yaml").write_text(SHORT_FORM, encoding="utf-8")
    now = datetime.now(UTC)
    names = "\n".join(f"      - {name}" for name in villages)
    if schedule is None:
        schedule = f"""        periods:
          - id: "E2E-NGAN"
            label: "Kỳ chịu lỗi"
            opens: "{(now - timedelta(days=1)).astimezone(HCM):%d/%m/%Y}"
            due_before: "{(now + timedelta(days=10)).astimezone(HCM):%d/%m/%Y}"
"""
    text = f"""
version: 1
communes:
  - code: chiu-loi
    name: Xã Chịu Lỗi
    quiet_hours: false
    villages:
{names}
    forms: [forms/ngan.yaml]
    schedules:
      - form: ngan
        main: true
{schedule}"""
    path = tmp / "setup.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def seed_village_heads(database_url: str, heads: dict[str, int], commune_code: str = "chiu-loi") -> None:
    """Each village's head as a person with a membership (as if signed up through an invite two days ago)."""
    seed_heads(database_url, heads, datetime.now(UTC) - timedelta(days=2), commune_code)


class PollingBot(BotProcess):
    """`baocao run`, counted as started as soon as its first long poll is held open."""

    def start(self) -> None:
        """Start the process and wait until PTB says "Application started" (its first poll follows)."""
        self.starts += 1
        path = self.log_dir / f"bot-{self.starts}.log"
        log = path.open("wb")
        self.proc = subprocess.Popen([BAOCAO, "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            if b"Application started" in path.read_bytes():
                break
            time.sleep(0.05)
        assert self.proc.poll() is None, self.log()

    def settle(self, timeout: float = 20.0) -> None:
        """Wait until every update was fetched and confirmed (the bot is idle, long-polling again)."""
        ok = self.server.wait_for_sync(
            lambda: not self.server.pending_updates() and self.server.waiting_polls > 0, timeout
        )
        assert ok, (
            f"the bot did not confirm its updates: {self.server.pending_updates()}\n{self.log()[-3000:]}"
        )


def bot_env(emulator: EmulatorServer, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `baocao` child process against this emulator and database, reminders off."""
    return child_env(emulator, database_url, **{"BAOCAO_TICK_SECONDS": "0", **extra})


def keyboard_tokens(user: UserSession) -> list[str]:
    """Engine tokens of the newest inline keyboard in the user's chat."""
    message = user.latest(with_keyboard=True)
    return [(b.callback_data or "").split(":", 3)[-1] for b in message.flat_buttons] if message else []


def press_token(user: UserSession, token: str) -> str:
    """Press the newest keyboard's button carrying `token`; return the bot's answer (plain text)."""
    message = user.latest(with_keyboard=True)
    assert message is not None, f"{user.name}: no keyboard"
    data = next(
        (b.callback_data for b in message.flat_buttons if (b.callback_data or "").endswith(token)), None
    )
    assert data is not None, f"{user.name}: no {token!r} in {keyboard_tokens(user)}"
    user.press(data=data, message_id=message.message_id)
    return next_screen(user)


def next_screen(user: UserSession, timeout: float = REPLY) -> str:
    """The plain text of the newest message the bot sends next (edits of older ones are ignored)."""
    events = user.wait_events(timeout, counted=("sent",), settle=0.1)
    sent = [e for e in events if e["type"] == "sent" and "message" in e]
    assert sent, f"{user.name}: no new message within {timeout}s; got {events}"
    return sent[-1]["message"].get("plain") or ""


def screen_index(text: str) -> int | None:
    """The question number a screen asks ("Câu 2/3" → 2); len(QUESTIONS)+1 for the review; else None."""
    found = QUESTION_RE.findall(text)
    if found:
        return int(found[-1][0])
    if "Kiểm tra" in text or "Gửi báo cáo" in text or "gửi" in text.lower():
        return len(QUESTIONS) + 1
    return None


@dataclass
class Reporter:
    """The model of one village head: where the draft is and the answers the bot acknowledged."""

    user: UserSession
    village: str
    village_id: int
    position: int | None = None  # 1..len(QUESTIONS); len+1 = review; None = not opened yet
    paused: bool = False
    submitted: bool = False
    acknowledged: dict[str, int] = field(default_factory=dict)


def db_state(engine: Any, village_id: int) -> tuple[dict[str, Any] | None, list[Submission]]:
    """(the village's draft answers or None, its submissions)."""
    with session_scope(engine) as s:
        draft = s.exec(select(Draft).where(Draft.village_id == village_id)).first()
        subs = list(s.exec(select(Submission).where(Submission.village_id == village_id)))
        return (dict(draft.state.get("answers") or {}) if draft else None), subs


@pytest.fixture
def crash_world(
    emulator: EmulatorServer, client: EmulatorClient, database_url: str, tmp_path: Path
) -> Iterator[tuple[PollingBot, list[tuple[str, int]]]]:
    """A running bot with enough villages (and heads) for every example; yields the bot and (village, uid)."""
    names = [f"Thôn Lỗi {i:02d}" for i in range(1, VILLAGES_PER_EXAMPLE * (MAX_EXAMPLES + 2) + 1)]
    heads = {name: 940_001 + i for i, name in enumerate(names)}
    (tmp_path / "logs").mkdir()
    bot = PollingBot(bot_env(emulator, database_url), tmp_path / "logs", emulator)
    bot.cli("setup", str(write_short_setup(tmp_path, names)))
    seed_village_heads(database_url, heads)
    bot.start()
    yield bot, list(heads.items())
    bot.stop()


def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    crash_world: tuple[PollingBot, list[tuple[str, int]]],
    client: EmulatorClient,
    emulator: EmulatorServer,
    database_url: str,
    figures: Figures,
) -> None:
    """Several heads answer, go back, pause, resume and submit while the bot is killed and restarted."""
    bot, villages = crash_world
    free = list(villages)
    engine = make_engine(database_url)
    with session_scope(engine) as s:
        ids = {v.name: v.id for v in s.exec(select(Village))}
    totals = {"kills": 0, "mid_answer": 0, "answers": 0, "found": 0, "submissions": 0}

    class CrashMachine(RuleBasedStateMachine):
        """Village heads and a bot that may lose power at any moment."""

        def __init__(self) -> None:
            super().__init__()
            self.people: list[Reporter] = []
            self.kills = 0
            for _ in range(VILLAGES_PER_EXAMPLE):
                name, uid = free.pop(0)
                user = client.user(uid, f"Trưởng {name}")
                self.people.append(Reporter(user, name, ids[name]))

        # -- helpers ------------------------------------------------------------------------

        def _open(self, p: Reporter) -> int | None:
            """/baocao and the report's button: the question the draft resumes at."""
            p.user.send("/baocao")
            listing = next_screen(p.user)
            # a question screen first is the restarted bot's late answer to a redelivered answer (it answers
            # that chat's updates in order, so the listing follows); anything else is a failure
            while "Kỳ chịu lỗi" not in listing and screen_index(listing) is not None:
                listing = next_screen(p.user)
            assert "Kỳ chịu lỗi" in listing, listing
            shown = press_token(p.user, keyboard_tokens(p.user)[0])
            p.paused = False
            return screen_index(shown)

        def _restart(self) -> None:
            t0 = time.monotonic()
            bot.kill()
            self.kills += 1
            totals["kills"] += 1
            figures.fault("SIGKILL of the bot process")
            bot.start()
            bot.settle()
            totals["restart_s"] = totals.get("restart_s", 0) + time.monotonic() - t0
            for p in self.people:  # whatever the new process answered to redelivered updates
                p.user.wait_events(timeout=0.0, settle=0.3)

        def _check_resume(self, p: Reporter) -> None:
            shown = self._open(p)
            assert shown == p.position, f"{p.village}: resumed at {shown}, expected {p.position}"

        # -- rules --------------------------------------------------------------------------

        @rule(i=st.integers(0, VILLAGES_PER_EXAMPLE - 1))
        def open_report(self, i: int) -> None:
            """/baocao: a new draft starts at question 1, an existing one resumes where it was."""
            p = self.people[i]
            if p.submitted:
                return
            if p.position is None:
                assert self._open(p) == 1
                p.position = 1
            else:
                self._check_resume(p)

        @rule(i=st.integers(0, VILLAGES_PER_EXAMPLE - 1), value=st.integers(0, 99))
        def answer(self, i: int, value: int) -> None:
            """Type the answer to the current question; acknowledged when the next screen arrives."""
            p = self.people[i]
            if p.position is None and not p.submitted:
                self.open_report(i)
            if p.paused:
                self.resume(i)
            if p.position is None or p.submitted or p.paused or p.position > len(QUESTIONS):
                return
            p.user.send(str(value))
            shown = screen_index(next_screen(p.user))
            assert shown == p.position + 1, (p.village, shown, p.position)
            p.acknowledged[QUESTIONS[p.position - 1]] = value
            p.position += 1

        answer_again = rule(i=st.integers(0, VILLAGES_PER_EXAMPLE - 1), value=st.integers(0, 99))(
            lambda self, i, value: self.answer(i, value)
        )

        @precondition(lambda self: self.kills < KILLS_PER_EXAMPLE)
        @rule(
            i=st.integers(0, VILLAGES_PER_EXAMPLE - 1),
            delay=st.sampled_from([0.0, 0.02, 0.05, 0.15, None, None]),
        )
        def power_cut(self, i: int, delay: float | None) -> None:
            """SIGKILL between two answers (delay None), or `delay` s after an answer was typed.

            Between answers every draft resumes where it was; mid-answer the answer is applied wholly
            or not at all, and /baocao resumes at the question after it or at it.
            """
            p = self.people[i]
            if delay is None or p.position is None or p.submitted or p.paused or p.position > len(QUESTIONS):
                self._restart()
                for other in self.people:
                    if other.position is not None and not other.submitted:
                        self._check_resume(other)
                return
            qid = QUESTIONS[p.position - 1]
            value = 100 + p.position
            p.user.send(str(value))
            time.sleep(delay)
            totals["mid_answer"] += 1
            self._restart()
            shown = self._open(p)
            answers, _ = db_state(engine, p.village_id)
            if shown == p.position + 1:  # applied (before or after the restart): now acknowledged
                assert answers is not None and answers.get(qid) == value, (qid, answers)
                p.acknowledged[qid] = value
                p.position += 1
                totals["mid_applied"] = totals.get("mid_applied", 0) + 1
            else:
                assert shown == p.position, f"{p.village}: resumed at {shown}, expected {p.position}(+1)"
                assert answers is None or answers.get(qid) == p.acknowledged.get(qid), (qid, answers)

        power_cut_again = precondition(lambda self: self.kills < KILLS_PER_EXAMPLE)(
            rule(i=st.integers(0, VILLAGES_PER_EXAMPLE - 1), delay=st.sampled_from([0.0, 0.03, 0.1, None]))(
                lambda self, i, delay: self.power_cut(i, delay)
            )
        )

        @initialize(delay=st.sampled_from([0.0, 0.01, 0.03, 0.06, 0.1, 0.2]))
        def first_answer_then_power_cut(self, delay: float) -> None:
            """Every example starts with a power cut right after the first head's first answer."""
            self.open_report(0)
            self.power_cut(0, delay)

        @rule(i=st.integers(0, VILLAGES_PER_EXAMPLE - 1))
        def back(self, i: int) -> None:
            """⬅️ Quay lại: the previous question is asked again (its answer kept until replaced)."""
            p = self.people[i]
            if p.position is None or p.submitted or p.paused or p.position > len(QUESTIONS):
                return
            if "back" not in keyboard_tokens(p.user):
                return
            shown = screen_index(press_token(p.user, "back"))
            assert shown == max(1, p.position - 1), (p.village, shown, p.position)  # none before question 1
            p.position = max(1, p.position - 1)

        @rule(i=st.integers(0, VILLAGES_PER_EXAMPLE - 1))
        def pause(self, i: int) -> None:
            """⏸ Tạm dừng."""
            p = self.people[i]
            if p.position is None or p.submitted or p.paused or "pause" not in keyboard_tokens(p.user):
                return
            assert "Đã tạm dừng" in press_token(p.user, "pause")
            p.paused = True

        @rule(i=st.integers(0, VILLAGES_PER_EXAMPLE - 1))
        def resume(self, i: int) -> None:
            """▶️ Tiếp tục after a pause: back at the same question."""
            p = self.people[i]
            if not p.paused or "resume" not in keyboard_tokens(p.user):
                return
            shown = screen_index(press_token(p.user, "resume"))
            assert shown == p.position, (p.village, shown, p.position)
            p.paused = False

        @rule(i=st.integers(0, VILLAGES_PER_EXAMPLE - 1), finish=st.booleans())
        def submit(self, i: int, finish: bool) -> None:
            """Send the report from the review (Gửi, then confirm): a receipt and exactly one submission."""
            p = self.people[i]
            while (
                finish
                and not p.submitted
                and (p.position is None or p.paused or p.position <= len(QUESTIONS))
            ):
                self.answer(i, 7)
            if p.submitted or p.paused or p.position != len(QUESTIONS) + 1:
                return
            if "submit" not in keyboard_tokens(p.user):
                return
            press_token(p.user, "submit")
            receipt = press_token(p.user, "confirm")
            assert "Mã biên nhận" in receipt, receipt
            p.submitted = True
            totals["submissions"] += 1

        # -- invariants ---------------------------------------------------------------------

        @invariant()
        def acknowledged_answers_are_stored(self) -> None:
            """Every acknowledged answer is in the draft (or the submission); never two submissions."""
            for p in self.people:
                answers, subs = db_state(engine, p.village_id)
                assert len(subs) <= 1, f"{p.village}: {len(subs)} submissions"
                if p.submitted:
                    assert len(subs) == 1 and answers is None, (p.village, subs, answers)
                    stored = subs[0].answers
                else:
                    assert not subs, f"{p.village}: a submission nobody sent"
                    stored = answers or {}
                missing = {k: v for k, v in p.acknowledged.items() if stored.get(k) != v}
                assert not missing, f"{p.village}: acknowledged {missing} but stored {stored}"

        def teardown(self) -> None:
            """Count this example's figures."""
            for p in self.people:
                answers, subs = db_state(engine, p.village_id)
                stored = subs[0].answers if subs else (answers or {})
                found = sum(stored.get(k) == v for k, v in p.acknowledged.items())
                totals["answers"] += len(p.acknowledged)
                totals["found"] += found
                figures.answers(len(p.acknowledged), found, f"crash/restart: {p.village}")
                figures.duplicate(max(len(subs) - 1, 0), f"crash/restart: submissions of {p.village}")
                if p.submitted and not subs:
                    figures.losses += 1
                    figures.problems.append(f"crash/restart: the submission of {p.village} is gone")

    try:
        run_state_machine_as_test(
            CrashMachine,
            settings=settings(
                max_examples=MAX_EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=True,
                database=None,
                phases=(Phase.explicit, Phase.generate),
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        figures.updates += emulator.counters["updates"]
        figures.check("answers typed just before a SIGKILL", totals["mid_answer"])
        engine.dispose()
        print(f"crash/restart: {totals}; bot starts {bot.starts}")
    assert totals["kills"] > totals["mid_answer"] > 0, f"too little was explored: {totals}"
    assert totals["submissions"] > 0, f"no report was sent: {totals}"
    assert totals["answers"] == totals["found"]
