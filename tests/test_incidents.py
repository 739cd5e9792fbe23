"""Urgent incidents in seconds: the early police alert of `alert_early_when` (3 interactions from /suco), the
alert's urgency line and short labels, the follow-up at submission, one receipt per incident, and /suco for
the police (list with the alerts' state, details with photo and pin, pages, Excel, who may see what)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.cli import main
from bot.delivery.outbox import KIND_ALERT, retry_delay
from bot.forms.loader import form_from_dict
from bot.services.accounts import create_invite, forget_person
from bot.services.incidents import PAGE_SIZE
from bot.services.reports import new_receipt
from storage.db import session_scope
from storage.models import Commune, Outbox, OutboxStatus, PoliceChat, Submission, Village
from tests.support.client import BotClient
from tests.support.telegram import DocumentRecorder, FakeUser
from tests.test_alert_delivery import PENDING_NOTE, ChatFaults, tick
from tests.test_report_conversation import AN, CUONG, DUNG, POLICE_CHAT, heads_bot

OTHER_POLICE = FakeUser(2010, "Khánh", "Đinh Văn")  # police of another commune
BOTH = FakeUser(2011, "Hải", "Lò Văn")  # police of Hiệp Lực and head of Thôn Khuổi Ổ
LONG_QUESTIONS = ("Đã xảy ra việc gì?", "Việc này gấp đến mức nào?", "Nếu đồng chí đang ở gần")


@pytest.fixture
async def bot(engine, database_url, clock):
    """Hiệp Lực with its heads, Cường (police), and Khánh, police of another commune; uploads recorded."""
    async with heads_bot(engine, database_url, clock, DocumentRecorder()) as b:
        with session_scope(engine) as s:
            s.add(Commune(code="son-duong", name="Xã Sơn Dương", created_at=clock(), updated_at=clock()))
            s.flush()
            police = create_invite(s, role="police", commune="hiep-luc", now=clock(), actor="t").code
            other = create_invite(s, role="police", commune="son-duong", now=clock(), actor="t").code
        await b.send(CUONG, f"/start {police}")
        await b.send(OTHER_POLICE, f"/start {other}")
        yield b


def alert_rows(bot: BotClient) -> list[Outbox]:
    with session_scope(bot.engine) as s:
        rows = list(s.exec(select(Outbox).where(Outbox.kind == "alert").order_by(Outbox.id)))
        for row in rows:
            s.expunge(row)
        return rows


def receipts(bot: BotClient, user: FakeUser = AN) -> list[str]:
    return [t for t in bot.texts(user) if "Mã biên nhận" in t]


async def report_urgent(bot: BotClient, user: FakeUser = AN) -> int:
    """/suco, the first kind (theft), "Khẩn cấp": returns the interactions used."""
    await bot.send(user, "/suco")
    await bot.press_button(user, "Trộm cắp")
    await bot.press_button(user, "Khẩn cấp")
    return 3


async def finish(bot: BotClient, user: FakeUser = AN, *, photo: bool = True, pin: bool = True) -> None:
    """Answer the rest (a photo and a location when asked) and press "Gửi"."""
    for _ in range(60):
        tokens = bot.tokens(user)
        if "confirm" in tokens:
            break
        text = bot.texts(user)[-1]
        if "⚠️" in text:
            await (bot.press_token(user, "skip") if "skip" in tokens else bot.send(user, "3"))
        elif photo and "ảnh hiện trường" in text and "skip" in tokens:
            await bot.send_photo(user, "PHOTO-1")
        elif "vị trí trên bản đồ" in text and "skip" in tokens:
            await (bot.send_location(user, 21.6, 105.8) if pin else bot.press_token(user, "skip"))
        elif any(t in tokens for t in ("submit", "d:yday", "n", "c:0")):
            await bot.press_token(user, next(t for t in ("submit", "d:yday", "n", "c:0") if t in tokens))
        elif "skip" in tokens and "giờ" in text:
            await bot.press_token(user, "skip")
        else:
            await bot.send(user, "Mất trộm xe máy ở cổng nhà văn hoá")
    await bot.press_token(user, "confirm")


# ------------------------------------------------------------------------------------ the early alert


async def test_an_urgent_incident_reaches_the_police_within_three_interactions(bot) -> None:
    interactions = await report_urgent(bot)
    alerts = bot.request.texts(POLICE_CHAT)
    assert interactions == 3 and len(alerts) == 1
    alert = alerts[0]
    assert alert.splitlines()[0] == "🚨 <b>KHẨN CẤP</b> — Thôn Nà Làng"
    assert "• Loại sự việc: <b>Trộm cắp tài sản</b>" in alert and "• Mức độ: <b>Khẩn cấp" in alert
    assert f'• Người báo: <a href="tg://user?id={AN.id}">' in alert  # a tappable link to the reporter
    assert not any(q in alert for q in LONG_QUESTIONS)
    said = bot.texts(AN)
    assert (
        any("bot báo ngay cho Công an xã" in t for t in said[-3:]) and "Việc xảy ra vào ngày nào" in said[-1]
    )
    (row,) = alert_rows(bot)
    assert row.status == OutboxStatus.SENT and row.key.startswith("alert:early:BC-")
    assert not bot.submissions()  # the form goes on


async def test_the_full_report_follows_with_the_same_code_photo_and_pin(bot) -> None:
    await report_urgent(bot)
    await finish(bot)
    early, full = bot.request.texts(POLICE_CHAT)[0], bot.request.texts(POLICE_CHAT)[1]
    (sub,) = bot.submissions()
    assert sub.receipt in early and sub.receipt in full and sub.receipt in receipts(bot)[0]
    assert full.startswith("🚨 <b>KHẨN CẤP</b> — Thôn Nà Làng")
    assert "bổ sung đủ chi tiết cho tin báo nhanh lúc 09:00 ngày 15/05/2026" in full
    for label in ("Vị trí", "Ảnh", "Người báo", "Nơi xảy ra", "Mô tả"):
        assert f"• {label}: " in full, label
    assert not any(q in full for q in LONG_QUESTIONS)
    photos = [c for c in bot.request.calls if c.method == "sendPhoto"]
    pins = [c for c in bot.request.calls if c.method == "sendLocation"]
    assert [(int(c.params["chat_id"]), c.params["photo"]) for c in photos] == [(POLICE_CHAT, "PHOTO-1")]
    assert [
        (int(c.params["chat_id"]), float(c.params["latitude"]), float(c.params["longitude"])) for c in pins
    ] == [(POLICE_CHAT, 21.6, 105.8)]
    keys = [r.key for r in alert_rows(bot)]
    assert keys == [f"alert:early:{sub.receipt}:{POLICE_CHAT}", f"alert:{sub.id}:{POLICE_CHAT}"]


async def test_answering_urgent_again_alerts_no_second_time(bot) -> None:
    await report_urgent(bot)
    await bot.press_token(AN, "back")  # back to the urgency question
    await bot.press_button(AN, "trong ngày")
    await bot.press_token(AN, "back")
    await bot.press_button(AN, "Khẩn cấp")
    assert len(alert_rows(bot)) == 1 and len(bot.request.texts(POLICE_CHAT)) == 1


async def test_an_abandoned_draft_keeps_its_early_alert_and_the_police_see_it(bot) -> None:
    await report_urgent(bot)
    await bot.send(AN, "/baocao")  # the head leaves the form
    bot.clock.advance(days=2)
    (row,) = alert_rows(bot)
    assert row.status == OutboxStatus.SENT
    await bot.send(CUONG, "/suco")
    listing = bot.texts(CUONG)[-1]
    assert "1. 🚨" in listing and "Trộm cắp tài sản" in listing and "chưa đủ chi tiết" in listing
    assert "✅ đã báo" in listing
    await bot.press_button(CUONG, "🔎 1")
    detail = bot.texts(CUONG)[-1]
    assert "Tin báo nhanh: ✅ đã tới nhóm Công an xã" in detail and "trưởng thôn chưa gửi" in detail
    # resuming it later still completes the same incident
    await bot.send(AN, "/suco")
    await finish(bot, photo=False, pin=False)
    (sub,) = bot.submissions()
    assert row.key == f"alert:early:{sub.receipt}:{POLICE_CHAT}"


async def test_a_calmer_urgency_is_said_first_and_alerts_only_at_submission(bot) -> None:
    await bot.send(AN, "/suco")
    await bot.press_button(AN, "Trộm cắp")
    await bot.press_button(AN, "trong ngày")
    assert not bot.request.texts(POLICE_CHAT) and not alert_rows(bot)
    await finish(bot)
    (alert,) = [t for t in bot.request.texts(POLICE_CHAT) if "ĐỘT XUẤT" in t]
    assert alert.splitlines()[0] == "⚠️ <b>Cần xử lý trong ngày</b> — Thôn Nà Làng"
    await bot.send(DUNG, "/suco")
    await bot.press_button(DUNG, "Ma túy")
    await bot.press_button(DUNG, "nắm tình hình")
    await finish(bot, DUNG)
    last = [t for t in bot.request.texts(POLICE_CHAT) if "ĐỘT XUẤT" in t][-1]
    assert last.splitlines()[0] == "ℹ️ <b>Báo để Công an xã nắm tình hình</b> — Thôn Bản Duồm"


async def test_two_incidents_in_a_row_are_two_incidents_with_their_own_receipts(bot) -> None:
    for _ in range(2):
        await report_urgent(bot)
        await finish(bot, photo=False, pin=False)
    first, second = bot.submissions()
    assert first.receipt != second.receipt and first.is_current and second.is_current
    assert len(receipts(bot)) == 2 and all("bản sửa" not in r for r in receipts(bot))
    assert second.receipt in receipts(bot)[1]
    assert len([r for r in alert_rows(bot) if r.key.startswith("alert:early:")]) == 2


def test_alert_early_when_is_checked_when_the_form_is_read() -> None:
    base = {
        "id": "x",
        "title": "X",
        "version": 1,
        "kind": "incident",
        "questions": [
            {
                "id": "muc_do",
                "type": "single_choice",
                "label": "Gấp?",
                "choices": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}],
            },
            {"id": "ghi", "type": "text", "label": "Ghi"},
        ],
    }
    ok = form_from_dict({**base, "alert_early_when": "muc_do == 'a'"})
    assert not ok.errors and ok.forms[0].alert_early_when == "muc_do == 'a'"
    for rule, problem in (
        ("muc_do == 'khan'", "không phải giá trị"),
        ("muc == 'a'", "nhắc tới câu không có 'muc'"),
        ("muc_do = 'a'", "lỗi"),
    ):
        result = form_from_dict({**base, "alert_early_when": rule})
        assert result.errors and problem in str(result.errors[0]), (rule, result.errors)
    periodic = form_from_dict({**base, "kind": "periodic", "alert_early_when": "muc_do == 'a'"})
    assert "chỉ dùng cho biểu mẫu kind: incident" in str(periodic.errors[0])


# ------------------------------------------------------------------------------------ police: the list


def add_incidents(bot: BotClient, count: int, village: str = "Thôn Nà Làng") -> list[str]:
    """`count` incidents of the village straight into the database, one an hour before the other."""
    codes = []
    with session_scope(bot.engine) as s:
        vid = s.exec(select(Village.id).where(Village.name == village)).one()
        for n in range(count):
            at = bot.clock() - timedelta(hours=n + 1)
            code = new_receipt()
            s.add(
                Submission(
                    village_id=vid,
                    form_id="su-co",
                    period_id=None,
                    form_version=2,
                    version_no=n + 1,
                    answers={"loai_su_co": "co_bac", "muc_do": "trong_ngay", "mo_ta": "x" * 900},
                    sent_at=at,
                    received_at=at,
                    on_time=True,
                    receipt=code,
                )
            )
            codes.append(code)
    return codes


async def test_police_see_an_empty_list(bot) -> None:
    await bot.send(CUONG, "/suco")
    text = bot.texts(CUONG)[-1]
    assert "Sự việc đột xuất — Xã Hiệp Lực" in text and "Chưa có sự việc đột xuất nào" in text


async def test_the_list_is_paged_newest_first_within_a_phone_screen(bot) -> None:
    codes = add_incidents(bot, PAGE_SIZE + 2)
    await bot.send(CUONG, "/suco")
    first = bot.texts(CUONG)[-1]
    buttons = bot.buttons(CUONG)
    assert len(first) <= 1200 and len(buttons) <= 12, (len(first), len(buttons))
    assert f"{PAGE_SIZE + 2} vụ" in first and "trang 1/2" in first and "⏳" not in first
    opens = [data for label, data in buttons if label.startswith("🔎")]
    assert opens == [f"in:o:{c}" for c in codes[:PAGE_SIZE]]  # newest first
    assert "— không có nhóm để báo" in first  # these never had an alert row
    await bot.press_button(CUONG, "Cũ hơn")
    second = bot.texts(CUONG)[-1]
    assert "trang 2/2" in second and f"{PAGE_SIZE + 1}. " in second
    assert [d for label, d in bot.buttons(CUONG) if label.startswith("🔎")] == [
        f"in:o:{c}" for c in codes[PAGE_SIZE:]
    ]
    await bot.press_button(CUONG, "Mới hơn")
    assert "trang 1/2" in bot.texts(CUONG)[-1]


async def test_the_list_says_which_alerts_did_not_reach_the_police_chat(bot) -> None:
    await report_urgent(bot)
    with session_scope(bot.engine) as s:
        row = s.exec(select(Outbox).where(Outbox.kind == "alert")).one()
        row.status = OutboxStatus.PENDING
        chat = s.exec(select(PoliceChat)).one()
        chat.unreachable_at = bot.clock()
    await bot.send(CUONG, "/suco")
    assert "❌ chưa gửi được" in bot.texts(CUONG)[-1]
    with session_scope(bot.engine) as s:
        s.exec(select(PoliceChat)).one().unreachable_at = None
    await bot.send(CUONG, "/suco")
    assert "⏳ chờ gửi" in bot.texts(CUONG)[-1]


async def test_an_incident_opens_with_short_labels_its_photo_and_its_pin(bot) -> None:
    await report_urgent(bot)
    await finish(bot)
    (sub,) = bot.submissions()
    await bot.send(CUONG, "/suco")
    await bot.press(CUONG, f"in:o:{sub.receipt}")
    said = bot.said(CUONG)
    detail = said[0]
    assert detail.startswith("🚨 <b>KHẨN CẤP</b> — Thôn Nà Làng") and sub.receipt in detail
    assert f'<a href="tg://user?id={AN.id}">' in detail and "Báo cáo đủ: ✅ đã tới nhóm Công an xã" in detail
    assert "• Loại sự việc: <b>Trộm cắp tài sản</b>" in detail and not any(
        q in detail for q in LONG_QUESTIONS
    )
    assert all(len(t) <= 1200 for t in said)
    calls = [c for c in bot.request.calls if int(c.params.get("chat_id", 0)) == CUONG.id]
    assert any(c.method == "sendPhoto" and c.params["photo"] == "PHOTO-1" for c in calls)
    assert any(c.method == "sendLocation" and float(c.params["latitude"]) == 21.6 for c in calls)


async def test_a_long_incident_goes_on_in_a_second_message(bot) -> None:
    (code,) = add_incidents(bot, 1)
    with session_scope(bot.engine) as s:
        sub = s.exec(select(Submission)).one()
        sub.answers = {**sub.answers, "da_xu_ly": "y" * 500, "thiet_hai": "z" * 200}
    await bot.press(CUONG, f"in:o:{code}")
    said = bot.said(CUONG)
    assert len(said) == 2 and all(len(t) <= 1200 for t in said) and "(tiếp)" in said[1]
    assert "x" * 900 in "".join(said) and "y" * 500 in "".join(said)


# ------------------------------------------------------------------------------------ who may see what


async def test_a_head_cannot_open_the_incidents_of_the_police(bot) -> None:
    (code,) = add_incidents(bot, 1)
    for data in (f"in:o:{code}", "in:p:0", "in:x"):
        await bot.press(DUNG, data)
        assert "chỉ dành cho <b>cán bộ Công an xã</b>" in bot.texts(DUNG)[-1]
        assert code not in "".join(bot.texts(DUNG))
    await bot.send(DUNG, "/suco")  # a head keeps getting the form
    assert "Đã xảy ra việc gì?" in bot.texts(DUNG)[-1]


async def test_police_of_another_commune_cannot_open_an_incident_by_its_button_data(bot) -> None:
    (code,) = add_incidents(bot, 1)
    await bot.press(OTHER_POLICE, f"in:o:{code}")
    assert "Không tìm thấy sự việc này" in bot.texts(OTHER_POLICE)[-1]
    assert code not in "".join(bot.texts(OTHER_POLICE)) and not bot.request.documents(OTHER_POLICE.id)
    await bot.send(OTHER_POLICE, "/suco")
    assert "Chưa có sự việc đột xuất nào" in bot.texts(OTHER_POLICE)[-1]
    await bot.press(OTHER_POLICE, "in:x")
    assert not bot.request.documents(OTHER_POLICE.id)
    assert any(a.action == "auth.refused" and a.detail.get("data") == f"in:o:{code}" for a in bot.audit())


@pytest.mark.parametrize(
    "data", ["in", "in:o", "in:o:xyz", "in:o:BC-1:2", "in:p:abc", "in:p:-1", "in:zz", "in:x:1"]
)
async def test_bad_button_data_is_answered_and_crashes_nothing(bot, data) -> None:
    add_incidents(bot, 1)
    await bot.press(CUONG, data)
    assert "Xin lỗi, có lỗi" not in "".join(bot.texts(CUONG))
    assert bot.answers()[-1] == "Nút này đã cũ, không còn dùng được."


async def test_police_in_their_group_get_the_list_and_nowhere_else(bot) -> None:
    add_incidents(bot, 1)
    group = {"id": POLICE_CHAT, "type": "supergroup", "title": "Công an xã Hiệp Lực"}
    await bot.send(CUONG, "/suco", group=group)
    assert "Sự việc đột xuất — Xã Hiệp Lực" in bot.request.texts(POLICE_CHAT)[-1]
    stranger_group = {"id": -100555, "type": "supergroup", "title": "Nhóm lạ"}
    await bot.send(CUONG, "/suco", group=stranger_group)
    assert "Sự việc" not in bot.request.texts(-100555)[-1] and "-100555" in bot.request.texts(-100555)[-1]
    await bot.send(AN, "/suco", group=group)  # a head in the police group: no form there
    assert "Đã xảy ra việc gì?" not in bot.request.texts(POLICE_CHAT)[-1]


async def test_someone_both_police_and_head_gets_the_list_with_a_button_to_report(bot) -> None:
    with session_scope(bot.engine) as s:
        head = create_invite(s, role="village_head", village="Thôn Khuổi Ổ", now=bot.clock(), actor="t").code
    await bot.send(BOTH, f"/start {head}")
    with session_scope(bot.engine) as s:
        police = create_invite(s, role="police", commune="hiep-luc", now=bot.clock(), actor="t").code
    await bot.send(BOTH, f"/start {police}")
    await bot.send(BOTH, "/suco")
    assert "Sự việc đột xuất" in bot.texts(BOTH)[-1]
    await bot.press_button(BOTH, "Báo sự việc mới")
    assert "Đã xảy ra việc gì?" in bot.texts(BOTH)[-1]
    await bot.press_button(BOTH, "Trộm cắp")
    await bot.press_button(BOTH, "Khẩn cấp")
    assert "Thôn Khuổi Ổ" in bot.request.texts(POLICE_CHAT)[-1]


# ------------------------------------------------------------------------------------ export


def sheet(content: bytes) -> list[tuple]:
    return list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))


async def test_the_excel_export_has_one_row_per_incident_under_short_labels(bot) -> None:
    await report_urgent(bot)
    await finish(bot)
    codes = add_incidents(bot, 2, village="Thôn Bản Duồm")
    await bot.send(CUONG, "/suco")
    await bot.press_button(CUONG, "Xuất Excel")
    ((name, content, _),) = bot.request.documents(CUONG.id)
    assert name.endswith(".xlsx") and "Sự việc đột xuất" in name
    rows = sheet(content)
    header = rows[0]
    assert header[:8] == (
        "STT",
        "Mã",
        "Thôn, tổ dân phố",
        "Thời điểm báo",
        "Tin báo nhanh",
        "Người báo",
        "Đủ chi tiết",
        "Báo Công an xã",
    )
    assert {"Loại sự việc", "Mức độ", "Vị trí", "Ảnh", "Mô tả"} <= set(header)
    assert not any(q in str(h) for h in header for q in LONG_QUESTIONS)
    assert len(rows) == 4
    (sub,) = [s for s in bot.submissions() if s.receipt not in codes]
    first = dict(zip(header, rows[1], strict=False))
    assert (
        first["Mã"] == sub.receipt
        and first["Mức độ"].startswith("Khẩn cấp")
        and first["Báo Công an xã"] == "Đã báo"
    )
    assert first["Tin báo nhanh"].startswith("Có") and first["Đủ chi tiết"] == "Đã gửi đủ"
    assert first["Vị trí"] == "21.600000, 105.800000" and first["Loại sự việc"] == "Trộm cắp tài sản"
    assert [r[1] for r in rows[2:]] == codes and rows[2][header.index("Mức độ")] == "Cần xử lý trong ngày"
    assert rows[2][4] is None  # no early alert for these


async def test_baocao_export_incidents_writes_the_same_table(
    bot, monkeypatch, tmp_path, database_url
) -> None:
    codes = add_incidents(bot, 3)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "BAOCAO_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "su-viec.xlsx"
    assert main(["export", "--incidents", "--commune", "hiep-luc", "-o", str(out)]) == 0
    rows = sheet(out.read_bytes())
    assert [r[1] for r in rows[1:]] == codes and "Loại sự việc" in rows[0]
    assert main(["export", "--incidents", "--commune", "hiep-luc", "--period", "2026-6T"]) == 1


async def test_an_early_alert_that_cannot_go_now_is_kept_said_truly_and_sent_later(
    engine, database_url, clock
) -> None:
    request = ChatFaults()
    async with heads_bot(engine, database_url, clock, request) as bot:
        request.fail(POLICE_CHAT, "404")
        await report_urgent(bot)
        note = [t for t in bot.texts(AN) if "bot báo ngay cho Công an xã" in t][-1]
        assert note.endswith(PENDING_NOTE)
        (row,) = alert_rows(bot)
        assert row.status == OutboxStatus.PENDING and not bot.request.texts(POLICE_CHAT)
        await bot.send(AN, "/baocao")  # the head leaves the form: the alert stays owed
        await tick(bot, retry_delay(1, KIND_ALERT))
        (alert,) = bot.request.texts(POLICE_CHAT)
        assert alert.startswith("🚨 <b>KHẨN CẤP</b>") and alert_rows(bot)[0].status == OutboxStatus.SENT


async def test_a_forgotten_reporter_s_link_is_erased_from_the_early_alert(bot) -> None:
    await report_urgent(bot)
    (row,) = alert_rows(bot)
    assert f"tg://user?id={AN.id}" in row.payload["by_name"]
    with session_scope(bot.engine) as s:
        forget_person(s, bot.person(AN).id, bot.clock(), "test")
    (row,) = alert_rows(bot)
    assert row.payload["by_name"] == "đã xoá" and str(AN.id) not in str(row.payload)


async def test_without_a_police_chat_the_head_is_asked_to_call(bot) -> None:
    with session_scope(bot.engine) as s:
        s.exec(select(PoliceChat)).one().active = False
    await report_urgent(bot)
    said = [t for t in bot.texts(AN) if "Việc khẩn cấp" in t][-1]
    assert "chưa có nhóm Công an xã" in said and "bot báo ngay" not in said and not alert_rows(bot)
    await bot.send(CUONG, "/suco")
    assert "Chưa có sự việc đột xuất nào" in bot.texts(CUONG)[-1]  # no alert row, no submission yet
