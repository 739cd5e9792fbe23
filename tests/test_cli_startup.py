"""What `baocao periods` and `baocao remind --dry-run` were made cheaper with (issue 18, gate 2) still answers
as before, and their texts name units and heads by kind: `unit_counts` (one query) against the planner's own
input, the dry run in a commune of tổ dân phố and of cơ quan, and the help texts."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.cli import build_parser, main
from bot.services import reports
from bot.services.accounts import TelegramUser, create_invite, redeem_invite
from bot.services.addressees import addressees_by_series
from bot.services.reminders import load_inputs, periods_overview, unit_counts
from storage.db import session_scope
from storage.models import Commune, Period, PeriodUnit, Person, Submission, Village
from tests.support.world import apply_setup_file, local, sign_up_commune
from tests.test_unit_wording import setup_data

MORE_HEADS = ["Thôn Khuổi Ổ", "Thôn Pác Cáp", "Thôn Nà Pài", "Thôn Pù Cà", "Thôn Bản Chang"]


def _submit(
    s, village_id: int, period_id: int, *, on_time: bool, current: bool = True, version: int = 1
) -> None:
    s.add(
        Submission(
            village_id=village_id,
            form_id="bao-cao-6-thang",
            period_id=period_id,
            form_version=1,
            version_no=version,
            is_current=current,
            answers={},
            sent_at=local(5, 16),
            received_at=local(5, 16),
            on_time=on_time,
            receipt=f"BC-{village_id:03d}{version:03d}",
        )
    )


def _counts_from_the_planner_input(s, period_ids: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """What `periods_overview` counted before `unit_counts`: the planner's input, village by village."""
    scope = select(Period.id).where(Period.id.in_(period_ids))  # type: ignore[attr-defined]
    out = {}
    for data in load_inputs(s, scope):
        v = data.villages
        out[data.period_id] = (
            len(v),
            sum(x.submitted_at is not None for x in v),
            sum(x.submitted_at is not None and x.on_time is False for x in v),
            sum(x.submitted_at is None and x.has_draft for x in v),
        )
    return out


def test_unit_counts_agree_with_the_planner_input(engine) -> None:
    world = sign_up_commune(engine)
    with session_scope(engine) as s:
        villages = {
            v.name: v.id for v in s.exec(select(Village).where(Village.commune_id == world.commune_id))
        }
        main_period = s.get(Period, world.period_id)
        assert main_period is not None
        _submit(s, world.ban_duom, world.period_id, on_time=True)
        _submit(s, villages["Thôn Khuổi Ổ"], world.period_id, on_time=False)
        _submit(s, villages["Thôn Pác Cáp"], world.period_id, on_time=True, current=False)  # amended away
        _submit(s, villages["Thôn Pác Cáp"], world.period_id, on_time=False, version=2)
        _submit(s, villages["Thôn Nà Pài"], world.period_id, on_time=True, current=False)  # none current
        reports.begin_periodic(
            s, s.get(Person, world.an), s.get(Village, world.na_lang), world.period_id, local(5, 16)
        )
        reports.begin_periodic(  # a draft beside a submission (amending) counts as submitted
            s, s.get(Person, world.dung), s.get(Village, world.ban_duom), world.period_id, local(5, 16)
        )
        inactive = s.get(Village, villages["Thôn Pù Cà"])
        assert inactive is not None
        inactive.active = False
        s.add(inactive)

        def period(code: str, **extra) -> int:
            row = Period(
                commune_id=world.commune_id,
                form_id="bao-cao-6-thang",
                code=code,
                label=code,
                opens_at=main_period.opens_at,
                due_at=main_period.due_at,
                closes_at=main_period.closes_at + timedelta(days=1),
                created_at=local(5, 1),
                updated_at=local(5, 1),
                **extra,
            )
            s.add(row)
            s.flush()
            assert row.id is not None
            return row.id

        limited = period("YC-1")
        for name in ("Thôn Nà Làng", "Thôn Khuổi Ổ", "Thôn Pù Cà"):
            s.add(PeriodUnit(period_id=limited, village_id=villages[name]))
        _submit(s, villages["Thôn Khuổi Ổ"], limited, on_time=True)
        _submit(s, villages["Thôn Bản Chang"], limited, on_time=True)  # not one of its units
        police = period("CA-1", reporter="police")
        empty = period("YC-2")
        ids = [world.period_id, limited, police, empty]
        s.flush()
        expected = _counts_from_the_planner_input(s, ids)
        counted = unit_counts(s, ids)
    assert expected[world.period_id] == (13, 3, 2, 1)  # 14 units, one inactive; Nà Làng's draft
    assert expected[limited] == (2, 1, 0, 0) and expected[police] == (0, 0, 0, 0)
    assert {k: counted.get(k, (0, 0, 0, 0)) for k in ids} == expected
    assert unit_counts(s, []) == {}


def test_the_overview_of_several_communes_in_a_few_statements(engine) -> None:
    world = sign_up_commune(engine)
    other = setup_data("to_dan_pho")
    commune = other["communes"][0]
    commune.update(code="son-duong", name="Xã Sơn Dương")
    for chat in commune.get("police_chats") or []:
        chat["chat_id"] = -1009999999999
    with session_scope(engine) as s:
        apply_setup_file(s, other, now=local(4, 20))
        expected = {c.code: addressees_by_series(s, c.id, "bao-cao-6-thang") for c in s.exec(select(Commune))}
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    with session_scope(engine) as s:
        overview = periods_overview(s, local(5, 17, 8))
    event.remove(engine, "before_cursor_execute", count)
    assert [c.code for c, _ in overview] == ["hiep-luc", "son-duong"]
    for _commune, lines in overview:
        opened = [line for line in lines if line.is_open]
        assert [(line.period.code, line.total, line.not_started) for line in opened] == [("2026-6T", 14, 14)]
        assert opened[0].addressee == expected[_commune.code].get("{nam}-6T", "")
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 5
    assert world.commune_id == overview[0][0].id


@pytest.mark.parametrize(
    ("kind", "head", "units"),
    [("to_dan_pho", "tổ trưởng", "tổ dân phố"), ("co_quan", "thủ trưởng cơ quan", "cơ quan")],
)
def test_the_dry_run_names_heads_and_units_by_kind(
    engine, database_url, monkeypatch, tmp_path, capsys, kind: str, head: str, units: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "BAOCAO_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    sign_up_commune(engine, setup_data(kind))  # type: ignore[arg-type]
    with session_scope(engine) as s:
        for n, village in enumerate(MORE_HEADS):
            code = create_invite(s, role="village_head", now=local(4, 20), actor="t", village=village).code
            redeem_invite(s, code, TelegramUser(3000 + n, 3000 + n, f"Người {n}"), now=local(4, 20))
    assert main(["remind", "--dry-run", "--at", "2026-05-19 08:00", "--days", "2"]) == 0
    out = capsys.readouterr().out
    assert f"→ Hoàng Văn An ({head}, Thôn Nà Làng) — chưa bắt đầu" in out
    assert "→ Nông Thị Bình (phó, Thôn Nà Làng)" in out
    assert f" và 2 {units} khác) — 2026-6T" in out
    assert "trưởng thôn" not in out and " thôn khác" not in out


def _helps() -> list[str]:
    """`baocao --help` and every sub-command's (and sub-sub-command's) help text."""
    parser = build_parser()
    out = [parser.format_help()]
    stack = [parser]
    while stack:
        for action in stack.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    out.append(sub.format_help())
                    stack.append(sub)
            if getattr(action, "help", None):
                out.append(str(action.help))
    return out


def test_the_help_texts_name_units_and_heads_neutrally() -> None:
    helps = re.sub(r"\s+", " ", "\n".join(_helps()))  # argparse wraps long lines
    assert "đơn vị" in helps and "người đứng đầu đơn vị" in helps
    bare = re.sub(r"Báo cáo thôn|Thôn A|\(thôn, tổ dân phố[^)]*\)|thôn, tổ dân phố", "", helps)
    assert not re.search(r"(?i)\bthôn\b", bare), re.findall(r"(?i).{40}\bthôn\b.{40}", bare)


def test_the_unit_words_read_with_libyaml_are_pure_python_yaml_s(monkeypatch) -> None:
    """`unit_table` reads templates/common/units.yaml with libyaml's safe loader when PyYAML has it (a
    twentieth of the time, on every command that names units): the same words as PyYAML's own safe loader."""
    import yaml

    from bot.texts import units

    units.unit_table.cache_clear()
    try:
        fast = units.unit_table()
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
        units.unit_table.cache_clear()
        assert units.unit_table() == fast
        assert fast.kinds["to_dan_pho"] == units.UnitWords("tổ dân phố", "tổ dân phố", "tổ trưởng")
    finally:
        units.unit_table.cache_clear()
