"""Reports: which are open for a village, drafts saved on every answer, submissions and amendments
(`open_reports`, `begin_periodic`, `begin_incident`, `feed`, `reopen`; `Outcome`, `ReportRefused`).

Design notes: docs/design-notes.md#botservicesreportspy
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, func, true, update
from sqlalchemy.orm import aliased, object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from bot.auth import Actor, actor_from_rows, actor_query
from bot.forms import engine
from bot.forms.alert_rule import alert_due
from bot.forms.events import Stale, Submitted
from bot.forms.inputs import Action, Input, Text
from bot.forms.model import Form
from bot.forms.parsing import clean_text
from bot.forms.state import DraftState
from bot.services.codes import ALPHABET
from bot.services.draft_rev import REV
from bot.services.forms import commune_forms, get_form
from bot.services.period_facts import draft_context
from bot.services.period_units import in_period_units, takes_part
from bot.services.report_notices import (
    Amending,
    Closed,
    DraftGone,
    DraftReset,
    FormChanged,
    FormIntro,
    FormMissing,
    MovedOn,
    Notice,
    NotOpen,
    NotYours,
)
from bot.texts.values import MAX_TITLE_SHOWN, cut
from storage import audit
from storage.begin_together import SENT_AHEAD
from storage.locks import for_update, for_update_of
from storage.models import CommuneForm, Draft, FormVersion, Period, Person, Reopening, Submission, Village

DEFAULT_REOPEN = timedelta(days=3)
EARLY = "_alert"  # key in Draft.seen: the early police alert of an incident draft ({"receipt", "at"}), once
ATTEMPTS = 3  # a save that lost a race is re-read and re-applied at most this often


class DraftConflict(Exception):
    """The draft was written by someone else between reading and saving it (another process)."""


class Status(StrEnum):
    """A village's state for one period."""

    NOT_STARTED = "not_started"
    DRAFT = "draft"
    SUBMITTED = "submitted"
    LATE = "late"  # past due and not submitted (a draft may exist)


class ReportRefused(Exception):
    """The request is not allowed now; `notice` says why (worded by bot/views/notices.py)."""

    def __init__(self, notice: Notice) -> None:
        super().__init__(notice)
        self.notice = notice


@dataclass(frozen=True)
class OpenReport:
    """One line of /baocao: a period, its form and the village's state in it."""

    period: Period
    form_title: str
    status: Status
    due_at: datetime
    progress: tuple[int, int] | None = None
    submission: Submission | None = None
    can_amend: bool = False
    amend_until: datetime | None = None


@dataclass(frozen=True)
class EarlyAlert:
    """The police alerted before an incident form was finished (its `alert_early_when` held): the receipt
    the incident will keep, when, and the answers known then."""

    receipt: str
    at: datetime
    answers: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What happened to a draft: the state to show, plus notices and any new submission."""

    draft: Draft | None
    form: Form | None
    state: DraftState | None
    events: tuple[Any, ...] = ()
    notices: list[Notice] = field(default_factory=list)
    submission: Submission | None = None
    period: Period | None = None  # always set with a submission; not loaded for a plain answer
    early_alert: EarlyAlert | None = None  # alert the police now: the form's alert_early_when just held
    alerted_early: EarlyAlert | None = None  # with a submission: the early alert it completes


_PARSED: dict[tuple[str, int, str], Form] = {}  # (form id, version, checksum) -> parsed form
_PARSED_MAX = 256


def _newest_version_query(*, in_use: bool) -> Any:
    """(version, checksum) of a form's newest version (`in_use`: only if the commune uses it), built once."""
    query = select(FormVersion.version, FormVersion.checksum).where(
        FormVersion.form_id == bindparam("form_id")
    )
    if in_use:
        used = select(CommuneForm.id).where(
            CommuneForm.commune_id == bindparam("commune_id"),
            CommuneForm.form_id == bindparam("form_id"),
            CommuneForm.active,
        )
        query = query.where(used.exists())
    return query.order_by(FormVersion.version.desc()).limit(1)  # type: ignore[attr-defined]


_NEWEST_VERSION = _newest_version_query(in_use=False)
_NEWEST_VERSION_IN_USE = _newest_version_query(in_use=True)


def _latest_form(session: Session, form_id: str, *, used_by_commune: int | None = None) -> Form | None:
    """The newest stored version of a form (with `used_by_commune`: only if that commune uses it).

    Called on every answer: one narrow query for (version, checksum), no JSON definition read;
    the parsed form is looked up by its checksum, and only read and parsed on a miss.
    """
    if used_by_commune is None:
        row = session.execute(_NEWEST_VERSION, {"form_id": form_id}).first()
    else:
        params = {"form_id": form_id, "commune_id": used_by_commune}
        row = session.execute(_NEWEST_VERSION_IN_USE, params).first()
    return _parsed_form(session, form_id, row[0], row[1]) if row is not None else None


def _parsed_form(session: Session, form_id: str, version: int, checksum: str) -> Form | None:
    """Version `version` of a form, parsed once per checksum (read and parsed only on a miss)."""
    key = (form_id, version, checksum)
    form = _PARSED.get(key)
    if form is None:
        form = get_form(session, form_id, version)
        if form is not None:
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[key] = form
    return form


def current_submission(
    session: Session, village_id: int, form_id: str, period_id: int | None
) -> Submission | None:
    """The submission that counts now (the newest version)."""
    return session.exec(
        select(Submission).where(
            Submission.village_id == village_id,
            Submission.form_id == form_id,
            Submission.period_id == period_id,
            Submission.is_current,
        )
    ).first()


def _period_draft(session: Session, village_id: int, period: Period, *, lock: bool = False) -> Draft | None:
    query = select(Draft).where(
        Draft.village_id == village_id, Draft.period_id == period.id, Draft.form_id == period.form_id
    )
    return session.exec(_locked(query) if lock else query).first()


def _locked(query: Any) -> Any:
    """The draft read fresh and, on PostgreSQL, locked (SELECT … FOR UPDATE) until the transaction ends.

    SQLite ignores FOR UPDATE; there the compare-and-set in `_save` catches a concurrent writer.
    """
    return for_update(query)


def _draft_and_newest() -> Any:
    """Drafts with (version, checksum) of their form's newest version in use by the village's commune
    (what `_load` needs; NULLs when there is none), as two scalar subqueries in the select list (not in
    FROM: FOR UPDATE then locks the draft row only)."""
    commune_id = (
        select(Village.commune_id).where(Village.id == Draft.village_id).correlate(Draft).scalar_subquery()
    )
    in_use = (
        select(CommuneForm.id)
        .where(CommuneForm.commune_id == commune_id, CommuneForm.form_id == Draft.form_id, CommuneForm.active)
        .correlate(Draft)
        .exists()
    )
    newest = (
        select(FormVersion.version)
        .where(FormVersion.form_id == Draft.form_id, in_use)
        .correlate(Draft)
        .order_by(FormVersion.version.desc())  # type: ignore[attr-defined]
        .limit(1)
    )
    checksum = newest.with_only_columns(FormVersion.checksum)
    return select(
        Draft,
        newest.scalar_subquery().label("newest_version"),
        checksum.scalar_subquery().label("newest_checksum"),
    )


def _draft_by_id_query() -> Any:
    """A draft by id, locked like `_locked`, with its form's newest version (`_draft_and_newest`), built once."""
    return _locked(_draft_and_newest().where(Draft.id == bindparam("draft_id")))


def _actor_and_draft_query() -> Any:
    """`load_actor`'s SELECT with a draft read locked as `_DRAFT_BY_ID` reads it, in one statement.

    The draft is `:draft_id`, or the person's active draft when that is NULL. Its locked read is a CTE
    (FOR UPDATE OF draft, only there: the actor's outer joins lock nothing), joined to every actor row.
    """
    active = (
        select(Person.active_draft_id)
        .where(Person.telegram_user_id == bindparam("uid"), Person.active_draft_id > 0)  # type: ignore[operator]
        .scalar_subquery()
    )
    wanted = func.coalesce(bindparam("draft_id", type_=Draft.__table__.c.id.type), active)
    locked = for_update_of(_draft_and_newest().where(Draft.id == wanted), Draft).cte("locked_draft")
    draft = aliased(Draft, locked)
    return (
        actor_query()
        .add_columns(draft, locked.c.newest_version, locked.c.newest_checksum)
        .outerjoin(locked, true())
        .execution_options(populate_existing=True, **{SENT_AHEAD: True})  # PostgreSQL: may go with the claim
    )


_DRAFT_BY_ID = _draft_by_id_query()
_ACTOR_AND_DRAFT = _actor_and_draft_query()
_NEWEST_READ = "reports.newest_form"  # session.info key: draft id -> (version, checksum) read with it
_READ_LOCKED = (
    "reports.locked_draft"  # session.info key: draft id -> the draft (or None) read locked with the actor
)


def actor_and_draft_read(telegram_user_id: int, draft_id: int | None = None) -> tuple[Any, dict[str, Any]]:
    """The statement and parameters `load_actor_with_draft` runs, to be sent ahead with the update's claim
    (storage/begin_together READ_AHEAD)."""
    return _ACTOR_AND_DRAFT, {"uid": telegram_user_id, "draft_id": draft_id}


def load_actor_with_draft(session: Session, telegram_user_id: int, draft_id: int | None = None) -> Actor:
    """The actor (as `load_actor`) and, in the same statement, draft `draft_id` (default: the person's active
    draft) read fresh and locked for the next `_locked_draft` of it in this transaction: one statement for
    what an answer reads. The draft is only read here; whether the actor may touch it is checked by `feed`.
    """
    rows = session.execute(*actor_and_draft_read(telegram_user_id, draft_id)).all()
    actor = actor_from_rows(telegram_user_id, rows)
    if rows:
        wanted = draft_id if draft_id is not None else rows[0][0].active_draft_id
        draft, version, checksum = rows[0][4:7]
        if wanted is not None and wanted > 0 and (draft is None or draft.id == wanted):
            session.info.setdefault(_READ_LOCKED, {})[wanted] = draft
            if draft is not None:
                session.info.setdefault(_NEWEST_READ, {})[draft.id] = (version, checksum)
    return actor


def _locked_draft(session: Session, draft_id: int) -> Draft | None:
    """The draft `draft_id` read fresh and locked; its newest form version is kept for `_load`.

    The (version, checksum) read in the same SELECT waits in `session.info` (this transaction only)
    and is taken by the next `_load` of that draft instead of querying it again. A draft already read
    locked with the actor in this transaction (`load_actor_with_draft`) is taken once, not read again.
    """
    early = session.info.get(_READ_LOCKED)
    if early and draft_id in early:
        return early.pop(draft_id)
    row = session.execute(_DRAFT_BY_ID, {"draft_id": draft_id}).first()
    if row is None:
        return None
    draft, version, checksum = row
    session.info.setdefault(_NEWEST_READ, {})[draft.id] = (version, checksum)
    return draft


def _point_at(person: Person, draft_id: int | None) -> None:
    """Make `draft_id` the person's current draft (an unchanged value leaves the person clean: no flush)."""
    if person.active_draft_id != draft_id:
        person.active_draft_id = draft_id


def reopened_until(session: Session, village_id: int, period_id: int) -> datetime | None:
    """The latest end of a reopening granted by the police, if any."""
    return session.exec(
        select(func.max(Reopening.until)).where(
            Reopening.village_id == village_id, Reopening.period_id == period_id
        )
    ).one()


def can_change(session: Session, village_id: int, period: Period, at: datetime) -> bool:
    """Before the deadline, or inside a reopening window."""
    if at < period.due_at:
        return True
    until = reopened_until(session, village_id, period.id)
    return until is not None and at < until


def change_deadline(session: Session, village_id: int, period: Period) -> datetime:
    """Until when the village may still change its report: the due time or a later reopening."""
    until = reopened_until(session, village_id, period.id)
    return max(period.due_at, until) if until is not None else period.due_at


def open_reports(session: Session, village: Village, now: datetime) -> list[OpenReport]:
    """Periodic reports of the village's commune that are open now or recently due, soonest first."""
    forms = {cf.form_id for cf in commune_forms(session, village.commune_id)}
    if not forms:
        return []
    periods = session.exec(
        select(Period)
        .where(
            Period.commune_id == village.commune_id,
            Period.active,
            Period.opens_at <= now,
            Period.closes_at > now,
            Period.form_id.in_(forms),  # type: ignore[attr-defined]
            in_period_units(Period.id, village.id),  # a request to some villages only
        )
        .order_by(Period.due_at)
    ).all()
    out = []
    for period in periods:
        version = session.exec(
            select(FormVersion)
            .where(FormVersion.form_id == period.form_id)
            .order_by(FormVersion.version.desc())  # type: ignore[attr-defined]
        ).first()
        if version is None or version.kind != "periodic":
            continue
        submission = current_submission(session, village.id, period.form_id, period.id)
        draft = _period_draft(session, village.id, period)
        progress = None
        if draft is not None:
            form = get_form(session, draft.form_id, draft.form_version)
            if form is not None:
                try:
                    progress = engine.progress(form, DraftState.from_json(draft.state))
                except ValueError:
                    progress = None
        if submission is not None:
            status = Status.SUBMITTED
        elif now >= period.due_at:
            status = Status.LATE
        else:
            status = Status.DRAFT if draft is not None else Status.NOT_STARTED
        out.append(
            OpenReport(
                period=period,
                form_title=version.title,
                status=status,
                due_at=period.due_at,
                progress=progress,
                submission=submission,
                can_amend=submission is not None and can_change(session, village.id, period, now),
                amend_until=change_deadline(session, village.id, period),
            )
        )
    return out


def _rev(draft: Draft) -> int:
    rev = (draft.seen or {}).get(REV, 0)
    return rev if isinstance(rev, int) and not isinstance(rev, bool) else 0


def _draft_cas(*, full: bool) -> Any:
    """`_save`'s compare-and-set UPDATE of a draft, built once (`full`: the state too, not only `seen`)."""
    table = Draft.__table__
    values = {"seen": bindparam("v_seen", type_=table.c.seen.type)}
    if full:
        for name in ("state", "form_version", "updated_by_person_id", "updated_at"):
            values[name] = bindparam(f"v_{name}", type_=table.c[name].type)
    stored_rev = func.coalesce(table.c.seen[REV].as_integer(), 0)
    return (
        update(table)
        .where(table.c.id == bindparam("draft_id"), stored_rev == bindparam("read_rev"))
        .values(**values)
    )


_DRAFT_CAS = {False: _draft_cas(full=False), True: _draft_cas(full=True)}


def _save(
    draft: Draft, person: Person, state: DraftState, now: datetime, extra: dict[str, Any] | None = None
) -> None:
    """Store the state (if it changed) and that `person` has seen it; raises DraftConflict on a lost race.

    A stored draft is written with `UPDATE … WHERE id = :id AND rev = :read_rev` (the row's write
    counter in `seen`): if another process wrote the draft since it was read, nothing is written.
    """
    seen = dict(draft.seen or {})
    rev = _rev(draft)
    seen[str(person.id)] = state.seq
    seen[REV] = rev + 1
    seen.update(extra or {})
    values: dict[str, Any] = {"seen": seen}
    new_state = state.to_json()
    if new_state != draft.state:  # a mere view writes only who saw which seq
        values.update(
            state=new_state, form_version=state.form_version, updated_by_person_id=person.id, updated_at=now
        )
    if draft.id is None:  # a new draft: inserted with the session
        for key, value in values.items():
            setattr(draft, key, value)
        return
    session = object_session(draft)
    assert session is not None
    params = {f"v_{key}": value for key, value in values.items()}
    result = session.execute(_DRAFT_CAS[len(values) > 1], {**params, "draft_id": draft.id, "read_rev": rev})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise DraftConflict(draft.id)
    for key, value in values.items():
        set_committed_value(draft, key, value)


def _shown(step: engine.Step, before: DraftState) -> engine.Step:
    """A step that changed nothing but the button generation keeps `seq`: viewing is not a change.

    Only a real change (an answer, back, skip, an edit, a migration) moves `seq` on, so a reporter who
    merely opens the shared draft does not void the other reporter's next answer or buttons.
    """
    if step.state.seq != before.seq and replace(step.state, seq=before.seq) == before:
        return engine.Step(before, step.events)
    return step


def _retrying(attempt: Any) -> Any:
    """Run `attempt` again (it re-reads the draft) when its save lost a race; the last conflict raises."""
    for n in range(ATTEMPTS):
        try:
            return attempt()
        except DraftConflict:
            if n == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def begin_periodic(
    session: Session, person: Person, village: Village, period_id: int, now: datetime
) -> Outcome:
    """Start, resume or (after a submission, while allowed) amend the village's report for a period."""
    return _retrying(lambda: _begin_periodic(session, person, village, period_id, now))


def _begin_periodic(
    session: Session, person: Person, village: Village, period_id: int, now: datetime
) -> Outcome:
    period = session.get(Period, period_id)
    if (
        period is None
        or period.commune_id != village.commune_id
        or not period.active
        or period.opens_at > now
        or not takes_part(session, period.id, village.id)  # a request to other villages
    ):
        raise ReportRefused(NotOpen())
    form = _latest_form(session, period.form_id)
    if form is None:
        raise ReportRefused(FormMissing())
    draft = _period_draft(session, village.id, period, lock=True)
    if draft is not None:
        return _resume(session, person, draft, now, period, village.id)
    submission = current_submission(session, village.id, period.form_id, period.id)
    if submission is not None:
        if not can_change(session, village.id, period, now):
            raise ReportRefused(Closed(period=period.label, receipt=submission.receipt))
        context = draft_context(session, form, period, village.id)
        step = engine.start(form, now, answers=submission.answers, context=context)
        notices: list[Notice] = [Amending(version=submission.version_no, receipt=submission.receipt)]
    elif now >= period.closes_at and not can_change(session, village.id, period, now):
        raise ReportRefused(NotOpen())
    else:
        step = engine.start(form, now, context=draft_context(session, form, period, village.id))
        notices = [_intro(form)]
    draft = Draft(
        village_id=village.id,
        form_id=form.id,
        period_id=period.id,
        form_version=form.version,
        state={},
        amending_submission_id=submission.id if submission else None,
        created_at=now,
        updated_at=now,
    )
    return _open(session, person, draft, form, step, now, notices, period)


def _intro(form: Form) -> FormIntro:
    description = cut(form.description, 2000) if form.description else form.description
    return FormIntro(title=cut(form.title, MAX_TITLE_SHOWN), description=description)


def _open(
    session: Session,
    person: Person,
    draft: Draft,
    form: Form,
    step: engine.Step,
    now: datetime,
    notices: list[Notice],
    period: Period | None,
) -> Outcome:
    """Store a new draft with its first state and make it the person's current one."""
    _save(draft, person, step.state, now)
    session.add(draft)
    session.flush()
    person.active_draft_id = draft.id
    return Outcome(draft, form, step.state, step.events, notices, period=period)


def begin_incident(
    session: Session, person: Person, village: Village, form_id: str, now: datetime
) -> Outcome:
    """Start (or resume) this person's incident report."""
    return _retrying(lambda: _begin_incident(session, person, village, form_id, now))


def _begin_incident(
    session: Session, person: Person, village: Village, form_id: str, now: datetime
) -> Outcome:
    form = _latest_form(session, form_id)
    if form is None or form.kind != "incident":
        raise ReportRefused(FormMissing())
    draft = session.exec(
        _locked(
            select(Draft).where(
                Draft.owner_person_id == person.id, Draft.form_id == form_id, Draft.period_id.is_(None)
            )  # type: ignore[union-attr]
        )
    ).first()
    if draft is not None:
        return _resume(session, person, draft, now, None)
    draft = Draft(
        village_id=village.id,
        form_id=form.id,
        owner_person_id=person.id,
        form_version=form.version,
        state={},
        created_at=now,
        updated_at=now,
    )
    return _open(session, person, draft, form, engine.start(form, now), now, [_intro(form)], None)


def incident_form_id(session: Session, commune_id: int) -> str | None:
    """The commune's incident form, if it uses one."""
    for cf in commune_forms(session, commune_id):
        version = session.exec(select(FormVersion).where(FormVersion.form_id == cf.form_id)).first()
        if version is not None and version.kind == "incident":
            return cf.form_id
    return None


def _load(session: Session, draft: Draft, now: datetime) -> tuple[Form, DraftState, list[Notice]]:
    """The draft's form (migrated to the newest version if the form changed) and state."""
    notices: list[Notice] = []
    read = session.info.get(_NEWEST_READ, {}).pop(draft.id, None)
    if read is not None:  # read with the draft just now (`_locked_draft`)
        version, checksum = read
        newest = _parsed_form(session, draft.form_id, version, checksum) if version is not None else None
    else:
        newest = _newest_now(session, draft)
    if newest is None:
        raise ReportRefused(FormMissing())
    try:
        state = DraftState.from_json(draft.state)
    except (ValueError, KeyError, TypeError):
        state = engine.start(newest, now).state  # unreadable draft: start clean
        notices.append(DraftReset())
    if read is not None and state.form_version > newest.version:
        # On PostgreSQL the subqueries saw the snapshot from before the lock wait: a version published
        # meanwhile (and already applied to this draft by the other reporter) was not visible. Never
        # migrate backwards — that would drop the answers to the newer questions — read it again.
        newest = _newest_now(session, draft) or newest
    if state.form_version != newest.version:
        state = engine.migrate_state(state, newest)
        notices.append(FormChanged(version=newest.version))
    return newest, state, notices


def _newest_now(session: Session, draft: Draft) -> Form | None:
    """The newest version of the draft's form in use by its village's commune, read now."""
    village = session.get(Village, draft.village_id)
    return _latest_form(session, draft.form_id, used_by_commune=village.commune_id) if village else None


def _resume(
    session: Session,
    person: Person,
    draft: Draft,
    now: datetime,
    period: Period | None,
    village_id: int | None = None,
) -> Outcome:
    form, state, notices = _load(session, draft, now)
    if period is not None and village_id is not None:  # the period's facts as they stand now
        state = engine.with_context(state, draft_context(session, form, period, village_id))
    step = _shown(engine.resume(form, state), state)
    _save(draft, person, step.state, now)
    _point_at(person, draft.id)
    return Outcome(draft, form, step.state, step.events, notices, period=period)


def active_draft(session: Session, person: Person, village_ids: set[int]) -> Draft | None:
    """The draft this person is filling in, if it still exists and is theirs to touch.

    Read fresh and locked like `feed` reads it, so `feed(…, draft=…)` need not read it again.
    """
    if person.active_draft_id is None or person.active_draft_id <= 0:
        return None
    draft = _locked_draft(session, person.active_draft_id)
    if draft is None or not _may_touch(draft, person, village_ids):
        return None
    return draft


def _may_touch(draft: Draft, person: Person, village_ids: set[int]) -> bool:
    if draft.village_id not in village_ids:
        return False
    return draft.owner_person_id is None or draft.owner_person_id == person.id


def feed(
    session: Session,
    person: Person,
    village_ids: set[int],
    draft_id: int,
    inp: Input,
    *,
    now: datetime,
    sent_at: datetime,
    draft: Draft | None = None,
) -> Outcome:
    """Apply one input to a draft the person may touch; store the state; persist a submission.

    The draft is read locked (PostgreSQL) and saved with a compare-and-set (any database): if another
    process wrote it in between, it is read again and the input applied to what is there now (the
    other reporter's change is then reported as "moved on"), so no acknowledged answer is overwritten.
    `draft`: that draft as `active_draft` just read it (fresh and locked) in this transaction, used by
    the first attempt instead of reading it again; a retry always reads it again.
    """
    if isinstance(inp, Text):  # NUL and other control characters never reach a stored answer
        inp = Text(clean_text(inp.text))
    ready = [draft] if draft is not None and draft.id == draft_id else []

    def attempt() -> Outcome:
        read = ready.pop() if ready else None
        return _feed(session, person, village_ids, draft_id, inp, now=now, sent_at=sent_at, draft=read)

    return _retrying(attempt)


def _feed(
    session: Session,
    person: Person,
    village_ids: set[int],
    draft_id: int,
    inp: Input,
    *,
    now: datetime,
    sent_at: datetime,
    draft: Draft | None = None,
) -> Outcome:
    if draft is None:
        draft = _locked_draft(session, draft_id) if draft_id > 0 else None
    if draft is None:
        return _gone(session, person, village_ids)
    if not _may_touch(draft, person, village_ids):
        raise ReportRefused(NotYours())
    try:
        form, state, notices = _load(session, draft, now)
    except ReportRefused:
        person.active_draft_id = None
        raise
    _point_at(person, draft.id)
    if state.context is None and draft.period_id is not None:  # a draft begun before drafts kept them: once
        period_now = session.get(Period, draft.period_id)
        if period_now is not None:
            state = engine.with_context(state, draft_context(session, form, period_now, draft.village_id))
    seen = (draft.seen or {}).get(str(person.id))
    if not isinstance(inp, Action) and seen is not None and seen != state.seq:
        # Another reporter of the village moved the shared draft on: show where it is now.
        step = _shown(engine.resume(form, state), state)
        _save(draft, person, step.state, now)
        notices.append(MovedOn())
        return Outcome(draft, form, step.state, step.events, notices)
    step = engine.handle(form, state, inp, now)
    if any(isinstance(e, Stale) for e in step.events):
        again = engine.resume(form, step.state)  # an old button: say so, then show where we are
        step = engine.Step(again.state, (*step.events, *again.events))
    step = _shown(step, state)
    submitted = next((e for e in step.events if isinstance(e, Submitted)), None)
    if submitted is None:  # an answer: the period is not needed (one query less on every turn)
        early = _early_alert_now(draft, form, step.state, now)
        _save(draft, person, step.state, now, {EARLY: _early_json(early)} if early else None)
        return Outcome(draft, form, step.state, step.events, notices, early_alert=early)
    period = session.get(Period, draft.period_id) if draft.period_id else None
    if (
        period is not None
        and draft.amending_submission_id is not None
        and not can_change(session, draft.village_id, period, sent_at)
    ):
        notices.append(Closed(period=period.label, receipt=""))
        return Outcome(draft, form, state, (), notices, period=period)
    _save(draft, person, step.state, now)  # claims the row: a concurrent writer is caught before submitting
    earlier = early_alert_of(draft)
    submission = _submit(
        session,
        person,
        draft,
        form,
        dict(submitted.answers),
        period,
        now=now,
        sent_at=sent_at,
        receipt=earlier.receipt if earlier else None,
    )
    for other in session.exec(select(Person).where(Person.active_draft_id == draft.id)):
        # A negative id remembers "the draft you were on has been submitted" (ids may be reused).
        other.active_draft_id = None if other.id == person.id else -draft.id
    session.delete(draft)
    session.flush()
    return Outcome(
        None,
        form,
        step.state,
        step.events,
        notices,
        submission=submission,
        period=period,
        alerted_early=earlier,
    )


def _early_alert_now(draft: Draft, form: Form, state: DraftState, now: datetime) -> EarlyAlert | None:
    """The early police alert owed now: an incident draft, not alerted yet, whose alert_early_when holds."""
    if draft.period_id is not None or form.kind != "incident" or early_alert_of(draft) is not None:
        return None
    if not alert_due(form, state.answers):
        return None
    return EarlyAlert(new_receipt(), now, engine.submitted_answers(form, state.answers))


def _early_json(early: EarlyAlert) -> dict[str, str]:
    return {"receipt": early.receipt, "at": early.at.isoformat()}


def early_alert_of(draft: Draft) -> EarlyAlert | None:
    """The early alert already sent for this incident draft, if any (its answers are not kept)."""
    raw = (draft.seen or {}).get(EARLY)
    if not isinstance(raw, dict) or not isinstance(raw.get("receipt"), str):
        return None
    try:
        at = datetime.fromisoformat(str(raw.get("at")))
    except ValueError:
        at = draft.created_at
    return EarlyAlert(raw["receipt"], at)


def _gone(session: Session, person: Person, village_ids: set[int]) -> Outcome:
    """The draft was submitted (or removed) meanwhile, e.g. by the other reporter of the village."""
    person.active_draft_id = None
    latest = session.exec(
        select(Submission)
        .where(Submission.village_id.in_(village_ids))  # type: ignore[attr-defined]
        .order_by(Submission.received_at.desc())  # type: ignore[attr-defined]
    ).first()
    gone = DraftGone(receipt=latest.receipt if latest else None, at=latest.sent_at if latest else None)
    return Outcome(None, None, None, (), [gone])


def new_receipt() -> str:
    """A short receipt code to quote on the phone, e.g. BC-7K2QXM."""
    return "BC-" + "".join(secrets.choice(ALPHABET) for _ in range(6))


def _submit(
    session: Session,
    person: Person,
    draft: Draft,
    form: Form,
    answers: dict[str, Any],
    period: Period | None,
    *,
    now: datetime,
    sent_at: datetime,
    receipt: str | None = None,
) -> Submission:
    previous = None
    if period is None:
        # Incident reports are independent of each other: each one is a new number, all current.
        version_no = _next_incident_number(session, draft)
    else:
        previous = current_submission(session, draft.village_id, draft.form_id, draft.period_id)
        if previous is not None:
            previous.is_current = False
        version_no = previous.version_no + 1 if previous else 1
    submission = Submission(
        village_id=draft.village_id,
        form_id=form.id,
        period_id=draft.period_id,
        form_version=form.version,
        version_no=version_no,
        answers=answers,
        submitted_by_person_id=person.id,
        sent_at=sent_at,
        received_at=now,
        on_time=period is None or sent_at < period.due_at,
        receipt=receipt or new_receipt(),
    )
    session.add(submission)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=audit.person_actor(person.id),
        action="report.amend" if previous is not None else "report.submit",
        entity="submission",
        entity_id=submission.id,
        village_id=draft.village_id,
        form=form.id,
        form_version=form.version,
        period_id=draft.period_id,
        version_no=submission.version_no,
        replaces=previous.id if previous is not None else None,
    )
    return submission


def _next_incident_number(session: Session, draft: Draft) -> int:
    count = session.exec(
        select(func.max(Submission.version_no)).where(
            Submission.village_id == draft.village_id,
            Submission.form_id == draft.form_id,
            Submission.period_id.is_(None),  # type: ignore[union-attr]
        )
    ).one()
    return (count or 0) + 1


def reopen(
    session: Session,
    *,
    police: Person,
    village: Village,
    period: Period,
    now: datetime,
    duration: timedelta = DEFAULT_REOPEN,
) -> Reopening:
    """Let a village amend (or file late) after the deadline, until now + duration."""
    row = Reopening(
        village_id=village.id, period_id=period.id, by_person_id=police.id, at=now, until=now + duration
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=audit.person_actor(police.id),
        action="report.reopen",
        entity="reopening",
        entity_id=row.id,
        village_id=village.id,
        period_id=period.id,
        until=row.until.isoformat(),
    )
    return row


def pause(session: Session, person: Person) -> None:
    """Forget which draft the person is on (the draft itself stays)."""
    person.active_draft_id = None
