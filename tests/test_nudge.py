"""Police nudges in process: /nhacnho, the digest's buttons, the hourly limit, and who may not nudge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.clock import FixedClock
from bot.reminders.content import render_outbox
from bot.services import reports
from bot.services.accounts import TelegramUser, create_invite, redeem_invite
from storage.db import session_scope
from storage.models import AuditLog, Commune, Outbox, Period, Submission, Village
from tests.support.client import BotClient, running_bot
from tests.support.telegram import FakeUser
from tests.support.world import POLICE_CHAT, local, sign_up_commune

AN = FakeUser(2001, "An", "Hoàng Văn")
DUNG = FakeUser(2004, "Dung", "Ma Thị")
CUONG = FakeUser(2003, "Cường", "Lý Văn")  # police of Hiệp Lực
OTHER_POLICE = FakeUser(2010, "Khánh")  # police of another commune
STRANGER = FakeUser(2099, "Lạ")
GROUP = {"id": POLICE_CHAT, "type": "supergroup", "title": "Công an xã Hiệp Lực"}


def nudges(engine) -> list[Outbox]:
    """The nudges in the outbox, oldest first."""
    with session_scope(engine) as s:
        return list(s.exec(select(Outbox).where(Outbox.kind == "nudge").order_by(Outbox.id)))


async def press_in_group(police: BotClient, user: FakeUser, data: str) -> None:
    """The user presses a button under the digest in the police group."""
    date = datetime.fromtimestamp(1_779_000_000, UTC)
    await police.press(user, data, 77, group=GROUP, query_id="q1", text="📋", date=date)


@pytest.fixture
async def police(engine, database_url):
    world = sign_up_commune(engine)
    clock = FixedClock(local(5, 20, 8))  # the morning after the deadline
    with session_scope(engine) as s:  # another commune with its own police officer and village
        other = Commune(code="xa-khac", name="Xã Khác", created_at=clock(), updated_at=clock())
        s.add(other)
        s.flush()
        s.add(Village(commune_id=other.id, name="Thôn Xa", created_at=clock(), updated_at=clock()))
        s.flush()
        code = create_invite(s, role="police", commune="xa-khac", now=clock(), actor="t").code
        redeem_invite(s, code, TelegramUser(OTHER_POLICE.id, OTHER_POLICE.id, "Khánh"), now=clock())
    async with running_bot(engine, database_url, clock, world=world) as client:
        yield client


def submit(engine, world, village_id: int, at) -> None:
    with session_scope(engine) as s:
        s.add(
            Submission(
                village_id=village_id,
                form_id="bao-cao-6-thang",
                period_id=world.period_id,
                form_version=1,
                answers={},
                sent_at=at,
                received_at=at,
                on_time=True,
                receipt=reports.new_receipt(),
            )
        )


async def test_nhacnho_queues_a_nudge_for_every_reporter_of_every_missing_village(police) -> None:
    w = police.world
    await police.send(CUONG, "/nhacnho")
    text = police.last_text(CUONG.id)
    assert "📣 <b>Đã xếp lịch nhắc</b> 6 tháng đầu năm 2026 (Xã Hiệp Lực)" in text
    assert " • Thôn Bản Duồm\n • Thôn Nà Làng (2 người)" in text
    assert text.startswith("📋 <b>14 thôn</b> còn nợ báo cáo 6 tháng đầu năm 2026")  # 15, none submitted
    no_head = next(line for line in text.split("\n") if "Chưa có trưởng thôn đăng ký" in line)
    assert "Thôn Khuổi Ổ" in no_head and "Nà Làng" not in no_head and "Bản Duồm" not in no_head
    got = {
        (r.person_id, r.village_id, r.chat_id, r.period_id, r.status, r.due_at) for r in nudges(police.engine)
    }
    now = local(5, 20, 8)
    assert got == {
        (w.an, w.na_lang, 2001, w.period_id, "pending", now),
        (w.binh, w.na_lang, 2002, w.period_id, "pending", now),
        (w.dung, w.ban_duom, 2004, w.period_id, "pending", now),
    }
    assert {r.key for r in nudges(police.engine)} >= {f"nudge:{w.na_lang}:{w.period_id}:{w.an}:2026052001"}
    with session_scope(police.engine) as s:
        (entry,) = s.exec(select(AuditLog).where(AuditLog.action == "reminder.nudge")).all()
        assert entry.actor == f"person:{w.cuong}" and set(entry.detail["villages"]) == {
            "Thôn Nà Làng",
            "Thôn Bản Duồm",
        }


async def test_a_village_is_nudged_at_most_once_an_hour(police) -> None:
    await police.send(CUONG, "/nhacnho")
    police.clock.advance(minutes=59)
    await police.send(CUONG, "/nhacnho Thôn Nà Làng")
    text = police.last_text(CUONG.id)
    assert "Không có thôn nào cần nhắc lúc này" in text
    assert "⏳ Vừa nhắc trong vòng 1 giờ, chưa nhắc lại:\n • Thôn Nà Làng (lúc 08:00)" in text
    assert len(nudges(police.engine)) == 3
    police.clock.advance(minutes=2)
    await police.send(CUONG, "/nhacnho thôn nà làng")  # any case, same village
    assert "Đã xếp lịch nhắc" in police.last_text(CUONG.id)
    assert len(nudges(police.engine)) == 5


async def test_one_village_by_name_and_a_submitted_one_is_skipped(police) -> None:
    w = police.world
    submit(police.engine, w, w.ban_duom, local(5, 19))
    await police.send(CUONG, "/nhacnho Thôn Bản Duồm")
    text = police.last_text(CUONG.id)
    assert "Không có thôn nào cần nhắc" in text and "☑️ Đã nộp, không cần nhắc: Thôn Bản Duồm" in text
    assert nudges(police.engine) == []
    await police.send(CUONG, "/nhacnho Thôn Nà Làng 2026-6T")
    assert {r.village_id for r in nudges(police.engine)} == {w.na_lang}


async def test_unknown_village_offers_the_villages_as_buttons(police) -> None:
    w = police.world
    await police.send(CUONG, "/nhacnho Thôn Không Có")
    text = police.last_text(CUONG.id)
    assert (
        "Không tìm thấy thôn “Thôn Không Có”" in text and "còn 4 thôn khác" in text
    )  # 14 villages, 10 shown
    buttons = police.buttons(CUONG)
    assert len(buttons) == 10 and not any("Thôn Xa" in label for label, _ in buttons)
    assert all(data.endswith(f":{w.period_id}") and data.startswith("nudge:v:") for _, data in buttons)
    assert nudges(police.engine) == []
    await police.send(CUONG, "/nhacnho ba duom")  # a loose name: no diacritics, no "Thôn", "Bản" cut short
    assert "Không tìm thấy" in police.last_text(CUONG.id)
    await police.send(CUONG, "/nhacnho ban duom")
    assert "Đã xếp lịch nhắc" in police.last_text(CUONG.id)
    assert {r.village_id for r in nudges(police.engine)} == {w.ban_duom}


async def test_an_ambiguous_name_offers_the_candidates(police) -> None:
    await police.send(CUONG, "/nhacnho na")  # Nà Làng, Nà Pài, Nà Kèng, Nà Cà
    assert "Có nhiều thôn khớp với “na”" in police.last_text(CUONG.id)
    labels = sorted(label for label, _ in police.buttons(CUONG))
    assert labels == ["Thôn Nà Cà", "Thôn Nà Kèng", "Thôn Nà Làng", "Thôn Nà Pài"]
    data = next(d for label, d in police.buttons(CUONG) if label == "Thôn Nà Làng")
    await police.press(CUONG, data)
    assert "Đã xếp lịch nhắc" in police.last_text(CUONG.id)
    assert {r.village_id for r in nudges(police.engine)} == {police.world.na_lang}


async def test_the_digest_button_in_the_police_group(police) -> None:
    w = police.world
    await press_in_group(police, CUONG, f"nudge:all:{w.period_id}")
    assert "Đã xếp lịch nhắc" in police.last_text(POLICE_CHAT)
    assert police.answers()[-1] == "Đã xếp lịch nhắc 2 thôn"
    assert len(nudges(police.engine)) == 3
    await press_in_group(police, CUONG, f"nudge:all:{w.period_id}")  # pressed again at once
    assert "Vừa nhắc trong vòng 1 giờ" in police.last_text(POLICE_CHAT)
    assert police.answers()[-1] == "Không có thôn nào được nhắc" and len(nudges(police.engine)) == 3


async def test_one_village_button(police) -> None:
    w = police.world
    await police.press(CUONG, f"nudge:v:{w.ban_duom}:{w.period_id}")
    assert {r.village_id for r in nudges(police.engine)} == {w.ban_duom}


async def test_nhacnho_in_the_group(police) -> None:
    await police.send(CUONG, "/nhacnho", group=GROUP)
    assert "Đã xếp lịch nhắc" in police.last_text(POLICE_CHAT)


async def test_the_nudge_says_who_asked_and_stops_when_submitted(police) -> None:
    w = police.world
    await police.send(CUONG, "/nhacnho Thôn Nà Làng")
    row = nudges(police.engine)[0]
    with session_scope(police.engine) as s:
        out = render_outbox(s, s.get(Outbox, row.id), local(5, 20, 8, 1))
    assert out.text.startswith("📣 <b>Công an xã nhắc</b>\nThôn Nà Làng chưa gửi <b>Báo cáo 6 tháng")
    assert "Hạn là hết ngày 19/05/2026, đã quá 8 giờ. Đề nghị gửi ngay." in out.text
    assert out.buttons == ((("📝 Làm báo cáo", f"rp:{w.period_id}"),),)
    submit(police.engine, w, w.na_lang, local(5, 20, 8, 2))
    with session_scope(police.engine) as s:
        assert render_outbox(s, s.get(Outbox, row.id), local(5, 20, 8, 3)) is None
    with session_scope(police.engine) as s:  # a nudge the dispatcher never got to is dropped after 12 h
        other = s.exec(select(Outbox).where(Outbox.village_id == w.na_lang)).first()
        assert render_outbox(s, other, local(5, 20, 21)) is None


async def test_nothing_to_nudge_once_the_period_closed(police) -> None:
    police.clock.at = local(6, 20)
    await police.send(CUONG, "/nhacnho")  # the default period (the one just due) is named, and closed
    assert "Kỳ 6 tháng đầu năm 2026 đã hết hạn nhận báo cáo" in police.last_text(CUONG.id)
    await police.press(CUONG, f"nudge:all:{police.world.period_id}")
    assert "đã hết hạn nhận báo cáo" in police.last_text(CUONG.id)
    assert nudges(police.engine) == []


# --- who may not nudge


@pytest.mark.parametrize(
    ("user", "said"),
    [(STRANGER, "Đồng chí chưa đăng ký"), (AN, "chỉ dành cho <b>cán bộ Công an xã</b>")],
    ids=["stranger", "village head"],
)
async def test_nhacnho_is_for_police_only(police, user: FakeUser, said: str) -> None:
    await police.send(user, "/nhacnho")
    assert said in police.last_text(user.id)
    await police.send(user, "/nhacnho", group=GROUP)  # in the police group too
    assert said in police.last_text(POLICE_CHAT)
    assert nudges(police.engine) == []


@pytest.mark.parametrize("user", [STRANGER, AN], ids=["stranger", "village head"])
async def test_the_button_is_for_police_only(police, user: FakeUser) -> None:
    await police.press(user, f"nudge:all:{police.world.period_id}")
    assert nudges(police.engine) == []
    with session_scope(police.engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "auth.refused")).all()


async def test_police_of_another_commune_cannot_nudge_this_one(police) -> None:
    w = police.world
    await police.press(OTHER_POLICE, f"nudge:all:{w.period_id}")
    assert "không phụ trách xã của báo cáo này" in police.last_text(OTHER_POLICE.id)
    await police.press(OTHER_POLICE, f"nudge:v:{w.na_lang}:{w.period_id}")
    assert nudges(police.engine) == []
    await police.send(OTHER_POLICE, "/nhacnho Thôn Nà Làng")  # not one of their villages
    assert "Không tìm thấy thôn" in police.last_text(OTHER_POLICE.id)
    await police.send(OTHER_POLICE, "/nhacnho")  # their own commune has no period
    assert "Xã Khác: hiện không có kỳ báo cáo nào đang mở" in police.last_text(OTHER_POLICE.id)
    assert nudges(police.engine) == []
    with session_scope(police.engine) as s:
        refused = s.exec(select(AuditLog).where(AuditLog.entity_id == "callback:nudge")).all()
        assert len(refused) == 2


async def test_a_forged_village_of_another_commune_is_refused(police) -> None:
    with session_scope(police.engine) as s:
        far = s.exec(select(Village).where(Village.name == "Thôn Xa")).one()
    await police.press(CUONG, f"nudge:v:{far.id}:{police.world.period_id}")
    assert "không phụ trách" in police.last_text(CUONG.id)
    assert nudges(police.engine) == []


@pytest.mark.parametrize("data", ["nudge:all:abc", "nudge:all", "nudge:v:1", "nudge:x:1:2", "nudge:all:1:2"])
async def test_garbled_buttons_are_stale(police, data: str) -> None:
    await police.press(CUONG, data)
    assert police.answers()[-1] and nudges(police.engine) == []


async def test_a_period_that_does_not_exist_is_refused(police) -> None:
    await police.press(CUONG, "nudge:all:999999")
    assert "không phụ trách" in police.last_text(CUONG.id) and nudges(police.engine) == []


async def test_a_deactivated_period_cannot_be_nudged(police) -> None:
    with session_scope(police.engine) as s:
        s.get(Period, police.world.period_id).active = False
    await press_in_group(police, CUONG, f"nudge:all:{police.world.period_id}")
    assert "không có kỳ báo cáo mã 2026-6T đang mở" in police.last_text(POLICE_CHAT)
    assert nudges(police.engine) == []


async def test_pressing_twice_within_the_hour_queues_once(police) -> None:
    await police.press(CUONG, f"nudge:v:{police.world.na_lang}:{police.world.period_id}")
    police.clock.advance(seconds=30)
    await police.press(CUONG, f"nudge:v:{police.world.na_lang}:{police.world.period_id}")
    assert len(nudges(police.engine)) == 2 and police.clock() - local(5, 20, 8) < timedelta(hours=1)


async def test_a_province_supervisor_uses_the_button_not_the_command(police) -> None:
    boss = FakeUser(2020, "Tỉnh")
    with session_scope(police.engine) as s:
        code = create_invite(s, role="supervisor", province="Thái Nguyên", now=police.clock(), actor="t").code
        redeem_invite(s, code, TelegramUser(boss.id, boss.id, "Cán bộ tỉnh"), now=police.clock())
    await police.send(boss, "/nhacnho")
    assert "dành cho <b>cán bộ Công an xã</b>" in police.last_text(boss.id) and nudges(police.engine) == []
    await police.press(boss, f"nudge:all:{police.world.period_id}")
    assert "Đã xếp lịch nhắc" in police.last_text(boss.id) and len(nudges(police.engine)) == 3
