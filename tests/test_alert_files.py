"""An incident's files reach the police: the files of a `document` question go into the alert as "document"
steps (Telegram file id, HTML caption ≤ 1024) after the text and photos; the dispatcher sends them to every
police chat, skips a file Telegram refuses (logged, the rest of the alert still arrives; a refused last step
is skipped too and the alert counts as delivered; nothing is retried); strangers' files file nothing."""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select
from telegram import Bot
from telegram.constants import ParseMode

from bot.delivery.dispatcher import dispatch_due
from bot.delivery.outbox import (
    CAPTION_MAX,
    KIND_ALERT,
    SendStep,
    Stored,
    message_steps,
    render_stored,
    stored_steps,
)
from bot.delivery.ratelimit import ManualTime, RateLimiter
from bot.delivery.telegram_send import send_part
from bot.emulator.server import EmulatorServer
from bot.forms.loader import load_form_file
from bot.reminders.content import render_outbox
from bot.services.incidents import alert_files, answer_lines, file_caption
from bot.services.outbox_messages import queue_message
from storage.db import session_scope
from storage.models import Outbox, OutboxStatus, Village
from tests.conftest import FIXED_NOW
from tests.support.client import BotClient, running_bot
from tests.support.telegram import FakeUser, RecordingRequest
from tests.support.world import HIEP_LUC, POLICE_CHAT, apply_setup_file
from tests.test_dispatch import TOKEN

ROOT = Path(__file__).resolve().parent.parent
FORM = ROOT / "tests" / "forms" / "su-co-kem-tep.yaml"
SECOND_CHAT = -1009876543210  # a second police chat of Hiệp Lực
AN = FakeUser(3101, "An", "Hoàng Văn")  # head of Thôn Nà Làng
STRANGER = FakeUser(3109, "Lạ")
CUONG = FakeUser(3103, "Cường", "Lý Văn")  # police of Hiệp Lực
PDF = {
    "file_id": "DOC-1",
    "file_unique_id": "U1",
    "name": "bien-ban.pdf",
    "mime": "application/pdf",
    "size": 1_250_000,
}
JPG = {"file_id": "DOC-2", "file_unique_id": "U2", "name": "anh.jpg", "mime": "image/jpeg", "size": None}


def form():
    """The test incident form with a document question."""
    (loaded,) = load_form_file(FORM).forms
    return loaded


# ------------------------------------------------------------------------------------------ the steps


def test_stored_steps_put_the_files_after_the_text_and_photos_and_before_the_pins() -> None:
    steps = stored_steps(
        "<b>Tin</b>",
        photos=[("ảnh", "PHOTO-1")],
        pins=[("📍 Vị trí", (21.6, 105.8))],
        documents=[("📎 a.pdf", "DOC-1"), ("x" * 2000, "DOC-2")],
    )
    assert steps == [
        {"text": "<b>Tin</b>"},
        {"photo_id": "PHOTO-1", "text": "ảnh"},
        {"document_id": "DOC-1", "text": "📎 a.pdf"},
        {"document_id": "DOC-2", "text": "x" * CAPTION_MAX},  # cut to Telegram's caption limit
        {"text": "📍 Vị trí"},
        {"location": [21.6, 105.8]},
    ]
    assert stored_steps("t") == [{"text": "t"}]  # no file: no step


def test_a_stored_file_step_reads_back_as_an_optional_document_step() -> None:
    row = Outbox(
        key="k", kind=KIND_ALERT, chat_id=1, payload={"steps": stored_steps("Tin", documents=[("c", "D")])}
    )
    stored = render_stored(row)
    assert stored is not None
    text, file = message_steps(stored)
    assert (text.text, text.document_id, text.optional) == ("Tin", None, False)
    assert (file.text, file.document_id, file.photo_id, file.optional) == ("c", "D", None, True)
    # the one-part reader shows the text, never a file's caption
    assert Stored((SendStep(text="chú thích", document_id="D"), SendStep(text="Tin"))).text == "Tin"


class FakeBot:
    """Records the Bot API calls send_part makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        async def call(**kwargs: Any) -> str:
            self.calls.append((name, kwargs))
            return name

        return call


async def test_send_part_sends_a_file_by_its_id_with_an_html_caption() -> None:
    bot = FakeBot()
    await send_part(bot, 5, text="📎 <b>a</b>" + "x" * 2000, document_id="DOC-1")
    await send_part(bot, 5, document_id="DOC-2", paid=True)
    (name, first), (_, second) = bot.calls
    assert name == "send_document" and first["document"] == "DOC-1" and first["chat_id"] == 5
    assert first["parse_mode"] == ParseMode.HTML and len(first["caption"]) == CAPTION_MAX
    assert second["caption"] is None and second["allow_paid_broadcast"] is True


# ------------------------------------------------------------------------------------------ the captions


def test_a_file_caption_escapes_the_name_and_stays_within_telegram_s_limit() -> None:
    caption = file_caption(
        "Tệp kèm theo", "Thôn Nà Làng", {"name": "<b>biên bản</b> & ảnh.pdf", "size": 40_000}
    )
    assert caption == "📎 &lt;b&gt;biên bản&lt;/b&gt; &amp; ảnh.pdf (39 KB)\nTệp kèm theo — Thôn Nà Làng"
    huge = file_caption("Tệp", "Thôn A", {"name": "&" * 300 + ".pdf", "size": 1})
    assert len(huge) <= CAPTION_MAX and html.unescape(huge).startswith("📎 " + "&" * 120 + "…")
    assert not huge.split("…")[0].endswith(("&", "&a", "&am", "&amp"))  # no entity cut in two
    assert file_caption("Tệp", "Thôn A", {}) == "📎 (không tên)\nTệp — Thôn A"  # bad item: no name, no size
    worst = file_caption("<" * 900, "&" * 900, {"name": '"' * 200})
    assert len(worst) <= CAPTION_MAX


def test_the_files_of_a_document_answer_are_collected_and_bad_values_ignored() -> None:
    f = form()
    answers = {
        "loai_su_co": "trom_cap",
        "mo_ta": "Mất xe",
        "tai_lieu": [PDF, {"name": "no-id.pdf"}, "x", JPG],
    }
    lines = answer_lines(f, answers)
    assert [(label, item["file_id"]) for label, item in lines.files] == [
        ("Tệp kèm theo", "DOC-1"),
        ("Tệp kèm theo", "DOC-2"),
    ]
    assert any(row.label == "Tệp kèm theo" for row in lines.rows)  # still named in the text
    assert answer_lines(f, {"tai_lieu": "bien-ban.pdf"}).files == []  # not a list: nothing to forward
    assert answer_lines(f, {"tai_lieu": None}).files == []
    village = Village(id=1, commune_id=1, name="Thôn Nà Làng")
    assert alert_files(f, answers, village) == [
        ("📎 bien-ban.pdf (1,2 MB)\nTệp kèm theo — Thôn Nà Làng", "DOC-1"),
        ("📎 anh.jpg\nTệp kèm theo — Thôn Nà Làng", "DOC-2"),
    ]


# ------------------------------------------------------------------------------------------ the dispatcher

GROUP, GROUP2 = -100555, -100556


@pytest.fixture(name="server")
async def _server() -> AsyncIterator[EmulatorServer]:
    """The emulator, listening in the test's loop."""
    srv = EmulatorServer(token=TOKEN)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture(name="tg")
async def _tg(server: EmulatorServer) -> AsyncIterator[Bot]:
    """A PTB Bot talking to it."""
    async with Bot(TOKEN, base_url=server.base_url) as bot:
        yield bot


@pytest.fixture(name="limiter")
def _limiter() -> RateLimiter:
    """Telegram's limits, waiting in virtual time."""
    vtime = ManualTime(1000.0)
    return RateLimiter(clock=vtime.clock, sleep=vtime.sleep)


def upload(emulator: EmulatorServer, user: int, name: str) -> str:
    """A file the emulator knows (as if a head had sent it): its file id."""
    delivery = emulator.send_document(user, b"%PDF-1.4 " + name.encode(), name, "application/pdf")
    return delivery.update["message"]["document"]["file_id"]


def queue_alert_row(engine, key: str, documents: list[tuple[str, str]], pins=(), chat: int = GROUP) -> int:
    with session_scope(engine) as s:
        row_id = queue_message(
            s,
            key=key,
            kind=KIND_ALERT,
            chat_id=chat,
            text="🚨 <b>KHẨN CẤP</b> — Thôn Nà Làng",
            now=FIXED_NOW - timedelta(minutes=1),
            documents=documents,
            pins=pins,
        )
        assert row_id is not None
        return row_id


async def test_a_refused_file_is_logged_and_skipped_and_the_rest_of_the_alert_arrives(
    engine, server, tg, limiter, caplog
) -> None:
    server.add_user(81501, "Trưởng thôn")
    server.add_group(GROUP, "Công an xã", [81501])
    server.add_group(GROUP2, "Trưởng Công an xã", [81501])
    good, other = upload(server, 81501, "bien-ban.pdf"), upload(server, 81501, "danh-sach.pdf")
    middle = queue_alert_row(
        engine,
        "alert:1:g",
        [("📎 bien-ban.pdf", good), ("📎 hỏng", "NO-SUCH-FILE"), ("📎 danh-sach.pdf", other)],
        pins=[("📍 Vị trí", (21.6, 105.8))],
    )
    last = queue_alert_row(
        engine, "alert:2:g", [("📎 bien-ban.pdf", good), ("📎 hỏng", "NO-SUCH-FILE")], chat=GROUP2
    )
    with caplog.at_level(logging.WARNING, logger="bot.delivery.dispatcher"):
        await dispatch_due(engine, tg, FIXED_NOW, limiter=limiter, worker_id="w", render=render_outbox)
    with Session(engine) as s:
        rows = {r.id: r for r in s.exec(select(Outbox))}

    def got(chat: int) -> list[tuple[str, str | None, str | None]]:
        return [
            (m["kind"], (m["document"] or {}).get("file_id"), m["plain"]) for m in server.bot_messages(chat)
        ]

    assert got(GROUP) == [
        ("text", None, "🚨 KHẨN CẤP — Thôn Nà Làng"),
        ("document", good, "📎 bien-ban.pdf"),
        ("document", other, "📎 danh-sach.pdf"),  # the refused file skipped, the next one still sent
        ("text", None, "📍 Vị trí"),
        ("location", None, None),
    ]
    assert got(GROUP2) == [
        ("text", None, "🚨 KHẨN CẤP — Thôn Nà Làng"),
        ("document", good, "📎 bien-ban.pdf"),
    ]
    assert rows[middle].status == OutboxStatus.SENT and rows[middle].attempts <= 1
    assert f"outbox row {middle}: part 3 refused" in caplog.text  # logged, never silent
    # a refused last step: skipped too — the text and the first file went, so the alert is delivered
    assert rows[last].status == OutboxStatus.SENT
    assert f"outbox row {last}: part 3 refused" in caplog.text
    refused = [r for r in server.requests_for("sendDocument") if r.status == 400]
    assert len(refused) == 2  # once per row: never tried again
    await dispatch_due(
        engine, tg, FIXED_NOW + timedelta(hours=2), limiter=limiter, worker_id="w", render=render_outbox
    )
    assert len(server.bot_messages(GROUP)) == 5 and len(server.bot_messages(GROUP2)) == 2
    assert len([r for r in server.requests_for("sendDocument") if r.status == 400]) == 2


# ------------------------------------------------------------------------------------------ through the bot


def setup_data() -> dict[str, Any]:
    """Hiệp Lực with the test incident form (its document question) instead of su-co, and two police chats."""
    data = yaml.safe_load(HIEP_LUC.read_text(encoding="utf-8"))
    commune = data["communes"][0]
    kept = [f"deploy/{f}" for f in commune["forms"] if "su-co" not in f]  # read from the repository's root
    commune["forms"] = [*kept, "tests/forms/su-co-kem-tep.yaml"]
    commune["police_chats"].append({"chat_id": SECOND_CHAT, "title": "Trưởng Công an xã"})
    return data


@contextlib.asynccontextmanager
async def files_bot(engine, database_url, clock) -> AsyncIterator[BotClient]:
    with session_scope(engine) as s:
        apply_setup_file(s, setup_data(), now=clock(), path=ROOT / "setup.yaml")
    invites = [
        (AN, {"role": "village_head", "village": "Thôn Nà Làng"}),
        (CUONG, {"role": "police", "commune": "hiep-luc"}),
    ]
    async with running_bot(engine, database_url, clock, request=RecordingRequest(), invites=invites) as bot:
        yield bot


async def send_file(bot: BotClient, user: FakeUser, item: dict[str, Any]) -> None:
    document = {
        "file_id": item["file_id"],
        "file_unique_id": item["file_unique_id"],
        "file_name": item["name"],
        "mime_type": item["mime"],
        "file_size": item["size"] or 1000,
    }
    await bot.send_raw(user, document=document)


def sends(bot: BotClient, chat: int) -> list[tuple[str, str]]:
    """(method, text or file id) of what the bot sent to a chat, in order."""
    out = []
    for c in bot.request.calls:
        if c.method in ("sendMessage", "sendDocument", "sendPhoto") and int(c.params["chat_id"]) == chat:
            out.append((c.method, c.params.get("text") or c.params.get("document") or c.params.get("photo")))
    return out


async def test_a_head_s_incident_with_files_reaches_every_police_chat_with_the_files(
    engine, database_url, clock
) -> None:
    async with files_bot(engine, database_url, clock) as bot:
        await bot.send(AN, "/suco")
        await bot.press_button(AN, "Trộm cắp")
        await bot.send(AN, "Mất trộm xe máy ở cổng nhà văn hoá")
        await send_file(bot, AN, PDF)
        await send_file(bot, AN, {**JPG, "size": 300_000})
        await bot.press_token(AN, "done")
        for _ in range(5):
            if "confirm" in bot.tokens(AN):
                break
            await bot.press_token(AN, "submit")
        await bot.press_token(AN, "confirm")
        (sub,) = bot.submissions()
        assert [f["file_id"] for f in sub.answers["tai_lieu"]] == ["DOC-1", "DOC-2"]
        for chat in (POLICE_CHAT, SECOND_CHAT):
            (alert, first, second) = sends(bot, chat)
            assert alert[0] == "sendMessage" and "BÁO CÁO ĐỘT XUẤT" in alert[1] and sub.receipt in alert[1]
            assert "• Tệp kèm theo: <b>📎 bien-ban.pdf (1,2 MB); anh.jpg (293 KB)</b>" in alert[1]
            assert first == ("sendDocument", "DOC-1") and second == ("sendDocument", "DOC-2")
            captions = [
                c.params["caption"]
                for c in bot.request.calls
                if c.method == "sendDocument" and int(c.params["chat_id"]) == chat
            ]
            assert captions == [
                "📎 bien-ban.pdf (1,2 MB)\nTệp kèm theo — Thôn Nà Làng",
                "📎 anh.jpg (293 KB)\nTệp kèm theo — Thôn Nà Làng",
            ]
        with session_scope(engine) as s:
            rows = list(s.exec(select(Outbox).where(Outbox.kind == KIND_ALERT)))
            assert sorted(r.chat_id for r in rows) == sorted([POLICE_CHAT, SECOND_CHAT])
            assert {r.status for r in rows} == {OutboxStatus.SENT}
        # the police open the incident in /suco: its details, then its files again
        await bot.send(CUONG, "/suco")
        await bot.press_button(CUONG, "🔎 1")
        assert "Tệp kèm theo" in bot.texts(CUONG)[-1]
        assert [d for m, d in sends(bot, CUONG.id) if m == "sendDocument"] == ["DOC-1", "DOC-2"]
        # a head who sends no file: the alert goes alone
        await bot.send(AN, "/suco")
        await bot.press_button(AN, "Việc khác")
        await bot.send(AN, "Có người lạ")
        await bot.press_token(AN, "skip")
        for _ in range(5):
            if "confirm" in bot.tokens(AN):
                break
            await bot.press_token(AN, "submit")
        await bot.press_token(AN, "confirm")
        assert len(bot.submissions()) == 2
        assert [m for m, _ in sends(bot, POLICE_CHAT)][3:] == ["sendMessage"]


@pytest.mark.parametrize("command", ["", "/suco"])
async def test_a_stranger_s_files_file_nothing_and_reach_no_police_chat(
    engine, database_url, clock, command
) -> None:
    async with files_bot(engine, database_url, clock) as bot:
        if command:
            await bot.send(STRANGER, command)
        await send_file(bot, STRANGER, PDF)
        assert "chưa đăng ký" in bot.texts(STRANGER)[-1] or "mã mời" in bot.texts(STRANGER)[-1]
        assert not [c for c in bot.request.calls if c.method == "sendDocument"]
        assert not bot.submissions()
        with session_scope(engine) as s:
            assert not list(s.exec(select(Outbox).where(Outbox.kind == KIND_ALERT)))
