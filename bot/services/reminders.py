"""Reminders in the database: the planner's input from the tables, planned messages into the outbox
(`plan`, `dry_run`, `queue_nudges`).

Design notes: docs/design-notes.md#botservicesreminderspy
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import bindparam, case, distinct, exists, false, func, or_, update
from sqlalchemy.sql import ColumnElement, Select
from sqlmodel import Session, select

from bot.calendar import reminder_planner as planner
from bot.calendar.periods import REPORTER_POLICE
from bot.calendar.reminder_planner import (
    DEFAULT_TZ,
    DIGEST_STALE,
    KIND_NUDGE,
    KIND_REMINDER,
    PeriodInput,
    Planned,
    Reopen,
    Reporter,
    VillageInput,
)
from bot.calendar.reminder_rules import DEFAULT_QUIET, QuietHours, ReminderRules
from bot.services.addressees import addressees_of_schedule
from bot.services.period_units import units_of_periods, villages_of_period
from bot.services.zones import commune_zone
from storage import audit
from storage.models import (
    Commune,
    CommuneForm,
    Draft,
    FormVersion,
    Membership,
    Outbox,
    OutboxStatus,
    Period,
    Person,
    PoliceChat,
    Reopening,
    Role,
    Submission,
    Village,
)
from storage.upsert import insert_new

NUDGE_EVERY = timedelta(hours=1)  # at most one nudge per village and period in this time
CHUNK = 500
PERIOD_CHUNK = 50  # periods planned together (a commune has one period per form: ~50 communes' villages)
INSERT_CHUNK = 1000


@dataclass(frozen=True)
class PlanReport:
    """What one planning run did: how many messages are planned now, rows created, already there, made obsolete."""

    planned: int
    created: int
    existing: int
    obsoleted: int

    def __str__(self) -> str:
        """One line: "3 tin đến hạn: 1 mới, 2 đã có; 0 tin cũ bỏ"."""
        return (
            f"{self.planned} tin đến hạn: {self.created} mới, {self.existing} đã có; "
            f"{self.obsoleted} tin cũ bỏ"
        )

    @property
    def counts(self) -> dict[str, int]:
        """The counts by name (for logs and the command line)."""
        return {
            "planned": self.planned,
            "created": self.created,
            "existing": self.existing,
            "obsoleted": self.obsoleted,
        }


def commune_quiet(commune: Commune) -> QuietHours:
    """The commune's quiet hours (the default 21:00–06:30 until a setup file sets them)."""
    if commune.quiet_start is None or commune.quiet_end is None:
        return DEFAULT_QUIET
    return QuietHours(commune.quiet_start, commune.quiet_end)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def in_use(query: Select) -> Select:
    """`query` over Period limited to the units' periods in use: the period, its commune and the commune's form
    active, and not a report the police write themselves (`reporter: police`: no unit reminder, digest or
    summary push; its reminders are `bot.services.upward`'s)."""
    return (
        query.join(Commune, Commune.id == Period.commune_id)
        .join(
            CommuneForm,
            (CommuneForm.commune_id == Period.commune_id) & (CommuneForm.form_id == Period.form_id),
        )
        .where(Period.active, Commune.active, CommuneForm.active, units_report())
    )


def units_report() -> ColumnElement[bool]:
    """SQL: the period is one the units file (not the police's own report)."""
    return or_(Period.reporter.is_(None), Period.reporter != REPORTER_POLICE)  # type: ignore[union-attr]


def police_target(session: Session, row: Outbox) -> tuple[Period, Commune] | None:
    """The period and commune of a police-chat outbox row, if the period is still in use (`in_use`) and
    the row's chat is still an active police chat of that commune; None when the message is obsolete."""
    period = session.get(Period, row.period_id) if row.period_id is not None else None
    if period is None or not period.active:
        return None
    commune = session.get(Commune, period.commune_id)
    if commune is None or not commune.active:
        return None
    linked = session.exec(
        select(CommuneForm.id).where(
            CommuneForm.commune_id == commune.id, CommuneForm.form_id == period.form_id, CommuneForm.active
        )
    ).first()
    chat = session.exec(
        select(PoliceChat.id).where(
            PoliceChat.commune_id == commune.id, PoliceChat.chat_id == row.chat_id, PoliceChat.active
        )
    ).first()
    return (period, commune) if linked is not None and chat is not None else None


def planning_scope(now: datetime) -> Select:
    """Ids of the periods the planner looks at: active, opened, not long closed (or reopened)."""
    reopened = select(Reopening.period_id).where(Reopening.until > now)
    return (
        in_use(select(Period.id))
        .where(
            Period.opens_at <= now,
            or_(
                Period.closes_at > now,
                Period.due_at > now - DIGEST_STALE - timedelta(days=1),
                Period.id.in_(reopened),  # type: ignore[attr-defined]
            ),
        )
        .correlate(None)
    )


def load_inputs(
    session: Session,
    scope: Select,
    *,
    default_tz: str = DEFAULT_TZ,
    with_progress: bool = False,
) -> list[PeriodInput]:
    """The planner's input for the periods whose ids `scope` selects (bulk queries, no per-village SQL).

    Villages, people, submissions and reopenings are read as plain columns, not ORM objects: the
    session's identity map stays small however many villages the periods have.
    """
    periods = list(
        session.exec(select(Period).where(Period.id.in_(scope)).order_by(Period.due_at, Period.id))
    )  # type: ignore[attr-defined]
    if not periods:
        return []
    period_ids = [p.id for p in periods]
    commune_ids = sorted({p.commune_id for p in periods})
    communes = {c.id: c for c in session.exec(select(Commune).where(Commune.id.in_(commune_ids)))}  # type: ignore[union-attr]
    rules = {
        (cf.commune_id, cf.form_id): ReminderRules.from_json(cf.reminders)
        for cf in session.exec(select(CommuneForm).where(CommuneForm.commune_id.in_(commune_ids)))  # type: ignore[attr-defined]
    }
    villages_by_commune: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for village_id, commune_id, name, kind in session.execute(
        select(Village.id, Village.commune_id, Village.name, Village.kind)
        .where(Village.commune_id.in_(commune_ids), Village.active)  # type: ignore[attr-defined]
        .order_by(Village.name)
    ):
        villages_by_commune[commune_id].append((village_id, name, kind))
    reporters: dict[int, list[Reporter]] = defaultdict(list)
    for (
        village_id,
        is_deputy,
        joined_at,
        person_id,
        chat_id,
        active,
        forgotten_at,
        full_name,
    ) in session.execute(
        select(
            Membership.village_id,
            Membership.is_deputy,
            Membership.created_at,
            Person.id,
            Person.chat_id,
            Person.active,
            Person.forgotten_at,
            Person.full_name,
        )
        .select_from(Membership)
        .join(Village, Village.id == Membership.village_id)  # type: ignore[arg-type]
        .join(Person, Person.id == Membership.person_id)  # type: ignore[arg-type]
        .where(
            Village.commune_id.in_(commune_ids),  # type: ignore[attr-defined]
            Village.active,
            Membership.role == Role.VILLAGE_HEAD,
            Membership.ended_at.is_(None),  # type: ignore[union-attr]
        )
        .order_by(Membership.is_deputy, Membership.id)
    ):
        reporters[village_id].append(
            Reporter(
                person_id=person_id,
                chat_id=chat_id,
                active=active and forgotten_at is None,
                name=full_name,
                is_deputy=is_deputy,
                joined_at=joined_at,
            )
        )
    submitted: dict[tuple[int, int], tuple[datetime, bool]] = {}
    for village_id, period_id, received_at, on_time in session.execute(
        select(Submission.village_id, Submission.period_id, Submission.received_at, Submission.on_time).where(
            Submission.period_id.in_(period_ids),  # type: ignore[union-attr]
            Submission.is_current,
        )
    ):
        submitted[(village_id, period_id)] = (received_at, on_time)
    drafts: dict[tuple[int, int], tuple[int, int] | None] = {}
    if with_progress:
        for draft in session.exec(select(Draft).where(Draft.period_id.in_(period_ids))):  # type: ignore[union-attr]
            drafts[(draft.village_id, draft.period_id)] = draft_progress(session, draft)
    else:  # the planner only needs to know a draft exists, not its (large) state
        for village_id, period_id in session.execute(
            select(Draft.village_id, Draft.period_id).where(Draft.period_id.in_(period_ids))  # type: ignore[union-attr]
        ):
            drafts[(village_id, period_id)] = None
    reopenings: dict[tuple[int, int], Reopen] = {}
    for row_id, village_id, period_id, at, until in session.execute(
        select(Reopening.id, Reopening.village_id, Reopening.period_id, Reopening.at, Reopening.until)
        .where(Reopening.period_id.in_(period_ids))  # type: ignore[attr-defined]
        .order_by(Reopening.at, Reopening.id)
    ):
        reopenings[(village_id, period_id)] = Reopen(row_id, at, until)  # the latest wins
    chats: dict[int, list[int]] = defaultdict(list)
    for commune_id, chat_id in session.execute(
        select(PoliceChat.commune_id, PoliceChat.chat_id)
        .where(PoliceChat.commune_id.in_(commune_ids), PoliceChat.active)  # type: ignore[attr-defined]
        .order_by(PoliceChat.id)
    ):
        chats[commune_id].append(chat_id)
    limited = units_of_periods(session, period_ids)  # requests to some villages only
    out = []
    for period in periods:
        commune = communes[period.commune_id]
        villages = []
        chosen = limited.get(period.id)
        police_own = period.reporter == REPORTER_POLICE  # no unit files it: no unit reminder, no digest
        for village_id, name, kind in () if police_own else villages_by_commune[period.commune_id]:
            if chosen is not None and village_id not in chosen:
                continue
            key = (village_id, period.id)
            sub = submitted.get(key)
            villages.append(
                VillageInput(
                    village_id=village_id,
                    name=name,
                    reporters=tuple(reporters[village_id]),
                    submitted_at=sub[0] if sub else None,
                    on_time=sub[1] if sub else None,
                    has_draft=key in drafts,
                    progress=drafts.get(key),
                    reopening=reopenings.get(key),
                    kind=kind,
                )
            )
        out.append(
            PeriodInput(
                period_id=period.id,
                opens_at=period.opens_at,
                due_at=period.due_at,
                closes_at=period.closes_at,
                commune_id=commune.id,
                code=period.code,
                label=period.label,
                form_id=period.form_id,
                tz=str(commune_zone(commune, default_tz)),
                quiet=commune_quiet(commune),
                rules=rules.get((commune.id, period.form_id), ReminderRules.from_json(None)),
                villages=tuple(villages),
                police_chats=tuple(chats[commune.id]),
                commune_name=commune.name,
                police_own=police_own,
            )
        )
    return out


def draft_progress(session: Session, draft: Draft) -> tuple[int, int] | None:
    """("câu 7/18") where a stored draft stands, or None if its form cannot be read."""
    # imported here, not at the top: only a draft's progress needs the forms' flow and loader (~0.1 s of
    # imports that `baocao periods` and a dry run over no draft never pay)
    from bot.forms.flow import progress  # the engine's own `progress`, without the rest of the engine
    from bot.forms.state import DraftState
    from bot.services.forms import get_form

    form = get_form(session, draft.form_id, draft.form_version)
    if form is None:
        return None
    try:
        return progress(form, DraftState.from_json(draft.state))
    except Exception:
        return None


def existing_keys(session: Session, period_ids: Sequence[int]) -> set[str]:
    """The outbox keys already written for these periods (one indexed query per chunk of periods)."""
    return _outbox_of(session, period_ids)[0]


def _outbox_of(
    session: Session, period_ids: Sequence[int]
) -> tuple[set[str], list[tuple[int, str, Any, Any]]]:
    """The periods' outbox keys, and their pending reminders as (id, key, person, period).

    One query a chunk, on `period_id` alone, so that the index on it is used (filtering on kind and
    status in SQL lets PostgreSQL pick the status index, which scans every pending row).
    """
    keys: set[str] = set()
    pending: list[tuple[int, str, Any, Any]] = []
    for chunk in _chunks(period_ids):
        for row_id, key, kind, status, person_id, period_id in session.execute(
            select(
                Outbox.id, Outbox.key, Outbox.kind, Outbox.status, Outbox.person_id, Outbox.period_id
            ).where(
                Outbox.period_id.in_(chunk)  # type: ignore[union-attr]
            )
        ):
            keys.add(key)
            if kind == KIND_REMINDER and status == OutboxStatus.PENDING:
                pending.append((row_id, key, person_id, period_id))
    return keys, pending


def _plan_chunk(
    session: Session, planned: Sequence[Planned], period_ids: Sequence[int], now: datetime
) -> tuple[int, int]:
    """Write one chunk's plan: insert rows for new keys, obsolete superseded pending reminders; (created, obsoleted).

    A key inserted meanwhile by another process is skipped (ON CONFLICT DO NOTHING). A pending reminder of
    these periods that is not the one planned now for its (person, period) becomes obsolete.
    """
    existing, pending = _outbox_of(session, period_ids)
    new = [p for p in planned if p.key not in existing]
    created = 0
    for chunk in _chunks(new, INSERT_CHUNK):
        created += insert_outbox(session, [_row(p, now) for p in chunk])
    wanted = {(p.person_id, p.period_id): p.key for p in planned if p.kind == KIND_REMINDER}
    stale = [
        row_id for row_id, key, person_id, period_id in pending if wanted.get((person_id, period_id)) != key
    ]
    return created, _obsolete(session, stale)


def _row(p: Planned, now: datetime) -> dict[str, Any]:
    return {
        "key": p.key,
        "kind": p.kind,
        "chat_id": p.chat_id,
        "person_id": p.person_id,
        "village_id": p.village_id,
        "period_id": p.period_id,
        "rule": p.rule,
        "payload": dict(p.payload),
        "due_at": p.due_at,
        "created_at": now,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
    }


def insert_outbox(session: Session, rows: list[dict[str, Any]]) -> int:
    """INSERT … ON CONFLICT (key) DO NOTHING (one executemany); returns how many rows were new."""
    return insert_new(session, Outbox.__table__, rows, key="key")  # type: ignore[attr-defined]


def _obsolete(session: Session, ids: Sequence[int]) -> int:
    count = 0
    for chunk in _chunks(ids):
        result = session.execute(
            update(Outbox)
            .where(Outbox.id.in_(chunk), Outbox.status == OutboxStatus.PENDING)  # type: ignore[union-attr]
            .values(status=OutboxStatus.OBSOLETE.value)
        )
        count += max(result.rowcount or 0, 0)
    return count


def _obsolete_out_of_scope(session: Session, scope: Select) -> int:
    """Pending reminders of periods the planner no longer looks at (closed, removed, form dropped)."""
    stale = session.execute(
        select(Outbox.id).where(
            Outbox.kind == KIND_REMINDER,
            Outbox.status == OutboxStatus.PENDING,
            or_(Outbox.period_id.is_(None), Outbox.period_id.not_in(scope)),  # type: ignore[union-attr]
        )
    ).scalars()
    return _obsolete(session, list(stale))


def plan(session: Session, now: datetime, *, default_tz: str = DEFAULT_TZ) -> PlanReport:
    """Plan reminders and digests due by `now` into the outbox; idempotent; returns the counts.

    Periods are planned `PERIOD_CHUNK` at a time (load, plan, insert what is new, obsolete what was
    superseded), so memory is bounded by a chunk, not by the number of villages.
    """
    if now.tzinfo is None:
        raise ValueError("plan() needs an aware datetime")
    scope = planning_scope(now)
    period_ids = list(session.execute(scope.order_by(Period.id)).scalars())
    planned = created = existing = obsoleted = 0
    for chunk in _chunks(period_ids, PERIOD_CHUNK):
        inputs = load_inputs(
            session,
            select(Period.id).where(Period.id.in_(chunk)),
            default_tz=default_tz,  # type: ignore[union-attr]
        )
        batch = planner.plan(inputs, now)
        del inputs
        new, gone = _plan_chunk(session, batch, chunk, now)
        planned, created, existing = planned + len(batch), created + new, existing + len(batch) - new
        obsoleted += gone
    obsoleted += _obsolete_out_of_scope(session, planning_scope(now))
    session.flush()
    return PlanReport(planned, created, existing, obsoleted)


def dry_run(
    session: Session, now: datetime, *, default_tz: str = DEFAULT_TZ, commune_id: int | None = None
) -> tuple[list[PeriodInput], list[Planned], set[str]]:
    """What `plan` would do at `now`, writing nothing: the inputs, the plan, and keys already in the outbox."""
    scope = planning_scope(now)
    if commune_id is not None:
        scope = scope.where(Period.commune_id == commune_id)
    inputs = load_inputs(session, scope, default_tz=default_tz, with_progress=True)
    planned = planner.plan(inputs, now)
    return inputs, planned, existing_keys(session, [p.period_id for p in inputs])


def period_input(
    session: Session, period: Period, *, default_tz: str = DEFAULT_TZ, with_progress: bool = True
) -> PeriodInput | None:
    """The planner's view of one period (used at send time and by the commands)."""
    found = load_inputs(
        session,
        select(Period.id).where(Period.id == period.id),
        default_tz=default_tz,
        with_progress=with_progress,
    )
    return found[0] if found else None


def _village_state_query() -> Select:
    """`village_state`'s statement, built once (bound parameters: village, period, form)."""
    village_id, period_id = bindparam("village_id"), bindparam("period_id")
    return (
        select(
            Submission.received_at,
            Submission.on_time,
            Draft.id,
            Reopening.id,
            Reopening.at,
            Reopening.until,
        )
        .select_from(Village)
        .outerjoin(
            Submission,
            (Submission.village_id == Village.id)
            & (Submission.period_id == period_id)
            & Submission.is_current,  # type: ignore[arg-type]
        )
        .outerjoin(
            Draft,
            (Draft.village_id == Village.id)
            & (Draft.period_id == period_id)
            & (Draft.form_id == bindparam("form_id")),  # type: ignore[arg-type]
        )
        .outerjoin(Reopening, (Reopening.village_id == Village.id) & (Reopening.period_id == period_id))  # type: ignore[arg-type]
        .where(Village.id == village_id)
        .order_by(Reopening.at.desc(), Reopening.id.desc())  # type: ignore[attr-defined]
        .limit(1)
    )


_VILLAGE_STATE: Final = _village_state_query()  # built once: building it costs more CPU than running it


def village_state(
    session: Session, village: Village, period: Period, *, with_progress: bool = True
) -> VillageInput:
    """One village's state in one period (without its reporters): submission, draft, latest reopening.

    One query: the current submission, the draft and the latest reopening, outer-joined to the village.
    """
    found = session.execute(
        _VILLAGE_STATE, {"village_id": village.id, "period_id": period.id, "form_id": period.form_id}
    ).first()
    received_at, on_time, draft_id, reopening_id, reopened_at, until = found or (None,) * 6
    progress = None
    if draft_id is not None and with_progress:
        draft = session.get(Draft, draft_id)
        progress = draft_progress(session, draft) if draft is not None else None
    return VillageInput(
        village_id=village.id,
        name=village.name,
        submitted_at=received_at,
        on_time=on_time,
        has_draft=draft_id is not None,
        progress=progress,
        reopening=Reopen(reopening_id, reopened_at, until) if reopening_id is not None else None,
    )


def village_progress(session: Session, village: Village, period: Period) -> tuple[int, int] | None:
    """Where the village's draft of this period stands ("câu 7/18"), or None without a readable draft."""
    draft = session.exec(
        select(Draft).where(
            Draft.village_id == village.id, Draft.period_id == period.id, Draft.form_id == period.form_id
        )
    ).first()
    return draft_progress(session, draft) if draft is not None else None


def village_owes(village: VillageInput, period: Period, now: datetime) -> bool:
    """Whether the village still owes this period's report now (and can still file it)."""
    if village.reopen_owed and village.reopening is not None and now < village.reopening.until:
        return True
    return village.submitted_at is None and now < period.closes_at


# --- nudges


@dataclass
class NudgeResult:
    """What a police nudge did, village by village."""

    queued: list[tuple[str, int]] = field(default_factory=list)  # village, people it goes to
    recent: list[tuple[str, datetime]] = field(default_factory=list)  # already nudged at (UTC)
    submitted: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)  # past the late-report window, not reopened
    unreachable: list[str] = field(default_factory=list)  # nobody the bot can write to


def last_nudge(session: Session, village_id: int, period_id: int, now: datetime) -> datetime | None:
    """When the village was last nudged for this period within the last hour, if it was."""
    rows = session.exec(
        select(Outbox.created_at).where(
            Outbox.kind == KIND_NUDGE,
            Outbox.village_id == village_id,
            Outbox.period_id == period_id,
            Outbox.created_at > now - NUDGE_EVERY,
        )
    ).all()
    return max(rows) if rows else None


def queue_nudges(
    session: Session,
    *,
    by: Person,
    period: Period,
    village_ids: Sequence[int] | None = None,
    now: datetime,
    default_tz: str = DEFAULT_TZ,
) -> NudgeResult:
    """Queue a nudge (due now) to each reporter of the villages that still owe the period's report.

    `village_ids=None` means every village of the period's commune. The caller has checked that the
    officer may act on this commune; villages of other communes are ignored.
    """
    result = NudgeResult()
    data = period_input(session, period, default_tz=default_tz, with_progress=False)
    if data is None:
        return result
    wanted = set(village_ids) if village_ids is not None else None
    rows: list[dict[str, Any]] = []
    for village in data.villages:
        if wanted is not None and village.village_id not in wanted:
            continue
        if not village_owes(village, period, now):
            if village.submitted_at is not None and not village.reopen_owed:
                result.submitted.append(village.name)
            else:
                result.closed.append(village.name)
            continue
        recent = last_nudge(session, village.village_id, period.id, now)
        if recent is not None:
            result.recent.append((village.name, recent))
            continue
        people = [r for r in village.reporters if planner.reachable(r)]
        if not people:
            result.unreachable.append(village.name)
            continue
        for reporter in people:
            assert reporter.chat_id is not None
            rows.append(
                {
                    "key": planner.nudge_key(village.village_id, period.id, reporter.person_id, now),
                    "kind": KIND_NUDGE,
                    "chat_id": reporter.chat_id,
                    "person_id": reporter.person_id,
                    "village_id": village.village_id,
                    "period_id": period.id,
                    "rule": None,
                    "payload": {"by": by.id, "by_name": by.full_name},
                    "due_at": now,
                    "created_at": now,
                    "status": OutboxStatus.PENDING.value,
                    "attempts": 0,
                }
            )
        result.queued.append((village.name, len(people)))
    insert_outbox(session, rows)
    if result.queued:
        audit.record(
            session,
            at=now,
            actor=audit.person_actor(by.id),
            action="reminder.nudge",
            entity="period",
            entity_id=period.id,
            villages=[name for name, _ in result.queued],
        )
    session.flush()
    return result


def nudge_period(session: Session, commune_id: int, now: datetime, code: str | None = None) -> Period | None:
    """The period a bare `/nhacnho` is about: of the commune's main form, open now, due nearest to now.

    With `code`, the period of that code (any form). Periods that are closed (and not reopened) are skipped.
    """

    query = select(Period).where(
        Period.commune_id == commune_id, Period.active, Period.opens_at <= now, units_report()
    )
    if code is not None:
        query = query.where(Period.code == code)
    else:
        forms = [cf.form_id for cf in active_forms(session, [commune_id])[commune_id]]
        periods_by_form = defaultdict(list)
        for p in session.exec(query.where(Period.closes_at > now)):
            periods_by_form[p.form_id].append(p)
        for form_id in forms:  # the main form first (setup puts it at position -1)
            if periods_by_form.get(form_id):
                return min(periods_by_form[form_id], key=lambda p: (abs(p.due_at - now), p.id))
        return None
    candidates = list(session.exec(query))
    return min(candidates, key=lambda p: (abs(p.due_at - now), p.id)) if candidates else None


# --- overview for the command line


@dataclass(frozen=True)
class PeriodLine:
    """One period of `baocao periods`: open now or next, with its villages' counts when open."""

    period: Period
    form_title: str
    is_open: bool
    total: int = 0
    submitted: int = 0
    late: int = 0
    drafts: int = 0
    not_started: int = 0
    addressee: str = ""  # whom the units' reports go to ("UBND xã (qua Công an xã)"), from the schedule


def active_forms(session: Session, commune_ids: Sequence[int]) -> dict[int, list[CommuneForm]]:
    """Each commune's active form links in file order (`bot.services.forms.commune_forms` for several
    communes at once, without importing the forms loader)."""
    out: dict[int, list[CommuneForm]] = {commune_id: [] for commune_id in commune_ids}
    if not commune_ids:
        return out
    for link in session.exec(
        select(CommuneForm)
        .where(CommuneForm.commune_id.in_(commune_ids), CommuneForm.active)  # type: ignore[attr-defined]
        .order_by(CommuneForm.commune_id, CommuneForm.position, CommuneForm.id)
    ):
        out[link.commune_id].append(link)
    return out


def periods_overview(
    session: Session, now: datetime, *, commune_id: int | None = None, default_tz: str = DEFAULT_TZ
) -> list[tuple[Commune, list[PeriodLine]]]:
    """Per active commune: the periods open at `now` (with counts) and each form's next period.

    Five statements whatever the number of communes: the communes, their form links, the forms' titles
    (not their definitions), their periods, and the open periods' counts (`unit_counts`).
    """

    query = select(Commune).where(Commune.active).order_by(Commune.code)
    if commune_id is not None:
        query = query.where(Commune.id == commune_id)
    communes = list(session.exec(query))
    links = active_forms(session, [c.id for c in communes if c.id is not None])
    form_ids = sorted({link.form_id for rows in links.values() for link in rows})
    titles: dict[str, str] = {}
    periods_of: dict[int, list[Period]] = defaultdict(list)
    if form_ids:
        for form_id, title in session.execute(
            select(FormVersion.form_id, FormVersion.title)
            .where(FormVersion.form_id.in_(form_ids))  # type: ignore[attr-defined]
            .order_by(FormVersion.version)
        ):
            titles[form_id] = title  # the newest version's title wins
        for period in session.exec(
            select(Period)
            .where(Period.commune_id.in_(list(links)), Period.active, Period.form_id.in_(form_ids))  # type: ignore[attr-defined]
            .order_by(Period.due_at, Period.id)
        ):
            periods_of[period.commune_id].append(period)
    open_now: dict[int, list[Period]] = {}
    for commune in communes:
        forms = {link.form_id for link in links.get(commune.id or 0, [])}
        periods_of[commune.id or 0] = [p for p in periods_of[commune.id or 0] if p.form_id in forms]
        open_now[commune.id or 0] = [
            p for p in periods_of[commune.id or 0] if p.opens_at <= now < p.closes_at
        ]
    counts = unit_counts(session, [p.id for periods in open_now.values() for p in periods if p.id])
    out = []
    for commune in communes:
        forms = [link.form_id for link in links.get(commune.id or 0, [])]
        addressees = {
            link.form_id: addressees_of_schedule(link.form_id, link.schedule)
            for link in links.get(commune.id or 0, [])
        }
        periods = periods_of[commune.id or 0]
        lines = []
        for p in open_now[commune.id or 0]:
            total, submitted, late, drafts = counts.get(p.id or 0, (0, 0, 0, 0))
            lines.append(
                PeriodLine(
                    p,
                    titles.get(p.form_id, p.form_id),
                    True,
                    addressee=addressees.get(p.form_id, {}).get(p.series or "", ""),
                    total=total,
                    submitted=submitted,
                    late=late,
                    drafts=drafts,
                    not_started=total - submitted - drafts,
                )
            )
        for form_id in forms:
            upcoming = [p for p in periods if p.form_id == form_id and p.opens_at > now]
            if upcoming:
                nxt = min(upcoming, key=lambda p: (p.opens_at, p.id))
                lines.append(PeriodLine(nxt, titles.get(form_id, form_id), False))
        out.append((commune, lines))
    return out


def unit_counts(session: Session, period_ids: Sequence[int]) -> dict[int, tuple[int, int, int, int]]:
    """period id → (units taking part, submitted, of which late, with a draft and not submitted), in one
    query: the units `load_inputs` gives a period (its commune's active villages, only its chosen ones when
    it is limited, none for a report the police write themselves) counted by their current submission and
    whether a draft of the period exists."""
    if not period_ids:
        return {}
    submitted = Submission.id.is_not(None)  # type: ignore[union-attr]
    has_draft = exists().where(Draft.village_id == Village.id, Draft.period_id == Period.id)
    rows = session.execute(
        select(
            Period.id,
            func.count(distinct(Village.id)),
            func.count(distinct(case((submitted, Village.id)))),
            func.count(distinct(case((submitted & (Submission.on_time == false()), Village.id)))),
            func.count(distinct(case((~submitted & has_draft, Village.id)))),
        )
        .select_from(Period)
        .join(Village, villages_of_period())
        .outerjoin(
            Submission,
            (Submission.village_id == Village.id)
            & (Submission.period_id == Period.id)
            & Submission.is_current,  # type: ignore[arg-type]
        )
        .where(Period.id.in_(list(period_ids)))  # type: ignore[union-attr]
        .group_by(Period.id)
    )
    return {period_id: (total, done, late, drafts) for period_id, total, done, late, drafts in rows}
