"""What one answer costs the database, pinned as counts (not times): SQL statements, transactions, and on
PostgreSQL the round trips to the server.

A text answer and a button answer each run in one transaction of three statements on either database:
the update id recorded (on PostgreSQL together with the chat's advisory lock, in one statement), the
person and their roles with the draft read locked and its form's newest version (one statement), the
draft's compare-and-set. On PostgreSQL that is 3 round trips, counted from libpq's protocol trace
(tests/support/pgtrace): BEGIN sent with the first statement and the read sent ahead behind it as a statement
prepared on the server (storage/begin_together), the compare-and-set, COMMIT. `bench/README.md` ("Conversation turns") has the round trips before and after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event

from tests.support.pgtrace import round_trips
from tests.test_report_conversation import AN, bot  # noqa: F401  (the fixture)

CHOICES = ("more:n", "ok:0", "d:yday", "c:0", "n", "skip")  # as bench/turns.py answers a screen


async def _start(bot) -> None:  # noqa: F811
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])


async def _counted(bot, turn: Callable[[], Awaitable[Any]]) -> dict[str, Any]:  # noqa: F811
    """The statements one update ran, and how many transactions began and committed."""
    seen: dict[str, Any] = {"statements": [], "full": [], "begin": 0, "commit": 0}

    def statement(conn, cursor, text, params, context, executemany) -> None:
        seen["statements"].append(" ".join(text.split())[:60])
        seen["full"].append(" ".join(text.split()))

    def begin(conn) -> None:
        seen["begin"] += 1

    def commit(conn) -> None:
        seen["commit"] += 1

    listeners = (("before_cursor_execute", statement), ("begin", begin), ("commit", commit))
    for name, fn in listeners:
        event.listen(bot.engine, name, fn)
    try:
        if bot.engine.dialect.name == "postgresql":
            with round_trips(bot.engine) as checkouts:
                await turn()
            seen["trips"] = [_without_ping(trips) for trips in checkouts]
        else:
            await turn()
    finally:
        for name, fn in listeners:
            event.remove(bot.engine, name, fn)
    return seen


PING = [["SELECT 1"]]  # storage/db's check of a connection that rested over 1 s (outside a transaction)


PREPARE = [["PREPARE ahead"]]  # the answer's read prepared on the server, once per pooled connection


def _without_ping(trips: list[list[str]]) -> list[list[str]]:
    """A checkout's round trips without the pool's ping, which only a connection that rested pays, nor the read's
    PREPARE, which a connection pays once (tests/test_hotpath_begin_together pins that)."""
    trips = trips[len(PING) :] if trips[: len(PING)] == PING else trips
    return trips[len(PREPARE) :] if trips[: len(PREPARE)] == PREPARE else trips


# The round trips of one answer on PostgreSQL: the transaction's BEGIN travels with its first statement, and
# the answer's read (the person, their roles, the draft locked) is sent ahead behind it
ANSWER_TRIPS = [["BEGIN", "WITH chat_lock", "EXECUTE ahead"], ["UPDATE draft"], ["COMMIT"]]


def _kinds(statements: list[str]) -> list[str]:
    return [" ".join(s.split()[:2]) for s in statements]


async def test_a_text_answer_is_one_transaction_of_three_statements(bot, db_backend) -> None:  # noqa: F811
    await _start(bot)
    seen = await _counted(bot, lambda: bot.send(AN, "3"))
    assert "Câu 2/" in bot.texts(AN)[-1]
    assert (seen["begin"], seen["commit"]) == (1, 1)
    first = "WITH chat_lock" if db_backend == "postgresql" else "INSERT INTO"
    assert _kinds(seen["statements"]) == [first, "WITH locked_draft", "UPDATE draft"], seen
    assert any("FOR UPDATE OF draft" in s for s in seen["full"]) == (db_backend == "postgresql")
    if db_backend == "postgresql":
        assert seen["trips"] == [ANSWER_TRIPS], seen["trips"]  # one checkout, 3 round trips


async def test_a_button_answer_is_one_transaction_of_three_statements(bot, db_backend) -> None:  # noqa: F811
    await _start(bot)
    for _ in range(40):  # answer numbers until a question with answer buttons comes
        tokens = [d.rsplit(":", 1)[-1] for d in bot.last_keyboard(AN)[1]]
        data = bot.last_keyboard(AN)[1]
        pick = next((d for d in data for c in CHOICES if d.endswith(f":{c}")), None)
        if pick is not None:
            break
        assert "confirm" not in tokens
        await bot.send(AN, "3")
    else:  # pragma: no cover - the assertion
        raise AssertionError("no question with answer buttons")
    before = len(bot.texts(AN))
    seen = await _counted(bot, lambda: bot.press(AN, pick, message_id=bot.last_keyboard(AN)[0]))
    assert len(bot.texts(AN)) > before
    assert (seen["begin"], seen["commit"]) == (1, 1)
    first = "WITH chat_lock" if db_backend == "postgresql" else "INSERT INTO"
    assert _kinds(seen["statements"]) == [first, "WITH locked_draft", "UPDATE draft"], seen
    assert any("FOR UPDATE OF draft" in s for s in seen["full"]) == (db_backend == "postgresql")
    if db_backend == "postgresql":
        assert seen["trips"] == [ANSWER_TRIPS], seen["trips"]


async def test_a_redelivered_answer_costs_one_statement_and_changes_nothing(bot, db_backend) -> None:  # noqa: F811
    from tests.support.client import text_update

    await _start(bot)
    update = text_update(AN, "3", 900_001)
    await bot.feed(update)
    texts = len(bot.texts(AN))
    seen = await _counted(bot, lambda: bot.feed(update))
    assert len(bot.texts(AN)) == texts  # not answered twice
    first = "WITH chat_lock" if db_backend == "postgresql" else "INSERT INTO"
    assert _kinds(seen["statements"]) == [first], seen
    if db_backend == "postgresql":  # nothing written: the lock and the id in one round trip with BEGIN (and
        # the answer's read sent ahead with them, unused: what a redelivery is is only known from the claim)
        assert seen["trips"] == [[["BEGIN", "WITH chat_lock", "EXECUTE ahead"], ["COMMIT"]]], seen["trips"]
