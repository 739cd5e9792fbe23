"""Every text names the units and their heads by kind and the collecting body as set up: a commune of tổ dân
phố hears "tổ trưởng" and "5 tổ dân phố", a provincial office's departments "đơn vị", "thủ trưởng đơn vị" and
"Phòng Hành chính – Quản trị" — never "thôn", "trưởng thôn" or "Công an xã"; a thôn commune reads as before."""

from __future__ import annotations

import copy
import io
import re
import textwrap
from typing import Any
from zoneinfo import ZoneInfo

import docx
import openpyxl
import pytest
import yaml
from sqlmodel import select

from bot.clock import FixedClock
from bot.exports import build_export
from bot.exports.incidents import words as incident_words
from bot.reminders.content import render_outbox
from bot.services import reminders
from bot.services.accounts import create_invite
from bot.services.forms import get_form
from bot.services.setup import apply_setup
from bot.services.upward import upward_text
from bot.setup_file import loads_setup, parse_setup
from bot.texts.templates import environment, render
from bot.texts.units import speaking_for, units_count, wording
from bot.views.requests import request_notice
from storage.db import session_scope
from storage.models import Commune, Outbox, Period
from tests.support.client import running_bot
from tests.support.telegram import FakeUser
from tests.support.world import HIEP_LUC, apply_setup_file, local, sign_up_commune

AN = FakeUser(2001, "An", "Hoàng Văn")  # head of Thôn Nà Làng
CUONG = FakeUser(2003, "Cường", "Lý Văn")  # police (or the office's clerk)
NEW_HEAD = FakeUser(2050, "Em", "Lò Văn")
OFFICE_COLLECTOR = "Phòng Hành chính – Quản trị"
NAMES = re.compile(r"Thôn [A-ZĐÀ-Ỹ][^\s,.<)(—:]*(?: [A-ZĐÀ-Ỹ][^\s,.<)(—:]*)*")  # the units' own names
PRODUCT = "Báo cáo thôn"  # the product's name stays


def setup_data(kind: str | None, collector: str | None = None) -> dict[str, Any]:
    """The shipped Hiệp Lực setup with every unit of `kind` (None: as shipped) and the `collector`."""
    data = copy.deepcopy(yaml.safe_load(HIEP_LUC.read_text(encoding="utf-8")))
    commune = data["communes"][0]
    if kind is not None:
        commune["villages"] = [
            {"name": v if isinstance(v, str) else v["name"], "kind": kind} for v in commune["villages"]
        ]
    if collector is not None:
        commune["report"] = {**(commune.get("report") or {}), "collector": collector}
    return data


def leaks(text: str) -> list[str]:
    """The words for a thôn commune left in `text` once the units' own names are taken out."""
    bare = NAMES.sub("", text.replace(PRODUCT, ""))
    return [w for w in ("trưởng thôn", "Công an xã", "thôn") if re.search(rf"(?i)\b{w}\b", bare)]


async def texts_of_every_kind(engine, database_url, data: dict[str, Any]) -> dict[str, str]:
    """Sign a commune up from `data`, then collect the key messages: welcome, help, the confirm and the
    receipt of a report, /nhacnho's result and the nudge, /tonghop, /molai, the reminder and the digest."""
    world = sign_up_commune(engine, data)  # type: ignore[arg-type]
    clock = FixedClock(local(5, 15, 9))
    out: dict[str, str] = {}
    async with running_bot(engine, database_url, clock, world=world) as bot:
        with session_scope(engine) as s:
            code = create_invite(s, role="village_head", now=clock(), actor="t", village="Thôn Pác Cáp").code
        await bot.send(NEW_HEAD, f"/start {code}")
        out["welcome"] = bot.last_text(NEW_HEAD)
        await bot.send(AN, "/help")
        out["help"] = bot.last_text(AN)
        await bot.open_report(AN)
        await bot.answer_until(AN)
        out["confirm"] = bot.last_text(AN)
        await bot.press_token(AN, "confirm")
        out["receipt"] = "\n".join(bot.texts(AN)[-2:])
        await bot.send(CUONG, "/nhacnho")
        out["nudge_result"] = bot.last_text(CUONG)
        await bot.send(CUONG, "/tonghop")
        out["summary"] = "\n".join(bot.texts(CUONG)[-3:])
        await bot.send(CUONG, "/molai Khuoi")
        out["molai"] = bot.last_text(CUONG)
        await bot.send(CUONG, "/molai")
        out["molai_usage"] = bot.last_text(CUONG)
        await bot.send(CUONG, "/yeucau")
        out["request"] = bot.last_text(CUONG)
    with session_scope(engine) as s:
        reminders.plan(s, local(5, 20, 6, 30))
    with session_scope(engine) as s:
        rows = list(s.exec(select(Outbox).order_by(Outbox.id)))
        nudge = next(r for r in rows if r.kind == "nudge")
        out["nudge"] = render_outbox(s, nudge, local(5, 15, 9, 1)).text  # type: ignore[union-attr]
        digest = next(r for r in rows if r.kind == "digest")
        rendered = render_outbox(s, digest, local(5, 20, 6, 31))
        assert rendered is not None
        out["digest"] = rendered.text + "\n" + rendered.buttons[0][0][0]
        reminder = next(r for r in rows if r.kind == "reminder" and r.person_id == world.dung)
        out["reminder"] = render_outbox(s, reminder, reminder.due_at).text  # type: ignore[union-attr]
    return out


async def test_a_commune_of_to_dan_pho_hears_to_truong_and_to_dan_pho(engine, database_url) -> None:
    said = await texts_of_every_kind(engine, database_url, setup_data("to_dan_pho"))
    for name, text in said.items():
        assert [w for w in leaks(text) if w != "Công an xã"] == [], (name, text)
    assert "<b>tổ trưởng</b> của <b>Thôn Pác Cáp</b>" in said["welcome"]
    assert "• Tổ trưởng của Thôn Nà Làng" in said["help"]
    assert "Công an xã" in said["confirm"]  # the collector is still the commune police
    assert "tổ dân phố</b> còn nợ báo cáo" in said["nudge_result"]
    assert "Chưa có tổ trưởng đăng ký" in said["nudge_result"]
    assert "tổ dân phố đã nộp" in said["summary"]
    assert "Nhắc các tổ dân phố chưa nộp" in said["digest"] and "Chưa có tổ trưởng đăng ký" in said["digest"]
    assert "Công an xã nhắc" in said["nudge"]


async def test_a_provincial_office_names_its_departments_and_its_collector(engine, database_url) -> None:
    said = await texts_of_every_kind(engine, database_url, setup_data("phong_ban", OFFICE_COLLECTOR))
    for name, text in said.items():
        assert leaks(text) == [], (name, text)
    assert "<b>thủ trưởng đơn vị</b> của <b>Thôn Pác Cáp</b>" in said["welcome"]
    assert "• Thủ trưởng đơn vị của Thôn Nà Làng" in said["help"]
    assert (
        "Gửi báo cáo “Báo cáo 6 tháng" in said["confirm"]
        and f"cho {OFFICE_COLLECTOR} ngay" in said["confirm"]
    )
    assert "đơn vị</b> còn nợ báo cáo" in said["nudge_result"]
    assert "Chưa có thủ trưởng đơn vị đăng ký" in said["nudge_result"]
    assert "đơn vị đã nộp" in said["summary"]
    assert "Nhắc các phòng, ban chưa nộp" in said["digest"]
    assert f"{OFFICE_COLLECTOR} nhắc" in said["nudge"]
    assert "đơn vị" in said["molai_usage"]


async def test_a_thon_commune_reads_as_before(engine, database_url) -> None:
    said = await texts_of_every_kind(engine, database_url, setup_data(None))
    assert "<b>trưởng thôn</b> của <b>Thôn Pác Cáp</b>" in said["welcome"]
    assert "• Trưởng thôn của Thôn Nà Làng" in said["help"]
    assert "cho Công an xã ngay" in said["confirm"]
    assert (
        "thôn</b> còn nợ báo cáo" in said["nudge_result"]
        and "Chưa có trưởng thôn đăng ký" in said["nudge_result"]
    )
    assert "thôn đã nộp" in said["summary"]
    assert "📣 Nhắc các thôn chưa nộp" in said["digest"] and "Chưa có trưởng thôn đăng ký" in said["digest"]
    assert "<b>Công an xã nhắc</b>" in said["nudge"]


# --- the words themselves ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kinds", "unit", "units", "head", "count"),
    [
        (["thon"], "thôn", "thôn", "trưởng thôn", "6 thôn"),
        (["to_dan_pho"], "tổ dân phố", "tổ dân phố", "tổ trưởng", "6 tổ dân phố"),
        (["khu_dan_cu"], "khu dân cư", "khu dân cư", "trưởng khu", "6 khu dân cư"),
        (["co_quan"], "cơ quan", "cơ quan", "thủ trưởng cơ quan", "6 cơ quan"),
        (["truong_hoc"], "trường", "trường học", "hiệu trưởng", "6 trường"),
        (["phong_ban"], "đơn vị", "phòng, ban", "thủ trưởng đơn vị", "6 đơn vị"),
        # residential kinds together keep their names; any other mix is "đơn vị"
        (["to_dan_pho", "thon"], "thôn, tổ dân phố", "thôn, tổ dân phố", "trưởng thôn, tổ trưởng", None),
        (["thon", "co_quan", "truong_hoc"], "đơn vị", "đơn vị", "người đứng đầu đơn vị", "6 đơn vị"),
        ([], "thôn", "thôn", "trưởng thôn", "6 thôn"),
        (["no_such_kind"], "thôn", "thôn", "trưởng thôn", "6 thôn"),  # an unknown stored kind reads as thôn
    ],
)
def test_the_words_by_kind(kinds: list[str], unit: str, units: str, head: str, count: str | None) -> None:
    w = wording(kinds)
    assert (w.unit, w.units, w.head) == (unit, units, head)
    if count is not None:
        assert w.count(6) == count


def test_a_mixed_set_is_counted_by_kind() -> None:
    assert units_count(["thon", "to_dan_pho", "thon", "thon", "to_dan_pho"]) == "3 thôn, 2 tổ dân phố"
    assert units_count(["phong_ban"] * 6) == "6 đơn vị"
    assert units_count([]) == "0 thôn"


def test_documents_keep_thon_to_dan_pho_for_residential_units_only() -> None:
    assert wording(["thon"]).units_formal == "thôn, tổ dân phố"
    assert wording(["to_dan_pho", "khu_dan_cu"]).units_formal == "thôn, tổ dân phố"
    assert wording(["phong_ban"]).units_formal == "phòng, ban"


def test_the_collector_and_the_kind_reach_any_template() -> None:
    with speaking_for(wording(["to_dan_pho"], "Văn phòng")):
        assert render("report/no_village.html") == (
            "Tài khoản này chưa gắn với tổ dân phố nào đang hoạt động. Xin liên hệ Văn phòng."
        )
    assert render("report/no_village.html").endswith(
        "gắn với thôn nào đang hoạt động. Xin liên hệ Công an xã."
    )
    # an explicit `who` wins over the current one
    assert render("remind/nudge_toast.html", count=0, who=wording(["to_dan_pho"])) == (
        "Không có tổ dân phố nào được nhắc"
    )


def test_the_filters_name_one_unit_by_its_kind() -> None:
    text = (
        environment()
        .from_string("{{ k | unit_noun }} / {{ k | head_title | upper_first }}")
        .render(k="khu_dan_cu")
    )
    assert text == "khu dân cư / Trưởng khu"


# --- the setup file ---------------------------------------------------------------------------------


def read_collector(value: str) -> list[str]:
    text = textwrap.dedent(
        f"""\
        version: 1
        communes:
          - code: a
            name: Xã A
            report:
              collector: {value}
            villages:
              - name: Phòng A
                kind: phong_ban
        """
    )
    return [str(e) for e in loads_setup(text, "xa.yaml").errors]


def test_a_collector_is_read_and_stored(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, setup_data("phong_ban", OFFICE_COLLECTOR), now=local(4, 20))
    with session_scope(engine) as s:
        commune = s.exec(select(Commune)).one()
        assert commune.report == {"collector": OFFICE_COLLECTOR}
    assert read_collector('"Văn phòng"') == []
    changed = parse_setup(setup_data("phong_ban", "Văn phòng"), HIEP_LUC).setup
    assert changed is not None
    with session_scope(engine) as s:
        report = apply_setup(s, changed, now=local(4, 21), actor="test")
    assert "Xã Hiệp Lực: báo cáo Word do Công an xã ban hành; nơi tổng hợp: Văn phòng" in report.changes


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('"Văn\\u0000phòng"', "ký tự điều khiển"),
        ('"Văn\\u0007phòng"', "ký tự điều khiển"),
        ('"' + "Văn phòng " * 8 + '"', "tối đa 60"),
        ('""', "không được để trống"),
        ("[a, b]", "phải là chữ"),
    ],
)
def test_a_bad_collector_is_one_line(value: str, says: str) -> None:
    errors = read_collector(value)
    assert len(errors) == 1 and "\n" not in errors[0] and says in errors[0], errors


def test_an_unknown_kind_is_an_error() -> None:
    text = (
        "version: 1\ncommunes:\n  - code: a\n    name: Xã A\n    villages:\n      - {name: P, kind: phong}\n"
    )
    (error,) = loads_setup(text, "xa.yaml").errors
    assert "loại" in str(error) and "\n" not in str(error)


# --- the files: Word, Excel, the incidents sheet --------------------------------------------------------


def export_of(engine, data: dict[str, Any], fmt: str) -> bytes:
    """The 2026-6T export of bao-cao-6-thang of the commune set up from `data` (outside any update)."""
    with session_scope(engine) as s:
        apply_setup_file(s, data, now=local(4, 20))
    with session_scope(engine) as s:
        commune = s.exec(select(Commune)).one()
        period = s.exec(select(Period).where(Period.commune_id == commune.id, Period.code == "2026-6T")).one()
        return build_export(s, commune, get_form(s, "bao-cao-6-thang"), period, fmt, local(5, 25)).content


def test_an_office_s_word_report_and_excel_name_its_departments(engine) -> None:
    data = setup_data("phong_ban", OFFICE_COLLECTOR)
    document = docx.Document(io.BytesIO(export_of(engine, data, "docx")))
    cells = [c.text for t in document.tables for row in t.rows for c in row.cells]
    text = "\n".join([p.text for p in document.paragraphs] + cells)
    assert "I. TÌNH HÌNH NỘP BÁO CÁO CỦA CÁC PHÒNG, BAN" in text
    assert "Tổng số 14 phòng, ban; đã nộp 0" in text
    assert f"{OFFICE_COLLECTOR} xã Hiệp Lực tổng hợp báo cáo" in text
    assert "thôn, tổ dân phố" not in text.lower() and "Công an xã Hiệp Lực tổng hợp" not in text
    sheet = openpyxl.load_workbook(io.BytesIO(export_of(engine, data, "xlsx"))).worksheets[0]
    assert sheet.title == "Các phòng, ban" and [c.value for c in sheet[1]][:2] == ["STT", "Phòng, ban"]


def test_a_thon_commune_s_files_read_as_before(engine) -> None:
    document = docx.Document(io.BytesIO(export_of(engine, setup_data(None), "docx")))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "I. TÌNH HÌNH NỘP BÁO CÁO CỦA CÁC THÔN, TỔ DÂN PHỐ" in text
    assert "Công an xã Hiệp Lực tổng hợp báo cáo" in text


def test_the_incidents_sheet_names_the_collector() -> None:
    with speaking_for(wording(["phong_ban"], OFFICE_COLLECTOR)):
        columns = incident_words()["columns"]
    assert (columns["village"], columns["alert"]) == ("Phòng, ban", f"Báo {OFFICE_COLLECTOR}")
    assert incident_words()["columns"]["alert"] == "Báo Công an xã"


async def test_a_stranger_of_a_one_office_deployment_hears_its_collector(engine, database_url) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, setup_data("phong_ban", OFFICE_COLLECTOR), now=local(4, 20))
    stranger = FakeUser(2077, "Lạ")
    async with running_bot(engine, database_url, FixedClock(local(5, 15, 9))) as bot:
        await bot.send(stranger, "/start")
        assert f"cần có <b>mã mời</b> do {OFFICE_COLLECTOR} cấp" in bot.last_text(stranger)
        await bot.send(stranger, "/tonghop")
        assert f"Hãy xin {OFFICE_COLLECTOR} một <b>mã mời</b>" in bot.last_text(stranger)
        for text in bot.texts(stranger):
            assert leaks(text) == [], text


async def test_a_stranger_of_several_communes_hears_the_shipped_words(engine, database_url) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, setup_data("phong_ban", OFFICE_COLLECTOR), now=local(4, 20))
        s.add(Commune(code="xa-khac", name="Xã Khác", created_at=local(4, 20), updated_at=local(4, 20)))
    stranger = FakeUser(2078, "Lạ")
    async with running_bot(engine, database_url, FixedClock(local(5, 15, 9))) as bot:
        await bot.send(stranger, "/start")
        assert "cần có <b>mã mời</b> do Công an xã cấp" in bot.last_text(stranger)


def test_the_upward_reminder_and_a_request_notice_outside_an_update(engine) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, setup_data("phong_ban", OFFICE_COLLECTOR), now=local(4, 20))
    with session_scope(engine) as s:
        commune = s.exec(select(Commune)).one()
        period = s.exec(select(Period).where(Period.commune_id == commune.id, Period.code == "2026-6T")).one()
        period.upward_due_at = local(5, 30)
        text = upward_text(s, period, commune, local(5, 25), default_tz="Asia/Ho_Chi_Minh")
        notice, _ = request_notice(commune, ZoneInfo("Asia/Ho_Chi_Minh"))(period, "Báo cáo nhanh")
    assert "Các phòng, ban đã nộp: <b>0/14</b>" in text and leaks(text) == []
    assert f"<b>{OFFICE_COLLECTOR} yêu cầu báo cáo đột xuất</b>" in notice and leaks(notice) == []


def test_a_commune_of_thon_and_to_dan_pho_counts_them_together() -> None:
    context = {"one_village": False, "owing": 5, "period": "6 tháng đầu năm 2026", "commune": "Phường A"}
    empty = {key: [] for key in ("queued", "recent", "submitted", "closed", "no_head", "blocked")}
    with speaking_for(wording(["thon", "to_dan_pho"])):
        text = render("remind/nudge_result.html", **context, **{**empty, "no_head": ["Tổ 3"]})
    assert text.startswith("📋 <b>5 thôn, tổ dân phố</b> còn nợ báo cáo")
    assert "👤 Chưa có trưởng thôn, tổ trưởng đăng ký, không nhắc được: Tổ 3" in text
    with speaking_for(wording(["thon", "to_dan_pho", "truong_hoc"])):
        text = render("remind/nudge_result.html", **context, **{**empty, "no_head": ["Trường A"]})
    assert text.startswith("📋 <b>5 đơn vị</b> còn nợ") and "Chưa có người đứng đầu đơn vị đăng ký" in text
