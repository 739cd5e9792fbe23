"""Round trips to PostgreSQL counted for real: libpq's protocol trace of every connection an engine checks out.

Each checkout of a pooled psycopg connection is traced (`PGconn.trace`) until it is checked in. A round trip is
one exchange: the messages the client sent (one or more statements, a pipeline, a `Sync`) and the server's
answers it then waited for. Each exchange is summed up as the statements it carried, by their first two
words (`BEGIN`, `WITH chat_lock`, `UPDATE draft`, `COMMIT`; a statement psycopg prepared earlier under a name
is known by the SQL of that name's `Parse`, or shows as `prepared`; a read sent ahead by storage/begin_together
as `PREPARE ahead` and `EXECUTE ahead`).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_MESSAGE = re.compile(r"^[FB]\t\d+\t")  # a message's first line: direction, length, type


def _words(sql: str) -> str:
    words = " ".join(sql.split()[:2])
    if words.startswith(("PREPARE baocao_ahead_", "EXECUTE baocao_ahead_")):  # storage/begin_together's
        return words.split(" ")[0] + " ahead"  # reads sent ahead, whatever their number and parameters
    return words


def _quoted(fields: list[str], index: int) -> str:
    return fields[index].strip('"') if index < len(fields) else ""


def exchanges(trace: str, names: dict[str, str]) -> list[list[str]]:
    """The round trips of one connection's trace: each the statements it carried (`names`: prepared SQL)."""
    out: list[list[str]] = []
    current: list[str] = []
    unnamed = ""
    side = ""
    for line in _messages(trace):
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        direction, kind, rest = parts[0], parts[2], "\t".join(parts[3:])
        if direction == "F" and side == "B":  # the client speaks again: the previous exchange is over
            out.append(current)
            current = []
        side = direction
        if direction != "F":
            continue
        fields = _split_quoted(rest)
        if kind == "Query":  # a simple query may hold several statements (split naively at ";")
            current.extend(_words(part) for part in _quoted(fields, 0).split(";") if part.strip())
        elif kind == "Parse":
            name, sql = _quoted(fields, 0), _quoted(fields, 1)
            if name:
                names[name] = _words(sql)
            else:
                unnamed = _words(sql)
        elif kind == "Bind":
            name = _quoted(fields, 1)
            current.append(names.get(name, "prepared") if name else unnamed)
    if side == "B":
        out.append(current)
    return out


def _messages(trace: str) -> list[str]:
    """The trace's messages, one a line: SQL text spanning lines is joined back to its message."""
    out: list[str] = []
    for line in trace.splitlines():
        if _MESSAGE.match(line) or not out:
            out.append(line)
        else:
            out[-1] += " " + line
    return out


def _split_quoted(rest: str) -> list[str]:
    """The space-separated fields of a trace line, a double-quoted one (SQL text) kept whole."""
    fields: list[str] = []
    i = 0
    while i < len(rest):
        if rest[i] == " ":
            i += 1
        elif rest[i] == '"':
            end = rest.index('"', i + 1)
            while end + 1 < len(rest) and rest[end + 1] == '"':  # a doubled quote inside the text
                end = rest.index('"', end + 2)
            fields.append(rest[i : end + 1])
            i = end + 1
        else:
            end = rest.find(" ", i)
            end = len(rest) if end < 0 else end
            fields.append(rest[i:end])
            i = end
    return fields


@contextmanager
def round_trips(engine: Engine) -> Iterator[list[list[list[str]]]]:
    """Trace every connection `engine` checks out while inside; yields a list filled, at each checkin, with
        that checkout's round trips (each the statements it carried). The checkout's own ping is included; the
    statements psycopg prepared on the connection before are read (untraced) at checkout."""
    import psycopg

    seen: list[list[list[str]]] = []
    names: dict[int, dict[str, str]] = {}
    open_traces: dict[int, Any] = {}

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        known = names.setdefault(id(dbapi_connection), {})  # what psycopg prepared before tracing began
        dbapi_connection.autocommit = (
            True  # no transaction (a ROLLBACK would make psycopg deallocate them all)
        )
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT name, statement FROM pg_prepared_statements")
                known.update((name, _words(sql)) for name, sql in cursor.fetchall())
        finally:
            dbapi_connection.autocommit = False
        handle = tempfile.TemporaryFile()  # noqa: SIM115 - closed at checkin, read there
        open_traces[id(dbapi_connection)] = handle
        dbapi_connection.pgconn.trace(handle.fileno())
        dbapi_connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    def checkin(dbapi_connection: Any, _record: Any) -> None:
        handle = open_traces.pop(id(dbapi_connection), None)
        if handle is None:
            return
        if dbapi_connection is not None and not dbapi_connection.closed:
            dbapi_connection.pgconn.untrace()
        handle.flush()
        os.fsync(handle.fileno())
        handle.seek(0)
        text = handle.read().decode("utf-8", "replace")
        handle.close()
        seen.append(exchanges(text, names.setdefault(id(dbapi_connection), {})))

    event.listen(engine, "checkout", checkout, insert=True)  # before the pool's ping: it is counted too
    event.listen(engine, "checkin", checkin)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)
