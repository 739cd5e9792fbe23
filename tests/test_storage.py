"""Migrations and the session scope on the configured backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from storage.db import current_revision, head_revision, session_scope
from storage.models import Commune, Village


def test_database_is_at_head(engine) -> None:
    assert current_revision(engine) == head_revision()


def test_aware_datetimes_round_trip(engine) -> None:
    now = datetime(2026, 5, 19, 16, 59, 59, tzinfo=UTC)
    with session_scope(engine) as s:
        s.add(Commune(code="x", name="Xã X", created_at=now, updated_at=now))
    with session_scope(engine) as s:
        got = s.exec(select(Commune)).one()
        assert got.created_at == now and got.created_at.tzinfo is not None


def test_scope_rolls_back_on_error(engine) -> None:
    now = datetime(2026, 5, 19, tzinfo=UTC)
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        s.add(Commune(code="y", name="Xã Y", created_at=now, updated_at=now))
        s.flush()
        raise RuntimeError("boom")
    with session_scope(engine) as s:
        assert s.exec(select(Commune)).all() == []


def test_village_names_unique_per_commune(engine) -> None:
    now = datetime(2026, 5, 19, tzinfo=UTC)
    with session_scope(engine) as s:
        c = Commune(code="z", name="Xã Z", created_at=now, updated_at=now)
        s.add(c)
        s.flush()
        s.add(Village(commune_id=c.id, name="Thôn 1", created_at=now, updated_at=now))
    with pytest.raises(Exception), session_scope(engine) as s:  # noqa: B017 - driver-specific IntegrityError
        s.add(Village(commune_id=1, name="Thôn 1", created_at=now, updated_at=now))


def test_migrations_downgrade_and_upgrade_again(engine) -> None:
    from storage.db import upgrade

    head = head_revision()
    upgrade_engine = engine
    from alembic import command

    from storage.db import alembic_config

    command.downgrade(alembic_config(upgrade_engine), "base")
    assert current_revision(upgrade_engine) is None
    upgrade(upgrade_engine)
    assert current_revision(upgrade_engine) == head


def test_models_match_the_migrations(engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []


def test_outbox_has_the_claim_index(engine) -> None:
    from sqlalchemy import inspect

    indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("outbox")}
    assert indexes["ix_outbox_status_due_at"] == ["status", "due_at"]
