"""The answer hot path: the draft and its newest form version read in one locked SELECT, read once."""

from __future__ import annotations

import dataclasses

from sqlalchemy import event
from sqlmodel import select

from bot.services import reports
from bot.services.forms import get_form, store_forms
from bot.views.notices import notice_template
from storage.db import session_scope
from storage.models import CommuneForm, Draft, FormVersion, Person
from tests.test_report_conversation import AN, bot  # noqa: F401  (the fixture)

FORM = "bao-cao-6-thang"


async def _start(bot) -> int:  # noqa: F811
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    with session_scope(bot.engine) as s:
        return s.exec(select(Person).where(Person.telegram_user_id == AN.id)).one().active_draft_id


async def test_locked_draft_brings_the_newest_version_in_use(bot) -> None:  # noqa: F811
    draft_id = await _start(bot)
    with session_scope(bot.engine) as s:
        newest = s.exec(select(FormVersion).where(FormVersion.form_id == FORM)).one()
        draft = reports._locked_draft(s, draft_id)
        assert draft is not None and draft.id == draft_id
        assert s.info[reports._NEWEST_READ][draft_id] == (newest.version, newest.checksum)
        assert reports._locked_draft(s, draft_id + 1000) is None
    with session_scope(bot.engine) as s:
        for row in s.exec(select(CommuneForm).where(CommuneForm.form_id == FORM)):
            row.active = False
    with session_scope(bot.engine) as s:
        reports._locked_draft(s, draft_id)
        assert s.info[reports._NEWEST_READ][draft_id] == (None, None)
        draft = s.get(Draft, draft_id)
        try:
            reports._load(s, draft, bot.clock())
        except reports.ReportRefused as refusal:
            assert notice_template(refusal.notice)[0] == "report/form_missing.html"
        else:  # pragma: no cover - the assertion
            raise AssertionError("a form no longer in use must be refused")


async def test_new_version_mid_draft_is_announced_on_the_next_answer(bot) -> None:  # noqa: F811
    draft_id = await _start(bot)
    await bot.send(AN, "3")
    with session_scope(bot.engine) as s:
        form = get_form(s, FORM)
        store_forms(s, [dataclasses.replace(form, version=form.version + 1)], now=bot.clock(), actor="test")
    await bot.send(AN, "8")
    texts = bot.texts(AN)
    assert any(f"phiên bản {form.version + 1}" in t for t in texts[-3:])
    with session_scope(bot.engine) as s:
        draft = s.get(Draft, draft_id)
        assert draft.form_version == form.version + 1
        assert draft.state["answers"]["so_buoi_tuyen_truyen"] == 3  # kept across the versions


async def test_a_text_answer_reads_its_draft_once(bot) -> None:  # noqa: F811
    await _start(bot)
    statements: list[str] = []

    def record(conn, cursor, statement, params, context, executemany) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(bot.engine, "before_cursor_execute", record)
    try:
        await bot.send(AN, "3")
    finally:
        event.remove(bot.engine, "before_cursor_execute", record)
    draft_reads = [st for st in statements if st.startswith(("SELECT draft.id", "WITH locked_draft"))]
    assert len(draft_reads) == 1, statements  # with the actor (bot.services.reports.load_actor_with_draft)
    assert not any(st.startswith("SELECT person") for st in statements), statements
    assert not any(st.startswith("SELECT form_version") for st in statements), statements
    assert sum(st.startswith("UPDATE draft") for st in statements) == 1


async def test_a_version_read_before_the_lock_wait_never_migrates_the_draft_backwards(bot) -> None:  # noqa: F811
    """PostgreSQL: the subqueries see the snapshot from before FOR UPDATE waited; if the other reporter
    meanwhile moved the draft to a version published in that wait, the stale (older) read is not used."""
    draft_id = await _start(bot)
    await bot.send(AN, "3")
    with session_scope(bot.engine) as s:
        old = s.exec(select(FormVersion).where(FormVersion.form_id == FORM)).one()
        old_version, old_checksum = old.version, old.checksum
        form = get_form(s, FORM)
        store_forms(s, [dataclasses.replace(form, version=form.version + 1)], now=bot.clock(), actor="test")
    await bot.send(AN, "8")  # the draft is now on the new version
    with session_scope(bot.engine) as s:
        draft = s.get(Draft, draft_id)
        assert draft.form_version == old_version + 1
        s.info.setdefault(reports._NEWEST_READ, {})[draft_id] = (old_version, old_checksum)  # the stale read
        newest, state, notices = reports._load(s, draft, bot.clock())
        assert newest.version == state.form_version == old_version + 1
        assert notices == []  # no "the form changed to version N-1"


async def test_forget_bumps_a_shared_drafts_rev_so_a_turn_that_read_it_before_cannot_write_it_back(
    bot,  # noqa: F811
) -> None:
    """forget_person drops the person from a shared draft's `seen` and bumps its write counter: a turn
    that read the draft earlier loses its compare-and-set (and retries) instead of writing the key back."""
    from bot.services.accounts import forget_person

    draft_id = await _start(bot)
    with session_scope(bot.engine) as turn:
        person = turn.exec(select(Person).where(Person.telegram_user_id == AN.id)).one()
        draft = turn.get(Draft, draft_id)
        person_id = person.id
        assert draft.owner_person_id is None and str(person_id) in draft.seen
        rev = reports._rev(draft)
        state = reports.DraftState.from_json(draft.state)
        with session_scope(bot.engine) as admin:
            forget_person(admin, person_id, bot.clock(), "cli:test")
        try:
            reports._save(draft, person, state, bot.clock())
        except reports.DraftConflict:
            turn.rollback()
        else:  # pragma: no cover - the assertion
            raise AssertionError("a turn that read the draft before forget must lose its write")
    with session_scope(bot.engine) as s:
        seen = s.get(Draft, draft_id).seen
        assert str(person_id) not in seen and seen[reports.REV] == rev + 1
