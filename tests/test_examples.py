"""deploy/examples/: one setup file per seed plan. Each applies cleanly (in a session and through `baocao setup`),
and its periods' deadlines match the plan's, as written below from the deadlines table of the domain notes
(local time, Asia/Ho_Chi_Minh; "trước ngày D" is due by the end of D−1). Multi-year plans are walked with an
injected clock through `extend_periods`, the way the running bot adds the coming periods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.cli import main
from bot.services.periods_ahead import extend_periods
from bot.setup_file import load_setup
from storage.db import session_scope
from storage.models import Commune, CommuneForm, Period, PoliceChat, Village
from tests.support.world import apply_setup_file

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
FILES = (
    "hop-thanh-2024.yaml",
    "son-duong-2026-2030.yaml",
    "hung-dao-2026.yaml",
    "hiep-luc-2026.yaml",
    "lai-chau-2026.yaml",
)
PLACEHOLDER_WARNING = "chat_id -1001234567890 là số mẫu"


def at(year: int, month: int, day: int, hour: int = 8) -> datetime:
    """A local wall-clock time in Việt Nam, as aware UTC."""
    return datetime(year, month, day, hour, tzinfo=HCM).astimezone(UTC)


def before(day: date) -> datetime:
    """ "Trước ngày D": due by the end of D−1, i.e. at D 00:00 local."""
    return datetime.combine(day, time(0, 0), HCM)


def end_of(day: date) -> datetime:
    """A deadline "in" a day or a month: the end of that (last) day, local."""
    return datetime.combine(day, time(23, 59, 59), HCM)


def local(value: datetime | None) -> datetime | None:
    """A stored instant (aware, or naive UTC on some drivers) in local time."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(HCM)


@dataclass(frozen=True)
class Due:
    """One expected period: the units' deadline and, when the plan dates the commune's own report, the upward one."""

    units: datetime
    upward: datetime | None = None
    to: tuple[str, ...] = ()
    police: bool = False  # a report the commune police write themselves (`reporter: police`)


def periods(engine: Engine, code: str) -> dict[str, Due]:
    """Every period of a commune, by code, as local deadlines."""
    with session_scope(engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == code)).one()
        rows = s.exec(select(Period).where(Period.commune_id == commune.id)).all()
        return {
            p.code: Due(
                local(p.due_at), local(p.upward_due_at), tuple(p.upward_to or ()), p.reporter == "police"
            )  # type: ignore[arg-type]
            for p in rows
        }


def opening_years(engine: Engine, code: str) -> set[int]:
    """The local years in which the commune's periods open."""
    with session_scope(engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == code)).one()
        return {local(p.opens_at).year for p in s.exec(select(Period).where(Period.commune_id == commune.id))}  # type: ignore[union-attr]


def setup_at(engine: Engine, name: str, now: datetime) -> None:
    """Apply one example as `baocao setup` would at `now`."""
    with session_scope(engine) as s:
        apply_setup_file(s, EXAMPLES / name, now=now)


def walk(engine: Engine, first: int, last: int) -> None:
    """The running bot, on the 2nd of January of each year from `first` to `last`: adds the coming periods."""
    for year in range(first, last + 1):
        with session_scope(engine) as s:
            extend_periods(s, at(year, 1, 2))


# --- every example: checks cleanly, applies cleanly, twice the same ----------------------------------------


def test_there_is_one_example_per_seed_plan_and_the_forms_link_stays_inside() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(FILES)
    link = EXAMPLES / "forms"
    assert link.is_symlink() and Path(str(link.readlink())) == Path("../forms")
    assert {p.name for p in link.glob("*.yaml")} == {
        "bao-cao-6-thang.yaml",
        "bao-cao-nam.yaml",
        "ho-so-dien-hinh.yaml",
        "su-co.yaml",
    }


@pytest.mark.parametrize("name", FILES)
def test_each_example_checks_with_only_the_placeholder_warning(name: str) -> None:
    result = load_setup(EXAMPLES / name)
    assert result.ok, [str(e) for e in result.errors]
    assert [w.reason.startswith(PLACEHOLDER_WARNING) for w in result.warnings] == [True]
    (commune,) = result.setup.communes  # type: ignore[union-attr]
    assert commune.timezone == "Asia/Ho_Chi_Minh" and commune.province
    assert commune.schedules and len(commune.villages) >= 5
    assert all(path.is_relative_to(EXAMPLES.parent / "forms") for path in commune.forms)


@pytest.mark.parametrize("name", FILES)
def test_each_example_applies_cleanly_and_a_second_run_changes_nothing(engine: Engine, name: str) -> None:
    setup = load_setup(EXAMPLES / name).setup
    assert setup is not None
    (spec,) = setup.communes
    setup_at(engine, name, at(2026, 3, 1))
    with session_scope(engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == spec.code)).one()
        villages = {v.name: v.kind for v in s.exec(select(Village).where(Village.commune_id == commune.id))}
        chats = s.exec(select(PoliceChat).where(PoliceChat.commune_id == commune.id)).all()
        forms = {f.form_id for f in s.exec(select(CommuneForm).where(CommuneForm.commune_id == commune.id))}
        first = {(p.code, p.due_at, p.upward_due_at) for p in s.exec(select(Period))}
    assert villages == {v.name: v.kind.value for v in spec.villages}
    assert [c.chat_id for c in chats] == [-1001234567890]
    assert forms >= {s.form for s in spec.schedules}
    assert first, "every example has periods"
    setup_at(engine, name, at(2026, 3, 1))
    with session_scope(engine) as s:
        assert {(p.code, p.due_at, p.upward_due_at) for p in s.exec(select(Period))} == first


@pytest.mark.parametrize("name", FILES)
def test_baocao_setup_runs_each_example(
    name: str, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for var in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "BAOCAO_TIMEZONE"):
        monkeypatch.delenv(var, raising=False)
    code = main(["setup", str(EXAMPLES / name)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in out + err
    assert PLACEHOLDER_WARNING in out + err
    assert "kỳ " in out  # the periods it created are listed


def test_the_examples_live_side_by_side_in_one_database(engine: Engine) -> None:
    for name in FILES:
        setup_at(engine, name, at(2026, 3, 1))
    with session_scope(engine) as s:
        codes = {c.code for c in s.exec(select(Commune))}
        kinds = {v.kind for v in s.exec(select(Village))}
    assert codes == {"hop-thanh", "son-duong", "hung-dao", "hiep-luc", "vp-ubnd-lai-chau"}
    assert kinds == {"thon", "to_dan_pho", "khu_dan_cu", "co_quan", "truong_hoc", "doanh_nghiep", "phong_ban"}


# --- each plan's deadlines (domain notes, "Deadlines as they appear in real plans") ------------------------


def test_hop_thanh_2024_before_20_5_and_before_20_11(engine: Engine) -> None:
    # Hợp Thành 2024 | thôn, khối → BCĐ 138 xã, qua Công an xã | before 20/5 | before 20/11
    setup_at(engine, "hop-thanh-2024.yaml", at(2024, 3, 15))
    walk(engine, 2025, 2025)
    expected = {}
    for year in (2024, 2025, 2026):
        expected[f"{year}-6T"] = Due(before(date(year, 5, 20)))  # due by the end of 19/5
        expected[f"{year}-CN"] = Due(before(date(year, 11, 20)))  # due by the end of 19/11
    assert periods(engine, "hop-thanh") == expected  # and nothing before the plan's year
    last_day = periods(engine, "hop-thanh")["2024-6T"].units - timedelta(microseconds=1)
    assert last_day.date() == date(2024, 5, 19)  # the last day to report is 19/5


def test_son_duong_2026_2030_every_year_and_nothing_after(engine: Engine) -> None:
    # Sơn Dương 2026–2030 | units incl. thôn → UBND xã, qua Công an xã | before 10/6 | before 10/12 |
    # every year 2026–2030; mid-term review 2026–2028, final review 2030; "điển hình" registration in Q1
    setup_at(engine, "son-duong-2026-2030.yaml", at(2026, 1, 5))
    assert opening_years(engine, "son-duong") == {2026, 2027, 2028, 2030}  # setup: this year, next, one-offs
    walk(engine, 2027, 2033)
    expected = {}
    for year in range(2026, 2031):
        expected[f"{year}-6T"] = Due(before(date(year, 6, 10)))
        expected[f"{year}-CN"] = Due(
            before(date(year, 12, 10)),
            upward=end_of(date(year + 1, 3, 31)),  # registration as "điển hình" in Q1 of the next year
            to=("Công an tỉnh", "UBND tỉnh"),
        )
    expected["SK-2026-2028"] = Due(end_of(date(2028, 9, 30)))  # commune's choice: in 9/2028
    expected["TK-2026-2030"] = Due(end_of(date(2030, 9, 30)))  # commune's choice: in 9/2030
    # registration as "điển hình" in Q1/2026 on 2025's results: the police's own report, no unit files it
    q1 = end_of(date(2026, 3, 31))
    expected["DK-DH-2026"] = Due(q1, upward=q1, to=("Công an tỉnh", "UBND tỉnh"), police=True)
    assert periods(engine, "son-duong") == expected
    assert max(opening_years(engine, "son-duong")) == 2030  # no period in 2031 or later


def test_hung_dao_before_15_10_every_year_with_the_dien_hinh_dossier(engine: Engine) -> None:
    # Hưng Đạo 2026 | khu dân cư, cơ quan, doanh nghiệp, trường → UBND xã, qua Công an xã | – | before 15/10,
    # with a dossier for "điển hình" recognition: the yearly report and the dossier form, the same deadline
    setup_at(engine, "hung-dao-2026.yaml", at(2026, 2, 1))
    walk(engine, 2027, 2028)
    expected = {f"{year}-CN": Due(before(date(year, 10, 15))) for year in range(2026, 2030)}
    expected |= {f"{year}-HS": Due(before(date(year, 10, 15))) for year in range(2026, 2030)}
    assert periods(engine, "hung-dao") == expected  # "hằng năm" from 2026: none in 2025, one a year after
    from bot.services.addressees import period_addressee

    with session_scope(engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == "hung-dao")).one()
        dossiers = s.exec(
            select(Period).where(Period.commune_id == commune.id, Period.form_id == "ho-so-dien-hinh")
        ).all()
        assert sorted(p.code for p in dossiers) == [f"{year}-HS" for year in range(2026, 2030)]
        assert {period_addressee(s, p) for p in dossiers} == {"UBND xã (qua Công an xã)"}
        assert all(p.reporter != "police" for p in dossiers)  # the units send it, not the commune police


def test_hiep_luc_2026_the_police_write_the_dated_reports_themselves(engine: Engine) -> None:
    # Hiệp Lực 2026 | trưởng thôn → UBND xã, no date | commune police report upward: 15-year review of
    # Directive 09 before 30/5/2026; 5-year review of Circular 124 in 11/2026; "điển hình" dossier in Q4/2026
    setup_at(engine, "hiep-luc-2026.yaml", at(2026, 2, 15))
    walk(engine, 2027, 2028)  # a one-year plan: the running bot adds nothing
    to = ("Công an tỉnh",)
    assert periods(engine, "hiep-luc") == {
        "2026-6T": Due(before(date(2026, 5, 23))),  # commune's choice: a week before the 15-year review
        "2026-CN": Due(end_of(date(2026, 11, 20))),  # commune's choice: 10 days before the end of November
        "CT09-15N": Due(before(date(2026, 5, 30)), before(date(2026, 5, 30)), to, police=True),
        "TT124-5N": Due(end_of(date(2026, 11, 30)), end_of(date(2026, 11, 30)), to, police=True),
        "DH-2026": Due(end_of(date(2026, 12, 31)), end_of(date(2026, 12, 31)), to, police=True),
    }


def test_the_units_addressees_are_stored_with_each_schedule(engine: Engine) -> None:
    from bot.services.addressees import period_addressee

    for name in (
        "hop-thanh-2024.yaml",
        "son-duong-2026-2030.yaml",
        "hiep-luc-2026.yaml",
        "lai-chau-2026.yaml",
    ):
        setup_at(engine, name, at(2026, 2, 15))
    with session_scope(engine) as s:
        shown = {
            (p.commune_id, p.code): period_addressee(s, p)
            for p in s.exec(select(Period).where(Period.code.in_(["2026-6T", "2026-CN", "CT09-15N"])))  # type: ignore[attr-defined]
        }
        codes = {c.id: c.code for c in s.exec(select(Commune))}
    by_code = {(codes[cid], code): text for (cid, code), text in shown.items()}
    assert by_code[("hop-thanh", "2026-6T")] == "BCĐ 138 xã (qua Công an xã)"
    assert by_code[("son-duong", "2026-CN")] == "UBND xã (qua Công an xã)"
    assert by_code[("hiep-luc", "2026-6T")] == "UBND xã"
    assert by_code[("hiep-luc", "CT09-15N")] == "Công an tỉnh"
    assert by_code[("vp-ubnd-lai-chau", "2026-6T")] == "UBND tỉnh, Công an tỉnh (qua Văn phòng UBND tỉnh)"


def test_lai_chau_2026_before_30_5_and_before_30_10(engine: Engine) -> None:
    # Lai Châu 2026 (Văn phòng UBND tỉnh) | its departments → UBND tỉnh, Công an tỉnh | before 30/5/2026 |
    # before 30/10/2026 (the office's report, compiled by its administrative department)
    setup_at(engine, "lai-chau-2026.yaml", at(2026, 2, 15))
    walk(engine, 2027, 2027)
    assert periods(engine, "vp-ubnd-lai-chau") == {
        "2026-6T": Due(
            before(date(2026, 5, 25)),  # the office's choice: 5 days before, so it can compile
            upward=before(date(2026, 5, 30)),
            to=("UBND tỉnh", "Công an tỉnh"),
        ),
        "2026-CN": Due(
            before(date(2026, 10, 25)),
            upward=before(date(2026, 10, 30)),
            to=("UBND tỉnh", "Công an tỉnh"),
        ),
    }
    with session_scope(engine) as s:
        kinds = {v.kind for v in s.exec(select(Village))}
    assert kinds == {"phong_ban"}
