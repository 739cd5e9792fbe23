"""The layering rules that import-linter cannot see: dialect-specific SQL only under storage/."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What only one database understands: its dialect module, row-locking and upsert clauses, JSON functions.
DIALECT_ONLY = re.compile(
    r"sqlalchemy\.dialects|skip_locked|SKIP LOCKED|pg_try_advisory|pg_advisory|on_conflict|ON CONFLICT"
    r"|with_for_update|FOR UPDATE|json_extract|json_to_record|json_each|jsonb|JSONB|json_typeof"
)


def code_lines(source: str) -> list[tuple[int, str]]:
    """The lines of `source` as code: comments and docstrings blanked out (other strings kept: SQL text)."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.update(range(value.lineno, (value.end_lineno or value.lineno) + 1))
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col]
    return [(n, line) for n, line in enumerate(lines, start=1) if n not in docstrings]


def offenders(root: Path) -> list[str]:
    """Every code line under `root` that speaks one database's dialect."""
    return [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        for n, line in code_lines(path.read_text(encoding="utf-8"))
        if DIALECT_ONLY.search(line)
    ]


def test_dialect_specific_sql_lives_under_storage_only() -> None:
    assert offenders(ROOT / "bot") == []


def test_the_rule_sees_what_it_forbids(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        '"""Docstring: FOR UPDATE is fine here."""\n'
        "from sqlalchemy.dialects.postgresql import insert\n"
        "rows = q.with_for_update(skip_locked=True)  # a comment: ON CONFLICT is fine\n"
        "sql = text('SELECT 1 FOR UPDATE')\n"
        "ok = for_update(q)  # ON CONFLICT\n",
        encoding="utf-8",
    )
    found = [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in offenders_in(tmp_path)]
    assert found == ["2", "3", "4"]


def offenders_in(root: Path) -> list[str]:
    """`offenders` for a folder outside the project (paths shown relative to it)."""
    return [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        for n, line in code_lines(path.read_text(encoding="utf-8"))
        if DIALECT_ONLY.search(line)
    ]
