"""The summary data layer against independently recomputed totals, on SQLite and PostgreSQL.

A generated commune (30 villages, seeded random answers) with late and missing villages, amendments
(only the latest version counts, the first decides timeliness), answers under an older form version (a
removed question, a question whose type changed, a choice no longer offered), a previous period, an
inactive village and a second commune of the same province for the roll-up. Every figure the SQL
computes is recomputed here in plain Python from the generated answers, never from the database.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, event
from sqlmodel import Session

from bot.forms import engine as form_engine
from bot.forms.inputs import Text
from bot.forms.loader import form_from_dict
from bot.forms.model import Form, QType
from bot.services import summaries
from bot.services.completeness import VillageState
from bot.services.forms import store_forms
from storage.models import Commune, CommuneForm, Draft, Period, Submission, Village

FORM_ID = "bao-cao-thu"
T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
DUE = datetime(2026, 5, 19, 17, 0, tzinfo=UTC)  # end of 19/5 in Hà Nội
NOW = datetime(2026, 5, 25, 3, 0, tzinfo=UTC)
PREV_DUE = datetime(2025, 11, 19, 17, 0, tzinfo=UTC)
CHOICES = [
    {"value": "tot", "label": "Tốt"},
    {"value": "kha", "label": "Khá"},
    {"value": "tb", "label": "Trung bình"},
]
ACTIVITIES = [
    {"value": "pccc", "label": "Phòng cháy"},
    {"value": "atgt", "label": "An toàn giao thông"},
    {"value": "hoa_giai", "label": "Hòa giải"},
]


def form_dict(version: int) -> dict[str, Any]:
    """The test form: version 1 has `so_cu` (removed later), `so_ho` as text and the choice `yeu`."""
    questions: list[dict[str, Any]] = [
        {"id": "so_buoi", "type": "integer", "label": "Số buổi tuyên truyền", "min": 0},
        {"id": "kinh_phi", "type": "decimal", "label": "Kinh phí (triệu đồng)", "required": False},
        {"id": "ngay_hoi", "type": "yes_no", "label": "Đã tổ chức Ngày hội?"},
        {
            "id": "xep_loai",
            "type": "single_choice",
            "label": "Xếp loại",
            "choices": CHOICES + ([{"value": "yeu", "label": "Yếu"}] if version == 1 else []),
        },
        {
            "id": "hoat_dong",
            "type": "multi_choice",
            "label": "Hoạt động",
            "choices": ACTIVITIES,
            "required": False,
        },
        {"id": "ngay_to_chuc", "type": "date", "label": "Ngày tổ chức", "required": False},
        {
            "id": "vu_viec",
            "type": "repeat",
            "label": "Các vụ việc",
            "required": False,
            "questions": [{"id": "mo_ta", "type": "text", "label": "Mô tả"}],
        },
        {"id": "kho_khan", "type": "long_text", "label": "Khó khăn, vướng mắc", "required": False},
    ]
    if version == 1:
        questions.insert(1, {"id": "so_cu", "type": "integer", "label": "Câu chỉ có ở bản 1", "min": 0})
        questions.insert(2, {"id": "so_ho", "type": "text", "label": "Số hộ (ghi bằng chữ)"})
    else:
        questions.insert(1, {"id": "so_ho", "type": "integer", "label": "Số hộ", "min": 0})
        questions.insert(2, {"id": "so_moi", "type": "integer", "label": "Câu mới ở bản 2", "min": 0})
    return {
        "id": FORM_ID,
        "title": "Báo cáo thử",
        "version": version,
        "kind": "periodic",
        "questions": questions,
    }


def load(version: int) -> Form:
    result = form_from_dict(form_dict(version))
    assert not result.errors, result.errors
    return result.forms[0]


FORMS = {1: load(1), 2: load(2)}
COMPATIBLE = {"so_ho": {2}, "so_moi": {2}}  # every other question counts under both versions


def random_answers(rng: random.Random, form: Form) -> dict[str, Any]:
    """JSON answers as the engine stores them; some skipped (None), some never asked (absent)."""
    out: dict[str, Any] = {}
    for q in form.questions:
        roll = rng.random()
        if roll < 0.06:
            continue  # not relevant: absent
        if roll < 0.14:
            out[q.id] = None  # skipped
            continue
        t = q.type
        if t == QType.INTEGER:
            out[q.id] = rng.randint(0, 400)
        elif t == QType.DECIMAL:
            out[q.id] = str(Decimal(rng.randint(0, 999)) / 10)
        elif t == QType.YES_NO:
            out[q.id] = rng.random() < 0.6
        elif t == QType.SINGLE_CHOICE:
            out[q.id] = rng.choice([c.value for c in q.choices])
        elif t == QType.MULTI_CHOICE:
            out[q.id] = [c.value for c in q.choices if rng.random() < 0.5]
        elif t == QType.DATE:
            out[q.id] = date(2026, rng.randint(1, 5), rng.randint(1, 28)).isoformat()
        elif t == QType.REPEAT:
            out[q.id] = [{"mo_ta": f"vụ {i}"} for i in range(rng.randint(0, 3))]
        elif t == QType.LONG_TEXT:
            words = ["đường", "<b>khó</b>", "kinh phí", "A&B", "thiếu", "người", "xa"]
            out[q.id] = " ".join(rng.choice(words) for _ in range(rng.randint(1, 90)))
        elif t == QType.TEXT:
            out[q.id] = rng.choice(["mười hai", "ba mươi", "không rõ"])
    return out


@dataclass
class Sub:
    """A generated submission, as the test remembers it."""

    village_id: int
    period_id: int
    version_no: int
    form_version: int
    answers: dict[str, Any]
    sent_at: datetime
    is_current: bool


@dataclass
class Commune_:
    """A generated commune: rows plus what the test expects."""

    commune: Commune
    villages: list[Village]
    inactive: Village
    current: Period
    previous: Period
    subs: list[Sub] = field(default_factory=list)
    drafts: set[int] = field(default_factory=set)
    fate: dict[int, str] = field(default_factory=dict)

    def current_subs(self, period: Period) -> list[Sub]:
        active = {v.id for v in self.villages}
        return [s for s in self.subs if s.period_id == period.id and s.is_current and s.village_id in active]

    def first_sent(self, village_id: int, period: Period) -> datetime | None:
        times = [s.sent_at for s in self.subs if s.village_id == village_id and s.period_id == period.id]
        return min(times) if times else None


def store_test_forms(session: Session) -> None:
    store_forms(session, [FORMS[1], FORMS[2]], now=T0, actor="test")


def make_commune(
    session: Session, rng: random.Random, code: str, province: str, n: int = 30, *, name: str | None = None
) -> Commune_:
    """A commune with `n` active villages (+1 inactive), a previous and a current period, random reports."""
    commune = Commune(code=code, name=name or f"Xã {code}", province=province, created_at=T0, updated_at=T0)
    session.add(commune)
    session.flush()
    session.add(CommuneForm(commune_id=commune.id, form_id=FORM_ID, position=0))
    villages = [
        Village(commune_id=commune.id, name=f"Thôn {code} {i:02d}", created_at=T0, updated_at=T0)
        for i in range(n)
    ]
    inactive = Village(
        commune_id=commune.id, name=f"Thôn {code} cũ", active=False, created_at=T0, updated_at=T0
    )
    session.add_all([*villages, inactive])
    prev = Period(
        commune_id=commune.id,
        form_id=FORM_ID,
        code="2025-CN",
        label="Năm 2025",
        opens_at=PREV_DUE - timedelta(days=20),
        due_at=PREV_DUE,
        closes_at=PREV_DUE + timedelta(days=30),
        created_at=T0,
        updated_at=T0,
    )
    cur = Period(
        commune_id=commune.id,
        form_id=FORM_ID,
        code="2026-6T",
        label="6 tháng đầu năm 2026",
        opens_at=T0,
        due_at=DUE,
        closes_at=DUE + timedelta(days=30),
        created_at=T0,
        updated_at=T0,
    )
    session.add_all([prev, cur])
    session.flush()
    world = Commune_(commune, villages, inactive, cur, prev)
    receipts = iter(range(10**6))

    def submit(village: Village, period: Period, versions: list[tuple[int, datetime]]) -> None:
        for no, (form_version, sent_at) in enumerate(versions, start=1):
            answers = random_answers(rng, FORMS[form_version])
            current = no == len(versions)
            world.subs.append(Sub(village.id, period.id, no, form_version, answers, sent_at, current))
            session.add(
                Submission(
                    village_id=village.id,
                    form_id=FORM_ID,
                    period_id=period.id,
                    form_version=form_version,
                    version_no=no,
                    is_current=current,
                    answers=answers,
                    sent_at=sent_at,
                    received_at=sent_at,
                    on_time=sent_at < period.due_at,
                    receipt=f"BC-{code[:4]}{next(receipts)}",
                )
            )

    def some_time(period: Period, late: bool) -> datetime:
        if late:
            return period.due_at + timedelta(minutes=rng.randint(0, 60 * 24 * 9))
        return period.opens_at + timedelta(
            minutes=rng.randint(0, int((period.due_at - period.opens_at).total_seconds() // 60) - 1)
        )

    for village in villages:
        if rng.random() < 0.85:  # the previous period: mostly in, all under version 1
            submit(village, prev, [(1, some_time(prev, rng.random() < 0.2))])
        fate = rng.choice(["on_time", "on_time", "late", "amended", "amended_late", "draft", "not_started"])
        world.fate[village.id] = fate
        v = rng.choice([1, 2, 2])
        if fate == "on_time":
            submit(village, cur, [(v, some_time(cur, False))])
        elif fate == "late":
            submit(village, cur, [(v, some_time(cur, True))])
        elif fate == "amended":  # first on time, amended (under version 2) after the deadline
            submit(village, cur, [(1, some_time(cur, False)), (2, some_time(cur, True))])
        elif fate == "amended_late":
            first = some_time(cur, True)
            submit(village, cur, [(v, first), (2, first + timedelta(hours=5))])
        elif fate == "draft":
            step = form_engine.start(FORMS[2], T0)
            step = form_engine.handle(FORMS[2], step.state, Text("7"), T0)
            session.add(
                Draft(
                    village_id=village.id,
                    form_id=FORM_ID,
                    period_id=cur.id,
                    form_version=2,
                    state=step.state.to_json(),
                    created_at=T0,
                    updated_at=T0,
                )
            )
            world.drafts.add(village.id)
    submit(inactive, cur, [(2, some_time(cur, False))])  # must not count anywhere
    session.flush()
    return world


# ---------------------------------------------------------------------------------------------- recount


def to_number(value: Any) -> Decimal:
    return Decimal(str(value))


def recount(subs: list[Sub], form: Form) -> dict[str, dict[str, Any]]:
    """Every figure of the summary, recomputed from the generated answers."""
    out: dict[str, dict[str, Any]] = {}
    for q in form.questions:
        ok = COMPATIBLE.get(q.id, {1, 2})
        values = [s.answers.get(q.id) for s in subs if s.form_version in ok]
        values = [v for v in values if v is not None]
        e: dict[str, Any] = {"answered": len(values)}
        if q.type in (QType.INTEGER, QType.DECIMAL):
            e["total"] = sum((to_number(v) for v in values), Decimal(0))
        elif q.type == QType.REPEAT:
            e["total"] = sum(len(v) for v in values)
            e["with_items"] = sum(1 for v in values if v)
        elif q.type == QType.SINGLE_CHOICE:
            e["counts"] = Counter(values)
        elif q.type == QType.MULTI_CHOICE:
            e["counts"] = Counter(x for v in values for x in v)
        elif q.type == QType.YES_NO:
            e["yes"] = sum(1 for v in values if v)
            e["no_villages"] = sorted(
                s.village_id for s in subs if s.form_version in ok and s.answers.get(q.id) is False
            )
        elif q.type == QType.DATE:
            e["first"] = min(values) if values else None
            e["last"] = max(values) if values else None
        elif q.type == QType.LONG_TEXT:
            e["texts"] = {s.village_id: s.answers[q.id] for s in subs if (s.answers.get(q.id) or "").strip()}
        out[q.id] = e
    return out


def check_indicators(
    result: list[summaries.IndicatorSummary], now_subs: list[Sub], prev_subs: list[Sub] | None
) -> None:
    form = FORMS[2]
    expected = recount(now_subs, form)
    previous = recount(prev_subs, form) if prev_subs else None
    by_id = {s.question.id: s for s in result}
    summarised = [q.id for q in form.questions if q.type not in (QType.LONG_TEXT, QType.TEXT, QType.NOTE)]
    assert list(by_id) == summarised  # form order; so_cu (removed) absent
    for qid, s in by_id.items():
        e = expected[qid]
        assert s.reports == len(now_subs)
        assert s.answered == e["answered"], qid
        if s.kind in ("number", "items"):
            assert s.total == e["total"], qid
            if previous is None:
                assert s.previous is None and s.change is None
            else:
                assert s.previous == previous[qid]["total"], qid
                assert s.change == e["total"] - previous[qid]["total"], qid
        if s.kind == "items":
            assert s.with_items == e["with_items"]
        if s.kind in ("choice", "multi"):
            assert {c.value: c.count for c in s.counts} == {
                c.value: e["counts"].get(c.value, 0) for c in s.question.choices
            }
        if s.kind == "choice":
            assert s.other == e["counts"].get("yeu", 0)  # a value only version 1 offered
        if s.kind == "yes_no":
            assert s.yes == e["yes"] and s.no == len(e["no_villages"])
            assert sorted(v.village_id for v in s.no_villages) == e["no_villages"]
        if s.kind == "date":
            assert (s.first.isoformat() if s.first else None) == e["first"]
            assert (s.last.isoformat() if s.last else None) == e["last"]


# ---------------------------------------------------------------------------------------------- tests


@pytest.fixture
def forms(session: Session) -> None:
    store_test_forms(session)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_completeness_sorts_every_active_village(session, forms, seed) -> None:
    world = make_commune(session, random.Random(seed), "xa-a", "Tỉnh A")
    result = summaries.completeness(session, world.current, NOW)
    assert result.total == 30 and [v.village_id for v in result.villages] == [v.id for v in world.villages]
    expect = {
        "on_time": VillageState.ON_TIME,
        "amended": VillageState.ON_TIME,  # the first version was on time; the late amendment changes nothing
        "late": VillageState.LATE,
        "amended_late": VillageState.LATE,
        "draft": VillageState.DRAFT,
        "not_started": VillageState.NOT_STARTED,
    }
    for status in result.villages:
        assert status.state == expect[world.fate[status.village_id]], status
        first = world.first_sent(status.village_id, world.current)
        assert status.first_sent_at == first
        if status.state == VillageState.LATE:
            assert status.late_by == first - DUE and status.late_by >= timedelta(0)
        else:
            assert status.late_by is None
        if status.state == VillageState.DRAFT:
            assert status.progress is not None and status.progress[0] >= 1
        if status.submitted:
            versions = [
                s for s in world.subs if s.village_id == status.village_id and s.period_id == world.current.id
            ]
            assert status.version_no == len(versions)
            assert status.sent_at == versions[-1].sent_at
    assert result.counts["submitted"] == len(world.current_subs(world.current))
    assert result.submitted + result.missing == result.total and result.overdue


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_indicator_totals_equal_an_independent_recount(session, forms, seed) -> None:
    world = make_commune(session, random.Random(seed), "xa-a", "Tỉnh A")
    result = summaries.indicator_totals(session, world.current, FORMS[2])
    check_indicators(result, world.current_subs(world.current), world.current_subs(world.previous))


def test_first_period_has_no_comparison(session, forms) -> None:
    world = make_commune(session, random.Random(5), "xa-a", "Tỉnh A")
    result = summaries.indicator_totals(session, world.previous, FORMS[2])
    check_indicators(result, world.current_subs(world.previous), None)
    assert summaries.previous_period(session, world.previous) is None


def test_amendment_counts_only_the_latest_version(session, forms) -> None:
    world = make_commune(session, random.Random(9), "xa-a", "Tỉnh A", n=3)
    village = world.villages[0]
    # Replace whatever was generated by a known story: 10 on time, amended to 25 after the deadline.
    for s in list(world.subs):
        if s.village_id == village.id and s.period_id == world.current.id:
            world.subs.remove(s)
    session.execute(
        delete(Submission).where(
            Submission.village_id == village.id, Submission.period_id == world.current.id
        )
    )
    session.execute(delete(Draft).where(Draft.village_id == village.id))
    for no, (value, sent) in enumerate(
        [(10, DUE - timedelta(days=2)), (25, DUE + timedelta(days=3))], start=1
    ):
        session.add(
            Submission(
                village_id=village.id,
                form_id=FORM_ID,
                period_id=world.current.id,
                form_version=2,
                version_no=no,
                is_current=no == 2,
                answers={"so_buoi": value},
                sent_at=sent,
                received_at=sent,
                on_time=sent < DUE,
                receipt=f"BC-AM{no}",
            )
        )
        world.subs.append(Sub(village.id, world.current.id, no, 2, {"so_buoi": value}, sent, no == 2))
    session.flush()
    status = next(
        v for v in summaries.completeness(session, world.current, NOW).villages if v.village_id == village.id
    )
    assert status.state == VillageState.ON_TIME and status.version_no == 2 and status.late_by is None
    so_buoi = next(
        s for s in summaries.indicator_totals(session, world.current, FORMS[2]) if s.question.id == "so_buoi"
    )
    others = sum(
        s.answers.get("so_buoi") or 0 for s in world.current_subs(world.current) if s.village_id != village.id
    )
    assert so_buoi.total == others + 25
    row = next(
        r for r in summaries.village_rows(session, world.current, FORMS[2]) if r.village_id == village.id
    )
    assert row.answers == {"so_buoi": 25} and row.version_no == 2 and row.on_time is True
    report = summaries.village_submission(session, village, world.current)
    assert report is not None and report.on_time and report.submission.version_no == 2


def test_retyped_question_ignores_old_answers_and_removed_question_is_left_out(session, forms) -> None:
    versions = summaries.compatible_versions(session, FORMS[2])
    assert versions["so_ho"] == frozenset({2}) and versions["so_buoi"] is None
    world = make_commune(session, random.Random(11), "xa-a", "Tỉnh A", n=4)
    ids = {s.question.id for s in summaries.indicator_totals(session, world.current, FORMS[2])}
    assert "so_cu" not in ids and "so_ho" in ids
    # The by-village view reads a version-1 report with version 1, so its removed question still shows.
    v1 = next(
        (
            s
            for s in world.current_subs(world.current)
            if s.form_version == 1 and s.answers.get("so_cu") is not None
        ),
        None,
    )
    if v1 is not None:
        village = session.get(Village, v1.village_id)
        report = summaries.village_submission(session, village, world.current)
        assert any(r["label"] == "Câu chỉ có ở bản 1" for r in report.rows)


def test_province_rollup_adds_up_its_communes_only(session, forms) -> None:
    rng = random.Random(21)
    a = make_commune(session, rng, "xa-a", "Tỉnh A", n=12)
    b = make_commune(session, rng, "xa-b", "Tỉnh A", n=9)
    c = make_commune(session, rng, "xa-c", "Tỉnh B", n=7)
    scope = summaries.province_scope(a.current, "Tỉnh A")
    result = summaries.indicator_totals(session, scope, FORMS[2])
    check_indicators(
        result,
        a.current_subs(a.current) + b.current_subs(b.current),
        a.current_subs(a.previous) + b.current_subs(b.previous),
    )
    table = {row.commune_id: row for row in summaries.commune_completeness(session, scope)}
    assert set(table) == {a.commune.id, b.commune.id}
    for world in (a, b):
        single = summaries.completeness(session, world.current, NOW)
        row = table[world.commune.id]
        assert (row.total, row.on_time, row.late, row.draft, row.not_started) == (
            single.total,
            len(single.on_time),
            len(single.late),
            len(single.draft),
            len(single.not_started),
        )
    assert c.commune.id not in table
    rows = list(summaries.village_rows(session, scope, FORMS[2], batch=5))
    assert len(rows) == 21 and {r.commune_id for r in rows} == {a.commune.id, b.commune.id}


def test_village_rows_stream_every_active_village_with_its_current_answers(session, forms) -> None:
    world = make_commune(session, random.Random(31), "xa-a", "Tỉnh A")
    rows = summaries.village_rows(session, world.current, FORMS[2], batch=7)
    assert iter(rows) is rows  # a generator: rows are streamed, not built as one list
    rows = list(rows)
    assert [r.village_id for r in rows] == [v.id for v in world.villages]
    current = {s.village_id: s for s in world.current_subs(world.current)}
    for row in rows:
        sub = current.get(row.village_id)
        if sub is None:
            assert row.answers is None and row.state in (VillageState.DRAFT, VillageState.NOT_STARTED)
            assert (row.state == VillageState.DRAFT) == (row.village_id in world.drafts)
            assert row.on_time is None and row.sent_at is None
        else:
            assert row.answers == sub.answers and row.version_no == sub.version_no
            assert row.form_version == sub.form_version and row.sent_at == sub.sent_at
            first = world.first_sent(row.village_id, world.current)
            assert row.first_sent_at == first and row.on_time == (first < DUE)
            assert row.state == (VillageState.ON_TIME if first < DUE else VillageState.LATE)


def test_free_texts_are_shortened_and_the_full_text_is_kept(session, forms) -> None:
    world = make_commune(session, random.Random(41), "xa-a", "Tỉnh A")
    texts = summaries.free_texts(session, world.current, FORMS[2], limit=120)
    expected = recount(world.current_subs(world.current), FORMS[2])["kho_khan"]["texts"]
    assert {t.village_id for t in texts} == set(expected)
    assert any(t.truncated for t in texts)
    for t in texts:
        full = expected[t.village_id]
        assert t.length == len(full)
        assert len(t.text) <= 121 and full.startswith(t.text.rstrip("…").rstrip(" ,.;:"))
        assert t.truncated == (len(full.strip()) > 120)
        assert summaries.full_text(session, world.current, t.village_id, "kho_khan") == full
    assert summaries.free_text_count(session, world.current, FORMS[2]) == len(texts)


def test_a_stored_nul_character_does_not_break_the_summary(session, forms) -> None:
    """Answers stored before input was cleaned may hold a NUL: PostgreSQL cannot make text of "\\u0000",
    so the summary reads such documents without it (a typed backslash and "u0000" stay as they are)."""
    from sqlmodel import select

    world = make_commune(session, random.Random(41), "xa-a", "Tỉnh A")
    sub = session.exec(
        select(Submission).where(Submission.period_id == world.current.id, Submission.is_current)
    ).first()
    typed = "a\x00b \\u0000 \\\x00c"  # a NUL, a typed backslash-u0000, a backslash before a NUL
    sub.answers = {**sub.answers, "kho_khan": typed}
    session.flush()
    summary = summaries.build_summary(session, world.current, NOW, FORMS[2])
    assert summary is not None
    texts = {t.village_id: t for t in summaries.free_texts(session, world.current, FORMS[2])}
    full = summaries.full_text(session, world.current, sub.village_id, "kho_khan")
    if session.get_bind().dialect.name == "postgresql":
        assert full == "ab \\u0000 \\c" and texts[sub.village_id].text == full
    else:  # SQLite reads the text up to the NUL: shorter, but the summary works
        assert full is not None and typed.startswith(full)
    assert summaries.free_text_count(session, world.current, FORMS[2]) == len(texts)


def test_shipped_form_totals_on_a_real_form(session) -> None:
    """The real semiannual form: every numeric question adds up (one submission per village)."""
    from pathlib import Path

    from bot.forms.loader import load_form_files

    root = Path(__file__).resolve().parent.parent
    (form,) = load_form_files([root / "deploy" / "forms" / "bao-cao-6-thang.yaml"]).forms
    store_forms(session, [form], now=T0, actor="test")
    rng = random.Random(7)
    commune = Commune(code="that", name="Xã Thật", province="P", created_at=T0, updated_at=T0)
    session.add(commune)
    session.flush()
    period = Period(
        commune_id=commune.id,
        form_id=form.id,
        code="2026-6T",
        label="6T",
        opens_at=T0,
        due_at=DUE,
        closes_at=DUE,
        created_at=T0,
        updated_at=T0,
    )
    session.add(period)
    session.flush()
    all_answers = []
    for i in range(30):
        village = Village(commune_id=commune.id, name=f"Thôn {i}", created_at=T0, updated_at=T0)
        session.add(village)
        session.flush()
        answers = random_answers(rng, form)
        all_answers.append(answers)
        session.add(
            Submission(
                village_id=village.id,
                form_id=form.id,
                period_id=period.id,
                form_version=form.version,
                answers=answers,
                sent_at=T0,
                received_at=T0,
                receipt=f"BC-R{i}",
            )
        )
    session.flush()
    result = {s.question.id: s for s in summaries.indicator_totals(session, period, form)}
    for q in form.questions:
        if q.type == QType.INTEGER:
            values = [a[q.id] for a in all_answers if a.get(q.id) is not None]
            assert (result[q.id].total, result[q.id].answered) == (sum(values), len(values)), q.id


@pytest.mark.parametrize("villages", [5, 60])
def test_the_work_is_a_handful_of_queries_whatever_the_size(session, forms, engine, villages) -> None:
    """All figures of a period come from one SELECT of aggregates; only "no" villages come back as rows."""
    world = make_commune(session, random.Random(51), "xa-a", "Tỉnh A", n=villages)
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        result = summaries.indicator_totals(session, world.current, FORMS[2])
    finally:
        event.remove(engine, "before_cursor_execute", before)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # form versions, the previous period, this period's figures, the previous period's, the "no" villages
    assert len(selects) == 5, selects
    aggregates = [s for s in selects if "sum(" in s.lower()]
    assert len(aggregates) == 2 and all("GROUP BY" not in s for s in aggregates)  # one row each
    rows = [len(s.no_villages) for s in result if s.kind == "yes_no"]
    assert rows == [s.no for s in result if s.kind == "yes_no"]
