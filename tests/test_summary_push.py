"""The summary pushed to the police chat: planned once from the database, sent by the dispatcher with charts.

Hiệp Lực from deploy/ (2026-6T due 20/05 00:00 local, quiet hours 21:00–06:30, so the digest goes at 06:30
and the push two minutes later). Reports are stored directly; the dispatcher talks to the emulator.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.delivery.dispatcher import dispatch_due
from bot.delivery.outbox import PARTS_SENT, Parts
from bot.delivery.outbox import OutboxPhoto as Photo
from bot.emulator.limits import FaultPlan
from bot.emulator.server import EmulatorServer
from bot.reminders.summary_push import (
    AFTER_DIGEST,
    COMPLETE,
    DUE,
    MAX_PARTS,
    PUSH_STALE,
    plan_summary_pushes,
    push_time,
    render_summary_push,
    summary_key,
)
from bot.services import reminders as reminder_service
from bot.services.forms import get_form
from bot.views.form import tg_len
from storage.db import session_scope
from storage.models import Commune, Outbox, OutboxStatus, Period, PoliceChat, Village
from tests.support.world import POLICE_CHAT, SignedUpCommune, sign_up_commune
from tests.test_dispatch import limiter, server, tg, vtime  # noqa: F401  (fixtures)
from tests.test_summary_handler import answers_for, file_report

EVIL = "<script>alert(1)</script> & <b>đậm</b>"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def world(engine: Engine) -> SignedUpCommune:
    return sign_up_commune(engine)


def period_and_commune(engine: Engine, world: SignedUpCommune) -> tuple[Period, Commune]:
    with Session(engine, expire_on_commit=False) as s:
        return s.get(Period, world.period_id), s.get(Commune, world.commune_id)


def at_push(engine: Engine, world: SignedUpCommune) -> datetime:
    period, commune = period_and_commune(engine, world)
    return push_time(period, commune)


def villages(engine: Engine, world: SignedUpCommune) -> list[Village]:
    with Session(engine, expire_on_commit=False) as s:
        return list(
            s.exec(
                select(Village)
                .where(Village.commune_id == world.commune_id, Village.active)
                .order_by(Village.id)
            )
        )


def submit(
    engine: Engine, world: SignedUpCommune, chosen: list[Village], at: datetime, *, text: str | None = None
) -> None:
    with session_scope(engine) as s:
        period = s.get(Period, world.period_id)
        form = get_form(s, period.form_id)
        for i, village in enumerate(chosen):
            file_report(s, village, period, answers_for(form, i + 2, text=text), at)


def plan(engine: Engine, now: datetime) -> int:
    with session_scope(engine) as s:
        return plan_summary_pushes(s, now, default_tz="Asia/Ho_Chi_Minh")


def pushes(engine: Engine) -> dict[str, Outbox]:
    with Session(engine) as s:
        return {r.key: r for r in s.exec(select(Outbox).where(Outbox.kind == "summary"))}


def render_row(engine: Engine, key: str, now: datetime, **kw: Any) -> Parts | None:
    with Session(engine) as s:
        row = s.exec(select(Outbox).where(Outbox.key == key)).one()
        return render_summary_push(s, row, now, **kw)


def push_render(session: Session, row: Outbox, now: datetime) -> Any:
    return render_summary_push(session, row, now, default_tz="Asia/Ho_Chi_Minh")


async def send_due(engine: Engine, tg, limiter, now: datetime, **kw: Any):  # noqa: F811
    kw.setdefault("worker_id", "push-worker")
    kw.setdefault("render", push_render)
    return await dispatch_due(engine, tg, now, limiter=limiter, concurrency=1, **kw)


# ---------------------------------------------------------------------------------------------- planning


def test_push_time_is_after_the_digest(engine, world) -> None:
    period, commune = period_and_commune(engine, world)
    at = push_time(period, commune)
    assert at - period.due_at == timedelta(hours=6, minutes=30) + AFTER_DIGEST  # quiet hours end 06:30
    with session_scope(engine) as s:
        reminder_service.plan(s, at)
    with Session(engine) as s:
        digest = s.exec(
            select(Outbox).where(Outbox.kind == "digest", Outbox.period_id == world.period_id)
        ).one()
    assert plan(engine, at) == 1
    (row,) = pushes(engine).values()
    assert row.due_at > digest.due_at and row.chat_id == digest.chat_id == POLICE_CHAT


def test_not_planned_before_the_deadline_nor_when_stale(engine, world) -> None:
    period, _ = period_and_commune(engine, world)
    at = at_push(engine, world)
    for when in (
        period.opens_at,
        period.due_at - timedelta(minutes=1),
        period.due_at,
        at - timedelta(seconds=1),
    ):
        assert plan(engine, when) == 0
    assert plan(engine, at + PUSH_STALE + timedelta(minutes=1)) == 0
    assert pushes(engine) == {}


def test_planned_once_across_replans_and_restarts(engine, world, database_url) -> None:
    at = at_push(engine, world)
    assert plan(engine, at) == 1
    for minutes in (0, 1, 30, 600):
        assert plan(engine, at + timedelta(minutes=minutes)) == 0
    from storage.db import make_engine

    restarted = make_engine(database_url)  # a new process: only the database is shared
    try:
        with session_scope(restarted) as s:
            assert plan_summary_pushes(s, at + timedelta(hours=2)) == 0
    finally:
        restarted.dispose()
    rows = pushes(engine)
    assert list(rows) == [summary_key(world.period_id, POLICE_CHAT, DUE)]
    assert rows[summary_key(world.period_id, POLICE_CHAT, DUE)].due_at == at


def test_one_push_per_active_police_chat(engine, world) -> None:
    with session_scope(engine) as s:
        s.add(PoliceChat(commune_id=world.commune_id, chat_id=777001, title="Trưởng CA xã"))
        s.add(PoliceChat(commune_id=world.commune_id, chat_id=-1009990, title="cũ", active=False))
    assert plan(engine, at_push(engine, world)) == 2
    assert {r.chat_id for r in pushes(engine).values()} == {POLICE_CHAT, 777001}


def test_complete_push_when_the_last_missing_village_submits(engine, world) -> None:
    period, _ = period_and_commune(engine, world)
    at = at_push(engine, world)
    everyone = villages(engine, world)
    submit(engine, world, everyone[:-1], period.due_at - timedelta(days=1))
    assert plan(engine, at) == 1
    assert plan(engine, at + timedelta(hours=3)) == 0  # one village still missing: nothing more
    last_at = at + timedelta(hours=3)  # 09:32 local: outside quiet hours
    submit(engine, world, everyone[-1:], last_at)
    assert plan(engine, last_at - timedelta(minutes=1)) == 0  # not before it happened
    assert plan(engine, last_at + timedelta(minutes=1)) == 1
    assert plan(engine, last_at + timedelta(hours=5)) == 0
    complete = pushes(engine)[summary_key(world.period_id, POLICE_CHAT, COMPLETE)]
    assert complete.due_at == last_at and complete.payload["occasion"] == COMPLETE
    parts = render_row(engine, complete.key, last_at + timedelta(minutes=1), charts=False)
    assert parts is not None and "Tất cả 14 thôn đã nộp báo cáo" in parts.texts[0]


def test_a_late_night_completion_waits_for_the_end_of_quiet_hours(engine, world) -> None:
    period, _ = period_and_commune(engine, world)
    everyone = villages(engine, world)
    submit(engine, world, everyone[:-1], period.due_at - timedelta(days=1))
    night = period.due_at + timedelta(hours=22)  # 22:00 local on 20/05
    submit(engine, world, everyone[-1:], night)
    assert plan(engine, night + timedelta(minutes=5)) == 1  # the due push only: the night is quiet
    keys = set(pushes(engine))
    assert summary_key(world.period_id, POLICE_CHAT, COMPLETE) not in keys
    morning = period.due_at + timedelta(days=1, hours=6, minutes=30)  # 06:30 local on 21/05
    assert plan(engine, morning) == 1
    assert pushes(engine)[summary_key(world.period_id, POLICE_CHAT, COMPLETE)].due_at == morning


def test_no_complete_push_when_everyone_was_on_time(engine, world) -> None:
    period, _ = period_and_commune(engine, world)
    submit(engine, world, villages(engine, world), period.due_at - timedelta(hours=2))
    at = at_push(engine, world)
    assert plan(engine, at) == 1 and plan(engine, at + timedelta(days=1)) == 0
    parts = render_row(engine, summary_key(world.period_id, POLICE_CHAT, DUE), at, charts=False)
    assert parts is not None and "14/14 thôn đã nộp" in parts.texts[0]


def test_an_amendment_after_the_deadline_does_not_count_as_completing(engine, world) -> None:
    period, _ = period_and_commune(engine, world)
    everyone = villages(engine, world)
    submit(engine, world, everyone, period.due_at - timedelta(hours=2))
    at = at_push(engine, world)
    with session_scope(engine) as s:
        form = get_form(s, period.form_id)
        file_report(
            s, everyone[0], s.get(Period, period.id), answers_for(form, 9), at + timedelta(hours=1), no=2
        )
    assert plan(engine, at + timedelta(hours=2)) == 1  # the due push only
    assert set(pushes(engine)) == {summary_key(world.period_id, POLICE_CHAT, DUE)}


# ---------------------------------------------------------------------------------------------- rendering


def test_render_has_the_charts_and_the_summary(engine, world) -> None:
    period, _ = period_and_commune(engine, world)
    submit(
        engine, world, villages(engine, world)[:5], period.due_at - timedelta(days=1), text="Cần thêm đèn."
    )
    at = at_push(engine, world)
    plan(engine, at)
    parts = render_row(engine, summary_key(world.period_id, POLICE_CHAT, DUE), at)
    assert parts is not None and len(parts.photos) == 2
    assert all(p.content.startswith(PNG) and p.filename.endswith(".png") for p in parts.photos)
    assert "Tình hình nộp báo cáo theo thôn" in parts.photos[0].caption
    assert "Các chỉ tiêu chính" in parts.photos[1].caption
    text = "\n".join(parts.texts)
    assert "Đã hết hạn nộp báo cáo" in text and "5/14 thôn đã nộp" in text
    assert "TỔNG HỢP BÁO CÁO — Xã Hiệp Lực" in text and "Cần thêm đèn." in text
    assert "/tonghop bao-cao-6-thang 2026-6T" in text and parts.buttons == ()


def test_render_returns_none_when_no_longer_useful(engine, world) -> None:
    period, _ = period_and_commune(engine, world)
    at = at_push(engine, world)
    plan(engine, at)
    key = summary_key(world.period_id, POLICE_CHAT, DUE)
    assert render_row(engine, key, at + PUSH_STALE + timedelta(minutes=1), charts=False) is None
    with session_scope(engine) as s:
        s.execute(update(PoliceChat).where(PoliceChat.chat_id == POLICE_CHAT).values(active=False))
    assert render_row(engine, key, at, charts=False) is None
    with session_scope(engine) as s:
        s.execute(update(PoliceChat).where(PoliceChat.chat_id == POLICE_CHAT).values(active=True))
        s.execute(update(Period).where(Period.id == period.id).values(active=False))
    assert render_row(engine, key, at, charts=False) is None


def test_a_due_push_not_yet_sent_gives_way_to_the_complete_one(engine, world) -> None:
    period, _ = period_and_commune(engine, world)
    everyone = villages(engine, world)
    submit(engine, world, everyone[:-1], period.due_at - timedelta(days=1))
    at = at_push(engine, world)
    plan(engine, at)
    submit(engine, world, everyone[-1:], at + timedelta(minutes=1))
    plan(engine, at + timedelta(minutes=2))
    assert render_row(engine, summary_key(world.period_id, POLICE_CHAT, DUE), at, charts=False) is None
    assert (
        render_row(engine, summary_key(world.period_id, POLICE_CHAT, COMPLETE), at, charts=False) is not None
    )


def test_a_long_summary_is_split_at_line_boundaries_with_user_text_escaped(engine, world) -> None:
    period, _ = period_and_commune(engine, world)
    with session_scope(engine) as s:
        evil = s.get(Village, villages(engine, world)[0].id)
        evil.name = "Thôn <i>Mới</i> & Cũ"
    long = EVIL + " " + " ".join(f"ý-kiến-{k}" for k in range(140))
    submit(engine, world, villages(engine, world), period.due_at - timedelta(days=1), text=long)
    at = at_push(engine, world)
    plan(engine, at)
    parts = render_row(engine, summary_key(world.period_id, POLICE_CHAT, DUE), at, charts=False)
    assert parts is not None and 2 <= len(parts.texts) <= MAX_PARTS
    assert all(tg_len(t) <= 1200 for t in parts.texts)  # each part a phone page
    assert "/tonghop bao-cao-6-thang 2026-6T" in parts.texts[-1]  # the rest: /tonghop, paged
    joined = "\n".join(parts.texts)
    assert "<script>" not in joined and "&lt;script&gt;" in joined and "<b>đậm</b>" not in joined
    assert "Thôn &lt;i&gt;Mới&lt;/i&gt; &amp; Cũ" in joined and "<i>Mới</i>" not in joined
    for t in parts.texts:
        assert t.count("<b>") == t.count("</b>") and t.count("<i>") == t.count("</i>")
    # every village's opinion line shown starts and ends in one part (cut at line boundaries)
    bullets = [line for t in parts.texts for line in t.split("\n") if line.startswith("• <b>Thôn")]
    assert bullets and all(re.search(r"… \[\d+\]$", line) for line in bullets), bullets


# ---------------------------------------------------------------------------------------------- sending


def police_group(server: EmulatorServer) -> None:  # noqa: F811
    server.add_group(POLICE_CHAT, "Công an xã Hiệp Lực")


async def test_sent_once_with_the_charts_first_and_marked_sent(engine, world, server, tg, limiter) -> None:  # noqa: F811
    police_group(server)
    period, _ = period_and_commune(engine, world)
    submit(engine, world, villages(engine, world)[:4], period.due_at - timedelta(days=1), text="Ổn.")
    at = at_push(engine, world)
    plan(engine, at)
    report = await send_due(engine, tg, limiter, at)
    assert report.sent == 1
    messages = server.bot_messages(POLICE_CHAT)
    kinds = [m["kind"] for m in messages]
    assert kinds[:2] == ["photo", "photo"] and set(kinds[2:]) == {"text"}
    assert "Đã hết hạn nộp báo cáo" in messages[2]["text"]
    row = pushes(engine)[summary_key(world.period_id, POLICE_CHAT, DUE)]
    assert row.status == OutboxStatus.SENT and row.payload[PARTS_SENT] == len(messages) - 1
    assert row.telegram_message_id == messages[-1]["message_id"]
    # planned again after a restart and dispatched again: nothing new
    assert plan(engine, at + timedelta(minutes=5)) == 0
    again = await send_due(engine, tg, limiter, at + timedelta(minutes=5))
    assert again.claimed == 0 and len(server.bot_messages(POLICE_CHAT)) == len(messages)


async def test_a_failure_midway_resumes_without_resending_parts(engine, world, server, tg, limiter) -> None:  # noqa: F811
    police_group(server)
    period, _ = period_and_commune(engine, world)
    long = " ".join(f"ý-kiến-{k}" for k in range(140))
    submit(engine, world, villages(engine, world), period.due_at - timedelta(days=1), text=long)
    at = at_push(engine, world)
    plan(engine, at)
    # the 2nd text part fails with a 502: the photos and the 1st text are recorded as sent
    server.set_faults(FaultPlan(script={"sendMessage": [None, "502"]}, hold_seconds=0))
    first = await send_due(engine, tg, limiter, at)
    assert first.retried == 1
    row = pushes(engine)[summary_key(world.period_id, POLICE_CHAT, DUE)]
    assert row.status == OutboxStatus.PENDING and row.payload[PARTS_SENT] == 3 and row.attempts == 1
    sent_before = server.bot_messages(POLICE_CHAT)
    assert [m["kind"] for m in sent_before] == ["photo", "photo", "text"]
    server.set_faults(None)
    second = await send_due(engine, tg, limiter, row.due_at)
    assert second.sent == 1
    after = server.bot_messages(POLICE_CHAT)
    texts = [m["text"] for m in after if m["kind"] == "text"]
    assert Counter(texts).most_common(1)[0][1] == 1  # no part twice
    assert [m["kind"] for m in after].count("photo") == 2
    parts = render_row(engine, row.key, at, charts=False)
    assert parts is not None and texts == list(parts.texts)
    assert pushes(engine)[row.key].status == OutboxStatus.SENT


async def test_a_crash_after_some_parts_resumes_after_the_lease(engine, world, server, tg, limiter) -> None:  # noqa: F811
    police_group(server)
    period, _ = period_and_commune(engine, world)
    submit(engine, world, villages(engine, world)[:3], period.due_at - timedelta(days=1))
    at = at_push(engine, world)
    plan(engine, at)
    key = summary_key(world.period_id, POLICE_CHAT, DUE)
    # as if a dispatcher died after sending the two photos: the row is still `sending`, progress 2
    with session_scope(engine) as s:
        row = s.exec(select(Outbox).where(Outbox.key == key)).one()
        row.status, row.claimed_by, row.claimed_until = (
            OutboxStatus.SENDING,
            "dead",
            at + timedelta(minutes=2),
        )
        row.payload = {**row.payload, PARTS_SENT: 2}
    assert (await send_due(engine, tg, limiter, at + timedelta(minutes=1))).claimed == 0  # lease still held
    report = await send_due(engine, tg, limiter, at + timedelta(minutes=3))
    assert report.sent == 1
    kinds = [m["kind"] for m in server.bot_messages(POLICE_CHAT)]
    assert "photo" not in kinds and kinds and set(kinds) == {"text"}
    assert pushes(engine)[key].status == OutboxStatus.SENT


async def test_a_refused_photo_is_skipped_and_the_text_still_goes(engine, world, server, tg, limiter) -> None:  # noqa: F811
    police_group(server)
    at = at_push(engine, world)
    plan(engine, at)

    def broken_chart(session: Session, row: Outbox, now: datetime) -> Parts | None:
        parts = render_summary_push(session, row, now, charts=False)
        assert parts is not None
        return Parts(parts.texts, (Photo(b"not an image", "x.png", "biểu đồ"),))

    report = await send_due(engine, tg, limiter, at, render=broken_chart)
    assert report.sent == 1 and not report.failed
    assert [m["kind"] for m in server.bot_messages(POLICE_CHAT)] == ["text"]
    assert [r.status for r in server.requests_for("sendPhoto")] == [400]
    assert pushes(engine)[summary_key(world.period_id, POLICE_CHAT, DUE)].status == OutboxStatus.SENT


async def test_the_bots_scheduler_plans_and_sends_the_push_with_its_defaults(
    engine,
    world,
    server,  # noqa: F811
    tg,  # noqa: F811
    limiter,  # noqa: F811
) -> None:
    """No plan=/render= given: what `baocao run`/`serve` tick does — the push is planned and rendered too."""
    from bot.clock import FixedClock
    from bot.reminders.scheduler import ReminderScheduler

    police_group(server)
    period, _ = period_and_commune(engine, world)
    submit(engine, world, villages(engine, world)[:4], period.due_at - timedelta(days=1), text="Ổn.")
    at = at_push(engine, world)
    scheduler = ReminderScheduler(
        engine, tg, tick_seconds=1, clock=FixedClock(at), limiter=limiter, default_tz="Asia/Ho_Chi_Minh"
    )
    await scheduler.run_cycle()
    row = pushes(engine)[summary_key(world.period_id, POLICE_CHAT, DUE)]
    assert row.status == OutboxStatus.SENT
    kinds = [m["kind"] for m in server.bot_messages(POLICE_CHAT)]
    assert kinds.count("photo") == 2
    sent_before = len(kinds)
    await scheduler.run_cycle()  # a second tick (or a restart) neither plans nor sends it again
    assert len(pushes(engine)) == 1 + sum(1 for k in pushes(engine) if k.endswith(":complete"))
    assert len(server.bot_messages(POLICE_CHAT)) == sent_before
