"""Reading submissions back: labelled rows, and the commune police's summary computed in SQL
(`build_summary`, `village_rows`, `village_submission`, `answer_rows`, `indicator_totals`).

Design notes: docs/design-notes.md#botservicessummariespy
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Numeric,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    true,
)
from sqlmodel import Session, select

from bot.forms.derived import DerivedValue, compute_all
from bot.forms.model import Derived, Form, Question
from bot.forms.types import TYPES, type_of
from bot.services.addressees import period_addressee
from bot.services.completeness import (
    CommuneCompleteness,
    Completeness,
    Scope,
    VillageState,
    as_scope,
    commune_completeness,
    completeness,
    draft_flag,
    first_versions,
    join_current_submission,
    previous_period,
    previous_scope,
    province_scope,
)
from bot.services.forms import form_of, get_form
from bot.services.period_units import villages_of_period
from bot.texts.values import format_value
from storage.answers_sql import (
    answer_columns,
    answer_text,
    as_boolean,
    as_text,
    is_pg,
    keep_rows_apart,
    list_contains,
    list_length,
)
from storage.models import Commune, FormVersion, Period, Submission, Village

SHORT_TEXT = 200  # free texts are shown up to this many characters, with a button for the rest
ROLLUP_NAMES = 50  # a roll-up names at most this many "no" villages per yes/no question


def answer_rows(
    form: Form, answers: Mapping[str, Any]
) -> tuple[list[dict[str, str]], list[tuple[str, str]], list[tuple[str, tuple[float, float]]]]:
    """Labelled rows of a submission, plus its photos (label, file_id) and locations (label, (lat, lon))."""
    rows: list[dict[str, str]] = []
    photos: list[tuple[str, str]] = []
    locations: list[tuple[str, tuple[float, float]]] = []

    def visit(question: Question, value: Any, prefix: str = "") -> None:
        label = f"{prefix}{question.short_label}"
        if value is None:
            return
        if type_of(question).needs_input == "photo" and isinstance(value, dict) and value.get("file_id"):
            photos.append((label, str(value["file_id"])))
        elif type_of(question).needs_input == "location" and isinstance(value, dict):
            try:
                locations.append((label, (float(value["lat"]), float(value["lon"]))))
            except (KeyError, TypeError, ValueError):
                return
        rows.append({"label": label, "value": format_value(question, value)})

    for question in form.questions:
        if not type_of(question).answered or question.id not in answers:
            continue
        value = answers[question.id]
        if type_of(question).group and isinstance(value, list):
            rows.append({"label": question.short_label, "value": str(len(value))})
            for index, item in enumerate(value, start=1):
                if not isinstance(item, dict):
                    continue
                for sub in question.questions:
                    if type_of(sub).answered and sub.id in item:
                        visit(sub, item[sub.id], prefix=f"{index}. ")
        else:
            visit(question, value)
    return rows, photos, locations


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class VillageRef:
    """A village named in a summary (with its commune, for roll-ups)."""

    village_id: int
    name: str
    commune: str = ""


@dataclass(frozen=True)
class ChoiceCount:
    """How many reports picked one option."""

    value: str
    label: str
    count: int


@dataclass(frozen=True)
class IndicatorSummary:
    """One question summed up across the villages of a scope.

    kind: the question type's `summary`: "number" (sum: `total`, `previous`), "mean" (percent: the mean
    over villages that answered, in `total`), "items" (repeat groups: items in all),
    "choice" / "multi" (`counts` per option, `other` for values no longer offered), "yes_no" (`yes`,
    `no`, `no_villages`), "date" (`first`..`last`).
    """

    question: Question
    kind: str
    reports: int  # current reports counted in the scope
    answered: int  # of them, those that answered this question (skipped or not asked: not counted)
    total: int | Decimal | None = None
    previous: int | Decimal | None = None  # None: no previous period (or no report in it)
    previous_answered: int = 0
    counts: tuple[ChoiceCount, ...] = ()
    other: int = 0
    yes: int = 0
    no: int = 0
    no_villages: tuple[VillageRef, ...] = ()
    first: date | None = None
    last: date | None = None
    with_items: int = 0  # repeat groups: reports with at least one item

    @property
    def change(self) -> int | Decimal | None:
        """Total minus the previous period's total (None without a previous period)."""
        if self.total is None or self.previous is None:
            return None
        return self.total - self.previous


@dataclass(frozen=True)
class FreeText:
    """A long-text answer of one village, shortened."""

    question: Question
    question_index: int  # position in form.questions (carried by the "xem đủ" button)
    village_id: int
    village: str
    commune: str
    period_id: int
    text: str  # at most SHORT_TEXT characters (+ "…")
    length: int  # of the full answer

    @property
    def truncated(self) -> bool:
        """Whether the answer was shortened."""
        return self.length > len(self.text.rstrip("…"))


@dataclass(frozen=True)
class VillageRow:
    """One village's line for exports: its state and current submission (if any)."""

    village_id: int
    village: str
    commune_id: int
    commune: str
    period_id: int
    due_at: datetime
    state: VillageState
    answers: dict[str, Any] | None = None  # the current version's answers
    submission_id: int | None = None
    sent_at: datetime | None = None  # current version
    first_sent_at: datetime | None = None  # first version (timeliness)
    version_no: int | None = None
    form_version: int | None = None
    receipt: str | None = None

    @property
    def submitted(self) -> bool:
        """Whether a report is in."""
        return self.answers is not None

    @property
    def on_time(self) -> bool | None:
        """First version before the deadline (None when nothing was sent)."""
        return None if self.first_sent_at is None else self.first_sent_at < self.due_at

    @property
    def late_by(self) -> timedelta | None:
        """First version's sent_at − due_at, for late reports."""
        if self.first_sent_at is None or self.first_sent_at < self.due_at:
            return None
        return self.first_sent_at - self.due_at


@dataclass(frozen=True)
class VillageReport:
    """One village's whole current submission for a period, as labelled rows."""

    village: Village
    period: Period
    submission: Submission
    form: Form
    rows: list[dict[str, str]]
    first_sent_at: datetime
    derived: tuple[DerivedValue, ...] = ()  # the form's derived figures over this village's answers alone

    @property
    def on_time(self) -> bool:
        """First version before the deadline."""
        return self.first_sent_at < self.period.due_at

    @property
    def late_by(self) -> timedelta | None:
        """How late the first version was."""
        return None if self.on_time else self.first_sent_at - self.period.due_at


@dataclass(frozen=True)
class DerivedSummary:
    """One derived figure of the form (`derived:`) over a scope, with the previous period's value.

    `value.value`: the percentage (share), sum, or number of villages meeting the condition (count);
    None when there is nothing to compute from (no report, or a share out of 0).
    """

    value: DerivedValue
    previous: DerivedValue | None = None  # None: no previous period (or no report in it)

    @property
    def derived(self) -> Derived:
        """The figure as the form declares it."""
        return self.value.derived

    @property
    def change(self) -> int | Decimal | None:
        """This period's value minus the previous one's (percentage points for a share)."""
        now = self.value.value
        before = self.previous.value if self.previous is not None else None
        if now is None or before is None:
            return None
        return now - before


@dataclass(frozen=True)
class Summary:
    """Everything /summary shows for a scope."""

    scope: Scope
    form: Form
    now: datetime
    indicators: list[IndicatorSummary]
    completeness: Completeness | None = None  # one commune
    communes: list[CommuneCompleteness] = field(default_factory=list)  # a province roll-up
    free_texts: list[FreeText] = field(default_factory=list)
    free_text_count: int = 0
    previous: Scope | None = None
    derived: list[DerivedSummary] = field(default_factory=list)  # the form's computed figures, in form order
    addressee: str = ""  # whom the units' reports go to ("UBND xã (qua Công an xã)"), from the schedule


# ---------------------------------------------------------------------------------------------- SQL pieces


def _compatible(a: str, b: str) -> bool:
    return a == b or (a in TYPES and b in TYPES and TYPES[a].numeric and TYPES[b].numeric)


def compatible_versions(session: Session, form: Form) -> dict[str, frozenset[int] | None]:
    """Per question id of `form`: the stored versions whose answers count (None: every version)."""

    others = []
    for row in session.exec(select(FormVersion).where(FormVersion.form_id == form.id)):
        if row.version == form.version:
            continue
        try:
            others.append(form_of(row))
        except Exception:  # an unreadable old definition: its answers are left out
            others.append(Form(form.id, "", row.version, ()))
    out: dict[str, frozenset[int] | None] = {}
    for q in form.questions:
        ok = {form.version}
        for old in others:
            if old.has_question(q.id) and _compatible(old.question(q.id).type, q.type):
                ok.add(old.version)
        out[q.id] = None if len(ok) == len(others) + 1 else frozenset(ok)
    return out


def _source(
    session: Session, scope: Scope, form: Form, questions: Sequence[Question], *, with_village: bool = False
) -> Any:
    """The scope's current submissions of active villages, one row each, with the answers to `questions`.

    The answers come as columns `k0, k1, …` (storage.answers_sql.answer_columns).
    """
    cols: list[Any] = [
        Submission.village_id.label("village_id"),
        Submission.period_id.label("period_id"),
        Submission.form_version.label("form_version"),
    ]
    pg = is_pg(session)
    answers, record = answer_columns(pg, [(q.id, _is_list(q)) for q in questions])
    cols += answers
    if with_village:
        cols += [Village.name.label("village"), Commune.name.label("commune")]
    query = (
        select(*cols)
        .select_from(Submission)
        .join(Village, Village.id == Submission.village_id)
        .where(
            scope.where_period(Submission.period_id),
            Submission.form_id == form.id,
            Submission.is_current,
            Village.active,
        )
    )
    if with_village:
        query = query.join(Commune, Commune.id == Village.commune_id)
    if record is not None:
        query = query.join(record, true())  # a function in FROM may use earlier columns (implicit LATERAL)
    return keep_rows_apart(pg, query).subquery("src")


def _guard(expr: Any, src: Any, versions: frozenset[int] | None) -> Any:
    """`expr` only for submissions of compatible form versions (NULL for the others)."""
    if versions is None:
        return expr
    return case((src.c.form_version.in_(sorted(versions)), expr), else_=null())


class _Columns:
    """The source of a scope's SELECT and the SQL of each answer as a number, text, boolean…"""

    def __init__(
        self,
        session: Session,
        scope: Scope,
        form: Form,
        questions: Sequence[Question],
        versions: Mapping[str, frozenset[int] | None],
        *,
        with_village: bool = False,
    ) -> None:
        self.pg = is_pg(session)
        self.src = _source(session, scope, form, questions, with_village=with_village)
        self.keys = {q.id: f"k{i}" for i, q in enumerate(questions)}
        self.versions = versions
        self.columns: list[Any] = [func.count().label("n")]

    def add(self, name: str, expr: Any) -> None:
        self.columns.append(expr.label(name))

    def _raw(self, qid: str) -> Any:
        return self.src.c[self.keys[qid]]

    def _guarded(self, qid: str, expr: Any) -> Any:
        return _guard(expr, self.src, self.versions.get(qid))

    def _type(self, qid: str) -> Any:
        return self.src.c["t" + self.keys[qid][1:]]

    def numeric(self, qid: str) -> Any:
        return self._guarded(qid, cast(self._raw(qid), Numeric()))

    def string(self, qid: str) -> Any:
        raw = self._raw(qid)
        return self._guarded(qid, as_text(self.pg, raw))

    def boolean(self, qid: str) -> Any:
        raw = self._raw(qid)
        return self._guarded(qid, as_boolean(self.pg, raw))

    def contains(self, qid: str, value: str) -> Any:
        """The multi-choice answer (a JSON array) holds `value`."""
        json_type = None if self.pg else self._type(qid)
        return self._guarded(qid, list_contains(self.pg, self._raw(qid), json_type, value))

    def items(self, qid: str) -> Any:
        """Number of items of a repeat group's answer (NULL when absent or skipped)."""
        json_type = None if self.pg else self._type(qid)
        return self._guarded(qid, list_length(self.pg, self._raw(qid), json_type))


def _one(n: Any) -> Any:
    return case((n, 1), else_=0)


def _is_list(q: Question) -> bool:
    """Whether the answer is a JSON list (read as JSON rather than text)."""
    return type_of(q).many or type_of(q).group


def _number(value: Any, integer: bool) -> int | Decimal:
    """A SQL sum as int (integer questions, whole sums) or a normalised Decimal."""
    if value is None:
        return 0
    d = Decimal(repr(round(value, 9))) if isinstance(value, float) else Decimal(value)
    if integer or d == d.to_integral_value():
        return int(d)
    return d.normalize()


_NUMBERS = ("sum", "mean", "items")  # the aggregations the previous period is computed for


def _mean(total: Any, answered: int) -> Decimal | None:
    """The mean over the villages that answered, to one decimal (None when none did)."""
    if not answered:
        return None
    return (_to_decimal(total) / answered).quantize(Decimal("0.1")).normalize()


def _to_decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return Decimal(repr(round(value, 9))) if isinstance(value, float) else Decimal(value)


def _summarised(form: Form) -> list[Question]:
    return [q for q in form.questions if type_of(q).summary is not None]


def _aggregate(
    session: Session, scope: Scope, form: Form, versions: Mapping[str, frozenset[int] | None], *, full: bool
) -> dict[str, Any]:
    """One SELECT over the scope's current submissions: every indicator's figures as columns.

    `full=False` (the previous period) computes the numbers only. With `full`, the count of non-empty
    long answers comes along as `texts`, so a roll-up needs no second pass to say how many there are.
    """
    questions = [(i, q) for i, q in enumerate(_summarised(form)) if full or type_of(q).summary in _NUMBERS]
    texts = [q for _, q in _long_texts(form)] if full else []
    c = _Columns(session, scope, form, [*(q for _, q in questions), *texts], versions)
    for i, q in questions:
        p = f"q{i}_"  # short labels: PostgreSQL cuts identifiers at 63 bytes, question ids may be long
        how = type_of(q).summary
        if how in ("sum", "mean"):
            c.add(p + "sum", func.sum(c.numeric(q.id)))
            c.add(p + "n", func.count(c.string(q.id)))
        elif how == "items":
            items = c.items(q.id)
            c.add(p + "sum", func.sum(items))
            c.add(p + "n", func.count(items))
            if full:
                c.add(p + "with", func.sum(_one(items > 0)))
        elif how == "choice":
            value = c.string(q.id)
            c.add(p + "n", func.count(value))
            for j, choice in enumerate(q.choices):
                c.add(f"{p}c{j}", func.sum(_one(value == choice.value)))
        elif how == "multi":
            c.add(p + "n", func.count(c.string(q.id)))
            for j, choice in enumerate(q.choices):
                c.add(f"{p}c{j}", func.sum(_one(c.contains(q.id, choice.value))))
        elif how == "yes_no":
            value = c.boolean(q.id)
            c.add(p + "n", func.count(value))
            c.add(p + "yes", func.sum(_one(value)))
            c.add(p + "no", func.sum(_one(~value)))
        elif how == "date":
            value = c.string(q.id)
            c.add(p + "n", func.count(value))
            c.add(p + "min", func.min(value))
            c.add(p + "max", func.max(value))
    if texts:
        filled = [_one(func.length(func.trim(c.string(q.id))) > 0) for q in texts]
        c.add("texts", func.sum(sum(filled[1:], filled[0])))
    row = session.execute(select(*c.columns).select_from(c.src)).mappings().one()
    return dict(row)


def _no_villages(
    session: Session,
    scope: Scope,
    form: Form,
    versions: Mapping[str, frozenset[int] | None],
    questions: Sequence[Question],
    limit: int | None = None,
) -> dict[str, list[VillageRef]]:
    """For each yes/no question, the villages that answered no (all of them, or the first `limit`)."""
    if not questions:
        return {}
    c = _Columns(session, scope, form, questions, versions, with_village=True)
    src = c.src
    out: dict[str, list[VillageRef]] = {q.id: [] for q in questions}
    if limit is not None:  # roll-ups: a few names per question; no ORDER BY, so each query stops early
        for q in questions:
            query = (
                select(src.c.village_id, src.c.village, src.c.commune).where(~c.boolean(q.id)).limit(limit)
            )
            found = [VillageRef(v, name, commune) for v, name, commune in session.execute(query)]
            out[q.id] = sorted(found, key=lambda ref: (ref.commune, ref.village_id))
        return out
    flags = [~c.boolean(q.id) for q in questions]
    query = select(src.c.village_id, src.c.village, src.c.commune, *[_one(f) for f in flags]).where(
        or_(*flags)
    )
    for village_id, village, commune, *said_no in session.execute(
        query.order_by(src.c.commune, src.c.village_id)
    ):
        for q, no in zip(questions, said_no, strict=True):
            if no:
                out[q.id].append(VillageRef(village_id, village, commune))
    return out


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value is not None else None
    except ValueError:
        return None


def indicator_totals(
    session: Session,
    period: Period | Scope,
    form: Form,
    *,
    previous: Period | Scope | bool | None = True,
    no_limit: int | None = None,
) -> list[IndicatorSummary]:
    """Per summarised question of `form`: totals, contributors, change vs the previous period, breakdowns.

    Numbers: sum and villages that answered, with the previous period's sum (`previous=True` finds it;
    pass a Period/Scope to choose, or False/None for none). Repeat groups: items in all. Single/multi
    choice: count per option. Yes/no: yes/no counts and the villages that said no (the first `no_limit`
    of them when given; `no` is always the exact count). Dates: first and last.
    """
    return _indicators(session, as_scope(period), form, previous=previous, no_limit=no_limit)[0]


def _indicators(
    session: Session,
    scope: Scope,
    form: Form,
    *,
    previous: Period | Scope | bool | None,
    no_limit: int | None,
) -> tuple[list[IndicatorSummary], int]:
    """The indicators, plus the number of non-empty long answers (same pass)."""
    versions = compatible_versions(session, form)
    now_row = _aggregate(session, scope, form, versions, full=True)
    prev_scope: Scope | None
    if previous is True:
        prev_scope = previous_scope(session, scope)
    elif previous is None or previous is False:
        prev_scope = None
    else:
        prev_scope = as_scope(previous)  # type: ignore[arg-type]
    prev_row = _aggregate(session, prev_scope, form, versions, full=False) if prev_scope else None
    if prev_row is not None and not prev_row["n"]:
        prev_row = None
    questions = _summarised(form)
    yes_no = [q for q in questions if type_of(q).summary == "yes_no"]
    nos = _no_villages(session, scope, form, versions, yes_no, no_limit)
    reports = int(now_row["n"] or 0)
    out: list[IndicatorSummary] = []
    for i, q in enumerate(questions):
        p = f"q{i}_"
        answered = int(now_row[p + "n"] or 0)
        how = type_of(q).summary
        if how == "mean":
            out.append(
                IndicatorSummary(
                    q,
                    "mean",
                    reports,
                    answered,
                    total=_mean(now_row[p + "sum"], answered),
                    previous=_mean(prev_row[p + "sum"], int(prev_row[p + "n"] or 0)) if prev_row else None,
                    previous_answered=int(prev_row[p + "n"] or 0) if prev_row is not None else 0,
                )
            )
        elif how in ("sum", "items"):
            integer = how == "items" or type_of(q).export_kind == "int"
            out.append(
                IndicatorSummary(
                    q,
                    "number" if how == "sum" else "items",
                    reports,
                    answered,
                    total=_number(now_row[p + "sum"], integer),
                    previous=_number(prev_row[p + "sum"], integer) if prev_row is not None else None,
                    previous_answered=int(prev_row[p + "n"] or 0) if prev_row is not None else 0,
                    with_items=int(now_row.get(p + "with") or 0),
                )
            )
        elif how in ("choice", "multi"):
            counts = tuple(
                ChoiceCount(ch.value, ch.label, int(now_row[f"{p}c{j}"] or 0))
                for j, ch in enumerate(q.choices)
            )
            other = answered - sum(cc.count for cc in counts) if how == "choice" else 0
            kind = how
            out.append(IndicatorSummary(q, kind, reports, answered, counts=counts, other=max(other, 0)))
        elif how == "yes_no":
            out.append(
                IndicatorSummary(
                    q,
                    "yes_no",
                    reports,
                    answered,
                    yes=int(now_row[p + "yes"] or 0),
                    no=int(now_row[p + "no"] or 0),
                    no_villages=tuple(nos.get(q.id, ())),
                )
            )
        elif how == "date":
            out.append(
                IndicatorSummary(
                    q,
                    "date",
                    reports,
                    answered,
                    first=_date(now_row[p + "min"]),
                    last=_date(now_row[p + "max"]),
                )
            )
    return out, int(now_row.get("texts") or 0)


# ---------------------------------------------------------------------------------------------- free texts


def _long_texts(form: Form) -> list[tuple[int, Question]]:
    return [(i, q) for i, q in enumerate(form.questions) if type_of(q).free_text]


def shorten(text: str, limit: int = SHORT_TEXT) -> str:
    """At most `limit` characters, cut at a word boundary when one is near, with "…"."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = head.rfind(" ")
    if space > limit * 0.6:
        head = head[:space]
    return head.rstrip(" ,.;:") + "…"


def free_texts(
    session: Session, period: Period | Scope, form: Form, *, limit: int = SHORT_TEXT
) -> list[FreeText]:
    """Long-text answers (difficulties, proposals…) per village, shortened to `limit` characters in SQL."""
    scope = as_scope(period)
    questions = _long_texts(form)
    if not questions:
        return []
    versions = compatible_versions(session, form)
    c = _Columns(session, scope, form, [q for _, q in questions], versions, with_village=True)
    src = c.src
    cols: list[Any] = []
    present = []
    for _, q in questions:
        value = c.string(q.id)
        cols += [func.substr(value, 1, limit + 1), func.length(value)]
        present.append(func.length(func.trim(value)) > 0)
    query = (
        select(src.c.village_id, src.c.village, src.c.commune, src.c.period_id, *cols)
        .select_from(src)
        .where(or_(*present))
        .order_by(src.c.commune, src.c.village_id)
    )
    by_question: dict[str, list[FreeText]] = {q.id: [] for _, q in questions}
    for village_id, village, commune, period_id, *values in session.execute(query):
        for k, (index, q) in enumerate(questions):
            head, length = values[2 * k], values[2 * k + 1]
            if head is None or not str(head).strip():
                continue
            by_question[q.id].append(
                FreeText(
                    q, index, village_id, village, commune, period_id, shorten(str(head), limit), int(length)
                )
            )
    return [t for _, q in questions for t in by_question[q.id]]


def free_text_count(session: Session, period: Period | Scope, form: Form) -> int:
    """How many long-text answers the scope holds (for roll-ups, which do not list them)."""
    scope = as_scope(period)
    questions = _long_texts(form)
    if not questions:
        return 0
    versions = compatible_versions(session, form)
    c = _Columns(session, scope, form, [q for _, q in questions], versions)
    src = c.src
    total: Any = sum((_one(func.length(func.trim(c.string(q.id))) > 0) for _, q in questions), literal(0))
    return int(session.execute(select(func.sum(total)).select_from(src)).scalar() or 0)


def full_text(session: Session, period: Period, village_id: int, question_id: str) -> str | None:
    """One village's whole long-text answer in the period's current submission."""
    answer = answer_text(is_pg(session), question_id)
    value = session.execute(
        select(answer).where(
            Submission.village_id == village_id,
            Submission.period_id == period.id,
            Submission.form_id == period.form_id,
            Submission.is_current,
        )
    ).scalar()
    return str(value) if value is not None else None


# ---------------------------------------------------------------------------------------------- per village


def village_rows(
    session: Session, period: Period | Scope, form: Form | str | None = None, *, batch: int = 1000
) -> Iterator[VillageRow]:
    """Every active village of the scope, in commune then setup order, with its current submission.

    Streamed in batches of `batch` rows (a server-side cursor on PostgreSQL), so a province or the whole
    country never sits in memory at once. Missing villages come with `answers=None` and state
    draft/not_started. Consume it while the session is open.
    """
    scope = as_scope(period)
    form_id = form.id if isinstance(form, Form) else (form or scope.form_id)
    first = first_versions(scope)
    drafts, has_draft = draft_flag(session, scope, form_id)
    query = (
        select(
            Village.id,
            Village.name,
            Commune.id,
            Commune.name,
            Period.id,
            Period.due_at,
            Submission.id,
            Submission.answers,
            Submission.sent_at,
            Submission.version_no,
            Submission.form_version,
            Submission.receipt,
            first.c.first_sent_at,
            has_draft,
        )
        .select_from(Period)
        .join(Commune, Commune.id == Period.commune_id)
        .join(Village, villages_of_period())
    )
    query = join_current_submission(query, form_id, first, drafts)
    query = query.where(scope.where_period(Period.id)).order_by(Commune.id, Village.id)
    result = session.execute(query, execution_options={"yield_per": batch})
    try:
        for row in result:
            (
                vid,
                vname,
                cid,
                cname,
                pid,
                due,
                sid,
                answers,
                sent,
                version_no,
                fv,
                receipt,
                first_sent,
                draft,
            ) = row
            if sid is not None:
                first_sent = first_sent or sent
                state = VillageState.ON_TIME if first_sent < due else VillageState.LATE
            else:
                state = VillageState.DRAFT if draft else VillageState.NOT_STARTED
            yield VillageRow(
                vid,
                vname,
                cid,
                cname,
                pid,
                due,
                state,
                answers=answers if sid is not None else None,
                submission_id=sid,
                sent_at=sent,
                first_sent_at=first_sent if sid is not None else None,
                version_no=version_no,
                form_version=fv,
                receipt=receipt,
            )
    finally:
        result.close()


def village_submission(session: Session, village: Village, period: Period) -> VillageReport | None:
    """The village's current submission for the period as labelled rows (read with its own form version)."""

    submission = session.exec(
        select(Submission).where(
            Submission.village_id == village.id,
            Submission.period_id == period.id,
            Submission.form_id == period.form_id,
            Submission.is_current,
        )
    ).first()
    if submission is None:
        return None
    form = get_form(session, submission.form_id, submission.form_version) or get_form(
        session, submission.form_id
    )
    if form is None:
        return None
    first_sent = session.exec(
        select(func.min(Submission.sent_at)).where(
            Submission.village_id == village.id,
            Submission.period_id == period.id,
            Submission.form_id == period.form_id,
        )
    ).one()
    rows, _, _ = answer_rows(form, submission.answers)
    latest = get_form(session, submission.form_id) or form  # the figures the summary shows
    derived = tuple(compute_all(latest.derived, [submission.answers]).values())
    return VillageReport(village, period, submission, form, rows, first_sent or submission.sent_at, derived)


# ---------------------------------------------------------------------------------------------- derived


def scope_answers(session: Session, scope: Period | Scope | None, form: Form) -> Iterator[dict[str, Any]]:
    """The current answers of every active village that reported in the scope (streamed; none without one)."""
    if scope is None:
        return
    for row in village_rows(session, scope, form):
        if row.answers is not None:
            yield row.answers


def derived_figures(
    session: Session, scope: Period | Scope, form: Form, previous: Period | Scope | None = None
) -> list[DerivedSummary]:
    """The form's derived figures over the scope's current reports, each with the previous scope's value."""
    if not form.derived:
        return []
    now = compute_all(form.derived, scope_answers(session, scope, form))
    before = compute_all(form.derived, scope_answers(session, previous, form)) if previous else {}
    if not any(v.reports for v in before.values()):
        before = {}
    return [DerivedSummary(now[d.id], before.get(d.id)) for d in form.derived]


# ---------------------------------------------------------------------------------------------- everything


def build_summary(
    session: Session, period: Period | Scope, now: datetime, form: Form | None = None
) -> Summary | None:
    """Completeness (or the per-commune table of a roll-up), indicators and free texts of a scope."""

    scope = as_scope(period)
    form = form or get_form(session, scope.form_id)
    if form is None:
        return None
    prev = previous_scope(session, scope)
    no_limit = ROLLUP_NAMES if scope.is_province else None
    indicators, text_count = _indicators(session, scope, form, previous=prev, no_limit=no_limit)
    if scope.is_province:
        return Summary(
            scope,
            form,
            now,
            indicators,
            communes=commune_completeness(session, scope),
            free_text_count=text_count,
            previous=prev,
            derived=derived_figures(session, scope, form, prev),
        )
    texts = free_texts(session, scope, form)
    return Summary(
        scope,
        form,
        now,
        indicators,
        completeness=completeness(session, scope.period, now),
        free_texts=texts,
        free_text_count=len(texts),
        previous=prev,
        derived=derived_figures(session, scope, form, prev),
        addressee=period_addressee(session, scope.period),
    )


__all__ = [
    "SHORT_TEXT",
    "ChoiceCount",
    "CommuneCompleteness",
    "Completeness",
    "DerivedSummary",
    "FreeText",
    "IndicatorSummary",
    "Scope",
    "Summary",
    "VillageReport",
    "VillageRow",
    "VillageState",
    "answer_rows",
    "build_summary",
    "commune_completeness",
    "compatible_versions",
    "completeness",
    "derived_figures",
    "format_value",
    "free_text_count",
    "free_texts",
    "full_text",
    "indicator_totals",
    "previous_period",
    "previous_scope",
    "province_scope",
    "scope_answers",
    "shorten",
    "village_rows",
    "village_submission",
]
