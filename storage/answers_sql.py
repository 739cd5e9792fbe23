"""Reading stored answers (`submission.answers`, JSON) in SQL on each dialect: the answers as columns of a
sub-select, and a column read as text, boolean, "holds this value" or number of items."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, Text, case, cast, column, exists, func, literal, null, select
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session

from storage.dialect import dialect_name
from storage.models import Submission

NUL_ESCAPE = "\\u0000"  # how JSON writes a NUL character: PostgreSQL refuses to make text of it
_NUL_OR_PAIR = r"(\\\\)|\\u0000"  # an escaped backslash (kept), or a NUL escape (dropped)


def is_pg(session: Session) -> bool:
    """Whether the session talks to PostgreSQL (else SQLite)."""
    return dialect_name(session) == "postgresql"


def pg_answers() -> Any:
    """PostgreSQL: `submission.answers` without NUL escapes (answers stored before input was cleaned).

    `json_to_record` and `->>` fail on a "\\u0000" in a text value; a document holding one (found with
    a cheap `strpos`) is read through a `regexp_replace` that drops them, escaped backslashes kept.
    """
    raw = cast(Submission.answers, Text)
    cleaned = cast(func.regexp_replace(raw, _NUL_OR_PAIR, r"\1", "g"), PG_JSON)
    return case((func.strpos(raw, NUL_ESCAPE) > 0, cleaned), else_=cast(Submission.answers, PG_JSON))


def answer_columns(pg: bool, keys: Sequence[tuple[str, bool]]) -> tuple[list[Any], Any]:
    """The answers to `keys` ((question id, answer is a JSON list) …) as columns `k0, k1, …` (and, on
    SQLite, `t0, t1, …` with a list answer's `json_type`), plus the table to join for them (or None).

    PostgreSQL: `answers` is JSON (text), so each `->>` would parse the document again; instead
    `json_to_record` parses it once per row and hands the wanted keys over as columns (text, or json for
    arrays). SQLite: one `json_extract` per key gives the same columns (SQL values: numbers, text, 1/0 for
    booleans, JSON text for arrays).
    """
    cols: list[Any] = []
    if pg:
        if not keys:
            return cols, None
        record = (
            func.json_to_record(pg_answers())
            .table_valued(*[column(qid, PG_JSON if many else Text) for qid, many in keys])
            .render_derived(name="r", with_types=True)
        )
        return [record.c[qid].label(f"k{i}") for i, (qid, _) in enumerate(keys)], record
    for i, (qid, many) in enumerate(keys):
        path = f'$."{qid}"'
        cols.append(func.json_extract(Submission.answers, path).label(f"k{i}"))
        if many:
            cols.append(func.json_type(Submission.answers, path).label(f"t{i}"))
    return cols, None


def keep_rows_apart(pg: bool, query: Any) -> Any:
    """SQLite: a LIMIT keeps the sub-select from being flattened into the aggregate, so each json_extract
    runs once per row however often the figures use it (PostgreSQL: the query as it is)."""
    return query if pg else query.offset(0)


def as_text(pg: bool, raw: Any) -> Any:
    """An answer column as text."""
    return cast(raw, Text) if pg else raw


def as_boolean(pg: bool, raw: Any) -> Any:
    """An answer column (a yes/no answer) as a boolean."""
    return cast(raw, Boolean) if pg else raw == 1


def list_contains(pg: bool, raw: Any, json_type: Any, value: str) -> Any:
    """A list answer (a JSON array) holds `value` (NULL when the answer is not a list, on SQLite)."""
    if pg:
        return cast(raw, JSONB).op("@>")(cast(literal(json.dumps([value])), JSONB))
    each = func.json_each(raw).table_valued("value")
    found = exists(select(1).select_from(each).where(each.c.value == value))
    return case((json_type == "array", found), else_=null())


def list_length(pg: bool, raw: Any, json_type: Any) -> Any:
    """Number of items of a list answer (NULL when it is not a list)."""
    is_array = func.json_typeof(raw) == "array" if pg else json_type == "array"
    return case((is_array, func.json_array_length(raw)), else_=null())


def answer_text(pg: bool, question_id: str) -> Any:
    """One answer of `submission.answers` as text."""
    if pg:
        return func.json_extract_path_text(pg_answers(), question_id)
    return Submission.answers[question_id].as_string()  # type: ignore[index]
