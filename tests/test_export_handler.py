"""/xuat in process: police get the file (sendDocument with the Vietnamese name); everyone else gets nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import docx
import openpyxl
import pytest
from sqlmodel import select

import bot.handlers.export  # noqa: F401  (registers /xuat before the application is built)
from bot.app import build_application
from bot.clock import FixedClock
from bot.config import settings_from
from bot.deps import Deps
from bot.services.accounts import create_invite
from storage.db import session_scope
from storage.models import AuditLog, Commune, Period
from tests.support.telegram import TOKEN, FakeUser, Harness, RecordingRequest
from tests.test_exports import seed_reports

NOW = datetime(2026, 5, 21, 3, 0, tzinfo=UTC)  # after the 2026-6T deadline
POLICE = FakeUser(3001, "Cường", "Lý Văn")
HEAD = FakeUser(3002, "An", "Hoàng Văn")  # head of Thôn Nà Làng
STRANGER = FakeUser(3003, "Lạ")
OTHER_POLICE = FakeUser(3004, "Dũng", "Ma Văn")  # police of Xã Sơn Dương
SUPERVISOR = FakeUser(3005, "Hải", "Nông Văn")  # Thái Nguyên province
OTHER_SUPERVISOR = FakeUser(3006, "Hà", "Lục Thị")  # another province
XLSX_NAME = "Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.xlsx"


class DocumentRecorder(RecordingRequest):
    """Also keeps the uploaded files (multipart parts) of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    async def do_request(self, url: str, method: str, request_data: Any = None, **kwargs: Any):
        """Record the upload, then answer as the base class does."""
        if request_data is not None and request_data.multipart_data:
            params = dict(request_data.json_parameters)
            self.files.append((url.rsplit("/", 1)[-1], params, dict(request_data.multipart_data)))
        return await super().do_request(url, method, request_data, **kwargs)

    def documents(self, chat_id: int | None = None) -> list[tuple[str, bytes, dict[str, Any]]]:
        """(file name, bytes, params) of every sendDocument, optionally to one chat."""
        out = []
        for method, params, parts in self.files:
            if method != "sendDocument" or (chat_id is not None and int(params["chat_id"]) != chat_id):
                continue
            filename, content, _mime = parts["document"]
            out.append((filename, content.read() if hasattr(content, "read") else content, params))
        return out


class Chat:
    """The harness with the recorder's helpers."""

    def __init__(self, harness: Harness, request: DocumentRecorder) -> None:
        self.h, self.request = harness, request

    async def send(self, user: FakeUser, text: str) -> None:
        await self.h.send(user, text)

    async def press(self, user: FakeUser, data: str) -> None:
        await self.h.press(user, data)

    def last_text(self, user: FakeUser) -> str:
        return self.request.texts(user.id)[-1]

    def buttons(self, user: FakeUser) -> list[str]:
        for call in reversed(self.request.sent(user.id)):
            markup = call.params.get("reply_markup")
            if markup and markup.get("inline_keyboard"):
                return [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
        raise AssertionError(f"no buttons for {user.first_name}")


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
    settings = settings_from({"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url})
    request = DocumentRecorder()
    app = build_application(settings, deps=Deps(engine, clock, settings), request=request)
    async with app:
        harness = Harness(app, request)
        for user in (POLICE, OTHER_POLICE, HEAD, SUPERVISOR, OTHER_SUPERVISOR):
            await harness.send(user, f"/start {codes[user.id]}")
        yield Chat(harness, request)


def _period_id(engine, code: str = "2026-6T", commune: str = "hiep-luc") -> int:
    with session_scope(engine) as s:
        return s.exec(
            select(Period.id)
            .join(Commune, Commune.id == Period.commune_id)
            .where(Period.code == code, Period.form_id == "bao-cao-6-thang", Commune.code == commune)
        ).one()


async def test_police_pick_a_format_and_get_the_file(chat: Chat, engine) -> None:
    await chat.send(POLICE, "/xuat")
    offer = chat.last_text(POLICE)
    assert "6 tháng đầu năm 2026" in offer and "Đã nộp: 11/14" in offer
    pid = _period_id(engine)
    assert chat.buttons(POLICE) == [f"xe:{pid}:xlsx", f"xe:{pid}:docx", f"xe:{pid}:csv"]
    assert chat.request.documents() == []
    await chat.press(POLICE, f"xe:{pid}:xlsx")
    ((filename, content, params),) = chat.request.documents(POLICE.id)
    assert filename == XLSX_NAME and "Xã Hiệp Lực" in params["caption"]
    ws = openpyxl.load_workbook(io.BytesIO(content))["Các thôn"]
    assert ws.max_row == 16 and ws.cell(16, 2).value == "Tổng cộng"
    with session_scope(engine) as s:
        (row,) = s.exec(select(AuditLog).where(AuditLog.action == "export")).all()
        assert row.detail["format"] == "xlsx" and row.entity_id == str(pid)


async def test_arguments_choose_the_period_form_and_format(chat: Chat) -> None:
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


async def test_wrong_ids_list_the_valid_ones(chat: Chat) -> None:
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
async def test_others_are_refused_and_get_no_file(chat: Chat, engine, user: FakeUser) -> None:
    await chat.send(user, "/xuat 2026-6T excel")
    assert "Công an xã" in chat.last_text(user) or "mã mời" in chat.last_text(user)
    await chat.press(user, f"xe:{_period_id(engine)}:xlsx")
    assert chat.request.documents() == []
    with session_scope(engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "auth.refused")).all()


async def test_another_communes_police_cannot_export_hiep_luc(chat: Chat, engine) -> None:
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
async def test_forged_callbacks_are_refused(chat: Chat, engine, data: str) -> None:
    forged = data.format(pid=_period_id(engine), future=_period_id(engine, "2027-6T"))
    await chat.press(POLICE, forged)
    assert chat.request.documents() == []


async def test_supervisors_export_their_provinces_communes_only(chat: Chat, engine) -> None:
    await chat.send(SUPERVISOR, "/xuat")  # one commune in Thái Nguyên: offered at once
    pid = _period_id(engine)
    assert f"xe:{pid}:docx" in chat.buttons(SUPERVISOR)
    await chat.press(SUPERVISOR, f"xe:{pid}:docx")
    ((filename, _, _),) = chat.request.documents(SUPERVISOR.id)
    assert filename == "Báo cáo 6 tháng — Xã Hiệp Lực — 2026-6T.docx"
    await chat.press(OTHER_SUPERVISOR, f"xe:{pid}:docx")
    with session_scope(engine) as s:
        hiep_luc = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
    await chat.press(OTHER_SUPERVISOR, f"xc:{hiep_luc.id}")
    assert chat.request.documents(OTHER_SUPERVISOR.id) == []


async def test_supervisor_with_several_communes_picks_one(chat: Chat, engine) -> None:
    with session_scope(engine) as s:
        s.add(
            Commune(
                code="phu-thinh", name="Xã Phú Thịnh", province="Thái Nguyên", created_at=NOW, updated_at=NOW
            )
        )
    await chat.send(SUPERVISOR, "/xuat")
    with session_scope(engine) as s:
        ids = {c.code: c.id for c in s.exec(select(Commune))}
    assert chat.buttons(SUPERVISOR) == [f"xc:{ids['hiep-luc']}", f"xc:{ids['phu-thinh']}"]
    await chat.press(SUPERVISOR, f"xc:{ids['hiep-luc']}")
    assert f"xe:{_period_id(engine)}:xlsx" in chat.buttons(SUPERVISOR)
    await chat.send(SUPERVISOR, "/xuat hiep-luc 2026-6T csv")
    ((filename, content, _),) = chat.request.documents(SUPERVISOR.id)
    assert filename.endswith(".csv") and content.startswith(b"\xef\xbb\xbf")
    await chat.send(SUPERVISOR, "/xuat son-duong")
    assert "Không tìm thấy xã “son-duong”" in chat.last_text(SUPERVISOR)
