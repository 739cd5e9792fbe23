"""The terminal chat's `/tep [PATH]`: a user sends a file as a document (a sample PDF, or a file on disk)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.emulator.client import EmulatorClient
from bot.emulator.server import EmulatorServer
from bot.emulator.terminal import SAMPLE_PDF
from tests.test_terminal_chat import USER, chat, emulator  # noqa: F401  (the echo bot's emulator fixture)


async def test_tep_sends_a_sample_pdf_or_a_file_from_disk(emulator: EmulatorServer, tmp_path: Path) -> None:  # noqa: F811
    sheet = tmp_path / "danh-sach.xlsx"
    sheet.write_bytes(b"PK\x03\x04 not really a workbook")
    output, _ = await chat(emulator, ["/tep", f"/tep {sheet}", "/tep /khong/co/tep.pdf"])
    assert f"(Đã gửi tệp ho-so-mau.pdf, {len(SAMPLE_PDF)} byte.)" in output
    assert f"(Đã gửi tệp danh-sach.xlsx, {sheet.stat().st_size} byte.)" in output
    assert "Không đọc được tệp /khong/co/tep.pdf." in output
    with EmulatorClient(emulator.url) as client:  # the emulator runs in this loop: ask from a thread
        seen = await asyncio.to_thread(client.messages, USER, include_users=True)
    sent = [m.document for m in seen if m.document]
    assert [(d["file_name"], d.get("mime_type")) for d in sent] == [
        ("ho-so-mau.pdf", "application/pdf"),
        ("danh-sach.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ]
    assert [d["file_size"] for d in sent] == [len(SAMPLE_PDF), sheet.stat().st_size]
