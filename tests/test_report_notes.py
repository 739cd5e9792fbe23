# ruff: noqa: F811  (the `chat` fixture is imported from test_export_handler and named by the tests)
"""Police write the Word report's "Đánh giá chung" and "Phương hướng" in Telegram before `/xuat` builds it."""

from __future__ import annotations

import io

import docx
from sqlmodel import select

from storage.db import session_scope
from storage.models import AuditLog, PendingNote, ReportNote
from tests.support.client import BotClient
from tests.test_export_handler import HEAD, OTHER_POLICE, POLICE, STRANGER, _period_id, chat  # noqa: F401


def body(content: bytes) -> list[str]:
    """The Word document's paragraphs with text."""
    return [p.text for p in docx.Document(io.BytesIO(content)).paragraphs if p.text.strip()]


async def word(chat: BotClient, pid: int) -> list[str]:
    await chat.press(POLICE, f"xe:{pid}:docx")
    return body(chat.request.documents(POLICE.id)[-1][1])


async def test_the_officer_writes_both_parts_and_the_word_report_uses_them(chat: BotClient, engine) -> None:
    pid = _period_id(engine)
    drafted = await word(chat, pid)
    assert "1. Ưu điểm" in drafted  # the bot's draft at first
    await chat.send(POLICE, "/xuat")
    assert f"xn:{pid}" in chat.last_keyboard(POLICE)[1] and len(chat.last_keyboard(POLICE)[1]) <= 12
    await chat.press(POLICE, f"xn:{pid}")
    assert "bản bot soạn" in chat.last_text(POLICE)
    await chat.press(POLICE, f"xn:{pid}:a")
    assert "Đánh giá chung (ưu điểm, hạn chế)" in chat.last_text(POLICE)
    await chat.send(
        POLICE,
        "Các thôn tích cực tuyên truyền, số buổi tăng.\n## Hạn chế\n[[BANG_TIEN_DO]] Còn 3 thôn nộp muộn.",
    )
    assert "Đã lưu phần <b>Đánh giá chung</b>" in "\n".join(chat.texts(POLICE)[-2:])
    await chat.press(POLICE, f"xn:{pid}:d")
    await chat.send(POLICE, "Tiếp tục nhân rộng mô hình tự quản ở các thôn.")
    paragraphs = await word(chat, pid)
    assert "Các thôn tích cực tuyên truyền, số buổi tăng." in paragraphs
    assert (
        "Hạn chế" in paragraphs
    )  # a typed "## " line is text, not a heading; the table marker is not a table
    assert "[ [BANG_TIEN_DO]] Còn 3 thôn nộp muộn." in paragraphs
    assert "1. Ưu điểm" not in paragraphs and "Tiếp tục nhân rộng mô hình tự quản ở các thôn." in paragraphs
    with session_scope(engine) as s:
        assert {n.part for n in s.exec(select(ReportNote))} == {"assessment", "direction"}
        assert len(s.exec(select(AuditLog).where(AuditLog.action == "report_note.save")).all()) == 2
    await chat.press(POLICE, f"xn:{pid}:c")  # back to the drafts
    assert "dùng lại bản bot soạn" in chat.last_text(POLICE)
    assert "1. Ưu điểm" in await word(chat, pid)


async def test_an_empty_or_too_long_part_is_refused_and_the_officer_stays_there(
    chat: BotClient, engine
) -> None:
    pid = _period_id(engine)
    await chat.press(POLICE, f"xn:{pid}:d")
    await chat.send(POLICE, "#  \n  ")
    assert "gõ nội dung bằng chữ" in chat.last_text(POLICE)
    await chat.send(POLICE, "x" * 3001)
    assert "dài 3.001 ký tự, tối đa 3.000" in chat.last_text(POLICE)
    with session_scope(engine) as s:
        assert s.exec(select(ReportNote)).all() == []
        assert len(s.exec(select(PendingNote)).all()) == 1  # still waiting for the part
    await chat.send(POLICE, "/huy")
    assert "Đã thôi, không lưu phần đang viết." in chat.last_text(POLICE)
    await chat.send(POLICE, "Một câu sau khi đã hủy")
    with session_scope(engine) as s:
        assert s.exec(select(ReportNote)).all() == [] and s.exec(select(PendingNote)).all() == []


async def test_others_cannot_write_or_see_a_commune_s_parts(chat: BotClient, engine) -> None:
    pid = _period_id(engine)
    for user in (OTHER_POLICE, HEAD, STRANGER):
        await chat.press(user, f"xn:{pid}:a")
        await chat.send(user, "Chen vào báo cáo của xã khác")
    for data in ("xn", "xn:abc", f"xn:{pid}:zz", "xn:99999999999999:a"):
        await chat.press(POLICE, data)
    with session_scope(engine) as s:
        assert s.exec(select(ReportNote)).all() == [] and s.exec(select(PendingNote)).all() == []
        refused = s.exec(select(AuditLog).where(AuditLog.action == "auth.refused")).all()
        assert any(r.entity_id == "callback:xn" for r in refused)
