"""An update's first statement sent with its transaction's BEGIN (storage/begin_together), and what must not
change: the transaction stays one atomic unit whatever fails (the statement sent with BEGIN, a lock timeout, a cut
connection, a lost compare-and-set), a redelivered update is still recorded once, every connection goes back
to the pool not in autocommit, and any other transaction still opens with psycopg's own BEGIN. Round trips
are read from libpq's protocol trace (tests/support/pgtrace), not assumed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, exc, func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.begin_together import BEGIN_TOGETHER, SENT_AHEAD
from storage.db import make_engine, session_scope
from storage.models import Draft, ProcessedUpdate
from storage.outage import is_outage
from storage.processed_updates import first_delivery
from tests.support.pgtrace import round_trips
from tests.test_report_conversation import AN, answer_in_another_process, bot  # noqa: F401  (the fixture)

NOW = datetime(2026, 5, 15, 2, 0, tzinfo=UTC)
LOCK = (0x62630001, 7)  # a chat's advisory lock (namespace, key), as bot/updates/pipeline takes it
OTHER_LOCK = (0x62630001, 8)


@pytest.fixture
def pg(db_backend: str) -> None:
    if db_backend != "postgresql":
        pytest.skip("PostgreSQL's BEGIN round trip")


@pytest.fixture
def checkins(engine: Engine) -> Iterator[list[bool]]:
    """Whether each connection given back to the pool was in autocommit (it never must be)."""
    seen: list[bool] = []

    def checkin(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None and not dbapi_connection.closed:
            seen.append(bool(dbapi_connection.autocommit))

    event.listen(engine, "checkin", checkin)
    yield seen
    event.remove(engine, "checkin", checkin)


def _recorded(engine: Engine, update_id: int) -> int:
    with session_scope(engine) as s:
        return s.execute(
            select(func.count()).select_from(ProcessedUpdate).where(ProcessedUpdate.update_id == update_id)
        ).scalar_one()


def _without_ping(trips: list[list[str]]) -> list[list[str]]:
    ping = [["SELECT 1"]]  # storage/db's check of a connection that rested (outside a transaction)
    trips = trips[len(ping) :] if trips[: len(ping)] == ping else trips
    return [trip for trip in trips if trip != ["PREPARE ahead"]]  # once a connection: pinned on its own below


def test_only_psycopg_engines_hook_their_statements(engine: Engine, db_backend: str) -> None:
    """SQLite's path is unchanged: no hook, and the update id is still recorded once."""
    assert bool(engine.dialect.dispatch.do_execute) == (db_backend == "postgresql")
    with session_scope(engine) as s:
        assert first_delivery(s, 11, NOW, lock=LOCK if db_backend == "postgresql" else None) is True
    with session_scope(engine) as s:
        assert first_delivery(s, 11, NOW) is False  # a redelivery
    assert _recorded(engine, 11) == 1


def test_the_claim_travels_with_begin_and_the_transaction_stays_one_unit(
    pg: None, engine: Engine, checkins: list[bool]
) -> None:
    with round_trips(engine) as checkouts, pytest.raises(RuntimeError), session_scope(engine) as s:
        assert first_delivery(s, 21, NOW, lock=LOCK) is True
        dbapi = s.connection().connection.dbapi_connection
        assert dbapi.autocommit is False and dbapi.info.transaction_status.name == "INTRANS"
        assert first_delivery(s, 22, NOW) is True  # inside the open transaction: sent on its own
        raise RuntimeError("the handler failed")
    assert [_without_ping(t) for t in checkouts] == [
        [["BEGIN", "WITH chat_lock"], ["INSERT INTO"], ["ROLLBACK"]]
    ]
    assert _recorded(engine, 21) == 0 and _recorded(engine, 22) == 0  # both rolled back
    assert checkins and not any(checkins)


def test_any_other_transaction_opens_with_psycopgs_own_begin(pg: None, engine: Engine) -> None:
    with round_trips(engine) as checkouts, session_scope(engine) as s:
        s.execute(text("SELECT 1")).one()
        assert first_delivery(s, 31, NOW, lock=LOCK) is True  # the transaction is open: no second BEGIN
    assert [_without_ping(t) for t in checkouts] == [
        [["BEGIN"], ["SELECT 1"], ["WITH chat_lock"], ["COMMIT"]]
    ]
    assert _recorded(engine, 31) == 1


def test_a_statement_failing_with_its_begin_rolls_back_and_the_connection_is_reused_sanely(
    pg: None, engine: Engine, checkins: list[bool]
) -> None:
    failing = text("SELECT 1 / 0").execution_options(**{BEGIN_TOGETHER: True})
    with pytest.raises(exc.DataError), session_scope(engine) as s:  # wrapped by SQLAlchemy as any error
        s.execute(failing)
    for update_id in (41, 42):  # the same pooled connections go on, each transaction whole
        with round_trips(engine) as checkouts, session_scope(engine) as s:
            assert first_delivery(s, update_id, NOW, lock=LOCK) is True
        assert [_without_ping(t) for t in checkouts] == [[["BEGIN", "WITH chat_lock"], ["COMMIT"]]]
    assert _recorded(engine, 41) == 1 and _recorded(engine, 42) == 1
    assert checkins and not any(checkins)


def test_a_redelivery_racing_the_first_delivery_waits_then_is_a_duplicate(
    pg: None, engine: Engine, other_engine: Engine
) -> None:
    """Two workers get the same update: the second finds the chat locked, and once the first committed,
    its retry inside its own open transaction (not sent with a BEGIN again) finds the id recorded."""
    with Session(other_engine) as first, round_trips(engine) as checkouts:
        assert first_delivery(first, 51, NOW, lock=LOCK) is True
        with session_scope(engine) as second:
            assert first_delivery(second, 51, NOW, lock=LOCK) is None  # the chat is busy
            first.commit()
            assert first_delivery(second, 51, NOW, lock=LOCK) is False  # a redelivery
    assert [_without_ping(t) for t in checkouts] == [
        [["BEGIN", "WITH chat_lock"], ["WITH chat_lock"], ["COMMIT"]]
    ]
    assert _recorded(engine, 51) == 1


def test_a_claim_that_times_out_on_a_lock_writes_nothing_and_is_an_outage(
    pg: None, database_url: str, other_engine: Engine
) -> None:
    """Another transaction recorded the same update id and has not finished: the claim sent with BEGIN waits on
    it for lock_timeout, fails as an outage (try again), and nothing of it stays."""
    quick = make_engine(database_url, lock_timeout=0.2)
    try:
        with Session(other_engine) as holder:
            assert first_delivery(holder, 61, NOW, lock=OTHER_LOCK) is True  # not committed yet
            with pytest.raises(exc.OperationalError) as failed, session_scope(quick) as s:
                first_delivery(s, 61, NOW, lock=LOCK)
            assert is_outage(failed.value) and "lock timeout" in str(failed.value.orig)
            holder.rollback()  # the first worker failed too: the update was never processed
        with session_scope(quick) as s:  # Telegram sends it again: recorded now, once
            assert first_delivery(s, 61, NOW, lock=LOCK) is True
        assert _recorded(quick, 61) == 1
    finally:
        quick.dispose()


def _terminate(other_engine: Engine, pid: int) -> None:
    with session_scope(other_engine) as s:
        assert s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()


def test_a_connection_cut_before_the_claim_sent_with_begin_is_an_outage_and_the_next_update_works(
    pg: None, engine: Engine, other_engine: Engine
) -> None:
    with pytest.raises(exc.OperationalError) as failed, session_scope(engine) as s:
        _terminate(other_engine, s.connection().connection.dbapi_connection.info.backend_pid)
        first_delivery(s, 71, NOW, lock=LOCK)
    assert is_outage(failed.value)
    assert _recorded(engine, 71) == 0
    with session_scope(engine) as s:  # the pool hands out a live connection
        assert first_delivery(s, 71, NOW, lock=LOCK) is True
    assert _recorded(engine, 71) == 1


def test_a_connection_cut_after_the_claim_sent_with_begin_rolls_it_back(
    pg: None, engine: Engine, other_engine: Engine, checkins: list[bool]
) -> None:
    with pytest.raises(exc.OperationalError) as failed, session_scope(engine) as s:
        assert first_delivery(s, 81, NOW, lock=LOCK) is True
        _terminate(other_engine, s.connection().connection.dbapi_connection.info.backend_pid)
        s.execute(text("SELECT 1"))
    assert is_outage(failed.value)
    assert _recorded(engine, 81) == 0  # never committed: the redelivery will be processed
    with session_scope(engine) as s:
        assert first_delivery(s, 81, NOW, lock=LOCK) is True
    assert _recorded(engine, 81) == 1 and not any(checkins)


async def test_a_lost_compare_and_set_after_the_claim_sent_with_begin_leaves_nothing_half_written(
    pg: None,
    bot,  # noqa: F811
) -> None:
    """A turn whose draft another process wrote since it was read: the compare-and-set refuses the stale
    copy, and the transaction that recorded the update id with its BEGIN is rolled back whole. (PostgreSQL:
    on SQLite the claim's write would hold the one write lock the other writer needs; its lost
    compare-and-set is tests/test_report_conversation.py's.)"""
    from bot.services import reports
    from storage.models import Person

    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.send(AN, "7")
    with pytest.raises(reports.DraftConflict), session_scope(bot.engine) as s:
        assert first_delivery(s, 91, bot.clock(), lock=LOCK) is True
        stale = s.execute(select(Draft)).scalar_one()
        an = s.execute(select(Person).where(Person.telegram_user_id == AN.id)).scalar_one()
        answer_in_another_process(bot, AN, stale.id, "40")  # question 2, committed
        reports._save(stale, an, reports.DraftState.from_json(stale.state), bot.clock())
    assert _recorded(bot.engine, 91) == 0  # the update id went with the failed turn
    with session_scope(bot.engine) as s:
        answers = s.execute(select(Draft)).scalar_one().state["answers"]
    assert (
        answers["so_buoi_tuyen_truyen"] == 7 and answers["so_luot_nguoi_du"] == 40
    )  # the other's answer kept


def test_parameters_sent_with_begin_are_bound_as_values_never_as_sql(pg: None, engine: Engine) -> None:
    """The statement sent with BEGIN has its parameters bound client-side (psycopg's own quoting): text that
    looks like SQL, a NUL-free odd string, a time with its zone and a big id come back as they went."""
    tricky = "x'); COMMIT; DROP TABLE processed_update; --\\ ' \" ; $$"
    echo = text("SELECT :s AS s, :at AS at, :n AS n").execution_options(**{BEGIN_TOGETHER: True})
    with round_trips(engine) as checkouts, session_scope(engine) as s:
        row = s.execute(echo, {"s": tricky, "at": NOW, "n": 2**62}).one()
        assert s.connection().connection.dbapi_connection.info.transaction_status.name == "INTRANS"
    assert (row.s, row.at, row.n) == (tricky, NOW, 2**62)
    assert len(_without_ping(checkouts[0])) == 2  # BEGIN with the statement, then COMMIT
    with session_scope(engine) as s:
        assert first_delivery(s, 101, NOW, lock=LOCK) is True  # the table is still there


# A read sent ahead with the claim (READ_AHEAD): answered from its waiting result only when it is the very next
# statement of the same transaction with the same parameters; otherwise it goes to the server as usual.
COUNT_FROM = text("SELECT count(*) FROM processed_update WHERE update_id >= :lo").execution_options(
    **{SENT_AHEAD: True}
)
LOCK_ROW = text("SELECT update_id FROM processed_update WHERE update_id = :uid FOR UPDATE").execution_options(
    **{SENT_AHEAD: True}
)


def test_a_read_sent_ahead_travels_with_the_claim_and_sees_what_the_server_would(
    pg: None, engine: Engine
) -> None:
    with round_trips(engine) as checkouts, session_scope(engine) as s:
        assert first_delivery(s, 201, NOW, lock=LOCK, read_ahead=(COUNT_FROM, {"lo": 201})) is True
        assert s.execute(COUNT_FROM, {"lo": 201}).scalar_one() == 1  # the claim's own row: read after it ran
    assert [_without_ping(t) for t in checkouts] == [
        [["BEGIN", "WITH chat_lock", "EXECUTE ahead"], ["COMMIT"]]
    ]


def test_a_read_sent_ahead_is_dropped_by_a_statement_before_it_other_parameters_or_a_new_transaction(
    pg: None, engine: Engine, other_engine: Engine
) -> None:
    with round_trips(engine) as checkouts:
        with session_scope(engine) as s:  # another statement first: the read goes out and sees its row
            assert first_delivery(s, 211, NOW, lock=LOCK, read_ahead=(COUNT_FROM, {"lo": 211})) is True
            assert first_delivery(s, 212, NOW) is True
            assert s.execute(COUNT_FROM, {"lo": 211}).scalar_one() == 2
        with session_scope(engine) as s:  # other parameters: goes out
            assert first_delivery(s, 213, NOW, lock=LOCK, read_ahead=(COUNT_FROM, {"lo": 211})) is True
            assert s.execute(COUNT_FROM, {"lo": 212}).scalar_one() == 2
        with session_scope(engine) as s:  # sent ahead, never read: committed with the transaction
            assert first_delivery(s, 214, NOW, lock=LOCK, read_ahead=(COUNT_FROM, {"lo": 211})) is True
        with session_scope(other_engine) as other:  # another worker's row meanwhile
            assert first_delivery(other, 215, NOW) is True
        with session_scope(engine) as s:  # the same read opening a transaction: fresh, from the server
            assert s.execute(COUNT_FROM, {"lo": 211}).scalar_one() == 5
    ahead = ["BEGIN", "WITH chat_lock", "EXECUTE ahead"]
    assert [_without_ping(t) for t in checkouts] == [
        [ahead, ["INSERT INTO"], ["SELECT count(*)"], ["COMMIT"]],
        [ahead, ["SELECT count(*)"], ["COMMIT"]],
        [ahead, ["COMMIT"]],
        [["BEGIN"], ["SELECT count(*)"], ["COMMIT"]],
    ]


def test_a_read_sent_ahead_that_fails_fails_the_claim_and_nothing_stays(
    pg: None, engine: Engine, checkins: list[bool]
) -> None:
    failing = text("SELECT 1 / :zero").execution_options(**{SENT_AHEAD: True})
    with pytest.raises(exc.DataError), session_scope(engine) as s:
        first_delivery(s, 221, NOW, lock=LOCK, read_ahead=(failing, {"zero": 0}))
    assert _recorded(engine, 221) == 0
    with session_scope(engine) as s:  # the connection goes on sanely
        assert first_delivery(s, 221, NOW, lock=LOCK, read_ahead=(COUNT_FROM, {"lo": 221})) is True
        assert s.execute(COUNT_FROM, {"lo": 221}).scalar_one() == 1
    assert _recorded(engine, 221) == 1 and checkins and not any(checkins)


async def test_a_claim_finding_its_chat_busy_lets_go_of_what_its_read_sent_ahead_locked(
    pg: None, engine: Engine, other_engine: Engine
) -> None:
    """The read sent ahead runs even when the chat's lock is taken (the claim's answer comes with it): it may
    lock a row the worker holding the chat needs. The waiting claim rolls that back before it sleeps, so the
    holder never waits for it; once the holder commits, the claim goes through and its read is answered."""
    import asyncio

    from bot.updates.pipeline import CHAT_LOCK_NAMESPACE, chat_lock_key, claim_update

    chat = 4242
    with session_scope(engine) as s:
        assert first_delivery(s, 230, NOW) is True  # the row the read locks
    with Session(other_engine) as holder, session_scope(engine) as s:
        assert first_delivery(holder, 231, NOW, lock=(CHAT_LOCK_NAMESPACE, chat_lock_key(chat))) is True
        claim = asyncio.create_task(claim_update(s, 232, NOW, chat, read_ahead=(LOCK_ROW, {"uid": 230})))
        await asyncio.sleep(0)  # the claim's first try ran, found the chat busy, and now waits
        assert not claim.done()
        holder.execute(text("SET LOCAL lock_timeout = '2s'"))
        assert holder.execute(LOCK_ROW, {"uid": 230}).scalar_one() == 230  # not kept waiting (nor timed out)
        holder.commit()
        assert await claim is True
        assert s.execute(LOCK_ROW, {"uid": 230}).scalar_one() == 230
    assert _recorded(engine, 231) == 1 and _recorded(engine, 232) == 1


def test_a_read_sent_ahead_is_ignored_on_sqlite(engine: Engine, db_backend: str) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite's path")
    with session_scope(engine) as s:
        assert first_delivery(s, 241, NOW, read_ahead=(COUNT_FROM, {"lo": 241})) is True
        assert s.execute(COUNT_FROM, {"lo": 241}).scalar_one() == 1


def test_a_read_sent_ahead_is_prepared_once_a_connection_and_again_after_a_rollback_dropped_it(
    pg: None, engine: Engine
) -> None:
    """The read goes out as `EXECUTE` of a statement prepared on the server once a connection. psycopg
    deallocates every prepared statement when a transaction rolls back (once it prepared some of its own): the
    read is then prepared again, never executed unprepared."""
    often = text("SELECT :n + 1")  # run often enough on one connection for psycopg to prepare it itself
    with round_trips(engine) as checkouts, engine.connect() as conn:
        s = Session(bind=conn)
        for update_id in (251, 252):
            assert first_delivery(s, update_id, NOW, lock=LOCK, read_ahead=(COUNT_FROM, {"lo": 251})) is True
            assert s.execute(COUNT_FROM, {"lo": 251}).scalar_one() == update_id - 250
            s.commit()
        for n in range(8):
            s.execute(often, {"n": n}).scalar_one()
        s.rollback()  # psycopg: DEALLOCATE ALL
        assert first_delivery(s, 253, NOW, lock=LOCK, read_ahead=(COUNT_FROM, {"lo": 251})) is True
        assert s.execute(COUNT_FROM, {"lo": 251}).scalar_one() == 3
        s.commit()
        s.close()
    trips = checkouts[0] if checkouts else []
    assert trips.count(["PREPARE ahead"]) == 2, trips
    assert [t for t in trips if "EXECUTE ahead" in t] == [["BEGIN", "WITH chat_lock", "EXECUTE ahead"]] * 3
    assert ["DEALLOCATE ALL"] in trips  # what made the second PREPARE needed
    assert _recorded(engine, 253) == 1


def test_a_read_deallocated_behind_our_back_is_prepared_again_and_the_claim_goes_through(
    pg: None, engine: Engine
) -> None:
    with round_trips(engine) as checkouts, engine.connect() as conn:
        s = Session(bind=conn)
        assert first_delivery(s, 261, NOW, lock=LOCK, read_ahead=(COUNT_FROM, {"lo": 261})) is True
        s.commit()
        dbapi = conn.connection.dbapi_connection
        dbapi.autocommit = True
        dbapi.pgconn.exec_(b"DEALLOCATE ALL")  # under psycopg itself: nothing told us
        dbapi.autocommit = False
        assert first_delivery(s, 262, NOW, lock=LOCK, read_ahead=(COUNT_FROM, {"lo": 261})) is True
        assert s.execute(COUNT_FROM, {"lo": 261}).scalar_one() == 2  # answered from the query sent ahead
        s.commit()
        s.close()
    ahead = ["BEGIN", "WITH chat_lock", "EXECUTE ahead"]
    assert _without_ping(checkouts[0]) == [
        ahead,
        ["COMMIT"],
        ["DEALLOCATE ALL"],
        ahead,
        ["ROLLBACK"],
        ahead,
        ["COMMIT"],
    ]
    assert checkouts[0].count(["PREPARE ahead"]) == 2
    assert _recorded(engine, 261) == 1 and _recorded(engine, 262) == 1


def test_the_ping_of_a_rested_connection_is_one_round_trip_outside_a_transaction(
    pg: None, engine: Engine
) -> None:
    """storage/db pings a connection that rested: `SELECT 1` alone (no BEGIN, no ROLLBACK, after which psycopg
    would deallocate every prepared statement), and the connection goes on in transactions as before."""
    import tempfile

    import psycopg

    from storage import db
    from tests.support.pgtrace import exchanges

    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        with tempfile.TemporaryFile() as handle:
            dbapi.pgconn.trace(handle.fileno())
            dbapi.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            db._ping(dbapi)
            dbapi.pgconn.untrace()
            handle.seek(0)
            trace = handle.read().decode()
        assert exchanges(trace, {}) == [["SELECT 1"]]
        assert dbapi.autocommit is False and dbapi.info.transaction_status.name == "IDLE"
    with session_scope(engine) as s:
        assert first_delivery(s, 271, NOW, lock=LOCK) is True
    assert _recorded(engine, 271) == 1


def test_the_prepared_read_is_the_sql_sqlalchemy_runs_for_it(pg: None, engine: Engine) -> None:
    """The statement prepared on the server (compiled with `$n` parameters) is, parameter for parameter, the SQL
    SQLAlchemy compiles for the read on this engine: the result served for it is that read's."""
    import re

    from bot.services import reports
    from storage.begin_together import _ahead

    read, params = reports.actor_and_draft_read(5, None)
    ahead = _ahead(read, engine.dialect)
    numbered = ahead.prepare.removeprefix(f"PREPARE {ahead.name} AS ")
    as_named = re.sub(r"\$(\d+)", lambda m: f"%({ahead.order[int(m.group(1)) - 1]})s", numbered)
    assert as_named == ahead.compiled.string
    assert set(ahead.order) == set(ahead.compiled.construct_params(params))
    assert _ahead(read, engine.dialect) is ahead  # compiled once
