"""The `percent` question type end to end outside the engine: loader, display, export cell, summary mean."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from bot.exports.data import cell_value
from bot.forms.loader import form_from_dict
from bot.forms.model import Form
from bot.forms.types import TYPES, type_of
from bot.services import summaries
from bot.services.forms import store_forms
from bot.views.form import format_value
from storage.models import Commune, CommuneForm, Period, Submission, Village

T0 = datetime(2026, 5, 1, tzinfo=UTC)
DUE = datetime(2026, 5, 19, 17, 0, tzinfo=UTC)


def percent_form(**extra: Any) -> dict[str, Any]:
    """A one-question form whose question is a percent."""
    question = {"id": "ty_le", "type": "percent", "label": "Tỷ lệ hộ ký cam kết?", **extra}
    return {"id": "ty-le", "title": "Tỷ lệ", "version": 1, "kind": "periodic", "questions": [question]}


def load(**extra: Any) -> Form:
    """The percent form, loaded without errors."""
    result = form_from_dict(percent_form(**extra))
    assert result.ok, result.errors
    return result.forms[0]


def test_registered_in_the_one_table() -> None:
    assert TYPES["percent"].name == "percent"
    assert type_of(load().question("ty_le")) is TYPES["percent"]


def test_loader_default_in_range_and_no_bounds() -> None:
    assert load(default=50).question("ty_le").default == Decimal(50)
    bad = form_from_dict(percent_form(default=120))
    assert not bad.ok and "0–100" in str(bad.errors[0])
    assert not form_from_dict(percent_form(max=50)).ok


def test_display_and_export_cell() -> None:
    q = load().question("ty_le")
    assert format_value(q, "95") == "95%"
    assert format_value(q, "12.5") == "12,5%"
    assert cell_value(q, "95") == 95
    assert cell_value(q, "12.5") == Decimal("12.5")


def test_summary_is_the_mean_over_villages_that_answered(session: Session) -> None:
    form = load()
    store_forms(session, [form], now=T0, actor="test")
    commune = Commune(code="x", name="Xã X", province="P", created_at=T0, updated_at=T0)
    session.add(commune)
    session.flush()
    session.add(CommuneForm(commune_id=commune.id, form_id=form.id, position=0))
    villages = [
        Village(commune_id=commune.id, name=f"Thôn {i}", created_at=T0, updated_at=T0) for i in range(4)
    ]
    period = Period(
        commune_id=commune.id,
        form_id=form.id,
        code="2026-5",
        label="Tháng 5",
        opens_at=T0,
        due_at=DUE,
        closes_at=DUE + timedelta(days=30),
        created_at=T0,
        updated_at=T0,
    )
    session.add_all([*villages, period])
    session.flush()
    for n, (village, answers) in enumerate(
        zip(villages, [{"ty_le": "95"}, {"ty_le": "12.5"}, {"ty_le": None}, {"ty_le": "80"}], strict=True)
    ):
        session.add(
            Submission(
                village_id=village.id,
                form_id=form.id,
                period_id=period.id,
                form_version=1,
                version_no=1,
                is_current=True,
                answers=answers,
                sent_at=T0 + timedelta(days=1),
                received_at=T0 + timedelta(days=1),
                on_time=True,
                receipt=f"BC-P{n}",
            )
        )
    session.flush()
    [indicator] = summaries.indicator_totals(session, period, form, previous=False)
    assert indicator.kind == "mean"
    assert indicator.answered == 3 and indicator.reports == 4
    assert indicator.total == Decimal("62.5")  # (95 + 12.5 + 80) / 3
