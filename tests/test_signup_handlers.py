"""In-process handler tests: the real Application, updates fed with process_update, calls recorded."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select
from telegram.error import NetworkError

from bot.auth import Need
from bot.clock import FixedClock
from bot.handlers import load_all
from bot.handlers.registry import Registry
from bot.services.accounts import create_invite
from bot.updates.context import Ctx
from storage.db import session_scope
from storage.models import AuditLog, Membership, Role
from tests.support.client import BotClient, build_app
from tests.support.telegram import FakeUser, RecordingRequest
from tests.support.world import seed_communes

AN = FakeUser(1001, "An", "Nguyễn Văn", "an_nv")
BINH = FakeUser(1002, "Bình", "Trần Thị")
STRANGER = FakeUser(1009, "Lạ")


@pytest.fixture
async def bot(engine, database_url, clock):
    request = RecordingRequest()
    app = build_app(engine, database_url, clock, request)
    with session_scope(engine) as s:
        seed_communes(s, clock())
    async with app:
        yield BotClient(app, request, engine=engine, clock=clock)


def invite(engine, clock: FixedClock, **kwargs) -> str:
    with session_scope(engine) as s:
        return create_invite(s, now=clock(), actor="cli:test", **kwargs).code


async def test_start_without_code_explains_how_to_join(bot) -> None:
    await bot.send(STRANGER, "/start")
    (text,) = bot.request.texts(STRANGER.id)
    assert "mã mời" in text and "/start" in text


async def test_deep_link_signs_up_village_head_with_menu(bot, engine, clock) -> None:
    code = invite(engine, clock, role=Role.VILLAGE_HEAD, village="Thôn Bản Mới")
    await bot.send(AN, f"/start {code}")
    (text,) = bot.request.texts(AN.id)
    assert "Đăng ký thành công" in text and "Thôn Bản Mới" in text and "trưởng thôn" in text
    menus = [c for c in bot.request.calls if c.method == "setMyCommands"]
    assert menus[-1].params["scope"] == {"type": "chat", "chat_id": AN.id}
    with session_scope(engine) as s:
        assert len(s.exec(select(Membership)).all()) == 1


async def test_police_sign_up_greets_by_role(bot, engine, clock) -> None:
    code = invite(engine, clock, role=Role.POLICE, commune="hiep-luc")
    await bot.send(BINH, f"/start {code}")
    assert "cán bộ Công an" in bot.request.texts(BINH.id)[-1]


@pytest.mark.parametrize("outcome", ["unknown", "used", "revoked"])
async def test_bad_codes_get_clear_messages(bot, engine, clock, outcome) -> None:
    code = invite(engine, clock, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn")
    if outcome == "unknown":
        code = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"
    elif outcome == "used":
        await bot.send(BINH, f"/start {code}")
    else:
        from bot.services.accounts import revoke_invite

        with session_scope(engine) as s:
            revoke_invite(s, code, now=clock(), actor="cli")
    await bot.send(AN, f"/start {code}")
    text = bot.request.texts(AN.id)[-1]
    assert {"unknown": "không đúng", "used": "đã được người khác dùng", "revoked": "bị huỷ"}[outcome] in text


async def test_help_lists_commands_by_role(bot, engine, clock) -> None:
    await bot.send(STRANGER, "/help")
    assert "mã mời" in bot.request.texts(STRANGER.id)[-1]
    await bot.send(AN, f"/start {invite(engine, clock, role=Role.VILLAGE_HEAD, village='Thôn Nà Mòn')}")
    await bot.send(AN, "/trogiup")
    text = bot.request.texts(AN.id)[-1]
    assert "Trưởng thôn của Thôn Nà Mòn, Xã Hiệp Lực" in text and "/help" in text


async def test_user_names_are_escaped(bot, engine, clock) -> None:
    evil = FakeUser(1010, "<b>An</b> & <script>", "</i>")
    await bot.send(evil, f"/start {invite(engine, clock, role=Role.POLICE, commune='hiep-luc')}")
    text = bot.request.texts(evil.id)[-1]
    assert "&lt;b&gt;An&lt;/b&gt; &amp; &lt;script&gt;" in text and "<script>" not in text


async def test_unregistered_group_learns_its_chat_id(bot) -> None:
    group = {"id": -555, "type": "group", "title": "Nhóm lạ"}
    await bot.send(AN, "/start@baocao_test_bot", group=group)
    assert "-555" in bot.request.texts(-555)[-1] and "chưa được đăng ký" in bot.request.texts(-555)[-1]


async def test_registered_police_group(bot) -> None:
    group = {"id": -100200300, "type": "supergroup", "title": "CA Hiệp Lực"}
    await bot.send(AN, "/help", group=group)
    assert "Xã Hiệp Lực" in bot.request.texts(-100200300)[-1]


async def test_non_text_unknown_command_and_edits(bot, engine, clock) -> None:
    await bot.send_raw(
        STRANGER,
        sticker={
            "file_id": "s",
            "file_unique_id": "s",
            "width": 1,
            "height": 1,
            "is_animated": False,
            "is_video": False,
            "type": "regular",
        },
    )
    assert "mã mời" in bot.request.texts(STRANGER.id)[-1]
    await bot.send(AN, f"/start {invite(engine, clock, role=Role.VILLAGE_HEAD, village='Thôn Nà Mòn')}")
    await bot.send_raw(AN, voice={"file_id": "v", "file_unique_id": "v", "duration": 3})
    assert "chỉ đọc được chữ" in bot.request.texts(AN.id)[-1]
    await bot.send(AN, "/khonglenhnay")
    assert "Không có lệnh <code>/khonglenhnay</code>" in bot.request.texts(AN.id)[-1]
    await bot.send_raw(AN, "edited_message", text="sửa", edit_date=1)
    assert "đã sửa không được tính" in bot.request.texts(AN.id)[-1]
    await bot.press(AN, "zz:old")
    answers = [c for c in bot.request.calls if c.method == "answerCallbackQuery"]
    assert "đã cũ" in answers[-1].params["text"]


async def test_same_update_twice_is_processed_once(bot, engine, clock) -> None:
    code = invite(engine, clock, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn")
    update = await bot.send(AN, f"/start {code}")
    await bot.feed(update.to_dict())
    assert len(bot.request.texts(AN.id)) == 1


async def test_declared_needs_are_enforced(engine, database_url, clock) -> None:
    """A police-only and a village-head-only command refuse everyone else, and audit it."""
    registry = Registry()
    registry.specs.extend(load_all().specs)
    seen: list[str] = []

    @registry.command("tonghop_thu", need=Need.POLICE)
    async def police_only(ctx: Ctx) -> None:
        seen.append("police")

    @registry.command("baocao_thu", need=Need.VILLAGE_HEAD)
    async def head_only(ctx: Ctx) -> None:
        seen.append("head")

    request = RecordingRequest()
    app = build_app(engine, database_url, clock, request, registry=registry)
    with session_scope(engine) as s:
        seed_communes(s, clock())
    async with app:
        harness = BotClient(app, request)
        await harness.send(
            AN, f"/start {invite(engine, clock, role=Role.VILLAGE_HEAD, village='Thôn Nà Mòn')}"
        )
        await harness.send(BINH, f"/start {invite(engine, clock, role=Role.POLICE, commune='hiep-luc')}")
        for user in (STRANGER, AN, BINH):
            await harness.send(user, "/tonghop_thu")
            await harness.send(user, "/baocao_thu")
        assert seen == ["head", "police"]
        assert "chỉ dành cho <b>cán bộ Công an xã</b>" in request.texts(AN.id)[-1]
        assert "chỉ dành cho <b>trưởng thôn</b>" in request.texts(BINH.id)[-1]
        assert "chưa đăng ký" in request.texts(STRANGER.id)[-1]
    with session_scope(engine) as s:
        refusals = s.exec(select(AuditLog).where(AuditLog.action == "auth.refused")).all()
        assert len(refusals) == 4


class FlakyRequest(RecordingRequest):
    """Telegram answers the first sendMessage calls with 429 (retry_after 1) or drops the connection."""

    def __init__(self, faults: list[str]) -> None:
        super().__init__()
        self.faults = list(faults)
        self.refused = 0

    async def do_request(self, url: str, method: str, request_data=None, **kw):
        if url.endswith("/sendMessage") and self.faults:
            self.refused += 1
            fault = self.faults.pop(0)
            if fault == "429":
                body = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1"}
                return 429, json.dumps({**body, "parameters": {"retry_after": 1}}).encode()
            raise NetworkError("connection reset")
        return await super().do_request(url, method, request_data, **kw)


@pytest.mark.parametrize(
    ("faults", "delivered"),
    [(["429"], True), (["net", "429"], True), (["net", "net", "net"], False)],
)
async def test_a_reply_refused_by_telegram_is_retried_after_the_commit(
    engine, database_url, clock, monkeypatch, caplog, faults: list[str], delivered: bool
) -> None:
    import logging

    import bot.updates.replies as registry

    caplog.set_level(logging.WARNING, logger="bot.delivery.telegram_send")

    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(registry.asyncio, "sleep", no_sleep)
    request = FlakyRequest(faults)
    app = build_app(engine, database_url, clock, request)
    with session_scope(engine) as s:
        seed_communes(s, clock())
    code = invite(engine, clock, role=Role.VILLAGE_HEAD, village="Thôn Bản Mới")
    async with app:
        harness = BotClient(app, request)
        await harness.send(AN, f"/start {code}")
    with session_scope(engine) as s:  # the sign-up was committed whatever happened to the reply
        assert s.exec(select(Membership).where(Membership.role == Role.VILLAGE_HEAD)).all()
    assert request.refused == len(faults)
    texts = request.texts(AN.id)
    if delivered:
        assert len(texts) == 1 and "Đăng ký thành công" in texts[0]
    else:  # given up after three tries: the person is told their data is safe and to try again
        assert len(texts) == 1 and "Dữ liệu đã lưu vẫn còn nguyên" in texts[0]
    assert waits and all(w <= registry.REPLY_WAIT_CAP for w in waits)
    if "429" in faults:
        assert 1.0 in waits  # retry_after honoured
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("reply: ")]
    assert len(retries) == min(
        len(faults), registry.REPLY_TRIES - 1
    )  # each retry is logged, the last error is raised
    assert all(("flood control" in m) or ("NetworkError" in m) for m in retries)
    assert not any("Đăng ký" in m or code in m for m in retries)  # never the text, never the code


async def test_updates_no_handler_takes_are_logged_counted_and_not_answered(bot, engine, caplog) -> None:
    """Group chatter and member changes get the same one log line (no content), metrics and update-id record
    as any other update, and no reply."""
    import logging

    from bot import metrics
    from storage.models import ProcessedUpdate

    caplog.set_level(logging.INFO, logger="bot.updates.pipeline")
    labels = {"handler": "unhandled:update", "outcome": "ignored"}
    before = metrics.REGISTRY.get_sample_value("baocao_updates_total", labels) or 0.0
    group = {"id": -100200300, "type": "supergroup", "title": "CA Hiệp Lực"}
    chatter = await bot.send(AN, "họp lúc 8 giờ bí mật", group=group)
    blocked = await bot.feed(
        {
            "my_chat_member": {
                "chat": {"id": AN.id, "type": "private", "first_name": AN.first_name},
                "from": AN.as_dict(),
                "date": 1,
                "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "B"}},
                "new_chat_member": {
                    "status": "kicked",
                    "until_date": 0,
                    "user": {"id": 1, "is_bot": True, "first_name": "B"},
                },
            }
        }
    )
    assert [c.method for c in bot.request.calls if c.method != "getMe"] == []  # nothing said to anyone
    lines = {r.update_id: r for r in caplog.records if getattr(r, "handler", None) == "unhandled:update"}
    assert set(lines) == {chatter.update_id, blocked.update_id}
    assert {(r.chat_id, r.outcome, r.role) for r in lines.values()} == {
        (-100200300, "ignored", "-"),
        (AN.id, "ignored", "-"),
    }
    assert "bí mật" not in caplog.text
    assert metrics.REGISTRY.get_sample_value("baocao_updates_total", labels) == before + 2
    with session_scope(engine) as s:  # no database work for them at all
        assert not set(s.exec(select(ProcessedUpdate.update_id))) & {chatter.update_id, blocked.update_id}


async def test_an_ignored_update_is_not_answered_even_when_the_database_is_down(bot, monkeypatch) -> None:
    """During an outage, chatter in a police group or a channel post must not make the bot post an error."""
    from sqlalchemy.exc import OperationalError

    from bot.updates import pipeline

    def down(*_: object, **__: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(pipeline, "first_delivery", down)
    await bot.send(AN, "chào cả nhóm", group={"id": -100200300, "type": "supergroup", "title": "CA"})
    await bot.feed(
        {
            "channel_post": {
                "message_id": 1,
                "date": 1,
                "chat": {"id": -100999, "type": "channel"},
                "text": "tin",
            }
        }
    )
    await bot.send(AN, "/help")  # a private command does hit the outage: told to try again
    sent = [(int(c.params["chat_id"]), c.method) for c in bot.request.calls if c.method != "getMe"]
    assert sent == [(AN.id, "sendMessage")]
    assert "thử lại" in bot.request.texts(AN.id)[-1]
