"""Applying a setup file: idempotent, updates in place, deactivates instead of deleting, audits every change."""

from __future__ import annotations

import itertools
import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from bot.clock import FixedClock
from bot.services.setup import SetupReport, apply_setup
from bot.setup_file import SetupFile, loads_setup, name_key, normalize_name, parse_setup
from storage import audit
from storage.db import session_scope
from storage.models import AuditLog, Commune, Invite, Membership, Person, PoliceChat, Role, Village

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ACTOR = "cli:test"
_codes = itertools.count()

BASE = textwrap.dedent(
    """\
    version: 1
    communes:
      - code: hiep-luc
        name: Xã Hiệp Lực
        province: Thái Nguyên
        police_chats:
          - chat_id: -1009876543210
            title: Công an xã Hiệp Lực
        villages:
          - Thôn Đại Sơn
          - Thôn Nà Làng
          - name: Tổ dân phố 1
            kind: to_dan_pho
"""
)


def parsed(text: str) -> SetupFile:
    """A valid setup file from inline YAML."""
    result = loads_setup(textwrap.dedent(text), "xa.yaml")
    assert result.errors == (), [str(e) for e in result.errors]
    assert result.setup is not None
    return result.setup


def apply(engine: Engine, text: str, clock: FixedClock) -> SetupReport:
    """Apply inline YAML in a transaction of its own, as the CLI does."""
    with session_scope(engine) as session:
        return apply_setup(session, parsed(text), now=clock(), actor=ACTOR)


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, in primary-key order."""
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            query = sa_select(table).order_by(*table.primary_key.columns)
            out[table.name] = [dict(row) for row in conn.execute(query).mappings()]
    return out


def villages(engine: Engine) -> dict[str, Village]:
    """Villages by name."""
    with session_scope(engine) as s:
        return {v.name: v for v in s.exec(select(Village))}


def actions(engine: Engine) -> list[str]:
    """Audit actions in order."""
    with session_scope(engine) as s:
        return [row.action for row in audit.entries(s)]


def audit_rows(engine: Engine, action: str) -> list[AuditLog]:
    """Audit rows of one action."""
    with session_scope(engine) as s:
        return audit.entries(s, action=action)


def test_first_apply_creates_everything(engine: Engine, clock: FixedClock) -> None:
    report = apply(engine, BASE, clock)
    assert (report.communes.created, report.villages.created, report.police_chats.created) == (1, 3, 1)
    assert report.changes == [
        "Thêm Xã Hiệp Lực (mã hiep-luc, tỉnh Thái Nguyên)",
        "Xã Hiệp Lực: thêm Thôn Đại Sơn",
        "Xã Hiệp Lực: thêm Thôn Nà Làng",
        "Xã Hiệp Lực: thêm Tổ dân phố 1 (tổ dân phố)",
        "Xã Hiệp Lực: thêm nơi nhận cảnh báo Công an xã Hiệp Lực (-1009876543210)",
    ]
    with session_scope(engine) as s:
        commune = s.exec(select(Commune)).one()
        assert (commune.code, commune.name, commune.province, commune.timezone, commune.active) == (
            "hiep-luc",
            "Xã Hiệp Lực",
            "Thái Nguyên",
            None,
            True,
        )
        assert commune.created_at == commune.updated_at == clock()
        rows = s.exec(select(Village).order_by(Village.id)).all()
        assert [(v.name, v.kind, v.active, v.commune_id) for v in rows] == [
            ("Thôn Đại Sơn", "thon", True, commune.id),
            ("Thôn Nà Làng", "thon", True, commune.id),
            ("Tổ dân phố 1", "to_dan_pho", True, commune.id),
        ]
        chat = s.exec(select(PoliceChat)).one()
        assert (chat.chat_id, chat.title, chat.active) == (-1009876543210, "Công an xã Hiệp Lực", True)
        log = audit.entries(s)
        assert [r.action for r in log] == [
            "setup.commune.create",
            "setup.village.create",
            "setup.village.create",
            "setup.village.create",
            "setup.police_chat.create",
        ]
        assert all(r.actor == ACTOR and r.at == clock() for r in log)
        assert log[0].detail == {
            "code": "hiep-luc",
            "after": {"name": "Xã Hiệp Lực", "province": "Thái Nguyên", "timezone": None},
        }
        assert log[3].entity == "village" and log[3].entity_id == str(rows[2].id)
        assert log[3].detail == {
            "commune": "hiep-luc",
            "after": {"name": "Tổ dân phố 1", "kind": "to_dan_pho"},
        }


def test_applying_twice_changes_nothing(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    before = dump(engine)
    clock.advance(days=1)
    report = apply(engine, BASE, clock)
    assert dump(engine) == before
    assert not report.changed
    assert report.changes == [] and report.notices == []
    assert (report.communes.unchanged, report.villages.unchanged, report.police_chats.unchanged) == (1, 3, 1)
    assert report.lines() == [
        "Không có gì thay đổi.",
        "Xã: 1 không đổi",
        "Thôn, tổ dân phố: 3 không đổi",
        "Nơi nhận cảnh báo: 1 không đổi",
    ]


def test_changes_update_in_place_and_are_audited(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    ids = {name: v.id for name, v in villages(engine).items()}
    clock.advance(days=2)
    report = apply(
        engine,
        BASE.replace("name: Xã Hiệp Lực", "name: Xã Hiệp Lực (mới)")
        .replace("province: Thái Nguyên", "province: Bắc Kạn\n    timezone: Asia/Ho_Chi_Minh")
        .replace("kind: to_dan_pho", "kind: thon")
        .replace("title: Công an xã Hiệp Lực", "title: Nhóm Công an xã"),
        clock,
    )
    assert (report.communes.updated, report.villages.updated, report.police_chats.updated) == (1, 1, 1)
    assert report.villages.unchanged == 2
    assert report.changes == [
        "Xã Hiệp Lực (mới) (mã hiep-luc): tên 'Xã Hiệp Lực' → 'Xã Hiệp Lực (mới)'; "
        "tỉnh 'Thái Nguyên' → 'Bắc Kạn'; múi giờ (trống) → 'Asia/Ho_Chi_Minh'",
        "Xã Hiệp Lực (mới): Tổ dân phố 1 đổi loại tổ dân phố → thôn",
        "Xã Hiệp Lực (mới): nơi nhận cảnh báo -1009876543210: tên nhóm 'Công an xã Hiệp Lực' → 'Nhóm Công an xã'",
    ]
    with session_scope(engine) as s:
        commune = s.exec(select(Commune)).one()
        assert (commune.name, commune.province, commune.timezone) == (
            "Xã Hiệp Lực (mới)",
            "Bắc Kạn",
            "Asia/Ho_Chi_Minh",
        )
        assert commune.updated_at == clock() and commune.created_at == clock() - timedelta(days=2)
        village = s.get(Village, ids["Tổ dân phố 1"])
        assert village is not None and village.kind == "thon" and village.updated_at == clock()
        untouched = s.get(Village, ids["Thôn Đại Sơn"])
        assert untouched is not None and untouched.updated_at == clock() - timedelta(days=2)
        assert s.exec(select(PoliceChat)).one().title == "Nhóm Công an xã"
    (commune_update,) = audit_rows(engine, "setup.commune.update")
    assert commune_update.detail == {
        "code": "hiep-luc",
        "before": {"name": "Xã Hiệp Lực", "province": "Thái Nguyên", "timezone": None},
        "after": {"name": "Xã Hiệp Lực (mới)", "province": "Bắc Kạn", "timezone": "Asia/Ho_Chi_Minh"},
    }
    (village_update,) = audit_rows(engine, "setup.village.update")
    assert village_update.entity_id == str(ids["Tổ dân phố 1"])
    assert village_update.detail == {
        "commune": "hiep-luc",
        "before": {"kind": "to_dan_pho"},
        "after": {"kind": "thon"},
    }
    (chat_update,) = audit_rows(engine, "setup.police_chat.update")
    assert chat_update.detail == {
        "commune": "hiep-luc",
        "chat_id": -1009876543210,
        "before": {"title": "Công an xã Hiệp Lực"},
        "after": {"title": "Nhóm Công an xã"},
    }


def test_removing_a_province_clears_it(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    report = apply(engine, BASE.replace("    province: Thái Nguyên\n", ""), clock)
    assert report.changes == ["Xã Hiệp Lực (mã hiep-luc): tỉnh 'Thái Nguyên' → (trống)"]
    with session_scope(engine) as s:
        assert s.exec(select(Commune)).one().province is None


def _village_head(engine: Engine, village_name: str, now: datetime) -> tuple[int, int]:
    """Give a village a head and an open invite; return (membership id, invite id)."""
    with session_scope(engine) as s:
        village = s.exec(select(Village).where(Village.name == village_name)).one()
        person = Person(telegram_user_id=555, full_name="Nông Văn Khánh", created_at=now, updated_at=now)
        s.add(person)
        s.flush()
        membership = Membership(
            person_id=person.id,
            role=Role.VILLAGE_HEAD,
            commune_id=village.commune_id,
            village_id=village.id,
            created_at=now,
        )
        invite = Invite(
            code_hash="h" * 64,
            code_hint="AB12",
            role=Role.VILLAGE_HEAD,
            commune_id=village.commune_id,
            village_id=village.id,
            is_deputy=True,
            created_at=now,
            expires_at=now + timedelta(days=7),
        )
        s.add_all([membership, invite])
        s.flush()
        assert membership.id is not None and invite.id is not None
        return membership.id, invite.id


def test_removed_village_is_deactivated_and_its_rows_kept(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    membership_id, invite_id = _village_head(engine, "Thôn Nà Làng", clock())
    nà_làng = villages(engine)["Thôn Nà Làng"]
    clock.advance(days=1)
    report = apply(engine, BASE.replace("      - Thôn Nà Làng\n", ""), clock)
    assert report.villages.deactivated == 1 and report.villages.unchanged == 2
    assert report.changes == [
        "Xã Hiệp Lực: ngừng Thôn Nà Làng (không còn trong tệp; báo cáo và lịch sử vẫn giữ)"
    ]
    assert report.notices == [
        "Xã Hiệp Lực: Thôn Nà Làng đã ngừng nhưng còn 1 người gắn với thôn và 1 mã mời chưa dùng — "
        "họ sẽ không dùng được thôn này; hãy chuyển người sang thôn khác hoặc kết thúc vai trò, thu hồi mã mời"
    ]
    with session_scope(engine) as s:
        village = s.get(Village, nà_làng.id)
        assert village is not None and not village.active and village.updated_at == clock()
        membership = s.get(Membership, membership_id)
        assert membership is not None and membership.ended_at is None  # kept; the sign-in check refuses it
        assert s.get(Invite, invite_id) is not None
    (row,) = audit_rows(engine, "setup.village.deactivate")
    assert row.entity_id == str(nà_làng.id)
    assert row.detail == {
        "commune": "hiep-luc",
        "name": "Thôn Nà Làng",
        "before": {"active": True},
        "after": {"active": False},
    }
    # Applying the shorter file again does nothing more.
    before = dump(engine)
    again = apply(engine, BASE.replace("      - Thôn Nà Làng\n", ""), clock)
    assert not again.changed and again.notices == [] and dump(engine) == before


def test_village_put_back_is_reactivated(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    original = villages(engine)["Thôn Nà Làng"]
    apply(engine, BASE.replace("      - Thôn Nà Làng\n", ""), clock)
    clock.advance(hours=3)
    report = apply(engine, BASE.replace("Thôn Nà Làng", "thôn  nà làng"), clock)
    assert report.villages.reactivated == 1
    assert report.changes == [
        "Xã Hiệp Lực: mở lại thôn nà làng",
        "Xã Hiệp Lực: đổi tên 'Thôn Nà Làng' → 'thôn nà làng'",
    ]
    back = villages(engine)["thôn nà làng"]
    assert back.id == original.id and back.active
    (row,) = audit_rows(engine, "setup.village.reactivate")
    assert row.detail["before"] == {"name": "Thôn Nà Làng", "active": False}
    assert row.detail["after"] == {"name": "thôn nà làng", "active": True}
    with session_scope(engine) as s:
        assert len(s.exec(select(Village)).all()) == 3


def test_rename_keeps_the_village(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    old = villages(engine)["Tổ dân phố 1"]
    renamed = BASE.replace(
        "      - name: Tổ dân phố 1\n",
        "      - name: Tổ dân phố Phố Mới\n        renamed_from: Tổ dân phố 1\n",
    )
    report = apply(engine, renamed, clock)
    assert report.villages.updated == 1 and report.villages.created == 0 and report.villages.deactivated == 0
    assert report.changes == [
        "Xã Hiệp Lực: đổi tên 'Tổ dân phố 1' → 'Tổ dân phố Phố Mới' (theo renamed_from)"
    ]
    now = villages(engine)
    assert "Tổ dân phố 1" not in now
    assert now["Tổ dân phố Phố Mới"].id == old.id and now["Tổ dân phố Phố Mới"].kind == "to_dan_pho"
    (row,) = audit_rows(engine, "setup.village.rename")
    assert row.entity_id == str(old.id)
    assert row.detail == {
        "commune": "hiep-luc",
        "before": {"name": "Tổ dân phố 1"},
        "after": {"name": "Tổ dân phố Phố Mới"},
    }
    # The file keeps its renamed_from line: the next runs change nothing.
    before = dump(engine)
    again = apply(engine, renamed, clock)
    assert not again.changed and again.notices == [] and dump(engine) == before


def test_rename_and_change_kind_together(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    old = villages(engine)["Thôn Đại Sơn"]
    report = apply(
        engine,
        BASE.replace(
            "      - Thôn Đại Sơn\n",
            "      - name: Tổ dân phố Đại Sơn\n        kind: to_dan_pho\n        renamed_from: thôn đại sơn\n",
        ),
        clock,
    )
    assert report.changes == [
        "Xã Hiệp Lực: đổi tên 'Thôn Đại Sơn' → 'Tổ dân phố Đại Sơn' (theo renamed_from)",
        "Xã Hiệp Lực: Tổ dân phố Đại Sơn đổi loại thôn → tổ dân phố",
    ]
    assert villages(engine)["Tổ dân phố Đại Sơn"].id == old.id


def test_renamed_from_with_no_old_village_adds_a_new_one(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    report = apply(engine, BASE + "      - name: Thôn Mới\n        renamed_from: Thôn Không Có\n", clock)
    assert report.villages.created == 1
    assert report.notices == [
        "Xã Hiệp Lực: không thấy thôn cũ 'Thôn Không Có' để đổi tên — 'Thôn Mới' được thêm như thôn mới"
    ]


def test_name_that_exists_wins_over_renamed_from(engine: Engine, clock: FixedClock) -> None:
    # Both the old and the new name are in the database: the new one is kept, the old one stops.
    apply(engine, BASE + "      - Thôn Mới\n", clock)
    ids = {name: v.id for name, v in villages(engine).items()}
    report = apply(
        engine,
        BASE.replace("      - Thôn Nà Làng\n", "")
        + "      - name: Thôn Mới\n        renamed_from: Thôn Nà Làng\n",
        clock,
    )
    assert report.villages.deactivated == 1
    assert report.notices == [
        "Xã Hiệp Lực: đã có 'Thôn Mới' nên không đổi tên 'Thôn Nà Làng' — 'Thôn Nà Làng' không còn trong tệp nên bị ngừng"
    ]
    now = villages(engine)
    assert now["Thôn Mới"].id == ids["Thôn Mới"] and now["Thôn Mới"].active
    assert now["Thôn Nà Làng"].id == ids["Thôn Nà Làng"] and not now["Thôn Nà Làng"].active


def test_police_chat_removed_then_put_back(engine: Engine, clock: FixedClock) -> None:
    two_chats = BASE.replace(
        "        title: Công an xã Hiệp Lực\n",
        "        title: Công an xã Hiệp Lực\n      - chat_id: 123456789\n",
    )
    apply(engine, two_chats, clock)
    report = apply(engine, BASE, clock)
    assert report.police_chats.deactivated == 1 and report.police_chats.unchanged == 1
    assert report.changes == ["Xã Hiệp Lực: ngừng gửi cảnh báo tới 123456789 (không còn trong tệp)"]
    with session_scope(engine) as s:
        assert {(c.chat_id, c.active) for c in s.exec(select(PoliceChat))} == {
            (-1009876543210, True),
            (123456789, False),
        }
    report = apply(engine, two_chats, clock)
    assert report.police_chats.reactivated == 1
    assert report.changes == ["Xã Hiệp Lực: mở lại nơi nhận cảnh báo 123456789"]
    with session_scope(engine) as s:
        assert len(s.exec(select(PoliceChat)).all()) == 2
    assert actions(engine)[-2:] == ["setup.police_chat.deactivate", "setup.police_chat.reactivate"]


def test_communes_missing_from_a_file_are_left_alone(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    apply(
        engine,
        "version: 1\ncommunes:\n  - {code: son-duong, name: Xã Sơn Dương, villages: [Thôn 1]}\n",
        clock,
    )
    with session_scope(engine) as s:
        assert {(c.code, c.active) for c in s.exec(select(Commune))} == {
            ("hiep-luc", True),
            ("son-duong", True),
        }
        assert all(v.active for v in s.exec(select(Village)))


def test_same_village_name_in_two_communes(engine: Engine, clock: FixedClock) -> None:
    report = apply(
        engine,
        "version: 1\ncommunes:\n  - {code: a, name: Xã A, villages: [Thôn 1]}\n  - {code: b, name: Xã B, villages: [Thôn 1]}\n",
        clock,
    )
    assert report.villages.created == 2


def test_inactive_commune_is_reactivated(engine: Engine, clock: FixedClock) -> None:
    apply(engine, BASE, clock)
    with session_scope(engine) as s:
        s.exec(select(Commune)).one().active = False
    report = apply(engine, BASE, clock)
    assert report.communes.reactivated == 1
    assert report.changes == ["Mở lại Xã Hiệp Lực (mã hiep-luc)"]
    (row,) = audit_rows(engine, "setup.commune.reactivate")
    assert row.detail == {"code": "hiep-luc", "before": {"active": False}, "after": {"active": True}}


def test_apply_stays_in_the_callers_transaction(engine: Engine, clock: FixedClock) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        apply_setup(s, parsed(BASE), now=clock(), actor=ACTOR)
        raise RuntimeError("the caller gives up")
    assert all(rows == [] for rows in dump(engine).values())


def test_apply_needs_an_aware_time(session, clock: FixedClock) -> None:
    with pytest.raises(ValueError):
        apply_setup(session, parsed(BASE), now=clock().replace(tzinfo=None), actor=ACTOR)


def test_shipped_example_applies(engine: Engine, clock: FixedClock) -> None:
    raw = yaml.safe_load((DEPLOY / "hiep-luc.yaml").read_text(encoding="utf-8"))
    raw["communes"][0].pop("forms")  # the form files are checked in test_setup_file
    result = parse_setup(raw, DEPLOY / "hiep-luc.yaml")
    assert result.setup is not None, [str(e) for e in result.errors]
    with session_scope(engine) as s:
        first = apply_setup(s, result.setup, now=clock(), actor=ACTOR)
    assert first.villages.created == len(result.setup.communes[0].villages) >= 12
    before = dump(engine)
    with session_scope(engine) as s:
        second = apply_setup(s, result.setup, now=clock(), actor=ACTOR)
    assert not second.changed and dump(engine) == before


_POOL = [
    "Thôn Đại Sơn",
    "thôn đại  sơn",
    "Thôn Hoà Bình",
    "Thôn Hòa Bình",
    "Thôn Nà Làng",
    "Tổ dân phố 1",
    "Thôn 2",
]
_state = st.lists(
    st.tuples(st.sampled_from(_POOL), st.sampled_from(["thon", "to_dan_pho"])), min_size=1, max_size=5
).map(lambda items: list({name_key(n): (n, k) for n, k in items}.values()))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(states=st.lists(_state, min_size=1, max_size=4))
def test_any_sequence_of_files_converges(
    engine: Engine, clock: FixedClock, states: list[list[tuple[str, str]]]
) -> None:
    code = f"x-{next(_codes)}"  # one commune per example: the database is shared between examples
    for state in states:
        villages_yaml = "".join(f"      - {{name: '{n}', kind: {k}}}\n" for n, k in state)
        text = f"version: 1\ncommunes:\n  - code: {code}\n    name: Xã X\n    villages:\n{villages_yaml}"
        apply(engine, text, clock)
        before = dump(engine)
        assert not apply(engine, text, clock).changed
        assert dump(engine) == before
        with session_scope(engine) as s:
            commune = s.exec(select(Commune).where(Commune.code == code)).one()
            rows = s.exec(select(Village).where(Village.commune_id == commune.id)).all()
        assert sorted((v.name, v.kind) for v in rows if v.active) == sorted(
            (normalize_name(n), k) for n, k in state
        )
        assert len({name_key(v.name) for v in rows}) == len(rows), "never two rows for one name"
