"""The real bot process and the Bot API emulator: a village head sends the "điển hình" dossier as files, a
refused file is explained, the bot is killed mid-way and keeps the files, the officer gets a file back and
the period's files as a zip (downloaded by the bot with getFile)."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.emulator.server import EmulatorServer
from storage.db import make_engine, session_scope
from storage.models import Draft, Submission
from tests.e2e.conftest import HCM, ROOT, BotProcess, invite, press, say, start_bot, tokens

pytestmark = pytest.mark.e2e


def write_dossier_setup(tmp: Path, now: datetime) -> Path:
    """Hiệp Lực with the example dossier form, its period open now."""
    (tmp / "forms").mkdir()
    shutil.copy(ROOT / "tests" / "forms" / "ho-so-dien-hinh.yaml", tmp / "forms")
    opens = (now - timedelta(days=1)).astimezone(HCM)
    due = (now + timedelta(days=10)).astimezone(HCM)
    text = f"""
version: 1
communes:
  - code: hiep-luc
    name: Xã Hiệp Lực
    province: Thái Nguyên
    villages: [Thôn Nà Làng, Thôn Bản Duồm]
    forms: [forms/ho-so-dien-hinh.yaml]
    schedules:
      - form: ho-so-dien-hinh
        main: true
        periods:
          - id: "E2E-HS"
            label: "Hồ sơ thử nghiệm"
            opens: "{opens:%d/%m/%Y}"
            due_before: "{due:%d/%m/%Y}"
"""
    path = tmp / "setup.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def dossier_bot(emulator: EmulatorServer, database_url: str, tmp_path: Path) -> Iterator[BotProcess]:
    """The bot process with the dossier form set up."""
    process = start_bot(emulator, database_url, tmp_path, write_dossier_setup(tmp_path, datetime.now(HCM)))
    yield process
    process.stop()


PDF = b"%PDF-1.4\n% ho so dien hinh\n" + b"0" * 2000


def test_a_dossier_sent_as_files_survives_a_kill_and_reaches_the_officer(
    dossier_bot, client, emulator, database_url
) -> None:
    police = client.user(7001, "Cường", "Lý Văn")
    an = client.user(7002, "An", "Hoàng Văn")
    say(police, f"/start {invite(dossier_bot, '--commune', 'hiep-luc', '--role', 'police')}")
    say(an, f"/start {invite(dossier_bot, '--village', 'Thôn Nà Làng')}")
    assert "Hồ sơ thử nghiệm" in say(an, "/baocao")
    press(an, tokens(an)[0])
    press(an, "y")
    assert "hồ sơ đề nghị" in say(an, "7")

    an.send_document(b"MZ" + b"\0" * 100, "cai-dat.exe", "application/x-msdownload")
    refused = an.wait_reply(timeout=20).plain
    assert "không nhận tệp “cai-dat.exe”" in refused and "PDF, DOCX, XLSX, JPG, PNG" in refused
    an.send_document(PDF, "bao-cao-thanh-tich.pdf", "application/pdf")
    assert "bao-cao-thanh-tich.pdf (2 KB)" in an.wait_reply(timeout=20).plain

    dossier_bot.kill()  # power cut with one file in
    dossier_bot.start()

    say(an, "/baocao")
    press(an, tokens(an)[0])
    assert "bao-cao-thanh-tich.pdf" in an.messages()[-1].plain
    press(an, "done")
    press(an, "submit")
    press(an, "confirm")
    assert "Mã biên nhận" in an.messages()[-1].plain

    engine = make_engine(database_url)
    with session_scope(engine) as s:
        (sub,) = s.exec(select(Submission)).all()
        assert s.exec(select(Draft)).all() == []
        (stored,) = sub.answers["ho_so_dien_hinh"]
        assert stored["name"] == "bao-cao-thanh-tich.pdf" and stored["size"] == len(PDF)
        assert stored["mime"] == "application/pdf" and stored["file_id"] and stored["file_unique_id"]
        sub_id = sub.id

    say(police, "/tonghop")  # the summary → its villages → Thôn Nà Làng → its files
    press_data(police, "sm:v:")
    press_data(police, "sm:s:")
    listed = police.messages()[-1]
    assert "bao-cao-thanh-tich.pdf" in listed.plain and "Hồ sơ kèm theo" in listed.plain
    press_data(police, f"hs:f:{sub_id}:0")
    documents = [m.document for m in police.messages() if m.document]
    assert documents and documents[-1]["file_unique_id"] == stored["file_unique_id"]
    assert client.file_bytes(documents[-1]["file_id"]) == PDF  # the very file, fetched again by its id

    say(police, "/xuat")  # the period's files in one zip: the bot downloads them with getFile
    press_data(police, "hz:")

    def zips() -> list:
        return [
            m for m in police.messages() if m.document and m.document.get("file_name", "").endswith(".zip")
        ]

    if not zips():  # "Đang tải …" comes first, then the zip
        police.wait_reply(timeout=30)
    zipped = zips()
    assert zipped, [m.plain for m in police.messages()[-3:]]
    assert "1 tệp" in zipped[-1].plain and "Chưa đưa vào" not in zipped[-1].plain
    archive = zipfile.ZipFile(io.BytesIO(client.file_bytes(zipped[-1].document["file_id"])))
    assert archive.namelist() == ["Thôn Nà Làng/01. bao-cao-thanh-tich.pdf"]
    assert archive.read("Thôn Nà Làng/01. bao-cao-thanh-tich.pdf") == PDF
    assert emulator.requests_for("getFile")


def press_data(user, prefix: str) -> None:
    """Press the newest button whose callback data starts with `prefix` and wait for the bot."""
    for message in reversed(user.messages()):
        data = next(
            (b.callback_data for b in message.flat_buttons if (b.callback_data or "").startswith(prefix)),
            None,
        )
        if data is not None:
            user.press(data=data, message_id=message.message_id)
            user.wait_reply(timeout=20)
            return
    raise AssertionError(f"no button {prefix!r}: {[m.plain for m in user.messages()[-3:]]}")
