"""Every shipped form filled completely by many villages (the longest answers, every repeat group full): every
page of the police summary, of the province roll-up, of a village's whole report, of a long answer and of
the pushed summary fits a phone (≤ 1,200 characters, ≤ 12 buttons, callback data ≤ 64 bytes), and the pages
together hold every village's report."""

from __future__ import annotations

import copy
import html
import random
import re
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from bot.forms.loader import load_form_files
from bot.forms.model import Form
from bot.forms.types import type_of
from bot.reminders.summary_push import plan_summary_pushes, push_time, render_summary_push
from bot.services.completeness import completeness
from bot.services.forms import get_form
from bot.services.summaries import answer_rows, full_text, village_submission
from bot.views.form import tg_len
from bot.views.summary import (
    PERIODS_SHOWN,
    full_text_messages,
    period_buttons,
    render_summary_messages,
    village_messages,
    villages_page,
    zone,
)
from storage.db import session_scope
from storage.models import Commune, Outbox, Period, Submission, Village
from tests.support.world import apply_setup_file, local
from tests.test_review_pages import fill

ROOT = Path(__file__).resolve().parent.parent
FORMS = {f.id: f for f in load_form_files(sorted((ROOT / "deploy" / "forms").glob("*.yaml"))).forms}
VILLAGES = 40
MAX_CHARS, MAX_BUTTONS = 1200, 12
PERIODS = {"bao-cao-6-thang": ("2026-6T", "2025-6T"), "bao-cao-nam": ("2026-CN", "2025-CN")}


def setup_data() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "deploy" / "hiep-luc.yaml").read_text(encoding="utf-8"))
    main = data["communes"][0]
    main["villages"] = [f"Tổ dân phố Số {n} Khu Tái Định Cư Đồi Thông Nà Làng" for n in range(VILLAGES)]
    other = copy.deepcopy(main)
    other.update(code="phu-dinh", name="Xã Phú Đình", villages=["Thôn Đồng Hút", "Thôn Khẩu Đống"])
    other["police_chats"] = [{"chat_id": -1009000000001, "title": "CA Phú Đình"}]
    data["communes"].append(other)
    return data


def answers(form: Form, seed: int) -> dict[str, Any]:
    """A complete fill: the worst case (every yes, longest texts, full repeat groups) for even seeds."""
    step, _ = fill(form, random.Random(seed), worst=seed % 2 == 0)
    return step.state.to_json()["answers"]


def file(
    s: Session, village: Village, period: Period, answered: dict[str, Any], form: Form, late: bool
) -> None:
    sent = period.due_at + (timedelta(days=2) if late else -timedelta(days=1))
    s.add(
        Submission(
            village_id=village.id,
            form_id=form.id,
            period_id=period.id,
            form_version=form.version,
            version_no=1,
            is_current=True,
            answers=answered,
            sent_at=sent,
            received_at=sent,
            on_time=not late,
            receipt=f"BC-{period.id}-{village.id}",
        )
    )


@pytest.fixture(scope="module")
def filled() -> dict[str, list[dict[str, Any]]]:
    """A few complete fills per form (engine walks are the slow part: shared by the module)."""
    return {fid: [answers(form, seed) for seed in range(6)] for fid, form in FORMS.items()}


@pytest.fixture
def world(engine, filled):
    now = local(12, 7, 9)
    with session_scope(engine) as s:
        apply_setup_file(s, setup_data(), now=local(4, 20), path=ROOT / "deploy" / "test-pages.yaml")
    with session_scope(engine) as s:
        for commune in s.exec(select(Commune)):
            villages = list(
                s.exec(select(Village).where(Village.commune_id == commune.id).order_by(Village.id))
            )
            for form_id, codes in PERIODS.items():
                form = get_form(s, form_id)
                for k, code in enumerate(codes):
                    period = s.exec(
                        select(Period).where(
                            Period.commune_id == commune.id, Period.form_id == form_id, Period.code == code
                        )
                    ).one()
                    for n, village in enumerate(villages):
                        if k == 1 and n % 3:  # last year: a third of the villages
                            continue
                        if n == len(villages) - 1 and k == 0:  # one village still missing
                            continue
                        file(s, village, period, filled[form_id][n % 6], form, late=n % 5 == 0)
    return now


def pages_of(render: Any) -> list[tuple[str, Any]]:
    """Every page of a paged screen: `render(page)` → [(text, buttons)], the count read from "Trang i/n"."""
    first = render(0)
    assert len(first) == 1, f"{len(first)} messages at once"
    found = re.search(r"Trang 1/(\d+)", first[0][0])
    count = int(found.group(1)) if found else 1
    out = [first[0]]
    for page in range(1, count):
        (message,) = render(page)
        assert f"Trang {page + 1}/{count}" in message[0]
        out.append(message)
    return out


def check(pages: list[tuple[str, Any]], what: str) -> dict[str, int]:
    """Assert the phone limits on every page; the largest page's characters and buttons."""
    largest = {"chars": 0, "buttons": 0, "pages": len(pages)}
    for n, (text, rows) in enumerate(pages, start=1):
        buttons = [b for row in rows for b in row]
        assert tg_len(text) <= MAX_CHARS, f"{what} page {n}: {tg_len(text)} characters"
        assert len(buttons) <= MAX_BUTTONS, f"{what} page {n}: {len(buttons)} buttons"
        assert all(len(b.data.encode()) <= 64 for b in buttons)
        for tag in ("b", "i", "code"):
            assert text.count(f"<{tag}>") == text.count(f"</{tag}>"), f"{what} page {n}: <{tag}> unbalanced"
        largest = {
            **largest,
            "chars": max(largest["chars"], tg_len(text)),
            "buttons": max(largest["buttons"], len(buttons)),
        }
    return largest


@pytest.mark.parametrize("form_id", sorted(PERIODS))
def test_every_summary_page_fits_a_phone(engine, world, form_id: str) -> None:
    now = world
    with Session(engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
        period = s.exec(
            select(Period).where(
                Period.commune_id == commune.id, Period.form_id == form_id, Period.code == PERIODS[form_id][0]
            )
        ).one()
        tz = zone(commune)
        pages = pages_of(lambda page: render_summary_messages(s, period, None, now, tz=tz, page=page))
        figures = check(pages, f"{form_id} summary")
        text = "\n".join(t for t, _ in pages)
        assert f"{VILLAGES - 1}/{VILLAGES} thôn đã nộp" in text
        assert figures["pages"] >= 3  # the long answers of 39 villages cannot fit one screen
        for q in FORMS[form_id].questions:  # every summarised question under its short label
            if type_of(q).summary is not None and q.short:
                assert q.short in text or q.type in ("single_choice", "multi_choice", "yes_no", "date"), q.id
        full = {b.data for _, rows in pages for row in rows for b in row if b.data.startswith("sm:t:")}
        marked = set(re.findall(r" \[(\d+)\]$", text, re.M))
        assert full and len(full) == len(marked)  # every shortened answer has its "xem đủ" on its page

        rollup = pages_of(lambda page: render_summary_messages(s, period, "Thái Nguyên", now, page=page))
        check(rollup, f"{form_id} roll-up")

        villages = list(s.exec(select(Village).where(Village.commune_id == commune.id).order_by(Village.id)))
        worst = villages[0]  # filled with the worst case
        report = village_submission(s, worst, period)
        assert report is not None
        whole = pages_of(lambda page: village_messages(worst, commune, period, report, tz, page))
        check(whole, f"{form_id} village report")
        joined = "\n".join(t for t, _ in whole)
        assert all(row["label"] in joined for row in report.rows)  # every answer on some page

        long_texts = [(i, q) for i, q in enumerate(FORMS[form_id].questions) if type_of(q).free_text]
        for index, q in long_texts:
            answer = full_text(s, period, worst.id, q.id)
            assert answer is not None
            shown = pages_of(
                lambda page, q=q, a=answer, i=index: full_text_messages(worst, period, q, a, i, page)
            )
            check(shown, f"{form_id} long answer {q.id}")
            body = re.sub(r"<i>Trang \d+/\d+</i>", "", "".join(t for t, _ in shown))
            assert "".join(answer.split()) in "".join(html.unescape(body).split())  # all of it, in order


@pytest.mark.parametrize("form_id", sorted(PERIODS))
def test_every_pushed_part_fits_a_phone(engine, world, form_id: str) -> None:
    with Session(engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
        period = s.exec(
            select(Period).where(
                Period.commune_id == commune.id, Period.form_id == form_id, Period.code == PERIODS[form_id][0]
            )
        ).one()
        at = push_time(period, commune)
    with session_scope(engine) as s:
        plan_summary_pushes(s, at)
    with Session(engine) as s:
        row = s.exec(select(Outbox).where(Outbox.period_id == period.id, Outbox.kind == "summary")).first()
        assert row is not None
        parts = render_summary_push(s, row, at, charts=False)
        assert parts is not None and parts.texts
        check([(t, ()) for t in parts.texts], f"{form_id} push")


def test_the_incident_report_of_a_village_fits_a_phone(filled) -> None:
    """The incident form has no period summary; a village's whole incident report is paged the same way."""
    form = FORMS["su-co"]
    rows, _, _ = answer_rows(form, filled["su-co"][0])
    village = SimpleNamespace(id=7, name="Tổ dân phố Số 1 Khu Tái Định Cư Đồi Thông Nà Làng")
    period = SimpleNamespace(id=9, label="Đột xuất")
    commune = SimpleNamespace(name="Xã Hiệp Lực")
    submission = SimpleNamespace(sent_at=local(5, 1), receipt="SC-1", version_no=1)
    report = SimpleNamespace(
        form=form, submission=submission, first_sent_at=local(5, 1), late_by=None, rows=rows
    )
    pages = pages_of(lambda page: village_messages(village, commune, period, report, zone(None), page))
    check(pages, "incident report")
    assert all(row["label"] in "\n".join(t for t, _ in pages) for row in rows)


def test_the_lists_of_villages_and_periods_fit_a_phone(engine, world) -> None:
    """ "Theo thôn" pages (every village once) and "Kỳ khác" keep to 12 buttons."""
    with Session(engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
        period = s.exec(select(Period).where(Period.commune_id == commune.id, Period.code == "2026-6T")).one()
        comp = completeness(s, period, world, progress=False)
        pages = pages_of(lambda page: [villages_page(period, commune, comp, page)])
        check(pages, "villages")
        shown = [b.data for _, rows in pages for row in rows for b in row if b.data.startswith("sm:s:")]
        assert len(shown) == len(set(shown)) == VILLAGES
        many = list(s.exec(select(Period).where(Period.commune_id == commune.id)))
        assert len(many) > PERIODS_SHOWN or PERIODS_SHOWN <= MAX_BUTTONS
        rows = period_buttons(many[:PERIODS_SHOWN], period.id)
        assert sum(len(r) for r in rows) <= MAX_BUTTONS
