"""Messages to others that cannot be lost: the incident alert and the /molai notice go through the outbox,
sent at once after the commit; the actor gets one true message; the police chat's 403, "chat not found" and
supergroup migration; replies that meet flood control are sent anyway."""

from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import select
from telegram import Bot
from telegram.error import RetryAfter

from bot.delivery import telegram_send
from bot.delivery.dispatcher import dispatch_due
from bot.delivery.outbox import KIND_ALERT, KIND_NOTICE, retry_delay
from bot.delivery.ratelimit import RateLimiter
from bot.delivery.telegram_send import send_retrying
from bot.emulator.server import EmulatorServer
from bot.reminders.content import render_outbox
from bot.services.accounts import create_invite, forget_person
from bot.services.outbox_messages import queue_message
from bot.updates.replies import REPLY_FLOOD_BUDGET, REPLY_POLICY
from storage.db import session_scope
from storage.models import AuditLog, Outbox, OutboxStatus, PoliceChat, Submission, Village
from tests.support.client import BotClient
from tests.support.telegram import RecordingRequest
from tests.support.world import apply_setup_file
from tests.test_report_conversation import AN, CUONG, POLICE_CHAT, heads_bot

SUPERGROUP = -1009999999999
PENDING_NOTE = "Bot chưa báo được tới nhóm Công an xã, sẽ thử lại."
ERROR_TEXT = "Xin lỗi, có lỗi"
EMU_TOKEN = "616161:AlertTestTokenAlertTestToken00"
EMU_OFFICER = 91001


class ChatFaults(RecordingRequest):
    """RecordingRequest whose sends to chosen chats get Telegram's error answers, one per call, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.faults: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        self.refused: list[tuple[str, int, int]] = []  # (method, chat, status)

    def fail(self, chat_id: int, *answers: str) -> None:
        """Queue error answers for the next sends to `chat_id`: "404" chat not found, "403", "migrate",
        "429", "500"."""
        shapes = {
            "404": (400, {"description": "Bad Request: chat not found"}),
            "403": (403, {"description": "Forbidden: bot was kicked from the group chat"}),
            "blocked": (403, {"description": "Forbidden: bot was blocked by the user"}),
            "migrate": (
                400,
                {
                    "description": "Bad Request: group chat was upgraded to a supergroup chat",
                    "parameters": {"migrate_to_chat_id": SUPERGROUP},
                },
            ),
            "429": (
                429,
                {"description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}},
            ),
            "500": (500, {"description": "Internal Server Error"}),
        }
        self.faults.setdefault(chat_id, []).extend(shapes[a] for a in answers)

    async def do_request(self, url: str, method: str, request_data=None, **kw):
        """An error answer when one is queued for the target chat, else the recorded ok."""
        name = url.rsplit("/", 1)[-1]
        params = dict(request_data.json_parameters) if request_data else {}
        chat = params.get("chat_id")
        queued = self.faults.get(int(chat)) if chat is not None and name.startswith("send") else None
        if queued:
            status, body = queued.pop(0)
            self.refused.append((name, int(chat), status))
            return status, json.dumps({"ok": False, "error_code": status, **body}).encode()
        return await super().do_request(url, method, request_data, **kw)


@pytest.fixture
async def faulty(engine, database_url, clock):
    request = ChatFaults()
    async with heads_bot(engine, database_url, clock, request) as bot:
        with session_scope(engine) as s:
            code = create_invite(s, role="police", commune="hiep-luc", now=clock(), actor="t").code
        await bot.send(CUONG, f"/start {code}")
        yield bot, request


async def start_incident(bot: BotClient) -> None:
    """/suco, the first kind, and "Cần xử lý trong ngày": not urgent, so the one alert goes with the report
    (the early alert of an urgent one: tests/test_incidents.py)."""
    await bot.send(AN, "/suco")
    await bot.press_token(AN, "c:0")
    await bot.press_token(AN, "c:1")


async def file_incident(bot: BotClient) -> None:
    """/suco, the required answers (optional ones skipped), and "Gửi"."""
    await start_incident(bot)
    await bot.answer_until(AN)
    await bot.press_token(AN, "confirm")


def alerts() -> Any:
    return select(Outbox).where(Outbox.kind == KIND_ALERT)


def the_alert(bot: BotClient) -> Outbox:
    with session_scope(bot.engine) as s:
        (row,) = s.exec(alerts()).all()
        s.expunge(row)
        return row


def police_chat(bot: BotClient) -> PoliceChat:
    with session_scope(bot.engine) as s:
        (chat,) = s.exec(select(PoliceChat)).all()
        s.expunge(chat)
        return chat


async def tick(bot: BotClient, after: timedelta) -> Any:
    """The dispatcher's next run, `after` later (as the scheduler would)."""
    now = bot.clock.advance(seconds=after.total_seconds() + 30)  # past the backoff, however long the try took
    return await dispatch_due(
        bot.engine, bot.app.bot, now, render=render_outbox, limiter=RateLimiter(), worker_id="tick"
    )


def receipt_messages(bot: BotClient) -> list[str]:
    return [t for t in bot.texts(AN) if "Mã biên nhận" in t or ERROR_TEXT in t]


async def test_the_alert_goes_out_at_once_and_the_receipt_says_nothing_more(faulty) -> None:
    bot, request = faulty
    await file_incident(bot)
    (receipt,) = receipt_messages(bot)
    assert PENDING_NOTE not in receipt
    assert "BÁO CÁO ĐỘT XUẤT" in request.texts(POLICE_CHAT)[0]
    row = the_alert(bot)
    assert row.status == OutboxStatus.SENT and row.chat_id == POLICE_CHAT
    # the alert left before the receipt: the head is told the truth
    sends = [int(c.params["chat_id"]) for c in request.calls if c.method == "sendMessage"]
    assert sends.index(POLICE_CHAT) < len(sends) - 1 and sends[-1] == AN.id


async def test_chat_not_found_one_receipt_with_the_note_and_the_alert_sent_later(faulty) -> None:
    bot, request = faulty
    request.fail(POLICE_CHAT, "404")
    await file_incident(bot)
    texts = bot.texts(AN)
    (receipt,) = receipt_messages(bot)
    assert receipt == texts[-1] and receipt.endswith(PENDING_NOTE) and ERROR_TEXT not in "".join(texts)
    row = the_alert(bot)
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    assert "chat not found" in row.last_error.lower() and not request.texts(POLICE_CHAT)
    report = await tick(bot, retry_delay(1, KIND_ALERT))
    assert report.sent == 1 and the_alert(bot).status == OutboxStatus.SENT
    assert len(request.texts(POLICE_CHAT)) == 1 and len(bot.submissions()) == 1


async def test_a_403_marks_the_police_chat_unreachable_keeps_the_alert_and_clears_when_it_arrives(
    faulty,
) -> None:
    bot, request = faulty
    request.fail(POLICE_CHAT, "403", "403")
    await file_incident(bot)
    assert receipt_messages(bot)[-1].endswith(PENDING_NOTE)
    chat = police_chat(bot)
    assert chat.unreachable_at is not None and "kicked" in chat.unreachable_error and chat.active
    assert the_alert(bot).status == OutboxStatus.PENDING
    report = await tick(bot, retry_delay(1, KIND_ALERT))  # still kicked: kept, backing off
    assert report.retried == 1 and the_alert(bot).attempts == 2 and police_chat(bot).unreachable_at
    report = await tick(bot, retry_delay(2, KIND_ALERT))  # the bot is back in the group
    assert report.sent == 1 and len(request.texts(POLICE_CHAT)) == 1
    assert police_chat(bot).unreachable_at is None
    with session_scope(bot.engine) as s:
        marks = s.exec(select(AuditLog).where(AuditLog.action == "police_chat.unreachable")).all()
        assert len(marks) == 1 and marks[0].detail["chat_id"] == POLICE_CHAT  # once, not per try


async def test_a_supergroup_migration_moves_the_police_chat_and_the_alert_follows(faulty) -> None:
    bot, request = faulty
    request.fail(POLICE_CHAT, "migrate")
    await file_incident(bot)
    assert PENDING_NOTE not in receipt_messages(bot)[-1]
    assert "BÁO CÁO ĐỘT XUẤT" in request.texts(SUPERGROUP)[0] and not request.texts(POLICE_CHAT)
    assert police_chat(bot).chat_id == SUPERGROUP
    row = the_alert(bot)
    assert row.status == OutboxStatus.SENT and row.chat_id == SUPERGROUP
    with session_scope(bot.engine) as s:
        moved = s.exec(select(AuditLog).where(AuditLog.action == "police_chat.migrated")).one()
        assert moved.detail == {"old_chat_id": POLICE_CHAT, "new_chat_id": SUPERGROUP}


async def test_an_alert_to_a_chat_replaced_in_the_setup_goes_to_the_new_police_chat(faulty) -> None:
    bot, request = faulty
    request.fail(POLICE_CHAT, "404")  # the placeholder id of the example setup
    await file_incident(bot)
    with session_scope(bot.engine) as s:  # the commune fixes its setup file: the real group replaces it
        (old,) = s.exec(select(PoliceChat)).all()
        old.active = False
        s.add(PoliceChat(commune_id=old.commune_id, chat_id=-100555, title="Công an xã (thật)"))
    report = await tick(bot, retry_delay(1, KIND_ALERT))
    if not report.sent:  # the copy is due at once: this run or the next tick sends it
        report = await tick(bot, timedelta(seconds=1))
    assert report.sent == 1
    assert "BÁO CÁO ĐỘT XUẤT" in request.texts(-100555)[0] and not request.texts(POLICE_CHAT)
    with session_scope(bot.engine) as s:
        rows = {r.chat_id: r.status for r in s.exec(alerts()).all()}
    assert rows == {POLICE_CHAT: OutboxStatus.OBSOLETE, -100555: OutboxStatus.SENT}


async def test_a_forgotten_reporter_s_name_is_erased_from_a_waiting_alert(faulty) -> None:
    bot, request = faulty
    request.fail(POLICE_CHAT, "404")
    await file_incident(bot)
    person = bot.person(AN)
    assert the_alert(bot).payload["by_name"] == f'<a href="tg://user?id={AN.id}">{person.full_name}</a>'
    with session_scope(bot.engine) as s:
        forget_person(s, person.id, bot.clock(), "test")
    assert the_alert(bot).payload["by_name"] == "đã xoá"
    await tick(bot, retry_delay(1, KIND_ALERT))
    (alert,) = request.texts(POLICE_CHAT)
    assert "Người báo: đã xoá" in alert


async def test_pressing_send_again_or_a_redelivered_update_files_no_second_incident(faulty) -> None:
    bot, request = faulty
    request.fail(POLICE_CHAT, "500")
    await start_incident(bot)
    await bot.answer_until(AN)
    message_id, buttons = bot.last_keyboard(AN)
    (data,) = [d for d in buttons if d.endswith(":confirm")]
    update = await bot.press(AN, data, message_id=message_id)
    assert receipt_messages(bot)[-1].endswith(PENDING_NOTE)
    await bot.feed(update.to_dict())  # Telegram delivers the same press again
    await bot.press(AN, data, message_id=message_id)  # the head presses "Gửi" on the old screen again
    with session_scope(bot.engine) as s:
        assert len(s.exec(select(Submission)).all()) == 1 and len(s.exec(alerts()).all()) == 1
    assert sum("Mã biên nhận" in t for t in bot.texts(AN)) == 1
    await tick(bot, retry_delay(1, KIND_ALERT))
    assert len(request.texts(POLICE_CHAT)) == 1


async def test_the_reopened_notice_reaches_the_head_through_the_outbox_or_is_said_to_be_pending(
    faulty,
) -> None:
    bot, request = faulty
    await bot.submit_report(AN)
    bot.clock.advance(days=10)  # past the deadline
    request.fail(AN.id, "500")
    await bot.send(CUONG, "/molai Thôn Nà Làng")
    said = bot.texts(CUONG)[-1]
    assert "Đã mở lại" in said and "Bot chưa báo được tới trưởng thôn: lỗi mạng thì bot sẽ thử lại" in said
    with session_scope(bot.engine) as s:
        notices = s.exec(select(Outbox).where(Outbox.kind == KIND_NOTICE)).all()
        assert {n.chat_id for n in notices} >= {AN.id} and all(
            n.status != OutboxStatus.FAILED for n in notices
        )
    assert not any("mở lại" in t for t in bot.texts(AN))
    await tick(bot, retry_delay(1, KIND_NOTICE))
    assert "mở lại" in bot.texts(AN)[-1]
    # without a fault it goes at once and the police reply is the plain one
    await bot.send(CUONG, "/molai Thôn Nà Làng")
    assert "Đã mở lại" in bot.texts(CUONG)[-1] and "sẽ thử lại" not in bot.texts(CUONG)[-1]


async def test_a_reply_waits_out_flood_control_as_often_as_it_comes(
    engine, database_url, clock, monkeypatch
) -> None:
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(telegram_send, "asyncio", SimpleNamespace(sleep=no_sleep))  # only the retry waits
    request = ChatFaults()
    async with heads_bot(engine, database_url, clock, request) as bot:
        before = len(request.sent(AN.id))
        request.fail(AN.id, *["429"] * 8)  # eight 429s in a row: the old policy gave up after the third try
        await bot.send(AN, "/baocao")
        assert len(request.sent(AN.id)) == before + 1 and "Báo cáo của Thôn Nà Làng" in bot.texts(AN)[-1]
        assert len(waits) == 8 and all(w == 1.0 for w in waits)


async def test_a_flood_that_outlasts_the_budget_still_ends(monkeypatch) -> None:
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    async def always_flooded() -> None:
        raise RetryAfter(7)

    monkeypatch.setattr(telegram_send, "asyncio", SimpleNamespace(sleep=no_sleep))
    with pytest.raises(RetryAfter):
        await send_retrying(always_flooded, REPLY_POLICY)
    assert sum(waits) <= REPLY_FLOOD_BUDGET and sum(waits) + 7 > REPLY_FLOOD_BUDGET
    assert len(waits) > REPLY_POLICY.tries  # 429s are not counted as tries


async def test_the_emulator_s_kicked_and_upgraded_group_through_the_dispatcher(engine, clock) -> None:
    """Against the real emulator: the bot removed from the police group (403: unreachable, the alert kept, a
    notice to the same chat failed), then the group upgraded to a supergroup (400 with migrate_to_chat_id:
    followed)."""
    server = EmulatorServer(token=EMU_TOKEN)
    await server.start()
    try:
        with session_scope(engine) as s:
            apply_setup_file(s, now=clock())
            (chat,) = s.exec(select(PoliceChat)).all()
            commune_id, group = chat.commune_id, chat.chat_id
            village_id = s.exec(select(Village.id).where(Village.commune_id == commune_id)).first()
        server.add_user(EMU_OFFICER, "Cường")
        server.add_group(group, "Công an xã", [EMU_OFFICER], supergroup=False)
        server.remove_bot(group)
        with session_scope(engine) as s:
            alert = queue_message(
                s,
                key="alert:1:x",
                kind=KIND_ALERT,
                chat_id=group,
                text="🚨 vụ việc",
                now=clock(),
                village_id=village_id,
            )
            queue_message(s, key="notice:x", kind=KIND_NOTICE, chat_id=group, text="tin khác", now=clock())
        async with Bot(EMU_TOKEN, base_url=server.base_url) as tg:

            async def run() -> Any:
                return await dispatch_due(
                    engine, tg, clock(), render=render_outbox, limiter=RateLimiter(), worker_id="emu"
                )

            first = await run()
            assert first.retried == 1 and first.failed == 1  # the alert kept, the other message given up
            with session_scope(engine) as s:
                chat = s.exec(select(PoliceChat)).one()
                assert chat.unreachable_at is not None and "kicked" in chat.unreachable_error
            server.readd_bot(group)
            server.upgrade_group(group, SUPERGROUP)
            clock.advance(seconds=retry_delay(1, KIND_ALERT).total_seconds() + 30)
            second = await run()
        assert second.sent == 1
        (message,) = [m for m in server.chats[SUPERGROUP].messages.values()]
        assert "vụ việc" in message.text
        with session_scope(engine) as s:
            chat = s.exec(select(PoliceChat)).one()
            assert chat.chat_id == SUPERGROUP and chat.unreachable_at is None
            assert s.get(Outbox, alert).status == OutboxStatus.SENT
    finally:
        await server.stop()
