"""The real bot process and the Bot API emulator: a village head files an incident with two files (an incident
form with a `document` question); each of the commune's two police chats gets the alert, then the very files
(fetched back by their ids); a stranger's file files nothing and reaches no police chat."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.emulator.client import UserSession
from bot.emulator.server import EmulatorServer
from tests.e2e.conftest import ROOT, BotProcess, invite, press, say, start_bot, tokens

pytestmark = pytest.mark.e2e

GROUPS = (-100881, -100882)  # the commune's two police chats
OFFICER, HEAD, STRANGER = 7301, 7302, 7309
PDF = b"%PDF-1.4\n% bien ban\n" + b"1" * 3000
PNG_NAME = "giay-to.png"
PNG = b"\x89PNG\r\n\x1a\n" + b"2" * 500


def write_setup(tmp: Path) -> Path:
    """Hiệp Lực with the test incident form that asks for files, and two police chats."""
    (tmp / "forms").mkdir()
    shutil.copy(ROOT / "tests" / "forms" / "su-co-kem-tep.yaml", tmp / "forms")
    text = f"""
version: 1
communes:
  - code: hiep-luc
    name: Xã Hiệp Lực
    province: Thái Nguyên
    police_chats:
      - chat_id: {GROUPS[0]}
        title: Công an xã Hiệp Lực
      - chat_id: {GROUPS[1]}
        title: Trưởng Công an xã
    villages: [Thôn Nà Làng, Thôn Bản Duồm]
    forms: [forms/su-co-kem-tep.yaml]
"""
    path = tmp / "setup.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def files_bot(emulator: EmulatorServer, database_url: str, tmp_path: Path) -> Iterator[BotProcess]:
    """The bot process with the incident form that asks for files."""
    process = start_bot(emulator, database_url, tmp_path, write_setup(tmp_path))
    yield process
    process.stop()


def wait_for(group: UserSession, count: int, timeout: float = 30) -> None:
    """Wait until the bot has sent `count` messages to the group."""
    deadline = time.monotonic() + timeout
    while len(group.messages()) < count:
        assert time.monotonic() < deadline, [m.plain for m in group.messages()]
        time.sleep(0.1)


def test_an_incident_s_files_reach_every_police_chat_after_the_alert(
    files_bot, client, emulator: EmulatorServer
) -> None:
    officer = client.user(OFFICER, "Cường", "Lý Văn")
    for n, chat in enumerate(GROUPS):
        emulator.add_group(chat, f"Công an xã {n}", [OFFICER])
    head = client.user(HEAD, "An", "Hoàng Văn")
    say(officer, f"/start {invite(files_bot, '--commune', 'hiep-luc', '--role', 'police')}")
    assert "Xin lỗi" not in say(head, f"/start {invite(files_bot, '--village', 'Thôn Nà Làng')}")

    say(head, "/suco")
    press(head, "c:0")  # Trộm cắp tài sản
    say(head, "Mất trộm xe máy ở cổng nhà văn hoá")
    head.send_document(PDF, "bien-ban.pdf", "application/pdf")
    assert "bien-ban.pdf" in head.wait_reply(timeout=20).plain
    head.send_document(PNG, PNG_NAME, "image/png")
    head.wait_reply(timeout=20)
    press(head, "done")
    for _ in range(3):
        if "confirm" in tokens(head):
            break
        press(head, "submit")
    press(head, "confirm")
    assert any("Mã biên nhận" in (m.plain or "") for m in head.messages()[-3:])

    for chat in GROUPS:
        group = officer.in_group(chat)
        wait_for(group, 3)
        alert, first, second = group.messages()[:3]
        assert alert.plain.splitlines()[0].endswith("Thôn Nà Làng") and "BÁO CÁO ĐỘT XUẤT" in alert.plain
        assert "Tệp kèm theo: 📎 bien-ban.pdf" in alert.plain
        assert (
            first.document["file_name"] == "bien-ban.pdf"
            and client.file_bytes(first.document["file_id"]) == PDF
        )
        assert (
            second.document["file_name"] == PNG_NAME and client.file_bytes(second.document["file_id"]) == PNG
        )
        assert first.plain.startswith("📎 bien-ban.pdf (3 KB)") and "Thôn Nà Làng" in first.plain
    assert not [r for r in emulator.requests_for("sendDocument") if r.status != 200]

    # a stranger's file: the usual answer, nothing reaches the police
    stranger = client.user(STRANGER, "Lạ")
    stranger.send_document(PDF, "la.pdf", "application/pdf")
    assert (
        "mã mời" in stranger.wait_reply(timeout=20).plain or "chưa đăng ký" in stranger.messages()[-1].plain
    )
    time.sleep(1)
    assert [len(officer.in_group(chat).messages()) for chat in GROUPS] == [3, 3]
