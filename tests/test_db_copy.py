"""`baocao db copy`: SQLite → PostgreSQL, SQLite → SQLite, PostgreSQL → SQLite, and the refusals.

PostgreSQL tests create a database of their own with a random name next to DATABASE_URL (or
postgresql://127.0.0.1:5432/test) and drop it afterwards; they are skipped only if PostgreSQL is unreachable.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel
from sqlmodel import select as model_select

from bot.cli.database import cmd_db_copy
from bot.cli.parser import add_copy_arguments
from bot.config import settings_from
from storage.copy import CopyError, copy_database, copy_tables, same_database
from storage.db import make_engine, session_scope, upgrade
from storage.models import (
    AuditLog,
    Commune,
    CommuneForm,
    Draft,
    FormVersion,
    Invite,
    InviteAttempt,
    Membership,
    Outbox,
    Period,
    Person,
    ProcessedUpdate,
    Reopening,
    Submission,
)
from tests.support.world import seed_communes

NOW = datetime(2026, 5, 15, 2, 0, tzinfo=UTC)
DEFAULT_PG = "postgresql://127.0.0.1:5432/test"


# --- databases ---------------------------------------------------------------------------------


def _pg_admin_url() -> str:
    raw = os.environ.get("DATABASE_URL", "")
    return settings_from({"DATABASE_URL": raw if raw.startswith("postgres") else DEFAULT_PG}).database_url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database with a random name; dropped afterwards."""
    admin = sa_create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"baocao_copy_test_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL unreachable at {make_url(_pg_admin_url())!r}: {str(exc.orig).strip()[:200]}")
    try:
        yield make_url(_pg_admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _sqlite(path: Path) -> str:
    return f"sqlite:///{path}"


def seed_everything(url: str) -> None:
    """Migrate the database at `url` and put rows in every table, with awkward values."""
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as s:
        world = seed_communes(s, NOW)
        world.commune.quiet_start, world.commune.quiet_end = time(21, 0), time(6, 30)
        village = world.villages[0]
        head = Person(
            telegram_user_id=7_000_000_001,
            chat_id=7_000_000_001,
            full_name="Nguyễn Thị Ánh 🌾",
            username="anh_nt",
            created_at=NOW,
            updated_at=NOW,
        )
        officer = Person(
            telegram_user_id=42, chat_id=42, full_name="Trần Văn Bình", created_at=NOW, updated_at=NOW
        )
        gone = Person(full_name="", active=False, forgotten_at=NOW, created_at=NOW, updated_at=NOW)
        s.add_all([head, officer, gone])
        s.flush()
        s.add_all(
            [
                Membership(person_id=head.id, role="village_head", village_id=village.id, created_at=NOW),
                Membership(person_id=officer.id, role="police", commune_id=world.commune.id, created_at=NOW),
                Membership(
                    person_id=gone.id,
                    role="village_head",
                    village_id=world.villages[1].id,
                    is_deputy=True,
                    created_at=NOW,
                    ended_at=NOW + timedelta(days=1),
                ),
                Invite(
                    code_hash="a" * 64,
                    code_hint="AB12",
                    role="village_head",
                    village_id=village.id,
                    created_by="cli",
                    created_at=NOW,
                    expires_at=NOW + timedelta(days=7),
                    used_at=NOW,
                    used_by_person_id=head.id,
                ),
                InviteAttempt(telegram_user_id=9_999_999_999, at=NOW, reason="wrong"),
                ProcessedUpdate(update_id=900_000_000_123, processed_at=NOW),
                AuditLog(
                    at=NOW,
                    actor="cli",
                    action="setup.apply",
                    entity="commune",
                    entity_id="hiep-luc",
                    detail={"tên": "Xã Hiệp Lực", "villages": [1, 2, 3], "nested": {"x": None}},
                ),
                FormVersion(
                    form_id="bao-cao-6-thang",
                    version=1,
                    title="Báo cáo 6 tháng",
                    definition={"questions": [{"id": "q1", "text": "Số buổi tuyên truyền?"}]},
                    checksum="c" * 64,
                    loaded_at=NOW,
                ),
                CommuneForm(
                    commune_id=world.commune.id, form_id="bao-cao-6-thang", reminders={"before": [3, 1]}
                ),
            ]
        )
        period = Period(
            commune_id=world.commune.id,
            form_id="bao-cao-6-thang",
            code="2026-6T",
            label="6 tháng đầu năm 2026",
            opens_at=NOW - timedelta(days=14),
            due_at=NOW + timedelta(days=4),
            closes_at=NOW + timedelta(days=34),
            created_at=NOW,
            updated_at=NOW,
        )
        s.add(period)
        s.flush()
        submissions = [
            Submission(
                village_id=village.id,
                form_id="bao-cao-6-thang",
                period_id=period.id,
                form_version=1,
                version_no=n,
                is_current=n == 2,
                answers={"q1": n * 3, "ghi_chu": "Khó khăn: đường xa\nđề xuất ' \" \\ ;"},
                submitted_by_person_id=head.id,
                sent_at=NOW + timedelta(minutes=n),
                received_at=NOW + timedelta(minutes=n, seconds=1),
                on_time=n == 1,
                receipt=f"R{n:05d}",
            )
            for n in (1, 2)
        ]
        s.add_all(submissions)
        s.flush()
        draft = Draft(
            village_id=village.id,
            form_id="bao-cao-6-thang",
            period_id=period.id,
            owner_person_id=None,
            form_version=1,
            state={"answers": {"q1": 6}, "cursor": "q2"},
            seen={str(head.id): 4},
            amending_submission_id=submissions[1].id,
            updated_by_person_id=head.id,
            created_at=NOW,
            updated_at=NOW,
        )
        s.add(draft)
        s.flush()
        head.active_draft_id = draft.id
        s.add(
            Reopening(village_id=village.id, period_id=period.id, by_person_id=officer.id, at=NOW, until=NOW)
        )
        s.add_all(
            [
                Outbox(
                    key=f"reminder:{head.id}:{period.id}:d-{n}",
                    kind="reminder",
                    chat_id=head.chat_id or 0,
                    person_id=head.id,
                    village_id=village.id,
                    period_id=period.id,
                    rule=f"d-{n}",
                    payload={"text": "Nhắc báo cáo", "n": n},
                    due_at=NOW + timedelta(hours=n),
                    created_at=NOW,
                    status="sent" if n == 1 else "pending",
                    attempts=n,
                    sent_at=NOW if n == 1 else None,
                    telegram_message_id=5_000_000_000 + n if n == 1 else None,
                )
                for n in range(1, 6)
            ]
            + [
                Outbox(
                    key="digest:hiep-luc:2026-05-15",
                    kind="digest",
                    chat_id=world.police_chat_id,
                    payload={},
                    due_at=NOW,
                    created_at=NOW,
                )
            ]
        )
    engine.dispose()


def table_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every model table, ordered by primary key."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: [dict(r._mapping) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in copy_tables()
            }
    finally:
        engine.dispose()


SEEDED = {
    "commune",
    "village",
    "police_chat",
    "person",
    "membership",
    "invite",
    "invite_attempt",
    "processed_update",
    "audit_log",
    "form_version",
    "commune_form",
    "period",
    "draft",
    "submission",
    "reopening",
    "outbox",
}


@pytest.fixture
def seeded_sqlite(tmp_path: Path) -> str:
    """A SQLite file at head with rows in every table."""
    url = _sqlite(tmp_path / "source.db")
    seed_everything(url)
    rows = table_rows(url)
    empty = sorted(name for name in SEEDED if not rows.get(name))
    assert not empty, f"seed_everything left tables empty: {empty}"
    return url


def _assert_new_rows_get_fresh_ids(url: str) -> None:
    """After a copy, inserting rows without ids works and continues after the copied ids."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            top = s.exec(select(func.max(Commune.id))).one()[0]
            top_outbox = s.exec(select(func.max(Outbox.id))).one()[0]
            commune = Commune(code="moi", name="Xã Mới", created_at=NOW, updated_at=NOW)
            s.add(commune)
            s.add(AuditLog(at=NOW, actor="test", action="after.copy", entity="commune", detail={}))
            s.add(Outbox(key="after-copy", kind="nudge", chat_id=1, due_at=NOW, created_at=NOW))
            s.flush()
            assert commune.id == top + 1
            new_outbox = s.exec(model_select(Outbox).where(Outbox.key == "after-copy")).one()
            assert new_outbox.id == top_outbox + 1
    finally:
        engine.dispose()


# --- copies ------------------------------------------------------------------------------------


def test_sqlite_to_postgresql_copies_every_row_and_resets_sequences(seeded_sqlite: str, pg_url: str) -> None:
    seen: list[tuple[str, int]] = []
    report = copy_database(seeded_sqlite, pg_url, batch_size=2, progress=lambda t, n: seen.append((t, n)))
    assert report.ok
    assert [t.table for t in report.tables] == [t.name for t in SQLModel.metadata.sorted_tables]
    source_rows = table_rows(seeded_sqlite)
    assert table_rows(pg_url) == source_rows
    assert {t.table: t.destination for t in report.tables} == {k: len(v) for k, v in source_rows.items()}
    assert ("outbox", 2) in seen and ("outbox", 6) in seen  # six rows in batches of two
    _assert_new_rows_get_fresh_ids(pg_url)


def test_postgresql_to_sqlite_round_trip(seeded_sqlite: str, pg_url: str, tmp_path: Path) -> None:
    copy_database(seeded_sqlite, pg_url)
    back = _sqlite(tmp_path / "back.db")
    report = copy_database(pg_url, back, batch_size=3)
    assert report.ok
    assert table_rows(back) == table_rows(seeded_sqlite)


def test_sqlite_to_sqlite(seeded_sqlite: str, tmp_path: Path) -> None:
    target = _sqlite(tmp_path / "copy.db")
    report = copy_database(seeded_sqlite, target)
    assert report.ok and report.total_rows == sum(len(v) for v in table_rows(seeded_sqlite).values())
    assert table_rows(target) == table_rows(seeded_sqlite)
    _assert_new_rows_get_fresh_ids(target)


def test_force_replaces_existing_rows(seeded_sqlite: str, tmp_path: Path) -> None:
    target = _sqlite(tmp_path / "copy.db")
    seed_everything(target)
    engine = make_engine(target)
    with session_scope(engine) as s:
        s.add(Commune(code="thua", name="Xã Thừa", created_at=NOW, updated_at=NOW))
    engine.dispose()
    with pytest.raises(CopyError, match="đã có dữ liệu"):
        copy_database(seeded_sqlite, target)
    assert len(table_rows(target)["commune"]) == 3  # untouched
    assert copy_database(seeded_sqlite, target, force=True).ok
    assert table_rows(target) == table_rows(seeded_sqlite)


# --- the command -------------------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="baocao db")
    parser.add_argument("db_action", choices=["upgrade", "current", "copy"])
    add_copy_arguments(parser)
    return parser.parse_args(["copy", *argv])


def test_command_prints_counts_per_table(
    seeded_sqlite: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    plain_pg = pg_url.replace("postgresql+psycopg://", "postgresql://")
    code = cmd_db_copy(_args("--from", seeded_sqlite, "--to", plain_pg), settings_from({}))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Xong: đã chép" in out
    for name, rows in table_rows(seeded_sqlite).items():
        line = next(x for x in out.splitlines() if x.split()[:1] == [name])
        assert line.split()[1:] == [str(len(rows)), str(len(rows)), "✓"]


def test_command_refuses_non_empty_destination(
    seeded_sqlite: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _sqlite(tmp_path / "copy.db")
    assert cmd_db_copy(_args("--from", seeded_sqlite, "--to", target), settings_from({})) == 0
    capsys.readouterr()
    assert cmd_db_copy(_args("--from", seeded_sqlite, "--to", target), settings_from({})) == 1
    err = capsys.readouterr().err
    assert "đã có dữ liệu" in err and "--force" in err
    assert cmd_db_copy(_args("--from", seeded_sqlite, "--to", target, "--force"), settings_from({})) == 0


def test_command_needs_both_urls(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cmd_db_copy(_args("--from", _sqlite(tmp_path / "a.db")), settings_from({})) == 2
    assert "Thiếu --to" in capsys.readouterr().err
    assert cmd_db_copy(_args("--from", "mysql://x/y", "--to", "sqlite:///b.db"), settings_from({})) == 2
    assert "--from" in capsys.readouterr().err


# --- bad inputs --------------------------------------------------------------------------------


def test_missing_sqlite_source(tmp_path: Path) -> None:
    with pytest.raises(CopyError, match="Không thấy tệp"):
        copy_database(_sqlite(tmp_path / "khong-co.db"), _sqlite(tmp_path / "b.db"))
    assert not (tmp_path / "khong-co.db").exists()  # not created by trying
    assert not (tmp_path / "b.db").exists()  # destination untouched when the source is bad


def test_unreachable_postgresql_source(tmp_path: Path) -> None:
    url = "postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(CopyError, match="Không kết nối được cơ sở dữ liệu nguồn") as info:
        copy_database(url, _sqlite(tmp_path / "b.db"))
    assert "secret" not in str(info.value)


def test_empty_source_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    make_engine(_sqlite(empty)).connect().close()
    with pytest.raises(CopyError, match="trống hoặc không phải của baocao"):
        copy_database(_sqlite(empty), _sqlite(tmp_path / "b.db"))


def test_same_database_is_refused(
    seeded_sqlite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CopyError, match="cùng một cơ sở dữ liệu"):
        copy_database(seeded_sqlite, seeded_sqlite)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CopyError, match="cùng một cơ sở dữ liệu"):
        copy_database(seeded_sqlite, "sqlite:///source.db")  # relative path, same file
    assert same_database("postgresql+psycopg://a@h:5432/db", "postgresql+psycopg://b:pw@h/db")
    assert not same_database("postgresql+psycopg://h/db1", "postgresql+psycopg://h/db2")


def test_bad_batch_size_touches_nothing(seeded_sqlite: str, tmp_path: Path) -> None:
    target = _sqlite(tmp_path / "copy.db")
    with pytest.raises(CopyError, match="Kích thước lô"):
        copy_database(seeded_sqlite, target, batch_size=0)
    assert not (tmp_path / "copy.db").exists()


def test_destination_at_an_unknown_revision_is_refused(seeded_sqlite: str, tmp_path: Path) -> None:
    target = _sqlite(tmp_path / "future.db")
    engine = make_engine(target)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(CopyError, match="Không nâng cấp được cơ sở dữ liệu đích"):
        copy_database(seeded_sqlite, target)


def test_a_failure_midway_leaves_the_destination_empty(
    seeded_sqlite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import storage.copy as copy_module

    real = copy_module._batches

    def failing(conn: Any, table: Any, size: int) -> Iterator[list[dict]]:
        if table.name == "outbox":
            raise OperationalError("INSERT …", {}, Exception("disk I/O error"))
        yield from real(conn, table, size)

    monkeypatch.setattr(copy_module, "_batches", failing)
    target = _sqlite(tmp_path / "copy.db")
    with pytest.raises(CopyError, match="Sao chép thất bại, đích không đổi: disk I/O error"):
        copy_database(seeded_sqlite, target, batch_size=1)
    assert all(rows == [] for rows in table_rows(target).values())


def test_baocao_db_copy_through_the_real_command_line(
    seeded_sqlite: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    target = _sqlite(tmp_path / "via-cli.db")
    code = main(
        ["--env-file", str(tmp_path / "none.env"), "db", "copy", "--from", seeded_sqlite, "--to", target]
    )
    assert code == 0, capsys.readouterr()
    assert table_rows(target) == table_rows(seeded_sqlite)
    assert main(["--env-file", str(tmp_path / "none.env"), "db", "copy", "--from", seeded_sqlite]) == 2
