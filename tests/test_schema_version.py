"""`storage.schema_version`: the shipped head read without Alembic agrees with Alembic's, and `at_head` says
yes only for a database at exactly that revision."""

from __future__ import annotations

from sqlalchemy import text

from storage.db import head_revision, make_engine, upgrade
from storage.schema_version import at_head, shipped_head


def test_the_shipped_head_is_alembics() -> None:
    assert shipped_head() == head_revision()


def test_at_head_only_when_migrated_to_the_head(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    assert not at_head(engine)  # no version table yet
    upgrade(engine, "0001")
    assert not at_head(engine)
    upgrade(engine)
    assert at_head(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'unknown'"))
    assert not at_head(engine)
    engine.dispose()


def _versions(directory, **files: str):
    """A directory of migration files (name → source); each call a new directory (`shipped_head` caches)."""
    directory.mkdir()
    for name, source in files.items():
        (directory / f"{name}.py").write_text(source, encoding="utf-8")
    return directory


def test_a_branch_or_an_unreadable_migration_gives_no_head(tmp_path) -> None:
    a, b = "revision = 'a'\ndown_revision = None\n", "revision = 'b'\ndown_revision = 'a'\n"
    assert shipped_head(_versions(tmp_path / "1", a=a, b=b)) == "b"
    branch = "revision = 'c'\ndown_revision = 'a'\n"
    assert shipped_head(_versions(tmp_path / "2", a=a, b=b, c=branch)) is None
    merge = "revision = 'c'\ndown_revision = ('b', 'x')\n"
    assert shipped_head(_versions(tmp_path / "3", a=a, b=b, c=merge)) == "c"
    assert shipped_head(_versions(tmp_path / "4", a=a, d="nothing here\n")) is None
