"""Form versions in the database, commune forms and periods synced from schedules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from bot.calendar.periods import parse_schedules
from bot.forms.loader import load_form_file
from bot.services.forms import (
    FormStoreError,
    get_form,
    link_commune_forms,
    store_form_files,
    store_forms,
    sync_periods,
)
from storage.models import Commune, CommuneForm, FormVersion, Period

ROOT = Path(__file__).resolve().parent.parent
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
FORM_V1 = """
id: ngay-hoi
title: Ngày hội
version: 1
kind: periodic
questions:
  - {id: da_to_chuc, type: yes_no, label: "Đã tổ chức chưa?"}
  - {id: so_nguoi, type: integer, label: "Bao nhiêu người?", min: 0, relevant: da_to_chuc == true}
"""


def write(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_versions_are_kept_and_changes_need_a_new_version(session, clock, tmp_path) -> None:
    assert store_form_files(session, [write(tmp_path, FORM_V1)], now=clock(), actor="t")
    assert store_form_files(session, [write(tmp_path, FORM_V1)], now=clock(), actor="t") == []  # unchanged
    changed = FORM_V1.replace('"Bao nhiêu người?"', '"Có bao nhiêu người tham gia?"')
    with pytest.raises(FormStoreError, match="chưa tăng 'version'"):
        store_form_files(session, [write(tmp_path, changed)], now=clock(), actor="t")
    store_form_files(
        session, [write(tmp_path, changed.replace("version: 1", "version: 2"))], now=clock(), actor="t"
    )
    assert get_form(session, "ngay-hoi", 1).question("so_nguoi").label == "Bao nhiêu người?"
    assert get_form(session, "ngay-hoi").version == 2
    assert get_form(session, "ngay-hoi", 2).question("so_nguoi").label == "Có bao nhiêu người tham gia?"
    assert len(session.exec(select(FormVersion)).all()) == 2


def test_invalid_form_files_store_nothing(session, clock, tmp_path) -> None:
    bad = write(tmp_path, FORM_V1.replace("type: integer", "type: intger"))
    with pytest.raises(FormStoreError) as info:
        store_form_files(session, [bad], now=clock(), actor="t")
    assert any("intger" in r for r in info.value.reasons)
    assert session.exec(select(FormVersion)).all() == []


def test_shipped_forms_round_trip_through_the_database(session, clock) -> None:
    paths = sorted((ROOT / "deploy" / "forms").glob("*.yaml"))
    store_form_files(session, paths, now=clock(), actor="t")
    for path in paths:
        original = load_form_file(path).forms[0]
        stored = get_form(session, original.id, original.version)
        assert [q.id for q in stored.questions] == [q.id for q in original.questions]
        assert stored.checks == original.checks


def _commune(session, now) -> Commune:
    commune = Commune(code="c", name="Xã C", created_at=now, updated_at=now)
    session.add(commune)
    session.flush()
    return commune


def test_commune_forms_are_linked_in_order_and_unlinked_not_deleted(session, clock) -> None:
    commune = _commune(session, clock())
    link_commune_forms(session, commune, ["a", "b"], now=clock(), actor="t")
    link_commune_forms(session, commune, ["b"], now=clock(), actor="t")
    rows = {r.form_id: r for r in session.exec(select(CommuneForm))}
    assert rows["a"].active is False and rows["b"].active is True and rows["b"].position == 0


def test_periods_are_created_updated_and_hidden(session, clock) -> None:
    commune = _commune(session, clock())
    rules = [
        {
            "form": "f",
            "periods": [{"id": "{nam}-6T", "label": "6T {nam}", "opens": "01/04", "due_before": "20/05"}],
        }
    ]
    schedules, errors = parse_schedules(rules)
    assert errors == []
    lines = sync_periods(session, commune, schedules, now=clock(), tz=HCM, actor="t")
    codes = sorted(p.code for p in session.exec(select(Period)))
    assert codes == ["2025-6T", "2026-6T", "2027-6T"] and len(lines) == 3
    assert "hết ngày 19/05/2026" in "\n".join(lines)
    assert sync_periods(session, commune, schedules, now=clock(), tz=HCM, actor="t") == []
    rules[0]["periods"][0]["due_before"] = "10/06"
    schedules, _ = parse_schedules(rules)
    sync_periods(session, commune, schedules, now=clock(), tz=HCM, actor="t")
    p2026 = session.exec(select(Period).where(Period.code == "2026-6T")).one()
    assert p2026.due_at == datetime(2026, 6, 10, 0, 0, tzinfo=HCM)
    sync_periods(session, commune, (), now=clock(), tz=HCM, actor="t")
    assert all(not p.active for p in session.exec(select(Period)) if p.due_at > clock())


def test_store_forms_refuses_duplicates_listing_all(session, clock, tmp_path) -> None:
    form = load_form_file(write(tmp_path, FORM_V1)).forms[0]
    store_forms(session, [form], now=clock(), actor="t")
    other = load_form_file(write(tmp_path, FORM_V1.replace("Ngày hội", "Ngày hội 2"), "g.yaml")).forms[0]
    with pytest.raises(FormStoreError) as info:
        store_forms(session, [other], now=clock(), actor="t")
    assert len(info.value.reasons) == 1


def test_fixed_clock_is_utc(clock) -> None:
    assert clock().tzinfo is UTC
