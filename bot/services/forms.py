"""Form versions in the database, a commune's forms, and its periods from the setup file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.forms.loader import form_from_dict, form_to_dict, load_form_files
from bot.forms.model import Form
from bot.texts.filters import vn_due
from storage import audit
from storage.models import Commune, CommuneForm, FormVersion, Period

if TYPE_CHECKING:  # the calendar (periods, reminder rules) is imported by the setup functions that use it:
    from bot.calendar.periods import Schedule  # an export or a lookup of a form does not need it


class FormStoreError(Exception):
    """Forms could not be stored; every reason is listed."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("\n".join(reasons))
        self.reasons = list(reasons)


def checksum(definition: dict[str, Any]) -> str:
    """A stable hash of a form definition."""
    canonical = json.dumps(definition, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def store_forms(session: Session, forms: Iterable[Form], *, now: datetime, actor: str) -> list[str]:
    """Insert new form versions; refuse a changed definition that kept its version number."""
    lines: list[str] = []
    problems: list[str] = []
    for form in forms:
        definition = json.loads(json.dumps(form_to_dict(form), ensure_ascii=False, default=str))
        digest = checksum(definition)
        existing = session.exec(
            select(FormVersion).where(FormVersion.form_id == form.id, FormVersion.version == form.version)
        ).first()
        if existing is not None:
            if existing.checksum != digest:
                problems.append(
                    f"Biểu mẫu {form.id} phiên bản {form.version} đã thay đổi nội dung nhưng chưa tăng 'version': "
                    f"hãy đặt version: {form.version + 1} để các báo cáo cũ vẫn đọc được theo bản cũ."
                )
            continue
        session.add(
            FormVersion(
                form_id=form.id,
                version=form.version,
                title=form.title,
                kind=form.kind,
                definition=definition,
                checksum=digest,
                loaded_at=now,
            )
        )
        audit.record(
            session,
            at=now,
            actor=actor,
            action="form.version.add",
            entity="form",
            entity_id=form.id,
            version=form.version,
        )
        lines.append(f"Biểu mẫu {form.id}: thêm phiên bản {form.version} ({form.title}).")
    if problems:
        raise FormStoreError(problems)
    session.flush()
    return lines


def store_form_files(session: Session, paths: Sequence[Path], *, now: datetime, actor: str) -> list[str]:
    """Validate form files and store their versions (nothing is stored if any file has an error)."""
    result = load_form_files(list(paths))
    if result.errors:
        raise FormStoreError([str(e) for e in result.errors])
    return store_forms(session, result.forms, now=now, actor=actor)


def link_commune_forms(
    session: Session, commune: Commune, form_ids: Sequence[str], *, now: datetime, actor: str
) -> list[str]:
    """Make exactly `form_ids` the commune's active forms, in that order (others deactivated, kept)."""
    lines = []
    rows = {
        row.form_id: row
        for row in session.exec(select(CommuneForm).where(CommuneForm.commune_id == commune.id))
    }
    for position, form_id in enumerate(form_ids):
        row = rows.get(form_id)
        if row is None:
            session.add(CommuneForm(commune_id=commune.id, form_id=form_id, position=position))
            lines.append(f"{commune.name}: dùng biểu mẫu {form_id}.")
            audit.record(
                session,
                at=now,
                actor=actor,
                action="setup.form.link",
                entity="commune",
                entity_id=commune.id,
                form=form_id,
            )
        elif not row.active or row.position != position:
            row.active, row.position = True, position
    for form_id, row in rows.items():
        if form_id not in form_ids and row.active:
            row.active = False
            lines.append(f"{commune.name}: thôi dùng biểu mẫu {form_id} (báo cáo cũ vẫn giữ).")
            audit.record(
                session,
                at=now,
                actor=actor,
                action="setup.form.unlink",
                entity="commune",
                entity_id=commune.id,
                form=form_id,
            )
    session.flush()
    return lines


def sync_periods(
    session: Session,
    commune: Commune,
    schedules: Sequence[Schedule],
    *,
    now: datetime,
    tz: ZoneInfo,
    actor: str,
) -> list[str]:
    """Keep the schedules on the commune's forms, and create or update its periods of last, this and next year
    within each plan's bounds (`from:`/`until:`: none before the plan starts or after it ends); drop none."""
    from bot.calendar.periods import REPORTER_POLICE, expand, police_mark

    lines = []
    _store_schedules(session, commune, schedules)
    wanted = expand(tuple(schedules), range(now.astimezone(tz).year - 1, now.astimezone(tz).year + 2), tz)
    existing = {
        (p.form_id, p.code): p for p in session.exec(select(Period).where(Period.commune_id == commune.id))
    }
    keep = set()
    for dates in wanted:
        key = (dates.form, dates.code)
        keep.add(key)
        row = existing.get(key)
        if row is None:
            session.add(
                Period(
                    commune_id=commune.id,
                    form_id=dates.form,
                    code=dates.code,
                    label=dates.label,
                    opens_at=dates.opens_at,
                    due_at=dates.due_at,
                    closes_at=dates.closes_at,
                    series=dates.series,
                    upward_due_at=dates.upward_due_at,
                    upward_to=list(dates.upward_to) or None,
                    reporter=police_mark(dates.reporter),
                    created_at=now,
                    updated_at=now,
                )
            )
            upward = f"; {_upward_line(dates, tz)}" if dates.upward_due_at is not None else ""
            if dates.reporter == REPORTER_POLICE:  # no unit deadline: say whose report it is
                lines.append(f"{commune.name}: kỳ {dates.code} ({dates.label}), {_upward_line(dates, tz)}.")
                continue
            lines.append(
                f"{commune.name}: kỳ {dates.code} ({dates.label}), hạn {_local(dates.due_at, tz)}{upward}."
            )
            continue
        if row.reporter != police_mark(dates.reporter):
            row.reporter = police_mark(dates.reporter)  # a schedule turned into the police's own, or back
        if row.series != dates.series:
            row.series = dates.series  # a period made before series were kept, or a rule renamed in place
        if (row.upward_due_at, row.upward_to) != (dates.upward_due_at, list(dates.upward_to) or None):
            row.upward_due_at, row.upward_to = dates.upward_due_at, list(dates.upward_to) or None
            lines.append(f"{commune.name}: kỳ {dates.code} — {_upward_line(dates, tz)}.")
        if (row.label, row.opens_at, row.due_at, row.closes_at, row.active) != (
            dates.label,
            dates.opens_at,
            dates.due_at,
            dates.closes_at,
            True,
        ):
            audit.record(
                session,
                at=now,
                actor=actor,
                action="setup.period.update",
                entity="period",
                entity_id=row.id,
                before={"opens_at": row.opens_at.isoformat(), "due_at": row.due_at.isoformat()},
                after={"opens_at": dates.opens_at.isoformat(), "due_at": dates.due_at.isoformat()},
            )
            row.label, row.opens_at, row.due_at, row.closes_at = (
                dates.label,
                dates.opens_at,
                dates.due_at,
                dates.closes_at,
            )
            row.active, row.updated_at = True, now
            lines.append(f"{commune.name}: kỳ {dates.code} đổi hạn thành {_local(dates.due_at, tz)}.")
    forms_with_schedule = {s.form for s in schedules}
    for key, row in existing.items():
        # A period whose rule left the file is hidden, never deleted (its reports stay).
        if key not in keep and row.active and (key[0] not in forms_with_schedule or row.due_at > now):
            row.active, row.updated_at = False, now
            lines.append(f"{commune.name}: ẩn kỳ {row.code} của {row.form_id} (không còn trong tệp).")
    session.flush()
    return lines


def _upward_line(dates: Any, tz: ZoneInfo) -> str:
    from bot.calendar.periods import REPORTER_POLICE

    if dates.upward_due_at is None:
        return "không còn hạn gửi báo cáo lên"
    to = f" ({', '.join(dates.upward_to)})" if dates.upward_to else ""
    if dates.reporter == REPORTER_POLICE:
        return f"Công an xã tự báo cáo{to}, không thôn nào phải nộp: hạn {_local(dates.upward_due_at, tz)}"
    return f"gửi báo cáo tổng hợp lên{to}: hạn {_local(dates.upward_due_at, tz)}"


def _store_schedules(session: Session, commune: Commune, schedules: Sequence[Schedule]) -> None:
    """Write each schedule on its commune form (None on the forms left without one)."""
    from bot.calendar.periods import schedules_to_json

    grouped: dict[str, list[Schedule]] = {}
    for schedule in schedules:
        grouped.setdefault(schedule.form, []).append(schedule)
    by_form = {form: schedules_to_json(group) for form, group in grouped.items()}
    for row in session.exec(select(CommuneForm).where(CommuneForm.commune_id == commune.id)):
        wanted = by_form.get(row.form_id)
        if row.schedule != wanted:
            row.schedule = wanted


def _local(at: datetime, tz: ZoneInfo) -> str:
    return vn_due(at.astimezone(tz))


@lru_cache(maxsize=256)
def _form_from_definition(form_id: str, version: int, digest: str, definition_json: str) -> Form:
    result = form_from_dict(json.loads(definition_json), source=f"db:{form_id}@{version}")
    if result.errors or not result.forms:
        raise FormStoreError([str(e) for e in result.errors] or [f"biểu mẫu {form_id} v{version} rỗng"])
    return result.forms[0]


def form_of(row: FormVersion) -> Form:
    """The Form object of a stored version (parsed once per content)."""
    return _form_from_definition(
        row.form_id, row.version, row.checksum, json.dumps(row.definition, ensure_ascii=False)
    )


def get_form(session: Session, form_id: str, version: int | None = None) -> Form | None:
    """A stored form: the given version, or the newest."""
    query = select(FormVersion).where(FormVersion.form_id == form_id)
    query = (
        query.where(FormVersion.version == version)
        if version is not None
        else query.order_by(
            FormVersion.version.desc()  # type: ignore[attr-defined]
        )
    )
    row = session.exec(query).first()
    return form_of(row) if row is not None else None


def commune_forms(session: Session, commune_id: int) -> list[CommuneForm]:
    """The commune's active forms in file order."""
    return list(
        session.exec(
            select(CommuneForm)
            .where(CommuneForm.commune_id == commune_id, CommuneForm.active)
            .order_by(CommuneForm.position, CommuneForm.id)
        )
    )


# ---------------------------------------------------------------------------------------------- choosing a period


@dataclass(frozen=True)
class PeriodicForm:
    """One of a commune's active periodic forms: its link row and its newest version's title."""

    commune_form: CommuneForm
    title: str

    @property
    def id(self) -> str:
        """The form id."""
        return self.commune_form.form_id


class PeriodChoiceError(Exception):
    """What was asked for does not exist; says what (`code`) and lists the valid forms and periods.

    `code`: "no_form" (the commune has no periodic form), "unknown_form", "unknown_period" or
    "no_period" (the form has no period yet). `choices` is every form with its period codes (newest
    first), `forms` the form ids and `periods` the codes of the form concerned (the main one if none).
    """

    def __init__(
        self,
        code: str,
        *,
        form_arg: str | None = None,
        period_arg: str | None = None,
        form: PeriodicForm | None = None,
        choices: Sequence[tuple[PeriodicForm, Sequence[str]]] = (),
    ) -> None:
        super().__init__(f"{code}: form={form_arg!r} period={period_arg!r}")
        self.code = code
        self.form_arg = form_arg
        self.period_arg = period_arg
        self.form = form
        self.choices = [(f, list(codes)) for f, codes in choices]
        self.forms = [f.id for f, _ in self.choices]
        concerned = form.id if form is not None else (self.forms[0] if self.forms else None)
        self.periods = next((codes for f, codes in self.choices if f.id == concerned), [])


@dataclass(frozen=True)
class PeriodChoice:
    """The form and period picked (from what someone typed, or the default)."""

    form: PeriodicForm
    period: Period
    forms: list[PeriodicForm] = field(default_factory=list)


def periodic_forms(session: Session, commune_id: int) -> list[PeriodicForm]:
    """The commune's active periodic forms in position order (the main form first), with titles."""
    rows = commune_forms(session, commune_id)
    if not rows:
        return []
    newest: dict[str, FormVersion] = {}
    versions = session.exec(
        select(FormVersion)
        .where(FormVersion.form_id.in_([r.form_id for r in rows]))  # type: ignore[attr-defined]
        .order_by(FormVersion.version)
    )
    for version in versions:
        newest[version.form_id] = version
    return [
        PeriodicForm(row, newest[row.form_id].title)
        for row in rows
        if row.form_id in newest and newest[row.form_id].kind == "periodic"
    ]


def form_periods(
    session: Session, commune_id: int, form_id: str, *, opened_by: datetime | None = None
) -> list[Period]:
    """Active periods of a commune's form, newest first (only those opened by `opened_by` if given)."""
    query = select(Period).where(Period.commune_id == commune_id, Period.form_id == form_id, Period.active)
    if opened_by is not None:
        query = query.where(Period.opens_at <= opened_by)
    rows = list(session.exec(query))
    return sorted(rows, key=lambda p: (p.opens_at, p.due_at, p.id or 0), reverse=True)


def default_period(periods: Sequence[Period], now: datetime) -> Period | None:
    """The current or just-closed period: the latest one already opened (still taking reports if one is: a
    closed ad hoc request does not hide the scheduled period still open), else the next to open."""
    opened = [p for p in periods if p.opens_at <= now]
    opened = [p for p in opened if p.closes_at > now] or opened
    if opened:
        return max(opened, key=lambda p: (p.opens_at, p.due_at, p.id or 0))
    return min(periods, key=lambda p: (p.opens_at, p.id or 0)) if periods else None


def resolve_period(
    session: Session,
    commune_id: int,
    now: datetime,
    *,
    form_arg: str | None = None,
    period_arg: str | None = None,
    opened_only: bool = False,
) -> PeriodChoice:
    """The form and period asked for, or the default; raises PeriodChoiceError listing the valid ones.

    No form: the period code is looked up in the main form first, then the others. No period: the
    form's current or just-closed period (`default_period`). Ids are compared without case; with
    `opened_only`, periods not yet open count as unknown.
    """
    opened_by = now if opened_only else None
    forms = periodic_forms(session, commune_id)

    def choices() -> list[tuple[PeriodicForm, list[str]]]:
        return [
            (f, [p.code for p in form_periods(session, commune_id, f.id, opened_by=opened_by)]) for f in forms
        ]

    if not forms:
        raise PeriodChoiceError("no_form")
    form_arg = form_arg.strip() if form_arg and form_arg.strip() else None
    period_arg = period_arg.strip() if period_arg and period_arg.strip() else None
    candidates = forms
    if form_arg is not None:
        form = next((f for f in forms if f.id.casefold() == form_arg.casefold()), None)
        if form is None:
            raise PeriodChoiceError(
                "unknown_form", form_arg=form_arg, period_arg=period_arg, choices=choices()
            )
        candidates = [form]
    if period_arg is None:
        form = candidates[0]
        period = default_period(form_periods(session, commune_id, form.id, opened_by=opened_by), now)
        if period is None:
            raise PeriodChoiceError("no_period", form_arg=form_arg, form=form, choices=choices())
        return PeriodChoice(form, period, forms)
    wanted = period_arg.casefold()
    for form in candidates:
        for period in form_periods(session, commune_id, form.id, opened_by=opened_by):
            if period.code.casefold() == wanted:
                return PeriodChoice(form, period, forms)
    raise PeriodChoiceError(
        "unknown_period",
        form_arg=form_arg,
        period_arg=period_arg,
        form=candidates[0] if form_arg is not None else None,
        choices=choices(),
    )


def resolve_args(
    session: Session, commune_id: int, args: Sequence[str], now: datetime, *, opened_only: bool = False
) -> PeriodChoice:
    """`resolve_period` from a command's words: [], [FORM], [PERIOD] or [FORM, PERIOD] (callers refuse more)."""
    words = [a.strip() for a in args if a.strip()]
    if len(words) >= 2:
        return resolve_period(
            session, commune_id, now, form_arg=words[0], period_arg=words[1], opened_only=opened_only
        )
    if not words:
        return resolve_period(session, commune_id, now, opened_only=opened_only)
    is_form = any(f.id.casefold() == words[0].casefold() for f in periodic_forms(session, commune_id))
    if is_form:
        return resolve_period(session, commune_id, now, form_arg=words[0], opened_only=opened_only)
    return resolve_period(session, commune_id, now, period_arg=words[0], opened_only=opened_only)


def store_reminder_settings(
    session: Session, commune: Commune, spec: Any, *, now: datetime, actor: str
) -> list[str]:
    """Store the commune's quiet hours and each scheduled form's reminder rules (audited when changed)."""
    from bot.calendar.reminder_rules import DEFAULT_QUIET

    lines: list[str] = []
    quiet = getattr(spec, "quiet_hours", DEFAULT_QUIET)
    if (commune.quiet_start, commune.quiet_end) != (quiet.start, quiet.end):
        before = (
            f"{commune.quiet_start:%H:%M}-{commune.quiet_end:%H:%M}"
            if commune.quiet_start is not None and commune.quiet_end is not None
            else None
        )
        commune.quiet_start, commune.quiet_end = quiet.start, quiet.end
        commune.updated_at = now
        audit.record(
            session,
            at=now,
            actor=actor,
            action="setup.quiet_hours",
            entity="commune",
            entity_id=commune.id,
            before=before,
            after=quiet.text,
        )
        if before is not None:
            shown = "không có" if not quiet.enabled else quiet.text.replace("-", " đến ")
            lines.append(f"{commune.name}: giờ không nhắn tin đổi thành {shown}.")
    rows = {
        row.form_id: row
        for row in session.exec(select(CommuneForm).where(CommuneForm.commune_id == commune.id))
    }
    for schedule in spec.schedules:
        row = rows.get(schedule.form)
        wanted = schedule.reminders.to_json()
        if row is None or row.reminders == wanted:
            continue
        changed = row.reminders is not None
        audit.record(
            session,
            at=now,
            actor=actor,
            action="setup.reminders",
            entity="commune_form",
            entity_id=row.id,
            form=schedule.form,
            before=row.reminders,
            after=wanted,
        )
        row.reminders = wanted
        if changed:
            lines.append(
                f"{commune.name}: nhắc hạn {schedule.form} đổi thành {schedule.reminders.describe()}."
            )
    session.flush()
    return lines


def store_setup_forms(session: Session, setup: Any, *, now: datetime, actor: str = "setup") -> list[str]:
    """Store every commune's form files, link them to the commune and sync its periods.

    Raises FormStoreError listing every problem (bad form files, changed definitions without a new
    version, schedules naming a form the commune does not use); the caller's transaction then rolls back.
    """
    lines: list[str] = []
    problems: list[str] = []
    for spec in setup.communes:
        commune = session.exec(select(Commune).where(Commune.code == spec.code)).one()
        form_ids: list[str] = []
        if spec.forms:
            result = load_form_files(list(spec.forms))
            if result.errors:
                problems.extend(str(e) for e in result.errors)
                continue
            try:
                lines.extend(store_forms(session, result.forms, now=now, actor=actor))
            except FormStoreError as exc:
                problems.extend(exc.reasons)
                continue
            form_ids = list(dict.fromkeys(f.id for f in result.forms))
        unknown = [s.form for s in spec.schedules if s.form not in form_ids]
        for form_id in unknown:
            problems.append(
                f"{spec.code}: lịch (schedules) nhắc tới biểu mẫu '{form_id}' nhưng xã không dùng biểu mẫu này "
                f"(forms có: {', '.join(form_ids) or 'không có'})"
            )
        if unknown:
            continue
        lines.extend(link_commune_forms(session, commune, form_ids, now=now, actor=actor))
        tz = ZoneInfo(spec.timezone or "Asia/Ho_Chi_Minh")
        lines.extend(sync_periods(session, commune, spec.schedules, now=now, tz=tz, actor=actor))
        main = next((s.form for s in spec.schedules if s.main), None)
        if main is not None:
            for row in session.exec(select(CommuneForm).where(CommuneForm.commune_id == commune.id)):
                row.position = -1 if row.form_id == main else max(row.position, 0)
        lines.extend(store_reminder_settings(session, commune, spec, now=now, actor=actor))
    if problems:
        raise FormStoreError(problems)
    session.flush()
    return lines
