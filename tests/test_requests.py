"""Ad hoc requests in process: /yeucau from the police to the units' heads, typed deadlines, some units only,
a restart half-way, who may not ask, `baocao request`, and reminders only for the chosen units."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from bot.cli import main
from bot.clock import FixedClock
from bot.services import reminders, requests
from bot.services.accounts import TelegramUser, create_invite, redeem_invite
from bot.services.completeness import previous_period
from storage.db import session_scope
from storage.models import (
    AuditLog,
    Commune,
    CommuneForm,
    Membership,
    Outbox,
    PendingRequest,
    Period,
    PeriodRequest,
    PeriodUnit,
    Village,
)
from tests.support.client import running_bot
from tests.support.telegram import FakeUser
from tests.support.world import local, sign_up_commune

AN = FakeUser(2001, "An", "Hoàng Văn")  # head of Nà Làng
BINH = FakeUser(2002, "Bình", "Nông Thị")  # deputy of Nà Làng
DUNG = FakeUser(2004, "Dung", "Ma Thị")  # head of Bản Duồm
CUONG = FakeUser(2003, "Cường", "Lý Văn")  # police of Hiệp Lực
OTHER_POLICE = FakeUser(2010, "Khánh")  # police of Xã Khác
STRANGER = FakeUser(2099, "Lạ")
NOW = local(5, 6, 9)  # Wednesday 06/05/2026, 09:00 local
FORM = "bao-cao-6-thang"


@pytest.fixture
def world(engine):
    w = sign_up_commune(engine)
    with session_scope(engine) as s:  # another commune, using the same form, with its own police officer
        other = Commune(code="xa-khac", name="Xã Khác", created_at=NOW, updated_at=NOW)
        s.add(other)
        s.flush()
        s.add(Village(commune_id=other.id, name="Thôn Xa", created_at=NOW, updated_at=NOW))
        s.add(CommuneForm(commune_id=other.id, form_id=FORM))
        s.flush()
        code = create_invite(s, role="police", commune="xa-khac", now=NOW, actor="t").code
        redeem_invite(s, code, TelegramUser(OTHER_POLICE.id, OTHER_POLICE.id, "Khánh"), now=NOW)
    return w


@pytest.fixture
async def bot(engine, database_url, world):
    async with running_bot(engine, database_url, FixedClock(NOW), world=world) as client:
        yield client


def request_periods(engine) -> list[Period]:
    with session_scope(engine) as s:
        return list(s.exec(select(Period).where(Period.code.startswith("YC-")).order_by(Period.id)))  # type: ignore[attr-defined]


def notices(engine, period_id: int) -> list[Outbox]:
    with session_scope(engine) as s:
        return list(s.exec(select(Outbox).where(Outbox.period_id == period_id, Outbox.kind == "notice")))


def pending_row(engine, person_id: int) -> PendingRequest | None:
    with session_scope(engine) as s:
        return s.get(PendingRequest, person_id)


async def choose_form_and_typed_deadline(bot, due: str = "thứ sáu") -> None:
    await bot.send(CUONG, "/yeucau")
    assert "Đồng chí chọn biểu mẫu" in bot.last_text(CUONG)
    await bot.press_button(CUONG, "Báo cáo 6 tháng")
    assert "Hạn nộp đến khi nào?" in bot.last_text(CUONG)
    await bot.send(CUONG, due)


# ---------------------------------------------------------------------------------------------- the whole flow


async def test_a_request_to_one_village_reaches_its_heads_only(bot) -> None:
    w = bot.world
    await choose_form_and_typed_deadline(bot)
    text = bot.last_text(CUONG)
    assert "hạn hết ngày 08/05/2026 (thứ sáu)" in text and "Đã chọn: 0/14 thôn · trang 1/2" in text
    labels = [label for label, _ in bot.buttons(CUONG)]
    assert len(labels) <= 12 and labels[0] == "Tất cả các thôn (14)" and "Trang sau ▶" in labels
    await bot.press_button(CUONG, "Trang sau")
    await bot.press_button(CUONG, "Thôn Nà Làng")
    assert "✔ Thôn Nà Làng" in [label for label, _ in bot._last_markup(CUONG.id)[1]]
    assert "Đã chọn: 1/14 thôn" in bot.last_text(CUONG)
    await bot.press_button(CUONG, "Xong (1 thôn)")
    confirm = bot.last_text(CUONG)
    assert "Xác nhận yêu cầu" in confirm and "1 thôn — Thôn Nà Làng" in confirm
    assert "hết ngày 08/05/2026 (thứ sáu)" in confirm
    await bot.press_button(CUONG, "Gửi yêu cầu")
    sent = bot.last_text(CUONG)
    assert "Đã gửi yêu cầu" in sent and "YC-0605-1" in sent and "tới <b>1</b> thôn" in sent
    assert "chưa có trưởng thôn" not in sent

    (period,) = request_periods(bot.engine)
    assert period.label == "Yêu cầu đột xuất ngày 06/05/2026" and period.series is None
    assert period.opens_at == NOW and period.due_at == local(5, 9)  # the end of Friday 08/05, local time
    assert period.closes_at == local(5, 16)
    with session_scope(bot.engine) as s:
        assert [u.village_id for u in s.exec(select(PeriodUnit))] == [w.na_lang]
        asked = s.get(PeriodRequest, period.id)
        assert asked.by_person_id == w.cuong and asked.by_name == ""
        assert (
            s.exec(select(AuditLog).where(AuditLog.action == "period.request")).one().actor
            == f"person:{w.cuong}"
        )
    assert {(r.person_id, r.status) for r in notices(bot.engine, period.id)} == {
        (w.an, "sent"),
        (w.binh, "sent"),
    }
    assert pending_row(bot.engine, w.cuong) is None

    notice = bot.last_text(AN)  # sent at once after the commit
    assert "Công an xã yêu cầu báo cáo đột xuất" in notice and "hết ngày 08/05/2026" in notice
    assert bot.buttons(AN)[-1][1] == f"rp:{period.id}"
    assert "yêu cầu báo cáo đột xuất" in bot.last_text(BINH)
    assert not any("đột xuất" in t for t in bot.texts(DUNG))

    await bot.send(AN, "/baocao")
    assert "Yêu cầu đột xuất ngày 06/05/2026" in bot.last_text(AN)
    await bot.press(AN, f"rp:{period.id}")
    assert bot.drafts()[-1].period_id == period.id

    await bot.send(DUNG, "/baocao")  # a head outside the request: not listed, cannot open it
    assert "Yêu cầu đột xuất" not in bot.last_text(DUNG) and "6 tháng đầu năm 2026" in bot.last_text(DUNG)
    await bot.press(DUNG, f"rp:{period.id}")
    assert all(d.period_id != period.id or d.village_id != w.ban_duom for d in bot.drafts())

    summary = "\n".join(await bot.ask(CUONG, "/tonghop YC-0605-1"))
    assert "Yêu cầu đột xuất ngày 06/05/2026" in summary and "Xã Hiệp Lực" in summary
    listed = "\n".join(await bot.ask(CUONG, "/tonghop 2030-XX"))
    assert "YC-0605-1" in listed


async def test_all_villages_with_a_quick_deadline_says_who_has_no_head(bot) -> None:
    w = bot.world
    await bot.send(CUONG, "/yeucau")
    await bot.press_button(CUONG, "Báo cáo 6 tháng")
    await bot.press_button(CUONG, "Hết hôm nay")
    await bot.press_button(CUONG, "Tất cả các thôn")
    assert "tất cả 14 thôn" in bot.last_text(CUONG)
    await bot.press_button(CUONG, "Gửi yêu cầu")
    sent = bot.last_text(CUONG)
    assert "tới <b>2</b> thôn" in sent and "12 thôn chưa có trưởng thôn đăng ký" in sent
    assert "Thôn Khuổi Ổ" in sent and "Thôn Nà Làng" not in sent.split("🚫")[1]
    (period,) = request_periods(bot.engine)
    assert period.due_at == local(5, 7)
    with session_scope(bot.engine) as s:
        assert s.exec(select(PeriodUnit)).all() == []
    assert {r.person_id for r in notices(bot.engine, period.id)} == {w.an, w.binh, w.dung}
    # a second request the same day gets the next code
    await bot.send(CUONG, "/yeucau")
    await bot.press_button(CUONG, "Báo cáo 6 tháng")
    await bot.press_button(CUONG, "7 ngày")
    await bot.press_button(CUONG, "Tất cả các thôn")
    await bot.press_button(CUONG, "Gửi yêu cầu")
    assert [p.code for p in request_periods(bot.engine)] == ["YC-0605-1", "YC-0605-2"]
    assert request_periods(bot.engine)[1].label.endswith("(2)")


async def test_the_units_are_paged_and_a_toggle_undoes(bot) -> None:
    await choose_form_and_typed_deadline(bot, "3 ngày")
    await bot.press_button(CUONG, "Trang sau")
    page_two = [label for label, _ in bot._last_markup(CUONG.id)[1]]
    assert "◀ Trang trước" in page_two and "Thôn Bản Duồm" not in page_two
    await bot.press_button(CUONG, "Thôn Phiêng Lầu")
    await bot.press_button(CUONG, "Thôn Phiêng Lầu")
    await bot.press_button(CUONG, "Xong")
    assert bot.answers()[-1] == "Đồng chí chưa chọn thôn nào."
    assert request_periods(bot.engine) == []


# ---------------------------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("thứ sáu", date(2026, 5, 8)),
        ("Thu 6", date(2026, 5, 8)),
        ("t4", date(2026, 5, 6)),  # today is a Wednesday
        ("chủ nhật", date(2026, 5, 10)),
        ("20/12", date(2026, 12, 20)),
        ("5/1", date(2027, 1, 5)),  # a day already past this year: next year's
        ("20/12/2026", date(2026, 12, 20)),
        ("3 ngày", date(2026, 5, 9)),
        ("hôm nay", date(2026, 5, 6)),
        ("mai", date(2026, 5, 7)),
        ("2 tuần", date(2026, 5, 20)),
    ],
)
def test_typed_deadlines_are_read(typed: str, expected: date) -> None:
    assert requests.read_deadline(typed, date(2026, 5, 6)) == expected


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("1/1/2026", "past"),
        ("20/12/2027", "too_far"),
        ("400 ngày", "too_far"),
        ("31/02", "unreadable"),
        ("sớm nhất có thể", "unreadable"),
        ("", "unreadable"),
    ],
)
def test_bad_deadlines_are_refused_with_a_reason(typed: str, reason: str) -> None:
    with pytest.raises(requests.DeadlineError) as caught:
        requests.read_deadline(typed, date(2026, 5, 6))
    assert caught.value.reason == reason


async def test_a_bad_typed_deadline_keeps_the_officer_at_the_step(bot) -> None:
    w = bot.world
    await choose_form_and_typed_deadline(bot, "01/01/2026")
    text = bot.last_text(CUONG)
    assert "đã qua" in text and "Hạn nộp đến khi nào?" in text
    assert pending_row(bot.engine, w.cuong).step == "due"
    await bot.send(CUONG, "20/12/2027")
    assert "xa quá một năm" in bot.last_text(CUONG)
    await bot.send(CUONG, "ngày mốt gì đó")
    assert "Chưa hiểu hạn “ngày mốt gì đó”" in bot.last_text(CUONG)
    assert pending_row(bot.engine, w.cuong).step == "due"
    await bot.send(CUONG, "20/12")
    assert "hạn hết ngày 20/12/2026 (chủ nhật)" in bot.last_text(CUONG)
    await bot.send(CUONG, "21/12")  # typing at the units step: pointed at the buttons
    assert any("hãy bấm nút bên dưới" in t for t in bot.said(CUONG))
    assert pending_row(bot.engine, w.cuong).due_on == date(2026, 12, 20)


async def test_huy_and_the_cancel_button_drop_the_request(bot) -> None:
    w = bot.world
    await choose_form_and_typed_deadline(bot)
    await bot.send(CUONG, "/huy")
    assert "Đã hủy yêu cầu" in bot.last_text(CUONG) and pending_row(bot.engine, w.cuong) is None
    await bot.send(CUONG, "thứ sáu")  # no longer taken as a deadline
    assert "Đồng chí gõ" not in bot.last_text(CUONG) and pending_row(bot.engine, w.cuong) is None
    await bot.send(CUONG, "/yeucau")
    await bot.press_button(CUONG, "Hủy")
    assert "Đã hủy yêu cầu" in bot.last_text(CUONG)
    await bot.press(CUONG, "yc:ok")  # an old button after the cancel
    assert "đã gửi hoặc đã hủy" in bot.last_text(CUONG)
    assert request_periods(bot.engine) == []


# ---------------------------------------------------------------------------------------------- a restart


async def test_a_restart_half_way_loses_nothing(engine, database_url, world) -> None:
    async with running_bot(engine, database_url, FixedClock(NOW), world=world) as first:
        await first.send(CUONG, "/yeucau")
        await first.press_button(CUONG, "Báo cáo 6 tháng")
        await first.send(CUONG, "20/5")
        await first.press_button(CUONG, "Thôn Bản Duồm")
    later = FixedClock(NOW + timedelta(hours=2))
    async with running_bot(engine, database_url, later, world=world, first_update_id=100) as second:
        await second.press(CUONG, "yc:n")
        assert "1 thôn — Thôn Bản Duồm" in second.last_text(CUONG)
        await second.press(CUONG, "yc:ok")
        assert "tới <b>1</b> thôn" in second.last_text(CUONG)
        assert "yêu cầu báo cáo đột xuất" in second.last_text(DUNG)
    (period,) = request_periods(engine)
    assert period.due_at == local(5, 21) and period.opens_at == NOW + timedelta(hours=2)


# ---------------------------------------------------------------------------------------------- who may not


async def test_a_village_head_and_a_stranger_cannot_ask(bot) -> None:
    for user in (AN, STRANGER):
        await bot.send(user, "/yeucau")
        assert "chưa có" not in bot.last_text(user) or user is STRANGER
        assert "Công an xã" in bot.last_text(user) or "mã mời" in bot.last_text(user)
        await bot.press(user, "yc:ok")
        await bot.press(user, f"yc:c:{bot.world.commune_id}")
    with session_scope(bot.engine) as s:
        assert s.exec(select(PendingRequest)).all() == []
    assert request_periods(bot.engine) == []
    assert "chỉ dành cho <b>cán bộ Công an xã</b>" in bot.texts(AN)[-3]


async def test_police_of_another_commune_cannot_reach_into_hiep_luc(bot) -> None:
    w = bot.world
    await bot.press(OTHER_POLICE, "yc:ok")  # nothing in progress
    assert "đã gửi hoặc đã hủy" in bot.last_text(OTHER_POLICE)
    await bot.send(OTHER_POLICE, "/yeucau")
    assert "Xã Khác" in bot.last_text(OTHER_POLICE)
    await bot.press(OTHER_POLICE, f"yc:c:{w.commune_id}")  # forged: Hiệp Lực's commune
    assert "không có quyền" in bot.last_text(OTHER_POLICE)
    await bot.press_button(OTHER_POLICE, "Báo cáo 6 tháng")
    await bot.press_button(OTHER_POLICE, "7 ngày")
    await bot.press(OTHER_POLICE, f"yc:v:{w.na_lang}")  # forged: a village of Hiệp Lực
    assert "không có quyền" in bot.last_text(OTHER_POLICE)
    assert pending_row(bot.engine, bot.person(OTHER_POLICE).id).village_ids is None
    with session_scope(bot.engine) as s:
        refused = s.exec(select(AuditLog).where(AuditLog.action == "auth.refused")).all()
        assert {r.detail["data"] for r in refused} >= {f"yc:c:{w.commune_id}", f"yc:v:{w.na_lang}"}
    await bot.press_button(OTHER_POLICE, "Tất cả các thôn")
    await bot.press_button(OTHER_POLICE, "Gửi yêu cầu")
    (period,) = request_periods(bot.engine)
    assert period.commune_id != w.commune_id
    assert not any("đột xuất" in t for t in bot.texts(AN))


# ---------------------------------------------------------------------------------------------- reminders


def test_reminders_are_planned_for_the_chosen_units_only(engine, world) -> None:
    w = world
    with session_scope(engine) as s:
        commune = s.get(Commune, w.commune_id)
        made = requests.create_request(
            s,
            commune=commune,
            form_id=FORM,
            due_on=date(2026, 5, 12),
            village_ids=[w.na_lang],
            now=NOW,
            by=None,
            by_name="cli",
            notice=lambda period, title: ("yêu cầu", []),
            default_tz="Asia/Ho_Chi_Minh",
        )
        period_id = made.period.id
        assert made.told == [("Thôn Nà Làng", 2)] and made.no_head == []
        assert requests.period_village_ids(s, made.period) == {w.na_lang}
        assert requests.period_village_ids(s, w.period_id) is None
    with session_scope(engine) as s:
        reminders.plan(s, local(5, 12, 10))  # the last day, mid-morning
    with session_scope(engine) as s:
        rows = s.exec(select(Outbox).where(Outbox.period_id == period_id, Outbox.kind == "reminder")).all()
        assert rows and {r.person_id for r in rows} == {w.an, w.binh}
        assert {r.village_id for r in rows} == {w.na_lang}
    with session_scope(engine) as s:
        reminders.plan(s, local(5, 19, 10))  # the scheduled period's last day: it still reminds everyone
    with session_scope(engine) as s:
        regular = s.exec(
            select(Outbox).where(Outbox.period_id == w.period_id, Outbox.kind == "reminder")
        ).all()
        assert {w.an, w.dung} <= {r.person_id for r in regular}


# ---------------------------------------------------------------------------------------------- the command line


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "BAOCAO_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("bot.cli.requests.system_clock", lambda: NOW)


def test_baocao_request_makes_the_same_request(cli_env, engine, world, capsys) -> None:
    w = world
    argv = ["request", "--commune", "hiep-luc", "--form", FORM, "--due", "20/12"]
    assert main([*argv, "--villages", "Thôn Nà Làng, thôn bản duồm", "--by", "Đ/c <Trưởng>"]) == 0
    out = capsys.readouterr().out
    assert "Đã tạo yêu cầu YC-0605-1" in out and "hết ngày 20/12/2026" in out and "2 thôn" in out
    (period,) = request_periods(engine)
    assert period.due_at == datetime(2026, 12, 20, 17, 0, tzinfo=UTC)
    with session_scope(engine) as s:
        assert {u.village_id for u in s.exec(select(PeriodUnit))} == {w.na_lang, w.ban_duom}
        assert s.get(PeriodRequest, period.id).by_name == "Đ/c <Trưởng>"
    rows = notices(engine, period.id)
    assert {r.person_id for r in rows} == {w.an, w.binh, w.dung} and {r.status for r in rows} == {"pending"}
    assert rows[0].payload["steps"][0]["buttons"] == [[["📝 Làm báo cáo", f"rp:{period.id}"]]]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--due", "hôm qua"], '--due "hôm qua" không đọc được'),
        (["--due", "1/1/2026"], "đã qua"),
        (["--due", "1/1/2030"], "xa quá một năm"),
        (["--due", "20/12", "--villages", "Thôn Không Có"], "Không có thôn 'Thôn Không Có'"),
        (["--due", "20/12", "--villages", " , "], "Không có thôn (trống)"),
        (["--due", "20/12", "--form", "khong-co"], "không có biểu mẫu định kỳ 'khong-co'"),
        (["--due", "20/12", "--commune", "xa-khong-co"], "Không có xã 'xa-khong-co'"),
    ],
)
def test_baocao_request_bad_arguments_are_one_line(cli_env, engine, world, capsys, extra, message) -> None:
    argv = ["request", "--commune", "hiep-luc", "--form", FORM]
    code = main([*argv, *extra])
    err = capsys.readouterr().err
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert request_periods(engine) == []


# ---------------------------------------------------------------------------------------------- the roll-up role

SANG = FakeUser(2020, "Sáng")  # supervisor of Thái Nguyên
TAM = FakeUser(2021, "Tâm")  # supervisor of another province


def add_supervisors(engine) -> None:
    """A second commune of Thái Nguyên using the form, with one village; Sáng supervises the province."""
    with session_scope(engine) as s:
        ben = Commune(code="xa-ben", name="Xã Bên", province="Thái Nguyên", created_at=NOW, updated_at=NOW)
        s.add(ben)
        s.flush()
        s.add(Village(commune_id=ben.id, name="Thôn Bên", created_at=NOW, updated_at=NOW))
        s.add(CommuneForm(commune_id=ben.id, form_id=FORM))
        s.flush()
        for user, province in ((SANG, "Thái Nguyên"), (TAM, "Lào Cai")):
            code = create_invite(s, role="supervisor", province=province, now=NOW, actor="t").code
            redeem_invite(s, code, TelegramUser(user.id, user.id, user.first_name), now=NOW)


async def test_the_roll_up_role_asks_every_commune_of_its_province(bot) -> None:
    w = bot.world
    add_supervisors(bot.engine)
    await bot.send(SANG, "/yeucau")
    labels = [label for label, _ in bot.buttons(SANG)]
    assert (
        labels[0] == "Tất cả các xã — Thái Nguyên (2 xã)"
        and "Xã Hiệp Lực" in labels
        and "Xã Khác" not in labels
    )
    await bot.press_button(SANG, "Tất cả các xã")
    assert "tất cả 2 xã của Thái Nguyên" in bot.last_text(SANG)
    await bot.press_button(SANG, "Báo cáo 6 tháng")
    await bot.send(SANG, "thứ hai")
    confirm = bot.last_text(SANG)
    assert "hết ngày 11/05/2026 (thứ hai)" in confirm and "tất cả 15 thôn" in confirm
    await bot.press_button(SANG, "Gửi yêu cầu")
    sent = bot.last_text(SANG)
    assert "tới 2 xã của Thái Nguyên" in sent and "Xã Hiệp Lực: 2 thôn nhận, 12 thôn chưa có" in sent
    periods = request_periods(bot.engine)
    assert len(periods) == 2 and {p.code for p in periods} == {"YC-0605-1"}
    assert {p.due_at for p in periods} == {local(5, 12)}
    assert "yêu cầu báo cáo đột xuất" in bot.last_text(DUNG)
    with session_scope(bot.engine) as s:
        assert {r.by_person_id for r in s.exec(select(PeriodRequest))} == {bot.person(SANG).id}
    assert w.commune_id in {p.commune_id for p in periods}
    rollup = "\n".join(await bot.ask(SANG, "/tonghop YC-0605-1"))
    assert "Thái Nguyên" in rollup and "Yêu cầu đột xuất ngày 06/05/2026" in rollup


async def test_the_roll_up_role_of_another_province_reaches_nothing_here(bot) -> None:
    w = bot.world
    add_supervisors(bot.engine)
    await bot.send(TAM, "/yeucau")  # Lào Cai has no commune here yet: nothing to ask
    assert "chưa được gắn với xã nào" in bot.last_text(TAM)
    with session_scope(bot.engine) as s:
        s.add(Commune(code="xa-lao", name="Xã Lào", province="Lào Cai", created_at=NOW, updated_at=NOW))
    await bot.send(TAM, "/yeucau")
    assert [label for label, _ in bot.buttons(TAM)] == ["Tất cả các xã — Lào Cai (1 xã)", "Xã Lào", "❌ Hủy"]
    await bot.press(TAM, f"yc:c:{w.commune_id}")  # forged: Hiệp Lực is not in Lào Cai
    assert "không có quyền" in bot.last_text(TAM)
    await bot.press(TAM, "yc:t:1")  # forged: a province index it does not have
    assert "không có quyền" in bot.last_text(TAM)
    await bot.send(CUONG, "/yeucau")
    await bot.press(CUONG, "yc:t:0")  # police, not the roll-up role
    assert "không có quyền" in bot.last_text(CUONG)
    assert request_periods(bot.engine) == []


# ---------------------------------------------------------------------------------------------- summarised and exported


def test_a_request_is_in_the_digest_for_its_units_only_and_exported(cli_env, engine, world, tmp_path) -> None:
    from bot.reminders.content import render_outbox
    from bot.services.reports import new_receipt
    from storage.models import Submission

    w = world
    with session_scope(engine) as s:
        made = requests.create_request(
            s,
            commune=s.get(Commune, w.commune_id),
            form_id=FORM,
            due_on=date(2026, 5, 12),
            village_ids=[w.na_lang, w.ban_duom],
            now=NOW,
            by=None,
            by_name="cli",
            notice=lambda period, title: ("yêu cầu", []),
            default_tz="Asia/Ho_Chi_Minh",
        )
        period_id = made.period.id
        s.add(
            Submission(
                village_id=w.na_lang,
                form_id=FORM,
                period_id=period_id,
                form_version=1,
                answers={},
                sent_at=local(5, 11, 9),
                received_at=local(5, 11, 9),
                on_time=True,
                receipt=new_receipt(),
            )
        )
    at = local(5, 13, 12)  # the day after the deadline
    with session_scope(engine) as s:
        reminders.plan(s, at)
    with session_scope(engine) as s:
        digests = s.exec(select(Outbox).where(Outbox.period_id == period_id, Outbox.kind == "digest")).all()
        assert digests
        text = render_outbox(s, digests[0], at).text
    assert "Yêu cầu đột xuất ngày 06/05/2026" in text and "Thôn Nà Làng" in text and "Thôn Bản Duồm" in text
    assert "Thôn Khuổi Ổ" not in text and "Thôn Pác Cáp" not in text  # not asked
    out = tmp_path / "yc.xlsx"
    assert main(["export", "--commune", "hiep-luc", "--period", made.period.code, "-o", str(out)]) == 0
    assert out.stat().st_size > 1000


async def test_every_screen_fits_a_phone_in_a_big_commune(bot) -> None:
    w = bot.world
    with session_scope(bot.engine) as s:
        for n in range(40):
            name = f"Thôn Bản Làng Phía Trên Đồi Cao Số {n:02d}"
            s.add(Village(commune_id=w.commune_id, name=name, created_at=NOW, updated_at=NOW))
    await choose_form_and_typed_deadline(bot, "7 ngày")
    for _ in range(7):
        await bot.press_button(CUONG, "Trang sau")
    for label in [label for label, _ in bot.buttons(CUONG) if label.startswith("Thôn")]:
        await bot.press_button(CUONG, label)
    assert "Đã chọn: 5/54 thôn · trang 8/8" in bot.last_text(CUONG)
    await bot.press_button(CUONG, "Xong")
    await bot.press_button(CUONG, "Gửi yêu cầu")
    await bot.send(CUONG, "/yeucau")
    await bot.press_button(CUONG, "Báo cáo 6 tháng")
    await bot.press_button(CUONG, "3 ngày")
    await bot.press_button(CUONG, "Tất cả các thôn (54)")
    await bot.press_button(CUONG, "Gửi yêu cầu")
    assert "52 thôn chưa có trưởng thôn" in bot.last_text(CUONG) and "và 39 thôn khác" in bot.last_text(CUONG)
    assert len(request_periods(bot.engine)) == 2
    for call in bot.request.sent(CUONG.id):
        text = call.params.get("text") or ""
        markup = call.params.get("reply_markup") or {}
        assert len(text) <= 1200, text
        assert sum(len(row) for row in markup.get("inline_keyboard", [])) <= 12


async def test_bare_tonghop_shows_the_open_request_then_the_scheduled_period_again(
    engine, database_url, world
) -> None:
    w = world
    with session_scope(engine) as s:
        requests.create_request(
            s,
            commune=s.get(Commune, w.commune_id),
            form_id=FORM,
            due_on=date(2026, 5, 8),
            village_ids=None,
            now=NOW,
            by=None,
            by_name="cli",
            notice=lambda period, title: ("yêu cầu", []),
            default_tz="Asia/Ho_Chi_Minh",
        )
    clock = FixedClock(local(5, 7, 9))
    async with running_bot(engine, database_url, clock, world=world) as client:
        assert "Yêu cầu đột xuất ngày 06/05/2026" in "\n".join(await client.ask(CUONG, "/tonghop"))
        clock.advance(days=9)  # 16/05: the request no longer takes reports, 2026-6T still does
        text = "\n".join(await client.ask(CUONG, "/tonghop"))
        assert "6 tháng đầu năm 2026" in text and "Kỳ: <b>Yêu cầu" not in text


async def test_police_of_several_communes_pick_the_commune_first(bot) -> None:
    with session_scope(bot.engine) as s:  # invites give one police role; a second one set by hand
        other = s.exec(select(Commune).where(Commune.code == "xa-khac")).one()
        s.add(Membership(person_id=bot.world.cuong, role="police", commune_id=other.id, created_at=NOW))
    await bot.send(CUONG, "/yeucau")
    assert "Đồng chí chọn xã" in bot.last_text(CUONG)
    assert [label for label, _ in bot.buttons(CUONG)] == ["Xã Hiệp Lực", "Xã Khác", "❌ Hủy"]
    await bot.press_button(CUONG, "Xã Khác")
    assert "Xã Khác" in bot.last_text(CUONG) and "chọn biểu mẫu" in bot.last_text(CUONG)
    await bot.press_button(CUONG, "Báo cáo 6 tháng")
    await bot.press_button(CUONG, "Thứ sáu này")
    await bot.press_button(CUONG, "Thôn Xa")
    await bot.press_button(CUONG, "Xong")
    assert "1 thôn — Thôn Xa" in bot.last_text(CUONG)
    await bot.press_button(CUONG, "Gửi yêu cầu")
    assert "1 thôn chưa có trưởng thôn đăng ký" in bot.last_text(CUONG)
    (period,) = request_periods(bot.engine)
    assert period.commune_id != bot.world.commune_id


async def test_the_summary_of_a_request_counts_its_units_only(bot) -> None:
    w = bot.world
    with session_scope(bot.engine) as s:
        made = requests.create_request(
            s,
            commune=s.get(Commune, w.commune_id),
            form_id=FORM,
            due_on=date(2026, 5, 12),
            village_ids=[w.na_lang, w.ban_duom],
            now=NOW,
            by=None,
            by_name="cli",
            notice=lambda period, title: ("yêu cầu", []),
            default_tz="Asia/Ho_Chi_Minh",
        )
        code = made.period.code
    text = "\n".join(await bot.ask(CUONG, f"/tonghop {code}"))
    assert "0/2 thôn đã nộp" in text, text
    assert "Thôn Khuổi Ổ" not in text


async def test_a_request_has_no_previous_period_and_is_never_one(bot) -> None:
    w = bot.world
    with session_scope(bot.engine) as s:
        made = requests.create_request(
            s,
            commune=s.get(Commune, w.commune_id),
            form_id=FORM,
            due_on=date(2026, 5, 12),
            village_ids=None,
            now=NOW,
            by=None,
            by_name="cli",
            notice=lambda period, title: ("yêu cầu", []),
            default_tz="Asia/Ho_Chi_Minh",
        )
        request_id = made.period.id
    with session_scope(bot.engine) as s:
        assert previous_period(s, s.get(Period, request_id)) is None
        later = s.exec(select(Period).where(Period.form_id == FORM, Period.code == "2026-6T")).one()
        prev = previous_period(s, later)
        assert prev is None or prev.id != request_id
