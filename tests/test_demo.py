"""The demo's world, without a terminal: the adapted commune, today's "Kỳ thử" period and its reminder,
digest and summary times (fixed clock), the options refused, and the log file in local time."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.calendar.reminder_rules import NO_QUIET
from bot.cli import main
from bot.config import Settings
from bot.demo import (
    DEMO_GROUP_ID,
    DEMO_USER_ID,
    DemoPlan,
    _prepare,
    default_setup_file,
    demo_commune,
    open_demo_period,
)
from bot.logging_setup import configure_file_logging
from bot.reminders.summary_push import plan_summary_pushes
from bot.services.accounts import TelegramUser, create_invite, redeem_invite
from bot.services.reminders import plan
from bot.setup_file import load_setup
from storage.db import make_engine, session_scope
from storage.models import Outbox, Period, Role

BAOCAO = str(Path(sys.executable).with_name("baocao"))
VN = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # 13:00 in Việt Nam


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a demo data folder (always SQLite, like `baocao demo`)."""
    return Settings(token=None, api_url="", database_url=f"sqlite:///{tmp_path / 'demo.db'}", timezone=VN)


def test_the_demo_commune_alerts_its_group_has_no_quiet_hours_and_reminds_minutes_ahead() -> None:
    spec = load_setup(default_setup_file()).setup.communes[0]  # type: ignore[union-attr]
    demo = demo_commune(spec, deadline_after=3)
    assert [c.chat_id for c in demo.police_chats] == [DEMO_GROUP_ID]  # not the file's placeholder
    assert demo.quiet_hours == NO_QUIET
    main_rules = next(s for s in demo.schedules if s.main).reminders
    assert [b.offset for b in main_rules.before] == [timedelta(minutes=3)] and main_rules.after.times == 0
    others = [s for s in demo.schedules if not s.main]
    assert others and all(s in spec.schedules for s in others)  # the other forms keep their rules
    assert demo.villages == spec.villages


def _sign_up_head(settings: Settings, plan_: DemoPlan, at: datetime) -> None:
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        code = create_invite(
            session, role=Role.VILLAGE_HEAD, now=at, actor="t", village=plan_.village, commune=plan_.commune
        ).code
        redeem_invite(session, code, TelegramUser(DEMO_USER_ID, DEMO_USER_ID, "Trưởng thôn"), now=at)
    engine.dispose()


def _outbox(settings: Settings, now: datetime) -> list[Outbox]:
    """Plan reminders, digests and summary pushes at `now`; every outbox row so far."""
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        plan(session, now)
        plan_summary_pushes(session, now, default_tz="Asia/Ho_Chi_Minh")
    with session_scope(engine) as session:
        rows = list(session.exec(select(Outbox).order_by(Outbox.due_at)))
        for row in rows:
            session.expunge(row)
    engine.dispose()
    return rows


def test_a_newcomer_gets_a_reminder_then_the_police_a_digest_and_a_summary(settings: Settings) -> None:
    demo = _prepare(settings, default_setup_file(), deadline_after=2, now=START)
    assert demo.form == "bao-cao-6-thang" and demo.commune == "hiep-luc" and demo.village == "Thôn Nà Làng"
    _sign_up_head(settings, demo, START)
    now = START + timedelta(seconds=3)
    period = open_demo_period(settings, demo, now=now, reminder_in=45, deadline_after=2)
    assert period is not None
    assert period.due_at == now + timedelta(seconds=45, minutes=2)
    assert period.opens_at.astimezone(VN) == datetime(2026, 12, 7, 0, 0, tzinfo=VN)  # open today
    assert period.label == "Kỳ thử 07/12 (hạn 13:02)"

    assert [r.kind for r in _outbox(settings, now + timedelta(seconds=44))] == []  # nothing early
    at_reminder = _outbox(settings, now + timedelta(seconds=45))
    assert [(r.kind, r.chat_id, r.period_id) for r in at_reminder] == [("reminder", DEMO_USER_ID, period.id)]
    after_due = _outbox(settings, period.due_at + timedelta(minutes=2))
    by_kind = {r.kind: r for r in after_due}
    assert by_kind["digest"].chat_id == DEMO_GROUP_ID and by_kind["digest"].due_at == period.due_at
    assert by_kind["summary"].chat_id == DEMO_GROUP_ID
    assert by_kind["summary"].due_at <= period.due_at + timedelta(minutes=2)


def test_each_run_has_one_fresh_period_and_earlier_ones_are_hidden(settings: Settings) -> None:
    demo = _prepare(settings, default_setup_file(), deadline_after=3, now=START)
    first = open_demo_period(settings, demo, now=START, reminder_in=60, deadline_after=3)
    again = _prepare(settings, default_setup_file(), deadline_after=3, now=START + timedelta(minutes=1))
    second = open_demo_period(
        settings, again, now=START + timedelta(minutes=1), reminder_in=60, deadline_after=3
    )
    assert first is not None and second is not None and first.code != second.code
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        demo_periods = {p.code: p.active for p in session.exec(select(Period)) if p.code.startswith("thu-")}
    engine.dispose()
    assert demo_periods == {first.code: False, second.code: True}


def test_no_period_without_a_schedule(settings: Settings) -> None:
    assert (
        open_demo_period(settings, DemoPlan("x", "y", None), now=START, reminder_in=1, deadline_after=1)
        is None
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reminder-in", "-5"], "--reminder-in: số giây từ 0 đến 86400."),
        (["--reminder-in", "nan"], "--reminder-in: số giây từ 0 đến 86400."),
        (["--deadline-after", "0"], "--deadline-after: số phút từ 1 đến 1440."),
        (["--deadline-after", "2000"], "--deadline-after: số phút từ 1 đến 1440."),
    ],
)
def test_bad_options_are_refused_in_vietnamese_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    data = tmp_path / "d"
    assert main(["demo", "--data-dir", str(data), *args]) == 2
    assert message in capsys.readouterr().err
    assert not data.exists()  # nothing created


def test_an_unreadable_option_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--data-dir", str(tmp_path / "d"), "--deadline-after", "ba"])
    assert stop.value.code == 2 and "--deadline-after" in capsys.readouterr().err


def test_logs_go_to_the_file_in_local_time_not_to_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        handler = configure_file_logging(tmp_path / "x" / "demo.log", VN, secrets=("s3cr3t-token",))
        logging.getLogger("bot.test").warning("hello %s", "s3cr3t-token")
        handler.flush()
        handler.close()
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    line = (tmp_path / "x" / "demo.log").read_text(encoding="utf-8").strip()
    assert line.endswith("WARNING bot.test: hello <ẩn>")  # scrubbed
    stamp = datetime.fromisoformat(line[:29])
    assert stamp.utcoffset() == timedelta(hours=7)
    assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=1)
    captured = capsys.readouterr()
    assert "hello" not in captured.out + captured.err


@pytest.mark.e2e
def test_demo_as_police_starts_in_the_police_chat_and_the_head_is_signed_up_too(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_URL", "BAOCAO_"))}
    done = subprocess.run(
        [BAOCAO, "demo", "--data-dir", str(tmp_path / "d"), "--as", "police"],
        input=":head\n:khong-co\n/thoat\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"\[công an\] Bạn: /start \w+\n🤖 Bot: Đăng ký thành công\. Chào Cán bộ Công an", out)
    assert "(Trưởng thôn (thử) đã gửi “/start " in out and "Thử: /baocao" in out
    switched = out.index("— Bây giờ bạn là Trưởng thôn (thử) trong [trưởng thôn] —")
    assert "Đăng ký thành công. Chào Trưởng thôn (thử)!" in out[switched:]  # kept until the switch
    assert "Không có lệnh :khong-co." in out
    assert done.stderr == ""  # logs went to the file
    assert "reminders: ticking every 1.0s" in (tmp_path / "d" / "demo.log").read_text(encoding="utf-8")
