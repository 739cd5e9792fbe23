"""Whether a database is already at the newest shipped migration, answered without importing Alembic
(`at_head`): a command that finds its database current skips `storage.db.upgrade` and Alembic's ~0.2 s of
imports and script loading. Anything unusual (no version table, a branch, a file it cannot read) answers
False, and the caller runs the real upgrade, which decides."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]+)?=\s*(.+)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


@cache
def shipped_head(versions: Path = VERSIONS_DIR) -> str | None:
    """The one revision no shipped migration revises (None when there is not exactly one, or on doubt)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in sorted(versions.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        down = _DOWN.search(source)
        if found is None or down is None:
            return None
        revisions.add(found.group(1))
        revised.update(_QUOTED.findall(down.group(1)))
    heads = revisions - revised
    return next(iter(heads)) if len(heads) == 1 else None


def at_head(engine: Engine) -> bool:
    """Whether the database's `alembic_version` is exactly the shipped head (False on any doubt)."""
    head = shipped_head()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception:  # no table yet, or unreachable: the real upgrade reports it
        return False
    return rows == [head]
