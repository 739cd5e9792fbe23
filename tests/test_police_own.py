"""Reports the commune police write themselves (`reporter: police`), addressees per schedule (`to:`/`via:`)
and their bad input; the police's own reminders go to the police chats only. Fixed clocks throughout."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.calendar.periods import parse_schedules
from bot.cli import main
from bot.services import reminders
from bot.services.period_units import takes_part
from bot.services.upward import plan_upward_reminders
from storage.db import session_scope
from storage.models import Commune, Outbox, Period, PoliceChat, Village
from tests.support.world import apply_setup_file

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
HIEP_LUC = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "hiep-luc-2026.yaml"


def at(month: int, day: int, hour: int = 8, year: int = 2026) -> datetime:
    """A local wall-clock time in Việt Nam, as aware UTC."""
    return datetime(year, month, day, hour, tzinfo=HCM).astimezone(UTC)


def police_entry(**extra: object) -> list[dict]:
    entry = {
        "form": "bao-cao-nam",
        "reporter": "police",
        "to": "Công an tỉnh",
        "periods": [{"id": "R-1", "label": "Sơ kết", "opens": "01/11/2026", "due": "tháng 11/2026"}],
    }
    entry.update(extra)
    return [entry]


# --- parsing: good and bad input -------------------------------------------------------------------------


def test_a_police_schedule_parses_with_its_addressee() -> None:
    schedules, errors = parse_schedules(police_entry())
    assert errors == []
    assert schedules[0].police_own and schedules[0].to == ("Công an tỉnh",)


@pytest.mark.parametrize("value", ["Công an xã", "cong an", "POLICE"])
def test_vietnamese_spellings_of_the_police(value: str) -> None:
    schedules, errors = parse_schedules(police_entry(reporter=value))
    assert errors == [] and schedules[0].police_own


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"reporter": "ubnd"}, "schedules[0].reporter: 'ubnd' không dùng được"),
        ({"reporter": 3}, "schedules[0].reporter: '3' không dùng được"),
        ({"to": ""}, "schedules[0].to: nơi nhận phải là chữ, không để trống"),
        ({"to": []}, "schedules[0].to: ghi một nơi nhận"),
        ({"to": "x" * 101}, "schedules[0].to: nơi nhận dài 101 ký tự — tối đa 100"),
        ({"to": "UBND\x07 xã"}, "schedules[0].to: nơi nhận 'UBND? xã' có ký tự điều khiển"),
        ({"to": ["UBND xã", "BCĐ\nxã"]}, "schedules[0].to[1]: nơi nhận 'BCĐ?xã' có ký tự điều khiển"),
        ({"to": ["a"] * 9}, "schedules[0].to: tối đa 8 nơi nhận"),
        ({"via": "Công an xã"}, "schedules[0]: 'via' chỉ dùng khi các đơn vị báo cáo"),
    ],
)
def test_bad_reporter_or_addressee_is_one_line_each(extra: dict, expected: str) -> None:
    _, errors = parse_schedules(police_entry(**extra))
    assert any(e.startswith(expected) for e in errors), errors
    assert all("\n" not in e and "\x07" not in e for e in errors)


def test_a_police_report_has_one_deadline() -> None:
    entry = police_entry()
    entry[0]["periods"] = [
        {
            "id": "R-1",
            "label": "Sơ kết",
            "opens": "01/11/2026",
            "units_due": "5d before",
            "upward": {"due": "tháng 11/2026"},
        }
    ]
    _, errors = parse_schedules(entry)
    assert any("chỉ có một hạn" in e for e in errors), errors


def test_via_empty_or_control_characters_is_refused_for_units() -> None:
    entry = police_entry(reporter="units", via="\x00")
    _, errors = parse_schedules(entry)
    assert errors == ["schedules[0].via: nơi nhận '?' có ký tự điều khiển — chỉ ghi chữ trên một dòng"]


# --- the running bot: the police's own reminders, no unit reminders, no digest ------------------------------


@pytest.fixture
def hiep_luc(engine: Engine) -> Engine:
    with session_scope(engine) as s:
        apply_setup_file(s, HIEP_LUC, now=at(2, 15))
    return engine


def _period(s, code: str) -> Period:
    return s.exec(select(Period).where(Period.code == code)).one()


def test_no_village_takes_part_in_a_police_report(hiep_luc: Engine) -> None:
    with session_scope(hiep_luc) as s:
        village = s.exec(select(Village)).first()
        assert village is not None
        assert not takes_part(s, _period(s, "CT09-15N").id, village.id)
        assert takes_part(s, _period(s, "2026-6T").id, village.id)


def test_the_police_are_reminded_of_their_own_report_and_nobody_else(hiep_luc: Engine) -> None:
    # "trước ngày 30/5/2026": 7d falls at 23/5 00:00 → 06:30 after quiet hours
    with session_scope(hiep_luc) as s:
        police = {c.chat_id for c in s.exec(select(PoliceChat))}
        assert plan_upward_reminders(s, at(5, 23, 6)) == 0  # not yet
        assert plan_upward_reminders(s, at(5, 23, 8)) == len(police)
        assert plan_upward_reminders(s, at(5, 23, 9)) == 0  # idempotent
        rows = s.exec(select(Outbox).where(Outbox.period_id == _period(s, "CT09-15N").id)).all()
        assert rows and {r.chat_id for r in rows} == police
        text = str(rows[0].payload.get("steps"))
        assert "Tổng kết 15 năm thực hiện Chỉ thị 09" in text and "Công an tỉnh" in text
        assert "Công an xã tự viết" in text and "đã nộp" not in text
        # the village planner gives the police's report neither a reminder nor a digest ("chưa nộp")
        reminders.plan(s, at(5, 30, 8))
        police_period = _period(s, "CT09-15N").id
        assert not s.exec(
            select(Outbox).where(Outbox.period_id == police_period, Outbox.kind != "notice")
        ).all()
        inputs = reminders.load_inputs(s, select(Period.id).where(Period.id == police_period))
        assert inputs[0].villages == () and inputs[0].police_own


def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> None:
    """`baocao …` run in a test: its own folder and database, no token, the default time zone."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for var in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "BAOCAO_TIMEZONE"):
        monkeypatch.delenv(var, raising=False)


def test_baocao_periods_and_dry_run_show_the_polices_own(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    _cli_env(monkeypatch, tmp_path, database_url)
    assert main(["setup", str(HIEP_LUC)]) == 0
    capsys.readouterr()
    assert main(["periods", "--commune", "hiep-luc", "--at", "2026-05-25 08:00"]) == 0
    out = capsys.readouterr().out
    assert "CT09-15N" in out and "Công an xã tự báo cáo, gửi Công an tỉnh: hạn" in out
    assert "các thôn gửi UBND xã" in out  # the villages' period, with its addressee
    assert main(["remind", "--dry-run", "--commune", "hiep-luc", "--at", "2026-05-23 08:00"]) == 0
    out = capsys.readouterr().out
    assert "CT09-15N, báo cáo Công an xã tự viết, hạn" in out
    assert "Traceback" not in out


def test_village_heads_get_no_reminder_of_the_polices_own_report(engine: Engine, tmp_path: Path) -> None:
    # unauthorised users: the village heads of the commune see nothing of the police's own report
    from tests.support.world import HIEP_LUC as WORLD_FILE
    from tests.support.world import sign_up_commune

    (tmp_path / "forms").symlink_to(WORLD_FILE.parent / "forms")
    own = tmp_path / "hiep-luc.yaml"
    own.write_text(
        WORLD_FILE.read_text(encoding="utf-8")
        + """      - form: bao-cao-6-thang
        reporter: police
        to: Công an tỉnh
        periods:
          - id: CT09-15N
            label: "Tổng kết 15 năm thực hiện Chỉ thị 09"
            opens: "01/05/2026"
            due_before: "30/05/2026"
""",
        encoding="utf-8",
    )
    world = sign_up_commune(engine, own)
    heads = {2001, 2002, 2004}  # An, Bình, Dung (their Telegram ids are their chats)
    with session_scope(engine) as s:
        period = _period(s, "CT09-15N")
        for moment in (at(5, 23, 8), at(5, 27, 8), at(5, 29, 8), at(5, 30, 8)):
            reminders.plan(s, moment)
            plan_upward_reminders(s, moment)
        rows = s.exec(select(Outbox).where(Outbox.period_id == period.id)).all()
        assert rows, "the police are reminded"
        assert not {r.chat_id for r in rows} & heads
        assert not takes_part(s, period.id, world.na_lang)
        commune = s.get(Commune, world.commune_id)
        assert commune is not None
        village_rows = s.exec(select(Outbox).where(Outbox.chat_id.in_(heads))).all()  # type: ignore[attr-defined]
        assert all(r.period_id != period.id for r in village_rows)


# --- "còn N ngày" as a person counts, and the receipt's addressee ------------------------------------------


@pytest.mark.parametrize(
    ("today", "left", "shown"),
    [
        (at(5, 16, 9), 3, "còn 3 ngày"),
        (at(5, 18, 9), 1, "còn 1 ngày — mai là ngày cuối"),  # "trước ngày 20/5": the last day is 19/5
        (at(5, 19, 7), 0, "hôm nay là ngày cuối"),
        (at(5, 19, 23), 0, "hôm nay là ngày cuối"),
    ],
)
def test_days_left_counts_to_the_last_day(today: datetime, left: int, shown: str) -> None:
    from bot.calendar.periods import days_left
    from bot.texts.templates import render

    due = datetime(2026, 5, 20, tzinfo=HCM)  # due_before: "20/05"
    assert days_left(due, today, HCM) == left
    text = render(
        "remind/upward.html",
        police_own=True,
        commune="Xã Hiệp Lực",
        form_title="Báo cáo",
        period="Kỳ",
        to=["Công an tỉnh"],
        due=due,
        days_left=left,
        submitted=0,
        total=0,
    )
    assert f"({shown})" in text


def test_the_receipt_names_the_addressee_and_escapes_it() -> None:
    from bot.texts.templates import render

    sent = datetime(2026, 5, 18, 9, tzinfo=HCM)
    common = dict(
        form_title="Báo cáo 6 tháng",
        period="6 tháng đầu năm 2026",
        sent_at=sent,
        on_time=True,
        receipt="AB12",
        version=1,
        can_amend_until=None,
        village="Thôn 1",
    )
    assert "• Gửi: UBND xã (qua Công an xã)\n" in render(
        "report/receipt.html", addressee="UBND xã (qua Công an xã)", **common
    )
    assert "&lt;b&gt;" in render("report/receipt.html", addressee="<b>", **common)
    assert "Gửi:" not in render("report/receipt.html", addressee="", **common)


def test_the_polices_own_report_is_never_the_units_focus_nor_pushed(hiep_luc: Engine) -> None:
    # 25/5: the villages' 2026-6T is past due, the police's CT09-15N (before 30/5) is the only one open; /tonghop,
    # /xuat and /nhacnho still mean the villages' period, and no summary of "0 thôn" is pushed for the police's
    from bot.reminders.summary_push import plan_summary_pushes
    from bot.services.police_focus import focus_period

    with session_scope(hiep_luc) as s:
        commune = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
        focus = focus_period(s, commune.id, at(5, 25))
        assert focus is not None and focus.code == "2026-6T"
        nudged = reminders.nudge_period(s, commune.id, at(5, 25))
        assert nudged is None or nudged.reporter is None
        for day in (30, 31):
            plan_summary_pushes(s, at(5, day, 12))
        police_period = _period(s, "CT09-15N").id
        assert not s.exec(select(Outbox).where(Outbox.period_id == police_period)).all()


def test_upward_addressees_are_checked_the_same_way() -> None:
    entry = police_entry(reporter="units")
    entry[0]["periods"][0]["upward"] = {"due": "tháng 12/2026", "to": ["Công an tỉnh", "\x1b[31m"]}
    _, errors = parse_schedules(entry)
    assert errors == [
        "schedules[0].periods[0].upward.to[1]: nơi nhận '?[31m' có ký tự điều khiển — chỉ ghi chữ trên một dòng"
    ]


# --- in Telegram: the receipt names the addressee; a village head never sees the police's own report -------


def _world_with_addressee_and_police_report(tmp_path: Path) -> Path:
    """deploy/hiep-luc.yaml with `to`/`via` on its semiannual schedule and a police report open in May."""
    from tests.support.world import HIEP_LUC as WORLD_FILE

    (tmp_path / "forms").symlink_to(WORLD_FILE.parent / "forms")
    text = WORLD_FILE.read_text(encoding="utf-8")
    marker = "      - form: bao-cao-6-thang\n"
    assert marker in text
    text = text.replace(marker, marker + "        to: UBND xã\n        via: Công an xã\n", 1)
    text += """      - form: bao-cao-6-thang
        reporter: police
        to: Công an tỉnh
        periods:
          - id: CT09-15N
            label: "Tổng kết 15 năm thực hiện Chỉ thị 09"
            opens: "01/05/2026"
            due_before: "30/05/2026"
"""
    own = tmp_path / "hiep-luc.yaml"
    own.write_text(text, encoding="utf-8")
    return own


async def test_the_receipt_says_to_whom_and_baocao_lists_no_police_report(
    engine: Engine, database_url: str, clock, tmp_path: Path
) -> None:
    from tests.support.client import running_bot
    from tests.support.telegram import FakeUser, RecordingRequest

    an = FakeUser(2001, "An", "Hoàng Văn")
    with session_scope(engine) as s:
        apply_setup_file(s, _world_with_addressee_and_police_report(tmp_path), now=clock())
    invites = [(FakeUser(an.id, "x"), {"role": "village_head", "village": "Thôn Nà Làng", "deputy": False})]
    async with running_bot(engine, database_url, clock, request=RecordingRequest(), invites=invites) as bot:
        await bot.send(an, "/baocao")
        listing = bot.texts(an)[-1]
        assert "6 tháng đầu năm 2026" in listing and "Chỉ thị 09" not in listing
        await bot.submit_report(an)
        receipt = bot.texts(an)[-1]
        assert "Đã gửi báo cáo" in receipt and "Gửi: UBND xã (qua Công an xã)" in receipt
        assert "Chỉ thị 09" not in "\n".join(bot.texts(an))


def test_the_summary_says_to_whom_the_units_report(hiep_luc: Engine) -> None:
    from bot.views.summary import render_summary_messages

    with session_scope(hiep_luc) as s:
        (text, _), *_ = render_summary_messages(s, _period(s, "2026-6T"), None, at(6, 1))
        assert "</b>\nCác thôn gửi: UBND xã\n\n<b>Tình hình nộp" in text  # the schedule's `to:`, its own line
        police_own = render_summary_messages(s, _period(s, "CT09-15N"), None, at(5, 1))
    assert all("gửi: UBND xã" not in t for t, _ in police_own)


def test_baocao_setup_and_periods_name_an_offices_units_by_their_kind(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    _cli_env(monkeypatch, tmp_path, database_url)
    lai_chau = HIEP_LUC.parent / "lai-chau-2026.yaml"
    assert main(["setup", str(lai_chau)]) == 0
    out = capsys.readouterr().out
    assert "Phòng, ban: 6 mới" in out and "gửi báo cáo tổng hợp lên (UBND tỉnh, Công an tỉnh)" in out
    assert "Thôn, tổ dân phố:" not in out and "xã gửi báo cáo lên" not in out
    assert main(["periods", "--at", "2026-05-20 08:00"]) == 0
    out = capsys.readouterr().out
    assert "6 đơn vị: đã nộp 0" in out and "các phòng, ban gửi UBND tỉnh" in out
    assert " thôn" not in out  # a provincial office's departments are not villages
