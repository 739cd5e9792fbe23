"""Planning into the outbox and rendering rows at send time, against the database (SQLite or PostgreSQL)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.calendar.reminder_planner import digest_key, reminder_key
from bot.calendar.reminder_rules import DEFAULT_RULES, ReminderRules
from bot.forms.inputs import Text
from bot.reminders.content import Outgoing, render_outbox
from bot.services import reminders, reports
from bot.services.reminders import insert_outbox
from bot.texts.filters import vn_span
from storage.db import session_scope
from storage.models import (
    Commune,
    CommuneForm,
    Membership,
    Outbox,
    OutboxStatus,
    Period,
    Person,
    PoliceChat,
    Submission,
    Village,
)
from tests.support.world import POLICE_CHAT, ROOT, SignedUpCommune, local, sign_up_commune


@pytest.fixture
def world(engine) -> SignedUpCommune:
    return sign_up_commune(engine)


def rows(engine, **where) -> list[Outbox]:
    with session_scope(engine) as s:
        query = select(Outbox).order_by(Outbox.id)
        for name, value in where.items():
            query = query.where(getattr(Outbox, name) == value)
        return list(s.exec(query))


def plan_at(engine, now: datetime) -> reminders.PlanReport:
    with session_scope(engine) as s:
        return reminders.plan(s, now)


def render(engine, row: Outbox, now: datetime) -> Outgoing | None:
    with session_scope(engine) as s:
        return render_outbox(s, s.get(Outbox, row.id), now)


def mark_sent(engine, *ids: int, at: datetime) -> None:
    """What the dispatcher does after Telegram said ok."""
    with session_scope(engine) as s:
        for row_id in ids:
            row = s.get(Outbox, row_id)
            row.status, row.sent_at = OutboxStatus.SENT, at


def submit(engine, world: SignedUpCommune, village_id: int, person_id: int, at: datetime) -> None:
    """A (re)submission of the 6-month report, as bot.services.reports stores it."""
    with session_scope(engine) as s:
        previous = reports.current_submission(s, village_id, "bao-cao-6-thang", world.period_id)
        if previous is not None:
            previous.is_current = False
            s.flush()
        s.add(
            Submission(
                village_id=village_id,
                form_id="bao-cao-6-thang",
                period_id=world.period_id,
                form_version=1,
                version_no=previous.version_no + 1 if previous else 1,
                answers={},
                submitted_by_person_id=person_id,
                sent_at=at,
                received_at=at,
                on_time=at < local(5, 20),
                receipt=reports.new_receipt(),
            )
        )


# --- planning into the outbox


def test_the_first_reminder_goes_to_every_reporter_of_every_village(engine, world) -> None:
    report = plan_at(engine, local(5, 13, 7))
    assert report.counts == {"planned": 3, "created": 3, "existing": 0, "obsoleted": 0}
    got = {(r.key, r.kind, r.chat_id, r.village_id, r.rule, r.status) for r in rows(engine)}
    assert got == {
        (reminder_key(world.an, world.period_id, "b7d"), "reminder", 2001, world.na_lang, "b7d", "pending"),
        (reminder_key(world.binh, world.period_id, "b7d"), "reminder", 2002, world.na_lang, "b7d", "pending"),
        (
            reminder_key(world.dung, world.period_id, "b7d"),
            "reminder",
            2004,
            world.ban_duom,
            "b7d",
            "pending",
        ),
    }
    (row, *_) = rows(engine)
    assert row.due_at == local(5, 13, 6, 30) and row.created_at == local(5, 13, 7)
    assert row.payload["series"] == "main" and row.payload["deadline"] == local(5, 20).isoformat()


def test_planning_a_thousand_times_gives_the_same_rows(engine, world, db_backend) -> None:
    now = local(5, 19, 8)
    first = plan_at(engine, now)
    before = [(r.id, r.key, r.due_at, r.status) for r in rows(engine)]
    with session_scope(engine) as s:
        for _ in range(1000 if db_backend == "sqlite" else 250):  # ~20 ms a run on PostgreSQL
            again = reminders.plan(s, now)
    assert [(r.id, r.key, r.due_at, r.status) for r in rows(engine)] == before
    assert (
        first.created == 3 and again.created == 0 and again.existing == 3 and again.planned == first.planned
    )


def test_a_newer_rule_makes_the_older_pending_one_obsolete(engine, world) -> None:
    plan_at(engine, local(5, 13, 7))  # b7d planned, the dispatcher was down and never sent it
    report = plan_at(engine, local(5, 19, 8))  # catch-up: only last_day
    assert report.created == 3 and report.obsoleted == 3
    assert {(r.rule, r.status) for r in rows(engine)} == {("b7d", "obsolete"), ("last_day", "pending")}


def test_sent_reminders_stay_sent(engine, world) -> None:
    plan_at(engine, local(5, 13, 7))
    mark_sent(engine, *(r.id for r in rows(engine)), at=local(5, 13, 7, 1))
    plan_at(engine, local(5, 17, 7))
    assert (
        sorted((r.rule, r.status) for r in rows(engine)) == [("b3d", "pending")] * 3 + [("b7d", "sent")] * 3
    )


def test_a_submission_stops_the_villages_reminders_and_obsoletes_pending_ones(engine, world) -> None:
    plan_at(engine, local(5, 17, 7))
    submit(engine, world, world.na_lang, world.an, local(5, 17, 8))
    report = plan_at(engine, local(5, 17, 9))
    assert report.obsoleted == 2
    assert {(r.person_id, r.status) for r in rows(engine)} == {
        (world.an, "obsolete"),
        (world.binh, "obsolete"),
        (world.dung, "pending"),
    }
    plan_at(engine, local(5, 19, 8))
    assert {r.person_id for r in rows(engine, rule="last_day")} == {world.dung}


def test_a_blocked_person_gets_nothing_more(engine, world) -> None:
    with session_scope(engine) as s:
        an = s.get(Person, world.an)
        an.active, an.blocked_at = False, local(5, 14)
    plan_at(engine, local(5, 17, 7))
    assert {r.person_id for r in rows(engine)} == {world.binh, world.dung}


def test_a_removed_reporter_gets_nothing_more(engine, world) -> None:
    with session_scope(engine) as s:
        m = s.exec(select(Membership).where(Membership.person_id == world.binh)).one()
        m.ended_at = local(5, 14)
    plan_at(engine, local(5, 17, 7))
    assert {r.person_id for r in rows(engine)} == {world.an, world.dung}


def test_the_digest_goes_to_the_police_chat_at_the_due_time(engine, world) -> None:
    assert plan_at(engine, local(5, 20, 6, 29)).counts["created"] == 0 or not rows(engine, kind="digest")
    plan_at(engine, local(5, 20, 6, 30))
    (digest,) = rows(engine, kind="digest")
    assert (digest.key, digest.chat_id, digest.due_at) == (
        digest_key(world.period_id, POLICE_CHAT),
        POLICE_CHAT,
        local(5, 20, 6, 30),
    )


def test_periods_of_a_form_the_commune_stopped_using_are_not_planned(engine, world) -> None:
    with session_scope(engine) as s:
        cf = s.exec(select(CommuneForm).where(CommuneForm.form_id == "bao-cao-6-thang")).one()
        cf.active = False
    assert plan_at(engine, local(5, 17, 7)).planned == 0


def test_concurrent_inserts_of_the_same_key_are_skipped(engine, world) -> None:
    plan_at(engine, local(5, 13, 7))
    (row, *_) = rows(engine)
    with session_scope(engine) as s:
        again = {
            "key": row.key,
            "kind": row.kind,
            "chat_id": row.chat_id,
            "payload": {},
            "due_at": row.due_at,
            "created_at": row.created_at,
            "status": "pending",
            "attempts": 0,
        }
        assert insert_outbox(s, [again]) == 0
    assert len(rows(engine)) == 3


# --- rules and quiet hours come from the setup file


def custom_setup(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    path = tmp_path / "deploy" / "hiep-luc.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "    timezone: Asia/Ho_Chi_Minh\n", '    timezone: Asia/Ho_Chi_Minh\n    quiet_hours: "22:00-05:00"\n'
    )
    text = text.replace(
        '            due_before: "20/05"\n',
        '            due_before: "20/05"\n        reminders:\n          before: ["2d", "last_day 08:00"]\n'
        '          after: {every: "12h", times: 1}\n',
    )
    path.write_text(text, encoding="utf-8")
    return path


def test_rules_and_quiet_hours_from_the_setup_file_are_stored_and_used(engine, tmp_path) -> None:
    world = sign_up_commune(engine, custom_setup(tmp_path))
    with session_scope(engine) as s:
        commune = s.get(Commune, world.commune_id)
        assert (commune.quiet_start, commune.quiet_end) == (time(22), time(5))
        by_form = {cf.form_id: cf.reminders for cf in s.exec(select(CommuneForm))}
    assert by_form["bao-cao-6-thang"] == {
        "before": ["2d", "last_day 08:00"],
        "after": {"every": "12h", "times": 1},
    }
    assert by_form["bao-cao-nam"] == DEFAULT_RULES.to_json()
    assert by_form["su-co"] is None
    plan_at(engine, local(5, 18, 6))
    assert {(r.rule, r.due_at) for r in rows(engine)} == {
        ("b2d", local(5, 18, 5))
    }  # 00:00 → end of quiet 05:00
    plan_at(engine, local(5, 20, 13))
    assert {(r.rule, r.due_at) for r in rows(engine, status="pending", kind="reminder")} == {
        ("a1", local(5, 20, 12))
    }


def test_changing_the_rules_is_reported_and_audited(engine, tmp_path, capsys) -> None:
    from bot.services.forms import store_setup_forms
    from bot.setup_file import load_setup

    sign_up_commune(engine)
    setup = load_setup(custom_setup(tmp_path)).setup
    with session_scope(engine) as s:
        lines = store_setup_forms(s, setup, now=local(4, 21), actor="test")
    assert "Xã Hiệp Lực: giờ không nhắn tin đổi thành 22:00 đến 05:00." in lines
    assert (
        "Xã Hiệp Lực: nhắc hạn bao-cao-6-thang đổi thành trước hạn: 2d, last_day 08:00; quá hạn: mỗi 12h × 1."
        in lines
    )
    with session_scope(engine) as s:
        lines = store_setup_forms(s, setup, now=local(4, 22), actor="test")
    assert not [line for line in lines if "nhắc" in line]


def test_a_commune_set_up_before_the_rules_existed_gets_the_defaults(engine, world) -> None:
    with session_scope(engine) as s:
        commune = s.get(Commune, world.commune_id)
        commune.quiet_start = commune.quiet_end = None
        for cf in s.exec(select(CommuneForm)):
            cf.reminders = None
        (data,) = [p for p in reminders.load_inputs(s, reminders.planning_scope(local(5, 13, 7)))]
    assert data.rules == ReminderRules.from_json(None) and data.quiet.text == "21:00-06:30"
    assert len(data.villages) == 14 and data.police_chats == (POLICE_CHAT,)


def test_a_commune_in_another_zone(engine, world) -> None:
    with session_scope(engine) as s:
        s.get(Commune, world.commune_id).timezone = "Asia/Tokyo"
        period = s.get(Period, world.period_id)
        period.due_at = local(5, 20, tz="Asia/Tokyo")
    plan_at(engine, local(5, 13, 6, 30, tz="Asia/Tokyo"))
    assert {r.due_at for r in rows(engine)} == {local(5, 13, 6, 30, tz="Asia/Tokyo")}


# --- what the messages say (rendered at send time)


def first_for(engine, person_id: int) -> Outbox:
    return next(r for r in rows(engine, person_id=person_id))


def test_not_started_reminder(engine, world) -> None:
    plan_at(engine, local(5, 16, 8))  # b7d, due 13/05 — read on 16/05
    out = render(engine, first_for(engine, world.an), local(5, 16, 8))
    assert out is not None
    assert "Thôn Nà Làng chưa gửi <b>Báo cáo 6 tháng" in out.text
    assert "Hạn: <b>trước ngày 20/05/2026 (hết ngày 19/05)</b> (còn 3 ngày)." in out.text
    assert out.buttons == ((("📝 Làm báo cáo", f"rp:{world.period_id}"),),)


def test_the_last_day_says_so(engine, world) -> None:
    plan_at(engine, local(5, 19, 8))
    out = render(engine, first_for(engine, world.an), local(5, 19, 8))
    assert "(hôm nay là ngày cuối)" in out.text


def test_draft_reminder_tells_where_the_draft_stands(engine, world) -> None:
    with session_scope(engine) as s:
        an = s.get(Person, world.an)
        village = s.get(Village, world.na_lang)
        outcome = reports.begin_periodic(s, an, village, world.period_id, local(5, 14, 9))
        for answer in ("3", "40", "2", "1", "0", "1"):
            outcome = reports.feed(
                s,
                an,
                {village.id},
                outcome.draft.id,
                Text(answer),
                now=local(5, 14, 9),
                sent_at=local(5, 14, 9),
            )
        question, total = reminders.draft_progress(s, outcome.draft)
    plan_at(engine, local(5, 17, 7))
    out = render(engine, first_for(engine, world.binh), local(5, 17, 7))
    assert "Thôn Nà Làng đang có bản nháp <b>Báo cáo 6 tháng" in out.text
    assert f"ở câu {question}/{total} — bấm để làm tiếp" in out.text and question > 1
    assert out.buttons == ((("✏️ Làm tiếp báo cáo", f"rp:{world.period_id}"),),)


def test_overdue_reminder_is_firmer(engine, world) -> None:
    plan_at(engine, local(5, 21, 7))
    out = render(engine, first_for(engine, world.dung), local(5, 21, 7))
    assert "⚠️ <b>Báo cáo đã quá hạn</b>" in out.text
    assert "Thôn Bản Duồm vẫn chưa gửi" in out.text and "đã quá 1 ngày" in out.text
    assert "bot còn nhận đến hết ngày 18/06/2026 (ghi là nộp muộn)" in out.text
    assert out.buttons[0][0][1] == f"rp:{world.period_id}"


def test_a_reminder_for_a_village_that_submitted_meanwhile_is_obsolete(engine, world) -> None:
    plan_at(engine, local(5, 17, 7))
    submit(engine, world, world.na_lang, world.binh, local(5, 17, 7, 1))
    assert render(engine, first_for(engine, world.an), local(5, 17, 7, 2)) is None
    assert render(engine, first_for(engine, world.dung), local(5, 17, 7, 2)) is not None


@pytest.mark.parametrize(
    "change",
    [
        "person inactive",
        "forgotten",
        "membership ended",
        "village inactive",
        "period inactive",
        "form unlinked",
        "commune inactive",
    ],
)
def test_rows_that_lost_their_recipient_or_report_are_obsolete(engine, world, change: str) -> None:
    plan_at(engine, local(5, 17, 7))
    row = first_for(engine, world.an)
    with session_scope(engine) as s:
        if change == "person inactive":
            s.get(Person, world.an).active = False
        elif change == "forgotten":
            s.get(Person, world.an).forgotten_at = local(5, 17)
        elif change == "membership ended":
            s.exec(select(Membership).where(Membership.person_id == world.an)).one().ended_at = local(5, 17)
        elif change == "village inactive":
            s.get(Village, world.na_lang).active = False
        elif change == "period inactive":
            s.get(Period, world.period_id).active = False
        elif change == "form unlinked":
            s.exec(select(CommuneForm).where(CommuneForm.form_id == "bao-cao-6-thang")).one().active = False
        else:
            s.get(Commune, world.commune_id).active = False
    assert render(engine, row, local(5, 17, 7, 5)) is None


def test_an_older_reminder_is_obsolete_once_a_newer_one_is_sent_or_due(engine, world) -> None:
    plan_at(engine, local(5, 13, 7))
    old = first_for(engine, world.an)
    plan_at(engine, local(5, 17, 7))
    with session_scope(engine) as s:  # the planner made it obsolete; the renderer says so on its own too
        s.get(Outbox, old.id).status = OutboxStatus.PENDING
    assert render(engine, old, local(5, 17, 7)) is None
    new = rows(engine, person_id=world.an, rule="b3d")[0]
    assert render(engine, new, local(5, 17, 7)) is not None


def test_reminders_stop_when_the_period_closes(engine, world) -> None:
    plan_at(engine, local(5, 23, 7))
    row = rows(engine, person_id=world.an, rule="a3")[0]
    assert render(engine, row, local(6, 19)) is None
    assert plan_at(engine, local(6, 19)).planned == 0


def test_a_reopened_village_is_reminded_of_its_new_deadline(engine, world) -> None:
    submit(engine, world, world.na_lang, world.an, local(5, 15, 10))
    with session_scope(engine) as s:
        police, village, period = (
            s.get(Person, world.cuong),
            s.get(Village, world.na_lang),
            s.get(Period, world.period_id),
        )
        reopening = reports.reopen(s, police=police, village=village, period=period, now=local(6, 25, 10))
        rid = reopening.id
    plan_at(engine, local(6, 27, 11))
    (row,) = rows(engine, person_id=world.an)
    assert row.rule == f"r{rid}-b1d" and row.due_at == local(6, 27, 10)
    out = render(engine, row, local(6, 27, 11))
    assert "Công an xã đã mở lại <b>Báo cáo 6 tháng" in out.text and "cho Thôn Nà Làng" in out.text
    assert "Hạn gửi: <b>10:00 ngày 28/06/2026</b> (còn 1 ngày — mai là ngày cuối)" in out.text
    submit(engine, world, world.na_lang, world.an, local(6, 27, 12))
    assert render(engine, row, local(6, 27, 12, 5)) is None


def test_digest_lists_every_group_and_offers_the_nudge_button(engine, world) -> None:
    submit(engine, world, world.na_lang, world.an, local(5, 15, 10))
    with session_scope(engine) as s:
        dung = s.get(Person, world.dung)
        dung.active, dung.blocked_at = False, local(5, 16)
        village = s.get(Village, world.ban_duom)
        village.name = "Thôn <Bản> & Duồm"
    plan_at(engine, local(5, 20, 6, 30))
    (digest,) = rows(engine, kind="digest")
    out = render(engine, digest, local(5, 20, 6, 31))
    text = out.text
    assert "📋 <b>Tổng hợp Báo cáo 6 tháng" in text and "6 tháng đầu năm 2026</b>" in text
    assert "Xã Hiệp Lực · Hạn: hết ngày 19/05/2026" in text
    assert "Đã nộp: <b>1/14</b> thôn." in text
    assert "✅ Đúng hạn (1): Thôn Nà Làng" in text
    assert "⬜ Chưa bắt đầu (13): " in text and "Thôn &lt;Bản&gt; &amp; Duồm" in text  # escaped
    assert "🚫 Đã chặn bot / không liên lạc được:\n • Ma Thị Dung (Thôn &lt;Bản&gt; &amp; Duồm)" in text
    assert "👤 Chưa có trưởng thôn đăng ký nhận nhắc: " in text and "Thôn Khuổi Ổ" in text
    assert out.buttons == ((("📣 Nhắc các thôn chưa nộp (13)", f"nudge:all:{world.period_id}"),),)


def test_digest_shows_late_submissions_and_drafts(engine, world) -> None:
    with session_scope(engine) as s:
        an, village = s.get(Person, world.an), s.get(Village, world.na_lang)
        reports.begin_periodic(s, an, village, world.period_id, local(5, 14, 9))
    submit(engine, world, world.ban_duom, world.dung, local(5, 20, 3))
    plan_at(engine, local(5, 20, 6, 30))
    (digest,) = rows(engine, kind="digest")
    text = render(engine, digest, local(5, 20, 7)).text
    assert "🕒 Nộp muộn (1):\n • Thôn Bản Duồm — muộn 3 giờ" in text
    assert "✏️ Đang làm dở (1):\n • Thôn Nà Làng — câu 1/" in text
    assert "Đã nộp: <b>1/14</b> thôn (1 nộp muộn)." in text


def test_digest_when_everyone_reported_has_no_button(engine, world) -> None:
    with session_scope(engine) as s:
        ids = [v.id for v in s.exec(select(Village).where(Village.commune_id == world.commune_id))]
    for village_id in ids:
        submit(engine, world, village_id, world.an, local(5, 18))
    plan_at(engine, local(5, 20, 6, 30))
    out = render(engine, rows(engine, kind="digest")[0], local(5, 20, 6, 30))
    assert "Tất cả các thôn đã nộp" in out.text and out.buttons == ()


def test_digest_to_a_chat_no_longer_registered_is_obsolete(engine, world) -> None:
    plan_at(engine, local(5, 20, 6, 30))
    with session_scope(engine) as s:
        s.exec(select(PoliceChat)).one().active = False
    assert render(engine, rows(engine, kind="digest")[0], local(5, 20, 6, 31)) is None


def test_a_huge_digest_still_fits_one_message(engine, world) -> None:
    from bot.views.form import tg_len

    with session_scope(engine) as s:
        for i in range(300):
            s.add(
                Village(
                    commune_id=world.commune_id,
                    name=f"Thôn Rất Dài Tên Số {i:03d} " + "x" * 40,
                    created_at=local(4, 1),
                    updated_at=local(4, 1),
                )
            )
    plan_at(engine, local(5, 20, 6, 30))
    text = render(engine, rows(engine, kind="digest")[0], local(5, 20, 6, 31)).text
    assert tg_len(text) <= 4096
    assert "⬜ Chưa bắt đầu (314): " in text and "… và " in text and "thôn khác" in text


def test_unknown_kinds_are_not_rendered(engine, world) -> None:
    row = Outbox(key="x", kind="summary", chat_id=1, due_at=local(5, 1), created_at=local(5, 1))
    with session_scope(engine) as s:
        assert render_outbox(s, row, local(5, 1)) is None


def test_templates_can_be_overridden_per_commune(engine, world, tmp_path, monkeypatch) -> None:
    (tmp_path / "hiep-luc" / "remind").mkdir(parents=True)
    (tmp_path / "hiep-luc" / "remind" / "not_started.html").write_text(
        "Kính gửi {{ village }}: xin nộp {{ period }} trước {{ deadline | vn_due }}.", encoding="utf-8"
    )
    (tmp_path / "remind").mkdir()
    (tmp_path / "remind" / "button.html").write_text("Nộp ngay", encoding="utf-8")
    from bot.texts import templates

    monkeypatch.setattr(templates, "_current", templates.Renderer(tmp_path))  # BAOCAO_TEMPLATES_DIR
    plan_at(engine, local(5, 16, 8))
    out = render(engine, first_for(engine, world.an), local(5, 16, 8))
    assert out.text == "Kính gửi Thôn Nà Làng: xin nộp 6 tháng đầu năm 2026 trước hết ngày 19/05/2026."
    assert out.buttons == ((("Nộp ngay", f"rp:{world.period_id}"),),)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=5), "1 phút"),
        (timedelta(minutes=59), "59 phút"),
        (timedelta(hours=3, minutes=5), "3 giờ"),
        (timedelta(days=2, hours=23), "2 ngày"),
    ],
)
def test_spans(delta: timedelta, text: str) -> None:
    assert vn_span(delta) == text


def test_times_are_utc_aware_in_rows(engine, world) -> None:
    plan_at(engine, local(5, 13, 7))
    assert all(r.due_at.tzinfo is not None and r.due_at.utcoffset() == timedelta(0) for r in rows(engine))
    assert rows(engine)[0].due_at == datetime(2026, 5, 12, 23, 30, tzinfo=UTC)
