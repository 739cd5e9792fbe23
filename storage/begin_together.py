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

A marked statement may also carry, in the execution option `READ_AHEAD`, the read its transaction will run
next (a statement marked `SENT_AHEAD` and its parameters): it then goes out in the same query,
`BEGIN; <statement>; <read>`, and its result waits on the connection. When the read is executed next on that
connection, with the same SQL and parameters, it is answered from that result without a round trip; anything
else executed first, or a new transaction, drops the result, and the read goes to the server as usual. In
READ COMMITTED the read takes its own snapshot after the statement before it has run (each statement of a
simple query does), so it sees what a read sent on its own would see.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

BEGIN_TOGETHER = "begin_together"  # execution option: send this statement with its transaction's BEGIN
READ_AHEAD = "read_ahead"  # execution option of a BEGIN_TOGETHER statement: (read, params) sent behind it
SENT_AHEAD = "sent_ahead"  # execution option: this read may be answered from a READ_AHEAD result
_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open on the connection
_INTRANS = 2  # psycopg.pq.TransactionStatus.INTRANS: idle inside an open transaction
# psycopg connection -> (sql, params, result) of the read sent ahead in its open transaction
_WAITING: weakref.WeakKeyDictionary[Any, tuple[str, Any, Any]] = weakref.WeakKeyDictionary()


def install(engine: Engine) -> None:
    """Send statements marked `BEGIN_TOGETHER` with their BEGIN on this engine (psycopg 3 only; else nothing)."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return
    event.listen(engine, "do_execute", _execute_with_begin)
    event.listen(engine, "do_execute_no_params", _drop_waiting_before)  # anything else run before a read
    event.listen(engine, "do_executemany", _drop_waiting_before)  # sent ahead drops it
    event.listen(engine, "begin", _drop_waiting)  # a read sent ahead never outlives its transaction
    # psycopg deallocates every prepared statement when a transaction rolls back (if it prepared any of its own):
    # after a rollback the reads sent ahead are prepared again
    event.listen(engine, "rollback", _forget_prepared)
    event.listen(engine, "reset", _forget_prepared_on_reset)


def _opens_plain_transaction(dbapi: Any) -> bool:
    """Whether psycopg would open a transaction with a plain BEGIN before the next statement."""
    return (
        not dbapi.autocommit
        and dbapi.info.transaction_status == _IDLE
        and dbapi.isolation_level is None
        and dbapi.read_only is None
        and not dbapi.deferrable
    )


def _drop_waiting(conn: Any) -> None:
    """`begin` hook: a new transaction on this connection; a read sent ahead in an earlier one is dropped."""
    if _WAITING:
        _WAITING.pop(conn.connection.dbapi_connection, None)


class _Ahead:
    """A read sent ahead, compiled once: as SQLAlchemy executes it (`compiled`, to know it when it comes) and
    as a server-side prepared statement `name` with `$n` parameters in the order `order`."""

    def __init__(self, read: Any, dialect: Any, number: int) -> None:
        self.read = read
        self.compiled = read.compile(dialect=dialect)
        numbered = read.compile(dialect=type(dialect)(paramstyle="numeric_dollar"))
        self.name = f"baocao_ahead_{number}"
        self.prepare = f"PREPARE {self.name} AS {numbered.string}"
        self.order: tuple[str, ...] = tuple(dict.fromkeys(numbered.positiontup or ()))
        self.execute = f"EXECUTE {self.name}({', '.join(['%s'] * len(self.order))})"


def _ahead(read: Any, dialect: Any) -> _Ahead:
    """`read` compiled for `dialect`, once (the reads sent ahead are module-level statements); each read its
    own prepared statement's name, whichever update thread compiles it first."""
    found = _AHEAD.get(id(read))
    if found is None or found.read is not read:
        with _AHEAD_LOCK:
            found = _AHEAD.get(id(read))
            if found is None or found.read is not read:
                found = _AHEAD[id(read)] = _Ahead(read, dialect, next(_NUMBERS))
    return found


_AHEAD: dict[int, _Ahead] = {}
_AHEAD_LOCK = threading.Lock()
_NUMBERS = itertools.count(1)
# psycopg connection -> the names of the reads prepared on it (PREPARE outlives transactions and rollbacks)
_PREPARED: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _execute_with_begin(cursor: Any, statement: str, parameters: Any, context: Any) -> bool | None:
    """`do_execute` hook: a marked statement that opens its transaction goes out behind BEGIN in one query
    (with the read sent ahead behind it, if any); a read sent ahead is answered from its waiting result."""
    options = context.execution_options
    if options.get(SENT_AHEAD):
        return _answer_from_waiting(cursor, statement, parameters, context)
    # another statement first: the read sent ahead goes out on its own
    _drop_waiting_before(cursor, statement)
    if not options.get(BEGIN_TOGETHER):
        return None  # SQLAlchemy executes it as usual
    dbapi = cursor.connection
    if not _opens_plain_transaction(dbapi):
        return None
    import psycopg

    # The parameters bound by psycopg itself, as literals (its quoting, the connection's adapters): with no
    # parameters left, psycopg sends `BEGIN; <statement>` as one simple query, one write and one wait.
    mogrify = psycopg.ClientCursor(dbapi).mogrify
    query = "BEGIN; " + mogrify(statement, parameters)
    wanted = options.get(READ_AHEAD)
    ahead = _ahead(wanted[0], context.dialect) if wanted is not None else None
    dbapi.autocommit = True  # psycopg sends no BEGIN of its own; allowed: no transaction is open
    try:
        if ahead is not None:  # the read as a prepared statement: the server plans it once per connection
            read_params = ahead.compiled.construct_params(wanted[1])
            if _prepare(cursor, ahead):
                query += "; " + mogrify(ahead.execute, [read_params[key] for key in ahead.order])
            else:  # pragma: no cover - a read the server refused to prepare goes out alone, as before
                ahead = None
        try:
            cursor.execute(
                query, prepare=False
            )  # a new text each time: never prepared (nor kept in the counts)
        except psycopg.errors.InvalidSqlStatementName:
            if ahead is None:  # pragma: no cover - only the read sent ahead is prepared here
                raise
            _prepare_again(cursor, ahead)  # something deallocated the read behind our back
            cursor.execute(query, prepare=False)
        if not cursor.nextset():  # pragma: no cover - the server answers both statements or raises
            raise RuntimeError("no result for the statement sent with BEGIN")
        # [BEGIN, the statement, the read]; the cursor stays on the statement's result. A psycopg that keeps
        # them elsewhere leaves the read to go out on its own (tests/test_turn_statements counts round trips)
        results = getattr(cursor, "_results", None) if ahead is not None else None
        if isinstance(results, list) and len(results) == 3:
            _WAITING[dbapi] = (ahead.compiled.string, read_params, results[2])
    finally:
        # The transaction is open (or failed, or the connection is gone): from here psycopg must treat the
        # connection as not autocommit again. Its public setter refuses inside a transaction, so the flag it
        # keeps is set; checked at once, so that a psycopg that renamed it fails here, not silently later.
        dbapi._autocommit = False
        if dbapi.autocommit:  # pragma: no cover - a psycopg whose internals changed
            raise RuntimeError("psycopg connection left in autocommit: storage/begin_together needs updating")
    return True


def _forget_prepared(conn: Any) -> None:
    """`rollback` hook: the reads prepared on this connection are deallocated with the rollback to come."""
    if not _PREPARED or conn.invalidated:  # an invalidated connection is closed, with what it prepared
        return
    _forget_if_rolling_back(conn.connection.dbapi_connection)


def _forget_prepared_on_reset(dbapi: Any, *_: Any) -> None:
    """Pool `reset` hook (a connection checked in): as `_forget_prepared`."""
    _forget_if_rolling_back(dbapi)


def _forget_if_rolling_back(dbapi: Any) -> None:
    """Forget what is prepared on `dbapi` when a rollback will be sent (psycopg sends none, and deallocates
    nothing, when no transaction is open)."""
    if _PREPARED and dbapi is not None and dbapi in _PREPARED and dbapi.info.transaction_status != _IDLE:
        del _PREPARED[dbapi]


def _prepare(cursor: Any, ahead: _Ahead) -> bool:
    """Prepare the read on the cursor's connection if it is not yet (one round trip, once per connection,
    outside any transaction); False when the server refused (the read then goes out on its own)."""
    dbapi = cursor.connection
    names = _PREPARED.setdefault(dbapi, set())
    if ahead.name in names:
        return True
    import psycopg

    try:
        cursor.execute(ahead.prepare, prepare=False)
    except psycopg.errors.DuplicatePreparedStatement:  # a rollback that did not deallocate it after all
        pass
    except psycopg.OperationalError:  # the connection or the server went: an outage, as for any statement
        raise
    except psycopg.DatabaseError:  # pragma: no cover - logged, and the read goes out as any statement
        log.warning("could not prepare the read sent ahead %s", ahead.name, exc_info=True)
        return False
    names.add(ahead.name)
    return True


def _prepare_again(cursor: Any, ahead: _Ahead) -> None:
    """The query failed because the server no longer had the read prepared: end the failed transaction it
    began (the connection is in autocommit for the call), prepare the read again; the caller sends it again."""
    cursor.execute("ROLLBACK", prepare=False)
    _PREPARED.pop(cursor.connection, None)
    log.info("the read sent ahead %s was no longer prepared on its connection: prepared again", ahead.name)
    if not _prepare(cursor, ahead):  # pragma: no cover - the server refused a statement it took before
        raise RuntimeError(f"could not prepare the read sent ahead {ahead.name} again")


def _answer_from_waiting(cursor: Any, statement: str, parameters: Any, context: Any) -> bool | None:
    """A read marked `SENT_AHEAD`: answered from the result sent ahead when it is this very read (same SQL
    and parameters, the next statement of the transaction); else executed as usual."""
    dbapi = cursor.connection
    waiting = _WAITING.pop(dbapi, None) if _WAITING else None
    if waiting is None or waiting[0] != statement or waiting[1] != parameters:
        return None
    if dbapi.info.transaction_status != _INTRANS:  # not inside the transaction it was sent in
        return None
    from psycopg.adapt import Transformer

    try:  # the cursor left as psycopg's own execute leaves it (`_start_query`, then `_set_results`)
        cursor._reset()
        cursor._last_query = None
        cursor._tx = Transformer(cursor)
        cursor._set_results([waiting[2]])
    except AttributeError:  # pragma: no cover - a psycopg whose internals changed: the read goes out alone
        return None  # (tests/test_turn_statements counts the round trips, so this fails there, not here)
    return True


def _drop_waiting_before(cursor: Any, statement: str, *args: Any) -> None:
    """`do_execute_no_params` / `do_executemany` hook: a statement run before the read sent ahead drops it."""
    if _WAITING:
        _WAITING.pop(cursor.connection, None)
