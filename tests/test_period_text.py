"""Period-aware question texts ({ky}, {nam}, {tu_ngay}, {den_ngay}) and plausibility against the previous
period: checked at load (every problem listed), filled from the draft's context, and through the bot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.forms import engine as form_engine
from bot.forms.events import Ask, ConfirmValue
from bot.forms.inputs import Text
from bot.forms.loader import form_from_dict, form_to_dict
from bot.forms.period_text import fill, problems
from bot.services.period_facts import period_facts, period_year
from storage.db import session_scope
from storage.models import Draft, Period, Submission, Village
from tests.test_report_conversation import AN, bot  # noqa: F401 - the fixture

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 5, 15, 9, 0, tzinfo=TZ)


def _form(questions: list[dict[str, Any]], kind: str = "periodic", **extra: Any) -> dict[str, Any]:
    return {"id": "thu", "title": "Thử", "version": 1, "kind": kind, "questions": questions, **extra}


def _errors(data: dict[str, Any]) -> list[str]:
    return [e.reason for e in form_from_dict(data).errors]


def test_problems_name_unknown_placeholders_and_lone_braces() -> None:
    assert problems("Trong {ky} ({tu_ngay}–{den_ngay}), năm {nam}; {{mã}}") == []
    found = problems("Trong {ky_bao_cao}, {nam} và {xyz} {")
    assert len(found) == 3
    assert "'{ky_bao_cao}'" in found[0] and "{ky}" in found[0]
    assert "'{xyz}'" in found[1]
    assert "đứng một mình" in found[2]


def test_fill_uses_the_facts_and_falls_back_without_them() -> None:
    facts = {"ky": "Năm 2026", "nam": "2026", "tu_ngay": "01/01/2026", "den_ngay": "19/11/2026"}
    assert fill("Trong {ky}, từ {tu_ngay} đến {den_ngay} ({nam}) {{x}}", facts) == (
        "Trong Năm 2026, từ 01/01/2026 đến 19/11/2026 (2026) {x}"
    )
    assert fill("Trong {ky}, năm {nam}", None) == "Trong kỳ này, năm năm nay"
    assert fill("Không có ngoặc", facts) == "Không có ngoặc"


def test_every_placeholder_mistake_is_listed_at_once() -> None:
    errors = _errors(
        _form(
            [
                {"id": "a", "type": "integer", "label": "Trong {ky_nay}, bao nhiêu?", "hint": "Đến {ngay}."},
                {"id": "b", "type": "text", "label": "Ghi {tên}.", "short": "B {nam}", "plausible": True},
                {"id": "c", "type": "integer", "label": "Số?", "plausible": {"factor": 1}},
                {"id": "d", "type": "integer", "label": "Số?", "plausible": {"factor": 5, "x": 1}},
            ],
            description="Báo cáo {ky}.",
        )
    )
    joined = "\n".join(errors)
    for needle in (
        "'{ky_nay}'",
        "'{ngay}'",
        "'{tên}'",
        "'short' không dùng",
        "chỉ dùng cho câu số",
        "plausible.factor",
        "khóa lạ 'x'",
        "'description' không dùng",
    ):
        assert needle in joined, needle
    assert len(errors) == 8


def test_incident_forms_refuse_placeholders_and_plausible() -> None:
    errors = _errors(
        _form(
            [
                {
                    "id": "a",
                    "type": "integer",
                    "label": "Trong {ky}, bao nhiêu?",
                    "plausible": {"factor": 10},
                },
                {"id": "b", "type": "text", "label": "Ghi {{mã}} vụ việc."},
            ],
            kind="incident",
        )
    )
    assert len(errors) == 2
    assert "đột xuất" in errors[0] and "{ky}" in errors[0]
    assert "kỳ trước" in errors[1]


def test_plausible_in_a_repeat_group_is_refused_and_a_form_round_trips() -> None:
    group = {
        "id": "vu",
        "type": "repeat",
        "label": "Các vụ.",
        "questions": [{"id": "so", "type": "integer", "label": "Số?", "plausible": True}],
    }
    assert any("nhóm lặp" in e for e in _errors(_form([group])))
    data = _form([{"id": "a", "type": "integer", "label": "Năm {nam}: số?", "plausible": {"factor": 4}}])
    form = form_from_dict(data).forms[0]
    assert form.question("a").plausible == 4 and form.templated
    again = form_from_dict(form_to_dict(form)).forms[0]
    assert again == form


def test_the_engine_asks_once_and_a_changed_form_keeps_the_context() -> None:
    form = form_from_dict(
        _form([{"id": "a", "type": "integer", "label": "Trong {ky}: số?", "plausible": {"factor": 10}}])
    ).forms[0]
    context = {"ky": "Năm 2026", "previous": {"a": 300}, "previous_ky": "Năm 2025"}
    step = form_engine.start(form, NOW, context=context)
    assert isinstance(step.events[0], Ask) and step.events[0].question.label == "Trong Năm 2026: số?"
    step = form_engine.handle(form, step.state, Text("30"), NOW)  # 300 ≥ 10 × 30: far, asked
    assert isinstance(step.events[0], ConfirmValue) and step.events[0].reason == "implausible"
    assert step.events[0].question.label == "Trong Năm 2026: số?"
    assert dict(step.events[0].detail) == {"previous": 300, "factor": 10, "previous_ky": "Năm 2025"}
    newer = form_from_dict({**form_to_dict(form), "version": 2}).forms[0]
    moved = form_engine.migrate_state(step.state, newer)
    assert moved.context == step.state.context
    step = form_engine.handle(form, step.state, Text("31"), NOW)  # near enough: taken
    assert step.state.answers == {"a": 31}


def test_period_facts_come_from_the_period_not_the_clock() -> None:
    period = Period(
        commune_id=1,
        form_id="bao-cao-nam",
        code="2026-CN",
        label="Năm 2026",
        opens_at=datetime(2026, 11, 1, tzinfo=TZ),
        due_at=datetime(2026, 11, 20, tzinfo=TZ),
        closes_at=datetime(2027, 2, 1, tzinfo=TZ),
        created_at=NOW,
        updated_at=NOW,
    )
    assert period_facts(period, TZ) == {
        "ky": "Năm 2026",
        "nam": "2026",
        "tu_ngay": "01/01/2026",
        "den_ngay": "19/11/2026",
    }
    period.label, period.code = "Đột xuất", "YC-7"
    assert period_year(period, TZ) == 2026  # no year written: the year it opens in


async def test_previous_period_answer_is_shown_and_confirmed_through_the_bot(bot, engine) -> None:  # noqa: F811
    with session_scope(engine) as s:
        period = s.exec(select(Period).where(Period.code == "2026-6T")).one()
        village = s.exec(select(Village).where(Village.name == "Thôn Nà Làng")).one()
        year = timedelta(days=365)
        prev = s.exec(select(Period).where(Period.code == "2025-6T")).first() or Period(
            commune_id=period.commune_id,
            form_id=period.form_id,
            code="2025-6T",
            label="6 tháng đầu năm 2025",
            opens_at=period.opens_at - year,
            due_at=period.due_at - year,
            closes_at=period.closes_at - year,
            series=period.series,
            created_at=period.created_at,
            updated_at=period.updated_at,
        )
        s.add(prev)
        s.flush()
        at = datetime(2025, 5, 10, tzinfo=UTC)
        s.add(
            Submission(
                village_id=village.id,
                form_id=period.form_id,
                period_id=prev.id,
                form_version=1,
                answers={"so_buoi_tuyen_truyen": 3, "so_hoat_dong_pccc_atgt": 2},
                sent_at=at,
                received_at=at,
                receipt="TRUOC1",
            )
        )
    await bot.open_report(AN)
    assert "Trong 6 tháng đầu năm 2026, thôn đã tổ chức" in bot.texts(AN)[-1]
    await bot.send(AN, "30")
    text = bot.texts(AN)[-1]
    assert "Kỳ trước (6 tháng đầu năm 2025) thôn báo <b>3</b>" in text and "xác nhận <b>30</b>?" in text
    await bot.send(AN, "40")  # another far-off number: asked again, no answer kept
    assert "xác nhận <b>40</b>?" in bot.texts(AN)[-1]
    await bot.press_token(AN, "ok:0")
    assert "lượt người" in bot.texts(AN)[-1]
    with session_scope(engine) as s:
        draft = s.exec(select(Draft).where(Draft.period_id == period.id)).one()
        assert draft.state["answers"] == {"so_buoi_tuyen_truyen": 40}
        assert draft.state["context"]["previous"] == {"so_buoi_tuyen_truyen": 3}
        assert draft.state["context"]["nam"] == "2026"


async def test_a_draft_begun_before_drafts_kept_the_period_gets_it_on_the_next_answer(bot, engine) -> None:  # noqa: F811
    await bot.open_report(AN)
    with session_scope(engine) as s:  # as stored before this version: no "context"
        draft = s.exec(select(Draft)).one()
        draft.state = {k: v for k, v in draft.state.items() if k != "context"}
        s.add(draft)
    await bot.send(AN, "2")
    assert "Các buổi đó có tổng cộng bao nhiêu lượt người" in bot.texts(AN)[-1]
    await bot.send(AN, "40")
    assert "Trong 6 tháng đầu năm 2026, thôn có tuyên truyền" in bot.texts(AN)[-1]
    with session_scope(engine) as s:
        assert s.exec(select(Draft)).one().state["context"]["ky"] == "6 tháng đầu năm 2026"


def test_a_label_with_a_placeholder_and_no_short_label_reads_as_plain_words() -> None:
    from bot.forms.model import QType, Question

    q = Question(id="x", type=QType.INTEGER, label="Trong {ky}, thôn tổ chức bao nhiêu buổi? ({{ghi số}})")
    assert q.short_label == "Trong kỳ này, thôn tổ chức bao nhiêu buổi? ({ghi số})"
    assert Question(id="y", type=QType.INTEGER, label="Trong {ky}?", short="Buổi").short_label == "Buổi"
