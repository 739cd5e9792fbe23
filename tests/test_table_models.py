"""The table models build no pydantic validator on import (issue 18, gate 2: `defer_build`), and still validate,
dump and store as before when asked."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlmodel import SQLModel, select

from storage import models
from storage.db import session_scope

NOW = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)


def _tables() -> list[type[SQLModel]]:
    return [
        c for c in vars(models).values() if isinstance(c, type) and getattr(c, "__table__", None) is not None
    ]


def test_every_table_defers_its_pydantic_schema() -> None:
    assert len(_tables()) == len(SQLModel.metadata.tables) >= 22
    assert all(t.model_config.get("defer_build") for t in _tables())


def test_importing_the_models_builds_no_validator() -> None:
    code = (
        "import storage.models as m, sqlmodel\n"
        "tables = [c for c in vars(m).values() if isinstance(c, type) and hasattr(c, '__table__')]\n"
        "print(sum(bool(c.__pydantic_complete__) for c in tables), len(tables))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    built, tables = map(int, done.stdout.split())
    assert (built, tables) == (0, len(_tables()))


def test_a_table_still_validates_and_dumps_when_asked() -> None:
    commune = models.Commune.model_validate(
        {"code": "x", "name": "Xã X", "created_at": NOW, "updated_at": NOW}
    )
    assert commune.code == "x" and commune.active is True
    assert models.Commune.model_dump(commune)["name"] == "Xã X"
    with pytest.raises(ValidationError):
        models.Commune.model_validate({"code": "x", "name": "Xã X", "created_at": "not a date"})


def test_rows_are_stored_and_read_as_before(engine) -> None:
    with session_scope(engine) as s:
        s.add(models.Commune(code="deferred", name="Xã Hoãn", created_at=NOW, updated_at=NOW))
    with session_scope(engine) as s:
        row = s.exec(select(models.Commune).where(models.Commune.code == "deferred")).one()
        assert (row.name, row.active, row.created_at) == ("Xã Hoãn", True, NOW)
