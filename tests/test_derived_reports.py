"""Derived figures (`derived:`) everywhere a summary goes: /tonghop, the pushed summary, Excel, CSV, charts.

A test form (its own questions, so the shipped forms may change) replaces the 6-month form of the /tonghop
world (Hiệp Lực, Phú Đình, Yên Sơn). Hiệp Lực's villages answer at random from a seeded RNG: some on time,
some late, one amended late, the rest missing; last period a few. Every figure shown is compared with one
recomputed here from the raw answers, with the test's own rounding.
"""

from __future__ import annotations

import csv
import io
import random
import re
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import openpyxl
import pytest
from sqlmodel import Session, select

from bot.exports import build_export
from bot.exports.chart import chart_bars, indicators_chart
from bot.forms.loader import form_from_dict
from bot.forms.model import Form
from bot.reminders.summary_push import plan_summary_pushes, push_time, render_summary_push
from bot.services.completeness import Scope
from bot.services.forms import get_form, store_forms
from bot.services.summaries import build_summary
from storage.db import session_scope
from storage.models import Commune, Outbox, Period, Submission
from tests.test_summary_handler import (  # noqa: F401  (the bot fixture)
    AN,
    CUONG,
    DUE,
    KHOA,
    LA,
    NOW,
    SANG,
    all_pages,
    bot,
    file_report,
    period_of,
    villages_of,
)

FORM_ID = "bao-cao-6-thang"
SHARE_PLACES = 2  # the form asks for two decimals on this share; the other keeps the default one


def derived_form(version: int) -> dict[str, Any]:
    """A small 6-month form with every kind of derived figure (and a share that will be out of 0)."""

    def number(qid: str, short: str) -> dict[str, Any]:
        return {"id": qid, "type": "integer", "label": f"Số {short.lower()} của thôn?", "short": short,
                "min": 0, "max": 5000}  # fmt: skip

    return {
        "id": FORM_ID,
        "title": "Báo cáo 6 tháng (thử chỉ tiêu tính)",
        "version": version,
        "kind": "periodic",
        "sections": [
            {"title": "Tuyên truyền, vận động", "questions": [
                number("so_buoi_tuyen_truyen", "Buổi tuyên truyền"),
                number("so_buoi_pccc", "Buổi tuyên truyền PCCC"),
                number("so_buoi_atgt", "Buổi tuyên truyền ATGT"),
            ]},
            {"title": "Tiêu chuẩn “An toàn về ANTT”", "questions": [
                {"id": "dang_ky_an_toan", "type": "yes_no", "label": "Thôn đã đăng ký chưa?",
                 "short": "Đăng ký An toàn về ANTT"},
                number("tong_so_ho", "Tổng số hộ"),
                number("so_ho_cam_ket", "Hộ ký cam kết"),
            ]},
            {"title": "Ma túy", "questions": [
                number("so_nghien", "Người nghiện"),
                number("so_cai_nghien", "Người đi cai nghiện"),
            ]},
        ],
        "derived": [
            {"id": "ty_le_cam_ket", "short": "Tỷ lệ hộ ký cam kết", "places": SHARE_PLACES,
             "share": {"of": "so_ho_cam_ket", "out_of": "tong_so_ho"}},
            {"id": "tong_buoi", "short": "Tổng số buổi tuyên truyền",
             "sum": ["so_buoi_tuyen_truyen", "so_buoi_pccc", "so_buoi_atgt"]},
            {"id": "thon_dat_chuan", "short": "Thôn đạt chuẩn ANTT",
             "count_villages": "dang_ky_an_toan == true and so_ho_cam_ket >= tong_so_ho"},
            {"id": "ty_le_cai_nghien", "short": "Tỷ lệ đi cai nghiện",
             "share": {"of": "so_cai_nghien", "out_of": "so_nghien"}},
        ],
    }  # fmt: skip


def random_answers(rnd: random.Random) -> dict[str, Any]:
    """One village's answers: small figures; nobody on drugs (the cai nghiện share is out of 0)."""
    households = rnd.choice([0, rnd.randint(20, 300)])  # now and then a village gives 0 households
    return {
        "so_buoi_tuyen_truyen": rnd.randint(0, 20),
        "so_buoi_pccc": rnd.randint(0, 20),
        "so_buoi_atgt": rnd.randint(0, 20),
        "dang_ky_an_toan": rnd.random() < 0.7,
        "tong_so_ho": households,
        "so_ho_cam_ket": rnd.choice([households, rnd.randint(0, households)]),
        "so_nghien": 0,
        "so_cai_nghien": 0,
    }


# ---------------------------------------------------------------------------------------------- recomputed


def pct(part: int, whole: int, places: int) -> Decimal | None:
    """The test's own rounding: 100 × part / whole to `places` decimals, half up; None out of 0."""
    if whole == 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def expected(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The four figures over these villages' raw answers."""
    part = sum(a["so_ho_cam_ket"] for a in answers)
    whole = sum(a["tong_so_ho"] for a in answers)
    return {
        "part": part,
        "whole": whole,
        "ty_le_cam_ket": pct(part, whole, SHARE_PLACES),
        "tong_buoi": sum(a["so_buoi_tuyen_truyen"] + a["so_buoi_pccc"] + a["so_buoi_atgt"] for a in answers),
        "thon_dat_chuan": sum(
            1 for a in answers if a["dang_ky_an_toan"] is True and a["so_ho_cam_ket"] >= a["tong_so_ho"]
        ),
        "ty_le_cai_nghien": pct(
            sum(a["so_cai_nghien"] for a in answers), sum(a["so_nghien"] for a in answers), 1
        ),
        "reports": len(answers),
    }


def vn(d: int | Decimal) -> str:
    """Vietnamese digits: a comma for decimals, no trailing zeros, dots between thousands."""
    text = f"{d:f}"
    whole, _, frac = text.partition(".")
    whole = f"{int(whole):,}".replace(",", ".")
    frac = frac.rstrip("0")
    return f"{whole},{frac}" if frac else whole


def current_answers(s: Session, period_id: int) -> list[dict[str, Any]]:
    """The raw current answers of the period, as stored."""
    rows = s.exec(select(Submission).where(Submission.period_id == period_id, Submission.is_current))
    return [dict(r.answers) for r in rows]


# ---------------------------------------------------------------------------------------------- the world


@pytest.fixture
def derived_world(bot) -> dict[str, Any]:  # noqa: F811
    """The test form stored as the 6-month form's next version; Hiệp Lực's reports this period and last."""
    rnd = random.Random(20261207)
    with session_scope(bot.engine) as s:
        old = get_form(s, FORM_ID)
        assert old is not None
        result = form_from_dict(derived_form(old.version + 1), "thu-chi-tieu.yaml")
        assert result.ok, result.errors
        store_forms(s, result.forms, now=NOW, actor="test")
    with session_scope(bot.engine) as s:
        cur, prev = period_of(s, "hiep-luc", "2026-6T"), period_of(s, "hiep-luc", "2025-6T")
        v = villages_of(s, "hiep-luc")
        chosen = rnd.sample(range(len(v)), 9)
        for n, k in enumerate(chosen[:8]):
            late = n % 3 == 2
            sent = DUE + timedelta(hours=5 + n) if late else DUE - timedelta(days=2, hours=n)
            file_report(s, v[k], cur, random_answers(rnd), sent)
        file_report(s, v[chosen[0]], cur, random_answers(rnd), DUE + timedelta(days=1), no=2)  # amended late
        for k in rnd.sample(range(len(v)), 5):
            file_report(s, v[k], prev, random_answers(rnd), prev.due_at - timedelta(days=1))
        pd = villages_of(s, "phu-dinh")
        file_report(
            s, pd[0], period_of(s, "phu-dinh", "2026-6T"), random_answers(rnd), DUE - timedelta(days=1)
        )
        for sub in s.exec(select(Submission).where(Submission.form_id == FORM_ID)):
            sub.form_version = old.version + 1  # answered with the test form
            s.add(sub)
        return {"period": cur.id, "previous": prev.id, "amended": v[chosen[0]].id}


def figures(engine: Any, period_id: int) -> dict[str, Any]:
    with Session(engine) as s:
        return expected(current_answers(s, period_id))


def share_line(now: dict[str, Any], before: dict[str, Any] | None) -> str:
    """The chat line of the households' share, with its change in percentage points."""
    line = f"• Tỷ lệ hộ ký cam kết: <b>{vn(now['ty_le_cam_ket'])}%</b> ({vn(now['part'])}/{vn(now['whole'])})"
    return line + change(now["ty_le_cam_ket"], before["ty_le_cam_ket"] if before else None, " điểm %")


def change(now: int | Decimal, before: int | Decimal | None, unit: str = "") -> str:
    if before is None:
        return " · kỳ trước: —"
    delta = now - before
    if delta > 0:
        return f" · ▲ {vn(delta)}{unit}"
    return f" · ▼ {vn(-delta)}{unit}" if delta < 0 else " · = như kỳ trước"


def expected_lines(now: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    """Every derived line the summary must show."""
    return [
        share_line(now, before),
        f"• Tổng số buổi tuyên truyền: <b>{vn(now['tong_buoi'])}</b>"
        + change(now["tong_buoi"], before["tong_buoi"] if before else None),
        f"• Thôn đạt chuẩn ANTT: <b>{now['thon_dat_chuan']}</b>/{now['reports']} thôn"
        + change(now["thon_dat_chuan"], before["thon_dat_chuan"] if before else None),
        "• Tỷ lệ đi cai nghiện: <b>—</b>",  # out of 0: a dash, no "0/0", no change
    ]


# ---------------------------------------------------------------------------------------------- /tonghop


async def test_the_chat_summary_shows_derived_figures_recomputed_from_raw_answers(bot, derived_world) -> None:  # noqa: F811
    now, before = figures(bot.engine, derived_world["period"]), figures(bot.engine, derived_world["previous"])
    assert now["reports"] == 8 and before["reports"] == 5 and now["ty_le_cam_ket"] is not None
    text, _ = await all_pages(bot, CUONG, "/tonghop")  # every page checked against the phone limits
    assert "8/15 thôn đã nộp" in text and "Nộp muộn: 2" in text
    with Session(bot.engine) as s:  # the amendment counts, not the first version
        first = s.exec(
            select(Submission).where(
                Submission.village_id == derived_world["amended"],
                Submission.period_id == derived_world["period"],
                ~Submission.is_current,
            )
        ).one()
        others = [
            a for sub in s.exec(select(Submission).where(
                Submission.period_id == derived_world["period"], Submission.is_current,
                Submission.village_id != derived_world["amended"])) for a in [dict(sub.answers)]
        ]  # fmt: skip
    with_first = expected([*others, dict(first.answers)])
    assert with_first["tong_buoi"] != now["tong_buoi"]
    for line in expected_lines(now, before):
        assert line in text.split("\n"), (line, text)
    assert "0/0" not in text and "Tỷ lệ đi cai nghiện: <b>—</b> ·" not in text
    # each figure in its section: the share and the count under the "An toàn về ANTT" title
    section = text[text.index("<b>Tiêu chuẩn “An toàn về ANTT”</b>") :]
    section = section[: section.index("<b>Ma túy</b>")]
    assert "Tỷ lệ hộ ký cam kết" in section and "Thôn đạt chuẩn ANTT" in section
    assert "Tổng số buổi tuyên truyền" not in section


async def test_a_share_is_rounded_as_the_form_says(bot, derived_world) -> None:  # noqa: F811
    now = figures(bot.engine, derived_world["period"])
    exact = Decimal(now["part"]) * 100 / Decimal(now["whole"])
    shown = now["ty_le_cam_ket"]
    assert shown == exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert abs(shown - exact) <= Decimal("0.005")
    with Session(bot.engine) as s:
        summary = build_summary(s, Scope(s.get(Period, derived_world["period"])), NOW)
    assert summary is not None
    by_id = {f.derived.id: f for f in summary.derived}
    assert by_id["ty_le_cam_ket"].value.value == shown
    assert by_id["ty_le_cai_nghien"].value.value is None  # division by zero: no value
    assert by_id["ty_le_cai_nghien"].change is None


async def test_the_province_roll_up_shows_derived_figures_over_every_commune(bot, derived_world) -> None:  # noqa: F811
    with Session(bot.engine) as s:
        pd = period_of(s, "phu-dinh", "2026-6T")
        ys = period_of(s, "yen-son", "2026-6T")
        answers = current_answers(s, derived_world["period"]) + current_answers(s, pd.id)
        assert not current_answers(s, ys.id)  # another province
    province = expected(answers)
    text, _ = await all_pages(bot, SANG, f"sm:r:{derived_world['period']}")
    assert f"• Tổng số buổi tuyên truyền: <b>{vn(province['tong_buoi'])}</b>" in text
    assert f"• Thôn đạt chuẩn ANTT: <b>{province['thon_dat_chuan']}</b>/{province['reports']} thôn" in text


async def test_unauthorised_users_never_see_derived_figures(bot, derived_world) -> None:  # noqa: F811
    for user in (AN, LA, KHOA):
        out = "\n".join(await bot.ask(user, "/tonghop"))
        out += "\n".join(await bot.tap(user, f"sm:p:{derived_world['period']}"))
        assert "Tỷ lệ hộ ký cam kết" not in out and "Thôn đạt chuẩn ANTT" not in out, out
    assert "Xã Yên Sơn" in "\n".join(await bot.ask(KHOA, "/tonghop"))  # their own commune, no test form there


async def test_one_villages_page_shows_its_own_derived_figures(bot, derived_world) -> None:  # noqa: F811
    villages = per_village(bot.engine, derived_world["period"])
    with Session(bot.engine) as s:
        ids = {v.name: v.id for v in villages_of(s, "hiep-luc")}
    reported = {name: a for name, a in villages.items() if a is not None}
    zero = next(name for name, a in reported.items() if a["tong_so_ho"] == 0)  # the seed gives one
    some = next(name for name, a in reported.items() if a["tong_so_ho"] > 0)
    for name in (zero, some):
        one = expected([reported[name]])
        text, _ = await all_pages(bot, CUONG, f"sm:s:{derived_world['period']}:{ids[name]}")
        share = "—" if one["ty_le_cam_ket"] is None else f"{vn(one['ty_le_cam_ket'])}%"
        assert f"• Tỷ lệ hộ ký cam kết: <b>{share}</b>" in text, text
        assert f"• Tổng số buổi tuyên truyền: <b>{vn(one['tong_buoi'])}</b>" in text
        met = "Đạt" if one["thon_dat_chuan"] else "Không đạt"
        assert f"• Thôn đạt chuẩn ANTT: <b>{met}</b>" in text
        assert "• Tỷ lệ đi cai nghiện: <b>—</b>" in text
        refused = "\n".join(await bot.tap(AN, f"sm:s:{derived_world['period']}:{ids[name]}"))
        assert "Tỷ lệ" not in refused and "Thôn đạt chuẩn" not in refused


# ---------------------------------------------------------------------------------------------- the push


def test_the_pushed_summary_shows_the_same_derived_figures(bot, derived_world) -> None:  # noqa: F811
    now, before = figures(bot.engine, derived_world["period"]), figures(bot.engine, derived_world["previous"])
    with Session(bot.engine) as s:
        period = s.get(Period, derived_world["period"])
        commune = s.get(Commune, period.commune_id)
        at = push_time(period, commune) + timedelta(minutes=1)
    with session_scope(bot.engine) as s:
        assert plan_summary_pushes(s, at, default_tz="Asia/Ho_Chi_Minh") >= 1
    with Session(bot.engine) as s:
        row = s.exec(select(Outbox).where(Outbox.kind == "summary", Outbox.period_id == period.id)).first()
        parts = render_summary_push(s, row, at, default_tz="Asia/Ho_Chi_Minh", charts=False)
    assert parts is not None
    lines = "\n".join(parts.texts).split("\n")
    for line in expected_lines(now, before):
        assert line in lines, (line, parts.texts)
    with Session(bot.engine) as s:  # with charts: the indicators chart comes along (it holds the figures)
        drawn = render_summary_push(s, row, at, default_tz="Asia/Ho_Chi_Minh")
    assert drawn is not None and drawn.texts == parts.texts
    names = [p.filename for p in drawn.photos]
    assert len(names) == 2 and names[0].endswith("-nop-bao-cao.png") and names[1].endswith("-chi-tieu.png")


# ---------------------------------------------------------------------------------------------- exports


def _export(engine: Any, period_id: int, fmt: str) -> bytes:
    with Session(engine) as s:
        period = s.get(Period, period_id)
        commune = s.get(Commune, period.commune_id)
        form = get_form(s, period.form_id)
        assert form is not None and form.derived
        return build_export(s, commune, form, period, fmt, NOW).content


def per_village(engine: Any, period_id: int) -> dict[str, dict[str, Any] | None]:
    """Each Hiệp Lực village's current raw answers (None: not reported), by name."""
    with Session(engine) as s:
        villages = villages_of(s, "hiep-luc")
        by_id = {sub.village_id: dict(sub.answers) for sub in s.exec(
            select(Submission).where(Submission.period_id == period_id, Submission.is_current))}  # fmt: skip
        return {v.name: by_id.get(v.id) for v in villages}


def village_cells(answers: dict[str, Any] | None) -> list[Any]:
    """A village's four derived cells as the test expects them."""
    if answers is None:
        return [None, None, None, None]
    one = expected([answers])
    return [
        one["ty_le_cam_ket"] if one["ty_le_cam_ket"] is not None else "—",
        one["tong_buoi"],
        "Đạt" if one["thon_dat_chuan"] else "Không đạt",
        "—",  # nobody on drugs: out of 0
    ]


HEADERS = [
    "Tỷ lệ hộ ký cam kết (%)",
    "Tổng số buổi tuyên truyền",
    "Thôn đạt chuẩn ANTT",
    "Tỷ lệ đi cai nghiện (%)",
]


def _number(value: Any) -> Any:
    """An Excel/CSV number read back as a Decimal (text such as "—" kept)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(repr(value)).normalize()
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, (int, Decimal)) and not isinstance(b, bool):
        return a is not None and not isinstance(a, str) and Decimal(a) == Decimal(b)
    return a == b


def test_excel_has_a_column_per_derived_figure_and_the_communes_totals(bot, derived_world) -> None:  # noqa: F811
    villages = per_village(bot.engine, derived_world["period"])
    now = figures(bot.engine, derived_world["period"])
    book = openpyxl.load_workbook(io.BytesIO(_export(bot.engine, derived_world["period"], "xlsx")))
    sheet = book["Các thôn"]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    at = [header.index(h) for h in HEADERS]
    assert at == list(range(at[0], at[0] + 4))  # after the questions, in form order
    name_col = header.index("Thôn, tổ dân phố")
    seen = 0
    for row in rows[1:-1]:
        want = village_cells(villages[row[name_col]])
        got = [_number(row[i]) for i in at]
        assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (row[name_col], got, want)
        seen += 1
    assert seen == len(villages) == 15
    total = rows[-1]
    assert total[name_col] == "Tổng cộng"
    assert _same(_number(total[at[0]]), now["ty_le_cam_ket"])
    assert _same(_number(total[at[1]]), now["tong_buoi"])
    assert _same(_number(total[at[2]]), now["thon_dat_chuan"])  # villages meeting it, not a text
    assert total[at[3]] == "—"  # out of 0
    block = list(book["Chỉ tiêu tính toán"].iter_rows(values_only=True))
    assert block[0][0] == "Chỉ tiêu"
    assert [r[0] for r in block[1:]] == HEADERS
    share, total_sessions, met, drugs = block[1:]
    assert _same(_number(share[1]), now["ty_le_cam_ket"]) and (share[2], share[3]) == (
        now["part"],
        now["whole"],
    )
    assert _same(_number(total_sessions[1]), now["tong_buoi"]) and total_sessions[4] == 8
    assert (met[1], met[2], met[3]) == (now["thon_dat_chuan"], now["thon_dat_chuan"], 8)
    assert drugs[1] == "—" and drugs[2] is None and drugs[3] is None


def test_csv_has_the_same_per_village_derived_columns(bot, derived_world) -> None:  # noqa: F811
    villages = per_village(bot.engine, derived_world["period"])
    raw = _export(bot.engine, derived_world["period"], "csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(raw)))
    header = rows[0]
    at = [header.index(h) for h in HEADERS]
    name_col = header.index("Thôn, tổ dân phố")

    def parse(text: str) -> Any:
        return Decimal(text) if re.fullmatch(r"-?\d+(\.\d+)?", text) else (text or None)

    assert len(rows) - 1 == len(villages)  # no totals row: the file is for import
    for row in rows[1:]:
        want = village_cells(villages[row[name_col]])
        got = [parse(row[i]) for i in at]
        assert all(_same(g, w) for g, w in zip(got, want, strict=True)), (row[name_col], got, want)


# ---------------------------------------------------------------------------------------------- charts


def test_the_chart_draws_the_derived_figures_with_their_values(bot, derived_world) -> None:  # noqa: F811
    now, before = figures(bot.engine, derived_world["period"]), figures(bot.engine, derived_world["previous"])
    with Session(bot.engine) as s:
        summary = build_summary(s, Scope(s.get(Period, derived_world["period"])), NOW)
    assert summary is not None
    bars = {b.label: b for b in chart_bars(summary.indicators, summary.derived)}
    assert (bars["Tỷ lệ hộ ký cam kết"].total, bars["Tỷ lệ hộ ký cam kết"].unit) == (
        now["ty_le_cam_ket"],
        "%",
    )
    assert bars["Tỷ lệ hộ ký cam kết"].previous == before["ty_le_cam_ket"]
    assert (bars["Tổng số buổi tuyên truyền"].total, bars["Tổng số buổi tuyên truyền"].unit) == (
        now["tong_buoi"],
        "",
    )
    assert bars["Thôn đạt chuẩn ANTT"].total == now["thon_dat_chuan"]
    assert bars["Tổng số buổi tuyên truyền"].previous == before["tong_buoi"]
    assert "Tỷ lệ đi cai nghiện" not in bars  # out of 0: no bar
    png = indicators_chart(
        summary.indicators, period_label="Kỳ này", previous_label="Kỳ trước", derived=summary.derived
    )
    assert png.startswith(b"\x89PNG")


def test_derived_bars_are_kept_when_the_chart_is_full(bot, derived_world) -> None:  # noqa: F811
    with Session(bot.engine) as s:
        summary = build_summary(s, Scope(s.get(Period, derived_world["period"])), NOW)
    assert summary is not None
    bars = chart_bars(summary.indicators, summary.derived, limit=4)
    assert [b.label for b in bars] == ["Buổi tuyên truyền", "Tỷ lệ hộ ký cam kết", "Tổng số buổi tuyên truyền",
                                       "Thôn đạt chuẩn ANTT"]  # fmt: skip


def test_percentages_get_a_panel_of_their_own() -> None:
    from bot.exports.chart import Bar, magnitude_groups

    bars = [Bar("Buổi", 12, 10), Bar("Tỷ lệ", Decimal("87.5"), Decimal("40"), "%"), Bar("Hộ", 14, 3)]
    groups = magnitude_groups(bars)
    assert [[b.label for b in g] for g in groups] == [["Buổi", "Hộ"], ["Tỷ lệ"]]


# ---------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("places", [-1, 4, "2", True, 1.5])
def test_bad_places_are_refused_with_a_clear_message(places: Any) -> None:
    data = derived_form(1)
    data["derived"][0]["places"] = places
    result = form_from_dict(data, "thu.yaml")
    assert not result.ok
    assert any("'places'" in str(e) and "từ 0 đến 3" in str(e) for e in result.errors), result.errors


def test_places_only_for_a_share() -> None:
    data = derived_form(1)
    data["derived"][1]["places"] = 2
    result = form_from_dict(data, "thu.yaml")
    assert any("chỉ dùng cho chỉ tiêu tỷ lệ" in str(e) for e in result.errors), result.errors


def test_places_survive_storage() -> None:
    from bot.forms.loader import form_to_dict

    form: Form = form_from_dict(derived_form(1), "thu.yaml").forms[0]
    again = form_from_dict(form_to_dict(form), "lại.yaml").forms[0]
    assert [d.places for d in again.derived] == [SHARE_PLACES, 1, 1, 1] == [d.places for d in form.derived]
