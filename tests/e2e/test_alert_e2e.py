"""The real bot process: an incident filed while the police group cannot be reached — first it does not exist
(400 chat not found), then the bot was removed from it (403), then it became a supergroup (400 with
migrate_to_chat_id). The head gets one true message, the alert arrives once when the group is reachable, and
there is one incident."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import select

from bot.emulator.server import EmulatorServer
from storage.db import make_engine, session_scope
from storage.models import AuditLog, Outbox, OutboxStatus, PoliceChat, Submission
from tests.e2e.conftest import HCM, BotProcess, answer, child_env, invite, press, say, write_setup

pytestmark = pytest.mark.e2e

GROUP = -100777  # the police chat of the setup file: a basic group
SUPERGROUP = -1000000000777
HEAD = 7002
OFFICER = 7001


@pytest.fixture
def ticking_bot(emulator: EmulatorServer, database_url: str, tmp_path: Path) -> Iterator[BotProcess]:
    """The configured commune and a bot whose dispatcher ticks every second."""
    (tmp_path / "logs").mkdir()
    env = child_env(emulator, database_url, BAOCAO_TICK_SECONDS="1")
    process = BotProcess(env, tmp_path / "logs", emulator)
    process.cli("setup", str(write_setup(tmp_path, datetime.now(HCM))))
    process.start()
    yield process
    process.stop()


def until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `predicate` every 0.2 s until it is truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def sends_to(emulator: EmulatorServer, chat_id: int, status: int) -> int:
    """How many sends to `chat_id` the emulator answered with `status`."""
    return sum(
        1
        for r in emulator.requests
        if r.method.startswith("send") and int(r.params.get("chat_id", 0)) == chat_id and r.status == status
    )


def test_an_incident_reaches_a_police_group_once_it_can_be_reached(
    ticking_bot, client, emulator, database_url
) -> None:
    bot = ticking_bot
    officer = client.user(OFFICER, "Cường", "Lý Văn")
    head = client.user(HEAD, "An", "Hoàng Văn")
    say(officer, f"/start {invite(bot, '--commune', 'hiep-luc', '--role', 'police')}")
    say(head, f"/start {invite(bot, '--village', 'Thôn Nà Làng')}")

    # 1. the police group does not exist yet (a placeholder id): 400 chat not found
    say(head, "/suco")
    press(head, "c:0")
    press(head, "c:1")  # "Cần xử lý trong ngày": not urgent, so the one alert goes with the report
    answer(head)
    press(head, "confirm")
    texts = [m.plain for m in head.messages()]
    receipts = [t for t in texts if "Mã biên nhận" in t]
    assert len(receipts) == 1 and receipts[0].endswith("Bot chưa báo được tới nhóm Công an xã, sẽ thử lại.")
    assert not any("Xin lỗi, có lỗi" in t for t in texts), texts[-3:]
    assert sends_to(emulator, GROUP, 400) >= 1

    # 2. the group exists, but the bot was removed from it: 403, the chat is marked unreachable
    emulator.add_group(GROUP, "Công an xã Hiệp Lực", [OFFICER])
    emulator.remove_bot(GROUP)
    until(lambda: sends_to(emulator, GROUP, 403) >= 1, 60, "the 403 from the group")
    engine = make_engine(database_url)

    def marked() -> bool:
        with session_scope(engine) as s:
            return s.exec(select(PoliceChat.unreachable_at)).one() is not None

    try:
        until(marked, 10, "the police chat marked unreachable")
        # 3. the bot is added back and the group is upgraded to a supergroup: the alert follows it there
        emulator.readd_bot(GROUP)
        emulator.upgrade_group(GROUP, SUPERGROUP)
        group = officer.in_group(SUPERGROUP)
        alert = group.wait_reply(timeout=90)
        assert "BÁO CÁO ĐỘT XUẤT" in alert.plain and "Thôn Nà Làng" in alert.plain
        assert sends_to(emulator, GROUP, 400) >= 2  # the migration answer came from the old id

        with session_scope(engine) as s:
            assert len(s.exec(select(Submission)).all()) == 1
            (row,) = s.exec(select(Outbox).where(Outbox.kind == "alert")).all()
            assert row.status == OutboxStatus.SENT and row.chat_id == SUPERGROUP
            (chat,) = s.exec(select(PoliceChat)).all()
            assert chat.chat_id == SUPERGROUP and chat.unreachable_at is None
            actions = {a.action for a in s.exec(select(AuditLog)).all()}
            assert {"police_chat.unreachable", "police_chat.migrated"} <= actions
    finally:
        engine.dispose()
    time.sleep(3)  # a few more ticks: nothing is sent twice
    alerts = [m for m in group.messages() if "BÁO CÁO ĐỘT XUẤT" in m.plain]
    assert len(alerts) == 1
    assert sum("Mã biên nhận" in m.plain for m in head.messages()) == 1
