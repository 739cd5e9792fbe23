"""/xuat in process: police get the file (sendDocument with the Vietnamese name); everyone else gets nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import docx
import openpyxl
import pytest
from sqlmodel import select

import bot.handlers.export  # noqa: F401  (registers /xuat before the application is built)
from bot.clock import FixedClock
from bot.services.accounts import create_invite
from storage.db import session_scope
from storage.models import AuditLog, Commune, Period, Submission, Village
from tests.support.client import BotClient, running_bot
from tests.support.telegram import DocumentRecorder, FakeUser
from tests.test_exports import seed_reports

NOW = datetime(2026, 5, 21, 3, 0, tzinfo=UTC)  # after the 2026-6T deadline
POLICE = FakeUser(3001, "Cường", "Lý Văn")
HEAD = FakeUser(3002, "An", "Hoàng Văn")  # head of Thôn Nà Làng
STRANGER = FakeUser(3003, "Lạ")
OTHER_POLICE = FakeUser(3004, "Dũng", "Ma Văn")  # police of Xã Sơn Dương
SUPERVISOR = FakeUser(3005, "Hải", "Nông Văn")  # Thái Nguyên province
OTHER_SUPERVISOR = FakeUser(3006, "Hà", "Lục Thị")  # another province
XLSX_NAME = "Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.xlsx"


@pytest.fixture
async def chat(engine, database_url):
    clock = FixedClock(NOW)
    with session_scope(engine) as s:
        seed_reports(s)
        s.add(
            Commune(
                code="son-duong", name="Xã Sơn Dương", province="Tuyên Quang", created_at=NOW, updated_at=NOW
            )
        )
    codes = {}
    with session_scope(engine) as s:
        codes[POLICE.id] = create_invite(s, role="police", commune="hiep-luc", now=NOW, actor="t").code
        codes[OTHER_POLICE.id] = create_invite(s, role="police", commune="son-duong", now=NOW, actor="t").code
        codes[HEAD.id] = create_invite(
            s, role="village_head", village="Thôn Nà Làng", now=NOW, actor="t"
        ).code
        codes[SUPERVISOR.id] = create_invite(
            s, role="supervisor", province="Thái Nguyên", now=NOW, actor="t"
        ).code
        codes[OTHER_SUPERVISOR.id] = create_invite(
            s, role="supervisor", province="Tuyên Quang", now=NOW, actor="t"
        ).code
    async with running_bot(engine, database_url, clock, request=DocumentRecorder()) as client:
        for user in (POLICE, OTHER_POLICE, HEAD, SUPERVISOR, OTHER_SUPERVISOR):
            await client.send(user, f"/start {codes[user.id]}")
        yield client


def _period_id(engine, code: str = "2026-6T", commune: str = "hiep-luc") -> int:
    with session_scope(engine) as s:
        return s.exec(
            select(Period.id)
            .join(Commune, Commune.id == Period.commune_id)
            .where(Period.code == code, Period.form_id == "bao-cao-6-thang", Commune.code == commune)
        ).one()


async def test_police_pick_a_format_and_get_the_file(chat: BotClient, engine) -> None:
    await chat.send(POLICE, "/xuat")
    offer = chat.last_text(POLICE)
    assert "6 tháng đầu năm 2026" in offer and "Đã nộp: 11/14" in offer
    pid = _period_id(engine)
    keyboard = chat.last_keyboard(POLICE)[1]
    assert keyboard[:5] == [f"xe:{pid}:xlsx", f"xe:{pid}:docx", f"xe:{pid}:csv", f"xn:{pid}", "in:x"]
    assert len(keyboard) <= 12 and all(d.startswith("xp:") for d in keyboard[5:])  # other periods
    assert chat.request.documents() == []
    await chat.press(POLICE, f"xe:{pid}:xlsx")
    ((filename, content, params),) = chat.request.documents(POLICE.id)
    assert filename == XLSX_NAME and "Xã Hiệp Lực" in params["caption"]
    ws = openpyxl.load_workbook(io.BytesIO(content))["Các thôn"]
    assert ws.max_row == 16 and ws.cell(16, 2).value == "Tổng cộng"
    with session_scope(engine) as s:
        (row,) = s.exec(select(AuditLog).where(AuditLog.action == "export")).all()
        assert row.detail["format"] == "xlsx" and row.entity_id == str(pid)


async def test_arguments_choose_the_period_form_and_format(chat: BotClient) -> None:
    await chat.send(POLICE, "/xuat 2026-6T word")
    await chat.send(POLICE, "/export bao-cao-nam 2025-CN csv")
    await chat.send(POLICE, "/xuat 2025-6T excel")
    names = [name for name, _, _ in chat.request.documents(POLICE.id)]
    assert names == [
        "Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.docx",
        "Báo cáo năm — Xã Hiệp Lực — 2025-CN.csv",
        "Báo cáo 6 tháng — Xã Hiệp Lực — 2025-6T.xlsx",
    ]
    word = docx.Document(io.BytesIO(chat.request.documents(POLICE.id)[0][1]))
    assert word.paragraphs[0].text == "BÁO CÁO"
    await chat.send(POLICE, "/xuat bao-cao-nam")
    assert "Năm 2025" in chat.last_text(POLICE)


async def test_wrong_ids_list_the_valid_ones(chat: BotClient) -> None:
    await chat.send(POLICE, "/xuat 2099-6T")
    text = chat.last_text(POLICE)
    assert "Không có kỳ “2099-6T”" in text and "2026-6T" in text and "2025-6T" in text
    await chat.send(POLICE, "/xuat khong-co 2026-6T")
    text = chat.last_text(POLICE)
    assert "Không có biểu mẫu “khong-co”" in text and "bao-cao-6-thang" in text and "bao-cao-nam" in text
    await chat.send(POLICE, "/xuat a b c d")
    assert "quá nhiều" in chat.last_text(POLICE)
    assert chat.request.documents() == []


@pytest.mark.parametrize("user", [HEAD, STRANGER], ids=["village_head", "stranger"])
async def test_others_are_refused_and_get_no_file(chat: BotClient, engine, user: FakeUser) -> None:
    await chat.send(user, "/xuat 2026-6T excel")
    assert "Công an xã" in chat.last_text(user) or "mã mời" in chat.last_text(user)
    await chat.press(user, f"xe:{_period_id(engine)}:xlsx")
    assert chat.request.documents() == []
    with session_scope(engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "auth.refused")).all()


async def test_another_communes_police_cannot_export_hiep_luc(chat: BotClient, engine) -> None:
    await chat.send(OTHER_POLICE, "/xuat")
    assert "chưa có biểu mẫu" in chat.last_text(OTHER_POLICE)  # their own commune has no forms yet
    await chat.send(OTHER_POLICE, "/xuat hiep-luc 2026-6T excel")
    assert chat.request.documents() == []
    await chat.press(OTHER_POLICE, f"xe:{_period_id(engine)}:xlsx")  # a forged button
    assert chat.request.documents() == []
    assert "không có quyền" in chat.last_text(OTHER_POLICE)
    with session_scope(engine) as s:
        refused = s.exec(select(AuditLog).where(AuditLog.action == "export.refused")).all()
        assert [r.entity_id for r in refused] == [f"xe:{_period_id(engine)}:xlsx"]


@pytest.mark.parametrize(
    "data",
    ["xe:999999:xlsx", "xe:{pid}:exe", "xe:{pid}", "xe:abc:xlsx", "xe:{pid}:xlsx:1", "xe:{future}:xlsx"],
)
async def test_forged_callbacks_are_refused(chat: BotClient, engine, data: str) -> None:
    forged = data.format(pid=_period_id(engine), future=_period_id(engine, "2027-6T"))
    await chat.press(POLICE, forged)
    assert chat.request.documents() == []


async def test_supervisors_export_their_provinces_communes_only(chat: BotClient, engine) -> None:
    await chat.send(SUPERVISOR, "/xuat")  # one commune in Thái Nguyên: offered at once
    pid = _period_id(engine)
    assert f"xe:{pid}:docx" in chat.last_keyboard(SUPERVISOR)[1]
    await chat.press(SUPERVISOR, f"xe:{pid}:docx")
    ((filename, _, _),) = chat.request.documents(SUPERVISOR.id)
    assert filename == "Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.docx"
    await chat.press(OTHER_SUPERVISOR, f"xe:{pid}:docx")
    with session_scope(engine) as s:
        hiep_luc = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
    await chat.press(OTHER_SUPERVISOR, f"xc:{hiep_luc.id}")
    assert chat.request.documents(OTHER_SUPERVISOR.id) == []


async def test_supervisor_with_several_communes_picks_one(chat: BotClient, engine) -> None:
    with session_scope(engine) as s:
        s.add(
            Commune(
                code="phu-thinh", name="Xã Phú Thịnh", province="Thái Nguyên", created_at=NOW, updated_at=NOW
            )
        )
    await chat.send(SUPERVISOR, "/xuat")
    with session_scope(engine) as s:
        ids = {c.code: c.id for c in s.exec(select(Commune))}
    assert chat.last_keyboard(SUPERVISOR)[1] == ["xr:p0", f"xc:{ids['hiep-luc']}", f"xc:{ids['phu-thinh']}"]
    await chat.press(SUPERVISOR, f"xc:{ids['hiep-luc']}")
    assert f"xe:{_period_id(engine)}:xlsx" in chat.last_keyboard(SUPERVISOR)[1]
    await chat.send(SUPERVISOR, "/xuat hiep-luc 2026-6T csv")
    ((filename, content, _),) = chat.request.documents(SUPERVISOR.id)
    assert filename.endswith(".csv") and content.startswith(b"\xef\xbb\xbf")
    await chat.send(SUPERVISOR, "/xuat son-duong")
    assert "Không tìm thấy xã “son-duong”" in chat.last_text(SUPERVISOR)


async def test_xuat_offers_the_incidents_as_excel_too(chat: BotClient) -> None:
    """/xuat exports the incidents as well ("🚨 Báo cáo đột xuất (Excel)", the file of /suco's list)."""
    await chat.send(POLICE, "/xuat")
    assert "in:x" in chat.last_keyboard(POLICE)[1]
    await chat.press(POLICE, "in:x")  # none yet: said, no empty file
    assert "Chưa có sự việc đột xuất nào" in chat.last_text(POLICE)
    assert chat.request.documents(POLICE.id) == []
    with session_scope(chat.engine) as s:
        vid = s.exec(select(Village.id).where(Village.name == "Thôn Nà Làng")).one()
        s.add(
            Submission(
                village_id=vid,
                form_id="su-co",
                period_id=None,
                form_version=2,
                version_no=1,
                answers={"loai_su_co": "co_bac", "muc_do": "trong_ngay", "mo_ta": "Đánh bạc ở bãi sông"},
                sent_at=NOW,
                received_at=NOW,
                on_time=True,
                receipt="BC-XUAT01",
            )
        )
    await chat.press(POLICE, "in:x")
    ((filename, content, _params),) = chat.request.documents(POLICE.id)
    assert filename.endswith(".xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    assert any("BC-XUAT01" in [str(v) for v in row] for row in rows)
    await chat.press(HEAD, "in:x")  # a village head pressing the same data gets no file
    assert [name for name, _, _ in chat.request.documents(HEAD.id)] == []


# ---------------------------------------------------------------------------------------------- roll-up


async def test_a_supervisor_gets_the_province_rollup(chat: BotClient, engine) -> None:
    await chat.send(SUPERVISOR, "/xuat tinh")
    offer = chat.last_text(SUPERVISOR)
    assert "Báo cáo tổng hợp của Thái Nguyên" in offer and "1 xã, phường" in offer
    pid = _period_id(engine)
    assert chat.last_keyboard(SUPERVISOR)[1] == [f"xr:{pid}:xlsx", f"xr:{pid}:docx", f"xr:{pid}:csv"]
    await chat.press(SUPERVISOR, f"xr:{pid}:xlsx")
    ((filename, content, params),) = chat.request.documents(SUPERVISOR.id)
    assert filename == "Tổng hợp Báo cáo 6 tháng — Thái Nguyên — 2026-6T.xlsx"
    assert "Thái Nguyên" in params["caption"]
    ws = openpyxl.load_workbook(io.BytesIO(content))["Các xã"]
    assert ws.cell(2, 2).value == "Xã Hiệp Lực" and ws.cell(2, 3).value == 14 and ws.cell(2, 4).value == 11
    await chat.send(SUPERVISOR, "/xuat tinh 2025-6T word")
    names = [name for name, _, _ in chat.request.documents(SUPERVISOR.id)]
    assert names[-1] == "Tổng hợp Báo cáo 6 tháng — Thái Nguyên — 2025-6T.docx"
    with session_scope(engine) as s:
        rows = s.exec(select(AuditLog).where(AuditLog.action == "export.province")).all()
        assert [r.detail["format"] for r in rows] == ["xlsx", "docx"]


async def test_the_rollup_is_refused_to_commune_police_and_heads(chat: BotClient, engine) -> None:
    pid = _period_id(engine)
    await chat.send(POLICE, "/xuat tinh excel")
    assert "chỉ dành cho đồng chí theo dõi các xã của tỉnh" in chat.last_text(POLICE)
    await chat.press(POLICE, f"xr:{pid}:xlsx")  # a forged button
    assert "không có quyền" in chat.last_text(POLICE)
    await chat.press(POLICE, "xr:p0")
    await chat.send(HEAD, "/xuat tinh excel")
    await chat.press(HEAD, f"xr:{pid}:xlsx")
    await chat.press(OTHER_SUPERVISOR, f"xr:{pid}:docx")  # Hiệp Lực is not in Tuyên Quang
    assert chat.request.documents() == []
    with session_scope(engine) as s:
        refused = s.exec(select(AuditLog).where(AuditLog.action == "export.refused")).all()
        assert {r.entity_id for r in refused} >= {f"xr:{pid}:xlsx", "xr:p0", f"xr:{pid}:docx"}


async def test_rollup_bad_input_is_answered_in_vietnamese(chat: BotClient, engine) -> None:
    await chat.send(OTHER_SUPERVISOR, "/xuat tinh")  # Tuyên Quang: a commune without forms
    assert "chưa có biểu mẫu báo cáo định kỳ" in chat.last_text(OTHER_SUPERVISOR)
    await chat.send(SUPERVISOR, "/xuat tinh 2099-6T excel")
    assert "Không có kỳ “2099-6T”" in chat.last_text(SUPERVISOR)
    await chat.send(SUPERVISOR, "/xuat tinh a b c")
    assert "quá nhiều" in chat.last_text(SUPERVISOR)
    for forged in ("xr:999999:xlsx", "xr:abc", "xr:p9", f"xr:{_period_id(engine)}:exe"):
        await chat.press(SUPERVISOR, forged)
    assert chat.request.documents() == []
