"""PostgreSQL (psycopg 3): a transaction's first statement sent in the same round trip as its BEGIN.

psycopg starts a transaction by sending `BEGIN` on its own and waiting for its answer before the first
statement goes out: one round trip (and one wake-up of the waiting thread) that carries nothing. A statement
marked with the execution option `BEGIN_TOGETHER` that opens its transaction is instead sent as one simple
query `BEGIN; <statement>`, its parameters bound client-side by psycopg (`ClientCursor.mogrify`): one write,
one wait, one read. For that one call the driver connection is put in autocommit (so psycopg sends no BEGIN
of its own), and once the transaction is open it is marked not autocommit again, so every later statement,
the `COMMIT` and the `ROLLBACK` behave as in any transaction. Errors and lost connections are handled by
SQLAlchemy as for any statement. A marked statement run inside an open transaction (or on a connection with
an isolation level, read-only or deferrable setting, whose BEGIN psycopg words itself) is executed as usual.

Pipeline mode (BEGIN and the statement in one sync, server-side parameters kept) was tried first and measured
worse: per transaction it made ~8.7 poll and ~5.7 send calls instead of 4 and 4 (psycopg polls for each
queued command, the sync and the fetch), each a release and re-take of the GIL by a thread among 16, and the
gate bot's CPU a turn did not fall. The simple query costs the statement its server-side preparation (its
text differs each time); it is one small statement a turn.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

BEGIN_TOGETHER = "begin_together"  # execution option: send this statement with its transaction's BEGIN
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open on the connection


def install(engine: Engine) -> None:
    """Send statements marked `BEGIN_TOGETHER` with their BEGIN on this engine (psycopg 3 only; else nothing)."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return
    event.listen(engine, "do_execute", _execute_with_begin)


def _opens_plain_transaction(dbapi: Any) -> bool:
    """Whether psycopg would open a transaction with a plain BEGIN before the next statement."""
    return (
        not dbapi.autocommit
        and dbapi.info.transaction_status == _IDLE
        and dbapi.isolation_level is None
        and dbapi.read_only is None
        and not dbapi.deferrable
    )


def _execute_with_begin(cursor: Any, statement: str, parameters: Any, context: Any) -> bool | None:
    """`do_execute` hook: a marked statement that opens its transaction goes out behind BEGIN in one query."""
    if not context.execution_options.get(BEGIN_TOGETHER):
        return None  # SQLAlchemy executes it as usual
    dbapi = cursor.connection
    if not _opens_plain_transaction(dbapi):
        return None
    import psycopg

    # The parameters bound by psycopg itself, as literals (its quoting, the connection's adapters): with no
    # parameters left, psycopg sends `BEGIN; <statement>` as one simple query, one write and one wait.
    query = "BEGIN; " + psycopg.ClientCursor(dbapi).mogrify(statement, parameters)
    dbapi.autocommit = True  # psycopg sends no BEGIN of its own; allowed: no transaction is open
    try:
        cursor.execute(query, prepare=False)  # a new text each time: never prepared (nor kept in the counts)
        if not cursor.nextset():  # pragma: no cover - the server answers both statements or raises
            raise RuntimeError("no result for the statement sent with BEGIN")
    finally:
        # The transaction is open (or failed, or the connection is gone): from here psycopg must treat the
        # connection as not autocommit again. Its public setter refuses inside a transaction, so the flag it
        # keeps is set; checked at once, so that a psycopg that renamed it fails here, not silently later.
        dbapi._autocommit = False
        if dbapi.autocommit:  # pragma: no cover - a psycopg whose internals changed
            raise RuntimeError("psycopg connection left in autocommit: storage/begin_together needs updating")
    return True
