"""The police's default period (one service function for /tonghop, /xuat and /nhacnho), the December case,
and /molai by a loose village name, with its buttons, its true note about the head, and who may not use it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.clock import FixedClock
from bot.services import police_focus, reports
from bot.services.accounts import TelegramUser, create_invite, redeem_invite
from storage.db import session_scope
from storage.models import AuditLog, Commune, Outbox, Period, Person, Reopening, Submission, Village
from tests.support.client import BotClient, running_bot
from tests.support.telegram import FakeUser
from tests.support.world import local, sign_up_commune

AN = FakeUser(2001, "An", "Hoàng Văn")  # head of Thôn Nà Làng
CUONG = FakeUser(2003, "Cường", "Lý Văn")  # police of Hiệp Lực
OTHER_POLICE = FakeUser(2010, "Khánh")  # police of Xã Khác
STRANGER = FakeUser(2099, "Lạ")
DECEMBER = local(12, 7, 9)  # the annual period (due 20/11) still takes late reports until 20/12


@pytest.fixture
async def police(engine, database_url):
    world = sign_up_commune(engine)
    clock = FixedClock(DECEMBER)
    with session_scope(engine) as s:
        other = Commune(code="xa-khac", name="Xã Khác", created_at=clock(), updated_at=clock())
        s.add(other)
        s.flush()
        s.add(Village(commune_id=other.id, name="Thôn Xa", created_at=clock(), updated_at=clock()))
        s.flush()
        code = create_invite(s, role="police", commune="xa-khac", now=clock(), actor="t").code
        redeem_invite(s, code, TelegramUser(OTHER_POLICE.id, OTHER_POLICE.id, "Khánh"), now=clock())
    async with running_bot(engine, database_url, clock, world=world) as client:
        yield client


def period(engine, code: str, form: str) -> Period:
    with session_scope(engine) as s:
        row = s.exec(select(Period).where(Period.code == code, Period.form_id == form)).one()
        s.expunge(row)
        return row


def submit_all(engine, p: Period, at: datetime) -> None:
    with session_scope(engine) as s:
        for village in s.exec(select(Village).where(Village.commune_id == p.commune_id)):
            s.add(
                Submission(
                    village_id=village.id,
                    form_id=p.form_id,
                    period_id=p.id,
                    form_version=1,
                    answers={},
                    sent_at=at,
                    received_at=at,
                    on_time=True,
                    receipt=reports.new_receipt(),
                )
            )


def focus(engine, commune_id: int, now: datetime, **kw) -> str | None:
    with session_scope(engine) as s:
        found = police_focus.focus_period(s, commune_id, now, **kw)
        return found.code if found is not None else None


# --- one default period ----------------------------------------------------------------------------


async def test_in_december_tonghop_xuat_and_nhacnho_all_pick_the_annual_period(police: BotClient) -> None:
    annual = period(police.engine, "2026-CN", "bao-cao-nam")
    text = "\n".join(await police.ask(CUONG, "/tonghop"))
    assert "Năm 2026" in text and "6 tháng đầu năm 2026" not in text
    await police.send(CUONG, "/xuat")
    assert "Năm 2026" in police.last_text(CUONG) and "6 tháng đầu năm 2026" not in police.last_text(CUONG)
    assert f"xe:{annual.id}:xlsx" in police.last_keyboard(CUONG)[1]
    await police.send(CUONG, "/nhacnho")
    said = police.last_text(CUONG)
    assert "còn nợ báo cáo Năm 2026" in said and "6 tháng" not in said.split("\n")[0]
    assert {r.period_id for r in police_nudges(police.engine)} == {annual.id}


def police_nudges(engine) -> list[Outbox]:
    with session_scope(engine) as s:
        return list(s.exec(select(Outbox).where(Outbox.kind == "nudge")))


async def test_the_default_follows_where_something_is_happening(police: BotClient) -> None:
    e, cid = police.engine, police.world.commune_id
    assert focus(e, cid, local(5, 15)) == "2026-6T"  # open now (before its deadline)
    assert focus(e, cid, local(5, 25)) == "2026-6T"  # due, late reports still taken, villages missing
    assert focus(e, cid, local(11, 10)) == "2026-CN"  # open now
    assert focus(e, cid, DECEMBER) == "2026-CN"  # the December case
    assert focus(e, cid, DECEMBER, form_id="bao-cao-6-thang") == "2026-6T"  # one form: its latest
    assert focus(e, cid, local(12, 25)) == "2026-CN"  # nothing in play: the most recently due
    # a village reopened on the semiannual report: that is where something is happening now
    with session_scope(e) as s:
        six = s.exec(select(Period).where(Period.code == "2026-6T")).one()
        s.add(
            Reopening(
                village_id=police.world.na_lang, period_id=six.id, at=local(12, 24), until=local(12, 31)
            )
        )
    assert focus(e, cid, local(12, 25)) == "2026-6T"
    assert focus(e, cid, local(12, 31, 1)) == "2026-CN"  # the reopening ended
    # every village filed the semiannual report in May: after its deadline the old annual one is not news,
    # the semiannual one is the most recently due
    submit_all(e, period(e, "2026-6T", "bao-cao-6-thang"), local(5, 10))
    assert focus(e, cid, local(5, 25)) == "2026-6T"
    assert focus(e, cid, local(4, 1), opened_only=True) == "2025-CN"  # nothing open: the latest due
    assert focus(e, cid, datetime(2025, 1, 2, tzinfo=UTC)) == "2025-6T"  # nothing opened yet: the next
    assert focus(e, cid, datetime(2025, 1, 2, tzinfo=UTC), opened_only=True) is None


async def test_every_command_offers_other_periods_as_buttons(police: BotClient) -> None:
    police.clock.at = local(5, 25)  # the semiannual period takes late reports; the annual 2025 one is closed
    await police.send(CUONG, "/nhacnho")
    assert not police.request.sent(CUONG.id)[-1].params.get("reply_markup")  # nothing else to nudge
    with session_scope(police.engine) as s:  # a village reopened on last year's annual report
        annual = s.exec(select(Period).where(Period.code == "2025-CN")).one()
        s.add(
            Reopening(
                village_id=police.world.na_lang, period_id=annual.id, at=local(5, 24), until=local(5, 30)
            )
        )
    police.clock.advance(hours=2)
    await police.send(CUONG, "/nhacnho")
    assert "6 tháng đầu năm 2026" in police.last_text(CUONG)
    (button,) = police.buttons(CUONG)
    assert "Năm 2025" in button[0] and button[1] == f"nudge:all:{annual.id}"
    await police.send(CUONG, "/xuat")
    labels = [label for label, _ in police.buttons(CUONG)]
    assert any("2025-CN" in label for label in labels), labels  # another period, by a button
    await police.press_button(CUONG, "2025-CN")
    assert "Năm 2025" in police.last_text(CUONG)
    assert any(d.startswith("xe:") for d in police.last_keyboard(CUONG)[1])
    await police.send(CUONG, "/tonghop")
    assert any(d.startswith("sm:l:") for _, d in police.buttons(CUONG))  # "Kỳ khác"


async def test_a_wrong_code_offers_the_periods_as_buttons(police: BotClient) -> None:
    (out,) = await police.ask(CUONG, "/tonghop 2030-XX")
    assert "Không tìm thấy kỳ “2030-XX”" in out and len(out) <= 1200
    buttons = police.buttons(CUONG)
    assert 1 <= len(buttons) <= 12 and all(d.startswith("sm:p:") for _, d in buttons)
    assert "Năm 2026" in buttons[0][0]  # the period in play first
    await police.press(CUONG, buttons[0][1])
    assert "Năm 2026" in police.last_text(CUONG)
    await police.send(CUONG, "/xuat 2030-XX")
    buttons = police.buttons(CUONG)
    assert buttons and all(d.startswith("xp:") for _, d in buttons)
    await police.press(CUONG, buttons[0][1])
    assert "Năm 2026" in police.last_text(CUONG) and "Chọn loại tệp" in police.last_text(CUONG)


# --- /molai ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["na lang", "Nà Làng", "nà làng", "NA  LANG", "thon na lang", "Thôn Nà Làng"]
)
async def test_molai_finds_a_village_by_a_loose_name(police: BotClient, typed: str) -> None:
    await police.send(CUONG, f"/molai {typed}")
    said = police.last_text(CUONG)
    assert "Đã mở lại báo cáo <b>Năm 2026</b> của <b>Thôn Nà Làng</b>" in said, said
    assert "Bot gửi tin báo cho trưởng thôn" in said
    assert "mở lại" in police.last_text(AN)
    with session_scope(police.engine) as s:
        (row,) = s.exec(select(Reopening)).all()
        assert row.village_id == police.world.na_lang


async def test_molai_bare_offers_paged_village_buttons(police: BotClient) -> None:
    await police.send(CUONG, "/molai")
    first = police.buttons(CUONG)
    assert "trang 1/2" in police.last_text(CUONG) and len(first) <= 12
    villages = [label for label, d in first if d.startswith("mo:v:")]
    assert len(villages) == 10 and "Thôn Xa" not in villages
    await police.press_button(CUONG, "Trang sau")
    second = [label for label, d in police.buttons(CUONG) if d.startswith("mo:v:")]
    assert len(second) == 4 and not set(second) & set(villages)  # 14 villages, each on one page
    await police.press_button(CUONG, "Nà Làng" if "Thôn Nà Làng" in second else second[0])
    assert "Đã mở lại" in police.last_text(CUONG)


async def test_molai_ambiguous_and_unknown_names(police: BotClient) -> None:
    await police.send(CUONG, "/molai na")
    assert "Có nhiều thôn khớp với “na”" in police.last_text(CUONG)
    labels = sorted(label for label, _ in police.buttons(CUONG))
    assert labels == ["Thôn Nà Cà", "Thôn Nà Kèng", "Thôn Nà Làng", "Thôn Nà Pài"]
    await police.send(CUONG, "/molai <b>khong co</b>")
    said = police.last_text(CUONG)
    assert "Không tìm thấy thôn “&lt;b&gt;khong co&lt;/b&gt;”" in said and "<b>khong" not in said
    assert len(police.buttons(CUONG)) <= 12
    with session_scope(police.engine) as s:
        assert s.exec(select(Reopening)).all() == []


async def test_molai_offers_periods_when_the_default_is_not_past_due(police: BotClient) -> None:
    police.clock.at = local(5, 15)  # the semiannual period is open, before its deadline; nothing is past due
    await police.send(CUONG, "/molai na lang")
    assert "Chưa có kỳ nào đã quá hạn mà còn nhận báo cáo muộn" in police.last_text(CUONG)
    with session_scope(
        police.engine
    ) as s:  # last year's periods still take late reports (a long late window)
        for p in s.exec(select(Period).where(Period.code.in_(["2025-6T", "2025-CN"]))):
            p.closes_at = local(6, 30)
    await police.send(CUONG, "/molai na lang")
    assert "Mở lại báo cáo kỳ nào cho <b>Thôn Nà Làng</b>" in police.last_text(CUONG)
    labels = [label for label, _ in police.buttons(CUONG)]
    assert len(labels) == 2 and "2025-CN" in labels[0] and "2025-6T" in labels[1]  # newest deadline first
    await police.press_button(CUONG, "2025-CN")
    assert "Đã mở lại báo cáo <b>Năm 2025</b>" in police.last_text(CUONG)
    await police.send(CUONG, "/molai na lang 2026-6t")  # a code typed still works, any case
    assert "Đã mở lại báo cáo <b>6 tháng đầu năm 2026</b>" in police.last_text(CUONG)
    with session_scope(police.engine) as s:
        assert len(s.exec(select(Reopening)).all()) == 2


async def test_molai_says_truly_when_the_head_cannot_be_reached(police: BotClient) -> None:
    with session_scope(
        police.engine
    ) as s:  # Dung (head of Bản Duồm) blocked the bot: marked by the dispatcher
        dung = s.get(Person, police.world.dung)
        dung.active, dung.blocked_at = False, DECEMBER - timedelta(days=30)
    await police.send(CUONG, "/molai ban duom")
    said = police.last_text(CUONG)
    assert "Đã mở lại" in said and "đã chặn bot" in said and "thử lại" not in said
    await police.send(CUONG, "/molai khuoi o")  # nobody registered for Khuổi Ổ
    said = police.last_text(CUONG)
    assert "chưa có trưởng thôn đăng ký" in said and "thử lại" not in said
    with session_scope(police.engine) as s:
        assert s.exec(select(Outbox).where(Outbox.kind == "notice")).all() == []


# --- who may not, and bad buttons ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["/molai", "/molai na lang", "/tonghop", "/nhacnho", "/xuat"])
async def test_heads_and_strangers_are_refused(police: BotClient, command: str) -> None:
    for user, said in ((AN, "chỉ dành cho <b>cán bộ Công an xã</b>"), (STRANGER, "chưa đăng ký")):
        out = await police.ask(user, command)
        assert len(out) == 1 and said in out[0] and "Nà Làng" not in out[0], out
    with session_scope(police.engine) as s:
        assert s.exec(select(Reopening)).all() == [] and police_nudges(police.engine) == []


async def test_police_of_another_commune_cannot_press_forged_buttons(police: BotClient) -> None:
    w = police.world
    six = period(police.engine, "2026-6T", "bao-cao-6-thang")
    for data in (f"mo:v:{w.na_lang}", f"mo:r:{w.na_lang}:{six.id}", f"nudge:all:{six.id}"):
        out = await police.tap(OTHER_POLICE, data)
        assert len(out) == 1 and "không phụ trách" in out[0] and "Nà Làng" not in out[0], (data, out)
    out = await police.tap(OTHER_POLICE, f"sm:p:{six.id}")
    assert "không có quyền xem" in out[0]
    for data in (f"xp:{six.id}", f"xe:{six.id}:xlsx"):
        out = await police.tap(OTHER_POLICE, data)
        assert len(out) == 1 and "không có quyền xuất" in out[0] and "Nà Làng" not in out[0]
    assert not [c for c in police.request.calls if c.method == "sendDocument"]
    for data in ("xp:abc", "xp", "xp:1:2"):
        assert await police.tap(CUONG, data) == [] or "không có quyền" in police.last_text(CUONG)
    await police.send(OTHER_POLICE, "/molai na lang")  # their commune has no such village
    assert "Không tìm thấy thôn" in police.last_text(OTHER_POLICE)
    assert all("Nà" not in label for label, _ in police.buttons(OTHER_POLICE))
    with session_scope(police.engine) as s:
        assert s.exec(select(Reopening)).all() == []
        assert s.exec(select(AuditLog).where(AuditLog.entity_id == "callback:reopen")).all()


async def test_a_period_of_another_commune_with_one_s_own_village_is_refused(police: BotClient) -> None:
    with session_scope(police.engine) as s:
        other = s.exec(select(Commune).where(Commune.code == "xa-khac")).one()
        p = Period(
            commune_id=other.id,
            form_id="bao-cao-6-thang",
            code="2026-6T",
            label="x",
            opens_at=local(5, 1),
            due_at=local(5, 20),
            closes_at=local(6, 20),
            created_at=DECEMBER,
            updated_at=DECEMBER,
        )
        s.add(p)
        s.flush()
        pid = p.id
    out = await police.tap(CUONG, f"mo:r:{police.world.na_lang}:{pid}")
    assert len(out) == 1 and "không phụ trách" in out[0]
    with session_scope(police.engine) as s:
        assert s.exec(select(Reopening)).all() == []


@pytest.mark.parametrize("data", ["mo", "mo:zz:1", "mo:v:abc", "mo:r:1", "mo:v:-1", "mo:p:x", "mo:v:1:2:3"])
async def test_stale_or_broken_reopen_buttons_get_a_toast_only(police: BotClient, data: str) -> None:
    assert await police.tap(CUONG, data) == []
    assert "cũ" in (police.answers()[-1] or "")


async def test_a_stale_page_number_shows_the_last_page(police: BotClient) -> None:
    await police.tap(CUONG, "mo:p:99")
    assert "trang 2/2" in police.last_text(CUONG)
