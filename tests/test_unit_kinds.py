"""Reporting units of every kind in the setup file: thôn, tổ dân phố, khu dân cư, cơ quan, trường học,
doanh nghiệp, phòng/ban — read, suggested when mistyped, refused with every choice listed, stored and changed."""

from __future__ import annotations

import textwrap

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.clock import FixedClock
from bot.services.setup import apply_setup
from bot.setup_file import SetupResult, loads_setup
from storage.db import session_scope
from storage.models import Village, VillageKind


def read(kind: object) -> SetupResult:
    """Check a one-commune file whose only unit has `kind` (as YAML would give it)."""
    text = textwrap.dedent(
        f"""\
        version: 1
        communes:
          - code: a
            name: Xã A
            villages:
              - name: Đơn vị 1
                kind: {kind}
        """
    )
    return loads_setup(text, "xa.yaml")


def kind_of(result: SetupResult) -> VillageKind:
    """The kind read for the single unit of a valid file."""
    assert result.errors == (), [str(e) for e in result.errors]
    assert result.setup is not None
    return result.setup.communes[0].villages[0].kind


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("thon", VillageKind.THON),
        ("to_dan_pho", VillageKind.TO_DAN_PHO),
        ("khu_dan_cu", VillageKind.KHU_DAN_CU),
        ("co_quan", VillageKind.CO_QUAN),
        ("truong_hoc", VillageKind.TRUONG_HOC),
        ("doanh_nghiep", VillageKind.DOANH_NGHIEP),
        ("phong_ban", VillageKind.PHONG_BAN),
        # the label as a person writes it, accents or not, any case
        ("Khu dân cư", VillageKind.KHU_DAN_CU),
        ("Cơ quan", VillageKind.CO_QUAN),
        ("trường học", VillageKind.TRUONG_HOC),
        ("DOANH NGHIỆP", VillageKind.DOANH_NGHIEP),
        ('"phòng, ban, đơn vị"', VillageKind.PHONG_BAN),
        # everyday words of the plans
        ("khối", VillageKind.TO_DAN_PHO),
        ("khu phố", VillageKind.TO_DAN_PHO),
        ("cơ sở giáo dục", VillageKind.TRUONG_HOC),
        ("trường", VillageKind.TRUONG_HOC),
        ("trung tâm", VillageKind.PHONG_BAN),
        ("phòng ban", VillageKind.PHONG_BAN),
    ],
)
def test_every_kind_is_read(written: str, expected: VillageKind) -> None:
    assert kind_of(read(written)) == expected


def test_the_stored_values_fit_the_column() -> None:
    # village.kind is a 20-character string (migration 0001): no migration for new kinds as long as this holds
    assert len(VillageKind) == 7
    assert all(len(k.value) <= 20 for k in VillageKind)


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        ("khu_dan", "khu_dan_cu"),
        ("co_quang", "co_quan"),
        ("truong_hc", "truong_hoc"),
        ("doanh_ngiep", "doanh_nghiep"),
        ("phong_ba", "phong_ban"),
        ("phong", "phong_ban"),
        ("pho", "to_dan_pho"),  # the suggestion is the value to write, not the alias that was close
    ],
)
def test_a_mistyped_kind_gets_the_value_to_write(written: str, suggested: str) -> None:
    result = read(written)
    assert result.setup is None
    (error,) = result.errors
    assert error.where == "communes[0] (a) › villages[0] › kind"
    assert error.reason == f"loại lạ '{written}' — có phải '{suggested}'?"
    assert error.line == 7


@pytest.mark.parametrize("written", ["can_bo", "hộ gia đình", "xyz"])
def test_an_unknown_kind_lists_every_choice(written: str) -> None:
    result = read(f'"{written}"')
    (error,) = result.errors
    assert error.reason.startswith(f"loại lạ '{written}' — chỉ nhận một trong: ")
    for value in (
        "thon",
        "to_dan_pho",
        "khu_dan_cu",
        "co_quan",
        "truong_hoc",
        "doanh_nghiep",
        "phong_ban",
    ):
        assert f"'{value}'" in error.reason


@pytest.mark.parametrize("written", ["7", "[co_quan]", "{a: b}", "true"])
def test_a_kind_that_is_not_text_is_refused_with_the_choices(written: str) -> None:
    result = read(written)
    assert result.setup is None
    (error,) = result.errors
    assert error.reason.startswith("loại phải là một trong: 'thon' (")
    assert "'phong_ban'" in error.reason and "đang là" in error.reason


def test_units_of_every_kind_are_stored_and_a_kind_change_updates_in_place(
    engine: Engine, clock: FixedClock
) -> None:
    text = textwrap.dedent(
        """\
        version: 1
        communes:
          - code: hung-dao
            name: Xã Hưng Đạo
            villages:
              - {name: Khu dân cư số 1, kind: khu_dan_cu}
              - {name: Trạm Y tế xã, kind: cơ quan}
              - {name: Trường Tiểu học, kind: truong_hoc}
              - {name: Hợp tác xã, kind: doanh_nghiep}
              - {name: Phòng Tổng hợp, kind: phong_ban}
        """
    )
    with session_scope(engine) as session:
        result = loads_setup(text, "xa.yaml")
        assert result.setup is not None
        report = apply_setup(session, result.setup, now=clock(), actor="cli:test")
    assert any("Trạm Y tế xã (cơ quan)" in line for line in report.changes), report.changes
    with session_scope(engine) as session:
        stored = {v.name: v.kind for v in session.exec(select(Village))}
    assert stored == {
        "Khu dân cư số 1": "khu_dan_cu",
        "Trạm Y tế xã": "co_quan",
        "Trường Tiểu học": "truong_hoc",
        "Hợp tác xã": "doanh_nghiep",
        "Phòng Tổng hợp": "phong_ban",
    }
    changed = text.replace("{name: Hợp tác xã, kind: doanh_nghiep}", "{name: Hợp tác xã, kind: co_quan}")
    with session_scope(engine) as session:
        result = loads_setup(changed, "xa.yaml")
        assert result.setup is not None
        report = apply_setup(session, result.setup, now=clock(), actor="cli:test")
    assert report.villages.updated == 1 and report.villages.created == 0
    assert any("doanh nghiệp" in line and "cơ quan" in line for line in report.changes), report.changes
    with session_scope(engine) as session:
        (row,) = session.exec(select(Village).where(Village.name == "Hợp tác xã"))
        assert row.kind == "co_quan"
