"""An answer's one read (`reports.load_actor_with_draft`): the actor and the draft it answers, locked, in one
statement; the same actor as `load_actor`, the draft taken once by the answer, then read again if needed."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bot.auth import load_actor
from bot.services import reports
from storage.db import make_engine, session_scope
from storage.models import Draft, FormVersion, Person
from tests.test_report_conversation import AN, BINH, CUONG, STRANGER, bot  # noqa: F401  (the fixture)

FORM = "bao-cao-6-thang"


async def _start(bot) -> int:  # noqa: F811
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    with session_scope(bot.engine) as s:
        return s.exec(select(Person).where(Person.telegram_user_id == AN.id)).one().active_draft_id


def _statements(session, work):
    seen: list[str] = []

    def record(conn, cursor, statement, params, context, executemany) -> None:
        seen.append(" ".join(statement.split()))

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", record)
    try:
        out = work()
    finally:
        event.remove(bind, "before_cursor_execute", record)
    return out, seen


async def test_the_same_actor_as_load_actor_for_everyone(bot) -> None:  # noqa: F811
    await _start(bot)
    for user in (AN, BINH, CUONG, STRANGER):
        with session_scope(bot.engine) as s:
            plain = load_actor(s, user.id)
        with session_scope(bot.engine) as s:
            joined, seen = _statements(s, lambda: reports.load_actor_with_draft(s, user.id))  # noqa: B023
            assert len(seen) == 1, seen
            assert joined.telegram_user_id == plain.telegram_user_id
            assert (joined.person.id if joined.person else None) == (
                plain.person.id if plain.person else None
            )
            assert [m.id for m in joined.memberships] == [m.id for m in plain.memberships]
            assert set(joined.villages) == set(plain.villages) and set(joined.communes) == set(plain.communes)
            assert joined.roles == plain.roles


async def test_the_active_draft_is_taken_once_without_a_statement_then_read_again(bot) -> None:  # noqa: F811
    draft_id = await _start(bot)
    with session_scope(bot.engine) as s:
        newest = s.exec(select(FormVersion).where(FormVersion.form_id == FORM)).one()
        actor = reports.load_actor_with_draft(s, AN.id)
        assert actor.person is not None and actor.person.active_draft_id == draft_id
        draft, seen = _statements(s, lambda: reports._locked_draft(s, draft_id))
        assert seen == [] and draft is not None and draft.id == draft_id
        assert s.info[reports._NEWEST_READ][draft_id] == (newest.version, newest.checksum)
        again, seen = _statements(s, lambda: reports._locked_draft(s, draft_id))  # a retry reads it afresh
        assert again is draft and len(seen) == 1 and seen[0].startswith("SELECT draft.id")


async def test_a_named_draft_is_read_instead_of_the_active_one(bot) -> None:  # noqa: F811
    draft_id = await _start(bot)
    with session_scope(bot.engine) as s:
        reports.load_actor_with_draft(s, AN.id, draft_id + 1000)  # no such draft: known absent
        assert s.info[reports._READ_LOCKED] == {draft_id + 1000: None}
        missing, seen = _statements(s, lambda: reports._locked_draft(s, draft_id + 1000))
        assert missing is None and seen == []
    with session_scope(bot.engine) as s:
        reports.load_actor_with_draft(s, BINH.id, draft_id)  # the deputy presses a button of the shared draft
        draft, seen = _statements(s, lambda: reports._locked_draft(s, draft_id))
        assert seen == [] and draft is not None and draft.id == draft_id


async def test_no_active_draft_keeps_nothing_and_a_removed_one_is_known_absent(bot) -> None:  # noqa: F811
    with session_scope(bot.engine) as s:
        reports.load_actor_with_draft(s, AN.id)
        reports.load_actor_with_draft(s, STRANGER.id)
        assert not s.info.get(reports._READ_LOCKED)
    draft_id = await _start(bot)
    with session_scope(bot.engine) as s:
        s.delete(s.get(Draft, draft_id))
    with session_scope(bot.engine) as s:
        reports.load_actor_with_draft(s, AN.id)
        assert s.info[reports._READ_LOCKED] == {draft_id: None}
        gone, seen = _statements(s, lambda: reports._locked_draft(s, draft_id))
        assert gone is None and seen == []


async def test_a_text_answer_after_the_draft_was_removed_is_explained(bot) -> None:  # noqa: F811
    draft_id = await _start(bot)
    await bot.send(AN, "3")
    with session_scope(bot.engine) as s:
        s.delete(s.get(Draft, draft_id))
    before = len(bot.texts(AN))
    await bot.send(AN, "4")
    assert len(bot.texts(AN)) > before
    assert "Câu 2/" not in bot.texts(AN)[-1]  # not taken as the answer to the next question


async def test_the_draft_stays_locked_until_the_answer_commits(bot, db_backend) -> None:  # noqa: F811
    if db_backend != "postgresql":
        pytest.skip("SQLite has one writer and no row locks")
    draft_id = await _start(bot)
    other = make_engine(bot.engine.url.render_as_string(hide_password=False))
    try:
        with session_scope(bot.engine) as s:
            reports.load_actor_with_draft(s, AN.id)
            with other.connect() as conn, pytest.raises(OperationalError, match="could not obtain lock"):
                conn.execute(text("SELECT id FROM draft WHERE id = :id FOR UPDATE NOWAIT"), {"id": draft_id})
            with other.connect() as conn:  # the actor's rows are not locked
                conn.execute(text("SELECT id FROM person FOR UPDATE NOWAIT")).all()
        with other.connect() as conn:  # committed: free again
            conn.execute(
                text("SELECT id FROM draft WHERE id = :id FOR UPDATE NOWAIT"), {"id": draft_id}
            ).one()
    finally:
        other.dispose()
