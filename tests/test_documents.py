"""Document answers through the real Application: files sent as Telegram documents are refused or kept
(file id and metadata), survive a restart, reach the police view of a village (with a button that sends a
file again, for the report's commune only) and the exports (Excel/CSV cell, Word annex)."""

from __future__ import annotations

import contextlib
import csv
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pytest
import yaml
from sqlmodel import select

from bot.exports import build_export
from bot.exports.documents import ZIP_MAX_BYTES, ZipEntry, build_zip
from bot.forms.loader import load_form_file
from bot.services.forms import get_form
from bot.texts.templates import render
from bot.views.documents import zip_rows
from storage.db import session_scope
from storage.models import AuditLog, Commune, Period
from tests.support.client import BotClient, running_bot
from tests.support.telegram import FakeUser, RecordingRequest
from tests.support.world import HIEP_LUC, apply_setup_file

ROOT = Path(__file__).resolve().parent.parent
FORM_DIR = ROOT / "tests" / "forms"
AN = FakeUser(3001, "An", "Hoàng Văn")  # head of Thôn Nà Làng (Hiệp Lực)
CUONG = FakeUser(3003, "Cường", "Lý Văn")  # police of Hiệp Lực
YEN = FakeUser(3004, "Yến", "Ma Thị")  # police of Sơn Dương
MB = 1024 * 1024


def setup_data() -> dict[str, Any]:
    """Hiệp Lực with only the dossier form (open 1/5–19/5), and Sơn Dương with its own police."""
    data = yaml.safe_load(HIEP_LUC.read_text(encoding="utf-8"))
    commune = data["communes"][0]
    commune["forms"] = ["ho-so-dien-hinh.yaml"]
    commune["schedules"] = [
        {
            "form": "ho-so-dien-hinh",
            "main": True,
            "periods": [
                {"id": "{nam}-HS", "label": "Hồ sơ năm {nam}", "opens": "01/05", "due_before": "20/05"}
            ],
        }
    ]
    other = {
        "code": "son-duong",
        "name": "Xã Sơn Dương",
        "province": "Tuyên Quang",
        "villages": ["Thôn Đồng Tâm"],
        "forms": ["ho-so-dien-hinh.yaml"],
        "schedules": commune["schedules"],
    }
    data["communes"] = [commune, other]
    return data


@contextlib.asynccontextmanager
async def dossier_bot(engine, database_url, clock, *, fresh: bool = True) -> AsyncIterator[BotClient]:
    """The application with the dossier form; on `fresh` the head and both officers sign up."""
    if fresh:
        with session_scope(engine) as s:
            apply_setup_file(s, setup_data(), now=clock(), path=FORM_DIR / "setup.yaml")
    invites = (
        [
            (AN, {"role": "village_head", "village": "Thôn Nà Làng"}),
            (CUONG, {"role": "police", "commune": "hiep-luc"}),
            (YEN, {"role": "police", "commune": "son-duong"}),
        ]
        if fresh
        else []
    )
    first = 1 if fresh else 10_000  # updates already seen are dropped: the restarted bot gets new ones
    async with running_bot(
        engine, database_url, clock, request=RecordingRequest(), invites=invites, first_update_id=first
    ) as bot:
        yield bot


async def send_document(
    bot: BotClient, user: FakeUser, name: str, size: int, mime: str = "application/pdf", n: int = 1
) -> None:
    """The user sends a file as a document."""
    document = {
        "file_id": f"DOC-{n}",
        "file_unique_id": f"UDOC-{n}",
        "file_name": name,
        "mime_type": mime,
        "file_size": size,
    }
    await bot.send_raw(user, document=document)


async def to_the_files(bot: BotClient) -> None:
    """Open the report and answer up to the dossier question."""
    await bot.open_report(AN)
    await bot.press_token(AN, "y")  # registered as "điển hình"
    await bot.send(AN, "7")
    assert "Gửi hồ sơ" in bot.last_text(AN) or "hồ sơ đề nghị" in bot.last_text(AN)


def draft_files(bot: BotClient) -> list[dict[str, Any]]:
    return bot.draft_of("Thôn Nà Làng").state["answers"].get("ho_so_dien_hinh") or []


@pytest.fixture
async def bot(engine, database_url, clock):
    async with dossier_bot(engine, database_url, clock) as b:
        yield b


async def test_refused_files_keep_the_head_on_the_question(bot) -> None:
    await to_the_files(bot)
    await send_document(bot, AN, "virus.exe", 1000, "application/x-msdownload")
    text = bot.last_text(AN)
    assert "không nhận tệp “virus.exe”" in text and "PDF, DOCX, XLSX, JPG, PNG" in text and "20 MB" in text
    await send_document(bot, AN, "quet.pdf", 25 * MB)
    text = bot.last_text(AN)
    assert "quá mức 20 MB" in text and "25,0 MB" in text
    await bot.send(AN, "đã nộp giấy rồi")
    assert "cần tệp hồ sơ" in bot.last_text(AN)
    assert draft_files(bot) == []


async def test_files_are_kept_listed_and_survive_a_restart(engine, database_url, clock) -> None:
    async with dossier_bot(engine, database_url, clock) as bot:
        await to_the_files(bot)
        await send_document(bot, AN, "bao-cao-thanh-tich.pdf", 1_250_000)
        assert "bao-cao-thanh-tich.pdf (1,2 MB)" in bot.last_text(AN)
        assert "done" in bot.tokens(AN) and "clear" in bot.tokens(AN)
        await send_document(bot, AN, "bien-ban.docx", 40_000, "application/msword", n=2)
    async with dossier_bot(engine, database_url, clock, fresh=False) as bot:  # the bot restarted
        assert [f["name"] for f in draft_files(bot)] == ["bao-cao-thanh-tich.pdf", "bien-ban.docx"]
        assert draft_files(bot)[0] == {
            "file_id": "DOC-1",
            "file_unique_id": "UDOC-1",
            "name": "bao-cao-thanh-tich.pdf",
            "mime": "application/pdf",
            "size": 1_250_000,
        }
        await bot.send(AN, "/baocao")
        await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
        assert "bien-ban.docx" in bot.last_text(AN)
        await bot.press_token(AN, "done")
        review = bot.last_text(AN)
        assert "bao-cao-thanh-tich.pdf (1,2 MB); bien-ban.docx (39 KB)" in review
        await bot.press_token(AN, "submit")
        await bot.press_token(AN, "confirm")
        (sub,) = bot.submissions()
        assert [f["file_id"] for f in sub.answers["ho_so_dien_hinh"]] == ["DOC-1", "DOC-2"]


async def submitted(bot: BotClient) -> int:
    await to_the_files(bot)
    await send_document(bot, AN, "bao-cao-thanh-tich.pdf", 1_250_000)
    await send_document(bot, AN, "anh-hop-thon.jpg", 300_000, "image/jpeg", n=2)
    await bot.press_token(AN, "done")
    await bot.press_token(AN, "submit")
    await bot.press_token(AN, "confirm")
    (sub,) = bot.submissions()
    return sub.id


async def test_police_see_the_files_and_get_one_again(bot) -> None:
    sub_id = await submitted(bot)
    period, village = bot.period_id(code="2026-HS", form="ho-so-dien-hinh"), bot.village_id("Thôn Nà Làng")
    await bot.press(CUONG, f"sm:s:{period}:{village}")
    said = "\n".join(bot.said(CUONG))
    assert "Hồ sơ điển hình: <b>📎 bao-cao-thanh-tich.pdf (1,2 MB); anh-hop-thon.jpg (293 KB)</b>" in said
    assert "Hồ sơ kèm theo" in said and "2 tệp" in said
    buttons = dict(bot.buttons(CUONG))
    assert buttons["📄 1. bao-cao-thanh-tich.pdf"] == f"hs:f:{sub_id}:0"
    await bot.press(CUONG, f"hs:f:{sub_id}:1")
    (sent,) = [c for c in bot.request.calls if c.method == "sendDocument"]
    assert int(sent.params["chat_id"]) == CUONG.id and sent.params["document"] == "DOC-2"
    assert "anh-hop-thon.jpg" in sent.params["caption"] and "Thôn Nà Làng" in sent.params["caption"]
    with session_scope(bot.engine) as s:
        (row,) = s.exec(select(AuditLog).where(AuditLog.action == "document.sent")).all()
        assert row.entity_id == str(sub_id) and row.actor == f"telegram:{CUONG.id}"


async def test_police_of_another_commune_and_heads_get_no_file(bot) -> None:
    sub_id = await submitted(bot)
    await bot.press(YEN, f"hs:f:{sub_id}:0")
    assert "xã đồng chí không phụ trách" in bot.last_text(YEN)
    await bot.press(YEN, f"hs:l:{sub_id}:0")
    assert "xã đồng chí không phụ trách" in bot.last_text(YEN)
    await bot.press(AN, f"hs:f:{sub_id}:0")
    assert not [c for c in bot.request.calls if c.method == "sendDocument"]
    refused = bot.audit("auth.refused")
    assert any(r.actor == f"telegram:{YEN.id}" and r.entity_id == "callback:hs" for r in refused)
    assert any(r.actor == f"telegram:{AN.id}" for r in refused)
    assert "bao-cao-thanh-tich" not in "\n".join(bot.texts(YEN) + bot.texts(AN)[-1:])


@pytest.mark.parametrize(
    "data", ["hs:f:999999:0", "hs:f:{sub}:7", "hs:x:{sub}:0", "hs:f:abc:0", "hs:f:{sub}"]
)
async def test_bad_or_stale_file_buttons(bot, data: str) -> None:
    sub_id = await submitted(bot)
    await bot.press(CUONG, data.format(sub=sub_id))
    assert bot.answers()[-1] == render("common/stale_button.html")
    assert not [c for c in bot.request.calls if c.method == "sendDocument"]


async def test_exports_name_the_files(bot) -> None:
    await submitted(bot)
    with session_scope(bot.engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
        period = s.get(Period, bot.period_id(code="2026-HS", form="ho-so-dien-hinh"))
        form = get_form(s, "ho-so-dien-hinh")
        now = bot.clock()
        xlsx = build_export(s, commune, form, period, "xlsx", now).content
        text = build_export(s, commune, form, period, "csv", now).content.decode("utf-8-sig")
        word = build_export(s, commune, form, period, "docx", now).content
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).worksheets[0]
    cells = [str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None]
    assert "bao-cao-thanh-tich.pdf; anh-hop-thon.jpg" in cells
    rows = list(csv.reader(io.StringIO(text)))
    assert any(cell == "bao-cao-thanh-tich.pdf; anh-hop-thon.jpg" for row in rows for cell in row), rows[:3]
    document = docx.Document(io.BytesIO(word))
    paragraphs = [p.text for p in document.paragraphs]
    assert "PHỤ LỤC: HỒ SƠ KÈM THEO" in paragraphs
    assert not [
        p for p in paragraphs if "Xin đồng chí" in p or "gửi hồ sơ đề nghị" in p
    ]  # no question quoted
    annex = document.tables[-1]
    table = [[c.text for c in row.cells] for row in annex.rows]
    assert table[0] == ["STT", "Đơn vị", "Tên tệp", "Nội dung", "Dung lượng"]
    assert table[1:] == [
        ["1", "Thôn Nà Làng", "bao-cao-thanh-tich.pdf", "Hồ sơ điển hình", "1,2 MB"],
        ["2", "Thôn Nà Làng", "anh-hop-thon.jpg", "Hồ sơ điển hình", "293 KB"],
    ]


async def test_a_report_without_files_has_no_annex(bot) -> None:
    await bot.open_report(AN)
    await bot.press_token(AN, "n")  # not registered: the files are not asked
    await bot.press_token(AN, "submit")
    await bot.press_token(AN, "confirm")
    with session_scope(bot.engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
        word = build_export(
            s,
            commune,
            get_form(s, "ho-so-dien-hinh"),
            s.get(Period, bot.period_id(code="2026-HS", form="ho-so-dien-hinh")),
            "docx",
            bot.clock(),
        ).content
    assert "PHỤ LỤC: HỒ SƠ KÈM THEO" not in [p.text for p in docx.Document(io.BytesIO(word)).paragraphs]


async def test_xuat_offers_the_files_as_a_zip_to_the_communes_police_only(bot) -> None:
    await submitted(bot)
    period = bot.period_id(code="2026-HS", form="ho-so-dien-hinh")
    await bot.send(CUONG, "/xuat")
    buttons = dict(bot.buttons(CUONG))
    assert buttons["🗂 Hồ sơ (zip)"] == f"hz:{period}"
    await bot.press(YEN, f"hz:{period}")
    assert "xã đồng chí không phụ trách" in bot.last_text(YEN)
    assert not any(r.action == "document.zip" for r in bot.audit())
    for bogus in ("hz:999999", "hz:abc", f"hz:{period}:1"):
        await bot.press(CUONG, bogus)
        assert bot.answers()[-1] == render("common/stale_button.html")
    await bot.press(CUONG, f"hz:{period}")
    said = "\n".join(bot.said(CUONG))
    assert "Đang tải 2 tệp hồ sơ" in said
    # the recording Bot API has no files to give: the officer is told, nothing half-made is sent
    assert "Không tải được tệp hồ sơ nào" in said
    assert [r.entity_id for r in bot.audit("document.zip")] == [str(period)]


async def test_nothing_to_zip_yet(bot) -> None:
    period = bot.period_id(code="2026-HS", form="ho-so-dien-hinh")
    await bot.press(CUONG, f"hz:{period}")
    assert "chưa có thôn nào gửi tệp" in bot.last_text(CUONG)


def test_no_zip_button_for_a_form_without_files() -> None:
    result = load_form_file(ROOT / "deploy" / "forms" / "bao-cao-nam.yaml")
    assert result.ok and zip_rows(result.forms[0], 1) == ()


async def test_build_zip_names_files_by_unit_and_leaves_out_what_fails() -> None:
    entries = [
        ZipEntry("Thôn Nà Làng/01. a.pdf", "A", 3),
        ZipEntry("Thôn Nà Làng/02. b.pdf", "GONE", 3),
        ZipEntry("Thôn Bản Duồm/01. lon.pdf", "BIG", ZIP_MAX_BYTES),
        ZipEntry("Thôn Bản Duồm/02. c.jpg", "C", None),
    ]

    async def fetch(file_id: str) -> bytes:
        if file_id == "GONE":
            raise RuntimeError("file not found")
        return file_id.encode() * 3

    result = await build_zip(entries, fetch)
    archive = zipfile.ZipFile(io.BytesIO(result.content))
    assert archive.namelist() == ["Thôn Nà Làng/01. a.pdf", "Thôn Bản Duồm/02. c.jpg"]
    assert archive.read("Thôn Nà Làng/01. a.pdf") == b"AAA" and result.included == 2
    assert result.missing == ["Thôn Nà Làng/02. b.pdf", "Thôn Bản Duồm/01. lon.pdf"]
