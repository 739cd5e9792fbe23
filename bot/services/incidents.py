"""Incidents (ad hoc reports) seen by the police: the short-label lines of an incident's answers and the
urgency its alert opens with (`answer_lines`, `headline`), the alerts owed to the police chats (`queue_alert`,
outbox rows of kind alert: the early one when the form's `alert_early_when` holds, the full one at submission;
each row ends with the files of the answers' `document` questions, forwarded by their Telegram file ids),
and the commune's incidents with the state of their alerts read from those rows (`recent_incidents`,
`find_incident`).

An incident is known by its receipt code: the early alert takes the code the submission then keeps.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, select

from bot.forms.alert_rule import alert_due, alert_questions
from bot.forms.model import Form, Question
from bot.forms.types import type_of
from bot.forms.types.document import files_of, human_size
from bot.services.forms import get_form
from bot.services.outbox_messages import KIND_ALERT, queue_message
from bot.texts.templates import render
from bot.texts.values import format_value
from storage.models import FormVersion, Outbox, OutboxStatus, Person, PoliceChat, Submission, Village

STAGE_EARLY = "early"  # the alert sent when the form's alert_early_when first held
STAGE_FULL = "full"  # the alert sent with the submission
PAYLOAD_KEY = "incident"  # in an alert row's payload: {"receipt", "stage", "form", "version", "answers"}
PAGE_SIZE = 8  # incidents on one page of the police list (buttons: 8 + 2 arrows + export + new ≤ 12)
CAPTION_MAX = 1024  # Telegram's longest file caption (HTML as sent; Telegram counts the text it shows)


class AlertStatus(StrEnum):
    """Where an incident's alerts to the police chats stand."""

    DELIVERED = "delivered"  # every alert row sent
    WAITING = "waiting"  # some row waits for its (next) try
    FAILED = "failed"  # given up, or the police chat refuses the bot (kept, retried)
    NONE = "none"  # the commune has no police chat: nobody was alerted


class Level(StrEnum):
    """The urgency an alert opens with."""

    URGENT = "urgent"  # the form's alert_early_when holds: 🚨 KHẨN CẤP
    TODAY = "today"  # another choice of the urgency question, not its last
    INFO = "info"  # the urgency question's last (calmest) choice
    PLAIN = "plain"  # the form says nothing about urgency


@dataclass(frozen=True)
class Line:
    """One answer under its short label."""

    label: str
    value: str


@dataclass(frozen=True)
class Lines:
    """An incident's answers: text lines, photos (label, file id), map pins (label, (lat, lon)) and the files
    of document questions (label, file item {"file_id", "name", "size", …})."""

    rows: list[Line] = field(default_factory=list)
    photos: list[tuple[str, str]] = field(default_factory=list)
    pins: list[tuple[str, tuple[float, float]]] = field(default_factory=list)
    files: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class Headline:
    """The alert's first line: the level and, below urgent, the label of the chosen urgency."""

    level: Level
    label: str = ""


def answer_lines(form: Form, answers: Mapping[str, Any]) -> Lines:
    """The answers under the questions' short labels (never the question put to the head), in form order."""
    out = Lines()

    def visit(question: Question, value: Any, prefix: str = "") -> None:
        if value is None:
            return
        label = f"{prefix}{question.short_label}"
        needs = type_of(question).needs_input
        if needs == "photo" and isinstance(value, dict) and value.get("file_id"):
            out.photos.append((label, str(value["file_id"])))
        elif needs == "location" and isinstance(value, dict):
            try:
                out.pins.append((label, (float(value["lat"]), float(value["lon"]))))
            except (KeyError, TypeError, ValueError):
                return
        elif needs == "document":
            out.files.extend((label, item) for item in files_of(value))
        out.rows.append(Line(label, format_value(question, value)))

    for question in form.questions:
        if not type_of(question).answered or question.id not in answers:
            continue
        value = answers[question.id]
        if type_of(question).group and isinstance(value, list):
            out.rows.append(Line(question.short_label, str(len(value))))
            for index, item in enumerate(value, start=1):
                if isinstance(item, dict):
                    for sub in question.questions:
                        if type_of(sub).answered and sub.id in item:
                            visit(sub, item[sub.id], prefix=f"{index}. ")
        else:
            visit(question, value)
    return out


def headline(form: Form, answers: Mapping[str, Any]) -> Headline:
    """Urgent when the form's alert_early_when holds; else the chosen label of the question it names."""
    if alert_due(form, answers):
        return Headline(Level.URGENT)
    for qid in alert_questions(form):
        question = form.question(qid)
        values = [c.value for c in question.choices]
        value = answers.get(qid)
        if isinstance(value, str) and value in values:
            level = Level.INFO if value == values[-1] else Level.TODAY
            return Headline(level, question.choice_label(value))
    return Headline(Level.PLAIN)


def summary_of(form: Form, answers: Mapping[str, Any]) -> str:
    """A few words for a list line: the first answered question's value (e.g. the kind of incident)."""
    lines = answer_lines(form, answers).rows
    return lines[0].value if lines else ""


def reporter_link(person: Person | None) -> str:
    """The reporter as an HTML link that opens their Telegram profile ("đã xoá" once forgotten)."""
    if person is None:
        return ""
    name = html.escape(person.full_name or "")
    if person.forgotten_at is not None or person.telegram_user_id is None:
        return name
    return f'<a href="tg://user?id={int(person.telegram_user_id)}">{name}</a>'


# ---------------------------------------------------------------------------------------------- alerts


def file_caption(label: str, village: str, item: Mapping[str, Any]) -> str:
    """A forwarded file's HTML caption (name, size, short label, village), at most CAPTION_MAX characters: a
    long name is cut before it is escaped, so no HTML entity is ever cut in two."""
    name = str(item.get("name") or "")
    size = human_size(item.get("size"))
    for keep in (len(name), 120, 40):
        shown = name if keep >= len(name) else name[:keep] + "…"
        caption = render("incidents/file_caption.html", name=shown, size=size, label=label, village=village)
        if len(caption) <= CAPTION_MAX:
            return caption
    return render("incidents/file_caption.html", name="", size="", label=label[:40], village=village[:40])


def alert_files(form: Form, answers: Mapping[str, Any], village: Village) -> list[tuple[str, str]]:
    """(caption, Telegram file id) of every file the answers hold, in form order: what an alert forwards."""
    return [
        (file_caption(label, village.name, item), str(item["file_id"]))
        for label, item in answer_lines(form, answers).files
    ]


def queue_alert(
    session: Session,
    *,
    stage: str,
    receipt: str,
    submission_id: int | None,
    village: Village,
    form: Form,
    answers: Mapping[str, Any],
    text: str,
    photos: Sequence[tuple[str, str]],
    pins: Sequence[tuple[str, tuple[float, float]]],
    by: Person,
    now: datetime,
    chat_ids: Iterable[int],
) -> list[int]:
    """One alert row per police chat (key unique per incident, stage and chat: never owed twice); the ids of
    the rows written now. The text, then the photos, then the files of the answers' document questions
    (`alert_files`), then the pins. The reporter's linked name goes in `by_name` (erased if they are
    forgotten)."""
    prefix = f"alert:{submission_id}" if stage == STAGE_FULL else f"alert:{STAGE_EARLY}:{receipt}"
    documents = alert_files(form, answers, village)
    written = []
    for chat_id in chat_ids:
        row_id = queue_message(
            session,
            key=f"{prefix}:{chat_id}",
            kind=KIND_ALERT,
            chat_id=chat_id,
            text=text,
            now=now,
            photos=photos,
            pins=pins,
            documents=documents,
            village_id=village.id,
            by=by.id,
            by_name=reporter_link(by),
        )
        if row_id is None:
            continue
        row = session.get(Outbox, row_id)
        info: dict[str, Any] = {"receipt": receipt, "stage": stage, "form": form.id, "version": form.version}
        if stage == STAGE_EARLY:  # nothing else keeps what was known then
            info["answers"] = dict(answers)
        row.payload = {**row.payload, PAYLOAD_KEY: info}
        written.append(row_id)
    session.flush()
    return written


# ---------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class StageState:
    """One stage's alerts: its status and when the last of them was sent."""

    status: AlertStatus
    sent_at: datetime | None = None


@dataclass
class Incident:
    """An incident of a commune as the police see it."""

    receipt: str
    village: Village
    at: datetime  # when the police were first told (or the head sent it)
    form: Form | None
    answers: dict[str, Any]
    complete: bool  # the head sent the whole form (there is a submission)
    reporter: Person | None = None
    submission_id: int | None = None
    early: StageState | None = None  # the early alert, if there was one
    full: StageState | None = None  # the full alert (with a submission)

    @property
    def status(self) -> AlertStatus:
        """The state of all its alerts: failed before waiting before delivered."""
        states = [s.status for s in (self.early, self.full) if s is not None]
        for status in (AlertStatus.FAILED, AlertStatus.WAITING, AlertStatus.DELIVERED):
            if status in states:
                return status
        return AlertStatus.NONE

    @property
    def headline(self) -> Headline:
        """The urgency its alert opened with."""
        return headline(self.form, self.answers) if self.form is not None else Headline(Level.PLAIN)

    @property
    def summary(self) -> str:
        """The first answer (e.g. the kind of incident)."""
        return summary_of(self.form, self.answers) if self.form is not None else ""

    def lines(self) -> Lines:
        """Its answers under short labels, with photos and pins."""
        return answer_lines(self.form, self.answers) if self.form is not None else Lines()


def _stage_state(rows: list[Outbox], unreachable: set[int]) -> StageState:
    rows = [r for r in rows if r.status != OutboxStatus.OBSOLETE]
    if not rows:
        return StageState(AlertStatus.NONE)
    statuses = {r.status for r in rows}
    if OutboxStatus.FAILED in statuses or any(
        r.status != OutboxStatus.SENT and r.chat_id in unreachable for r in rows
    ):
        return StageState(AlertStatus.FAILED)
    if statuses != {OutboxStatus.SENT}:
        return StageState(AlertStatus.WAITING)
    return StageState(AlertStatus.DELIVERED, max(r.sent_at for r in rows if r.sent_at is not None))


def _stage_of(row: Outbox) -> tuple[str, str] | None:
    """(stage, receipt or submission id) from an alert row's key: alert:early:<receipt>:<chat>, alert:<id>:<chat>."""
    parts = row.key.split(":")
    if len(parts) == 4 and parts[1] == STAGE_EARLY:
        return STAGE_EARLY, parts[2]
    if len(parts) == 3 and parts[1].isdigit():
        return STAGE_FULL, parts[1]
    return None


def _collect(session: Session, commune_ids: Sequence[int], receipt: str | None = None) -> list[Incident]:
    """The incidents of these communes (one, with `receipt`), newest first."""
    villages = {
        v.id: v
        for v in session.exec(select(Village).where(Village.commune_id.in_(list(commune_ids))))  # type: ignore[attr-defined]
    }
    if not villages:
        return []
    incident_forms = set(session.exec(select(FormVersion.form_id).where(FormVersion.kind == "incident")))
    query = select(Submission).where(
        Submission.village_id.in_(list(villages)),  # type: ignore[attr-defined]
        Submission.period_id.is_(None),  # type: ignore[union-attr]
        Submission.form_id.in_(incident_forms),  # type: ignore[attr-defined]
    )
    if receipt is not None:
        query = query.where(Submission.receipt == receipt)
    submissions = list(session.exec(query))
    alerts = select(Outbox).where(Outbox.kind == KIND_ALERT, Outbox.village_id.in_(list(villages)))  # type: ignore[attr-defined]
    if receipt is not None:
        keys = [f"alert:{STAGE_EARLY}:{receipt}:%"] + [f"alert:{s.id}:%" for s in submissions]
        alerts = alerts.where(_any_like(keys))
    rows = list(session.exec(alerts))
    unreachable = set(
        session.exec(
            select(PoliceChat.chat_id).where(PoliceChat.unreachable_at.is_not(None))  # type: ignore[union-attr]
        )
    )
    early_rows: dict[str, list[Outbox]] = {}
    full_rows: dict[str, list[Outbox]] = {}
    for row in rows:
        stage = _stage_of(row)
        if stage is not None:
            (early_rows if stage[0] == STAGE_EARLY else full_rows).setdefault(stage[1], []).append(row)
    people: dict[int, Person | None] = {}

    def person(person_id: Any) -> Person | None:
        if not isinstance(person_id, int):
            return None
        if person_id not in people:
            people[person_id] = session.get(Person, person_id)
        return people[person_id]

    out: list[Incident] = []
    for sub in submissions:
        early = early_rows.pop(sub.receipt, None)
        out.append(
            Incident(
                receipt=sub.receipt,
                village=villages[sub.village_id],
                at=min([sub.sent_at, *(r.created_at for r in early or ())]),
                form=get_form(session, sub.form_id, sub.form_version),
                answers=dict(sub.answers or {}),
                complete=True,
                reporter=person(sub.submitted_by_person_id),
                submission_id=sub.id,
                early=_stage_state(early, unreachable) if early else None,
                full=_stage_state(full_rows.get(str(sub.id), []), unreachable),
            )
        )
    for code, early in early_rows.items():  # alerted early, the form not sent (yet, or abandoned)
        if receipt is not None and code != receipt:
            continue
        first = min(early, key=lambda r: r.id or 0)
        info = (first.payload or {}).get(PAYLOAD_KEY) or {}
        form = None
        if isinstance(info.get("form"), str) and isinstance(info.get("version"), int):
            form = get_form(session, info["form"], info["version"])
        out.append(
            Incident(
                receipt=code,
                village=villages[first.village_id],
                at=first.created_at,
                form=form,
                answers=dict(info.get("answers") or {}),
                complete=False,
                reporter=person((first.payload or {}).get("by")),
                early=_stage_state(early, unreachable),
            )
        )
    out.sort(key=lambda i: (_aware(i.at), i.receipt), reverse=True)
    return out


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _any_like(patterns: list[str]) -> Any:
    return or_(*(Outbox.key.like(p) for p in patterns))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class IncidentPage:
    """One page of a commune's incidents, newest first."""

    items: list[Incident]
    page: int  # 0-based, clamped to the pages there are
    pages: int
    total: int


def recent_incidents(session: Session, commune_ids: Sequence[int], page: int = 0) -> IncidentPage:
    """A page of the incidents of these communes (newest first), with their alerts' state."""
    everything = _collect(session, commune_ids)
    pages = max(1, -(-len(everything) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    items = everything[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    return IncidentPage(items, page, pages, len(everything))


def all_incidents(session: Session, commune_ids: Sequence[int]) -> list[Incident]:
    """Every incident of these communes, newest first (for the export)."""
    return _collect(session, commune_ids)


def find_incident(session: Session, commune_ids: Sequence[int], receipt: str) -> Incident | None:
    """The incident with this receipt code if it belongs to one of these communes, else None."""
    found = _collect(session, commune_ids, receipt=receipt)
    return found[0] if found else None
