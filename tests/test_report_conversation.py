"""The report conversation in process: /baocao, answering, drafts, submit, amend, reopen, incidents."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from bot.services.accounts import create_invite
from storage.db import session_scope
from storage.models import AuditLog, CommuneForm, Draft, Person, Submission
from tests.support.client import BotClient, build_app, running_bot
from tests.support.telegram import FakeUser, RecordingRequest
from tests.support.world import apply_setup_file

POLICE_CHAT = -1001234567890
AN = FakeUser(2001, "An", "Hoàng Văn")  # head of Thôn Nà Làng
BINH = FakeUser(2002, "Bình", "Nông Thị")  # deputy of Thôn Nà Làng
CUONG = FakeUser(2003, "Cường", "Lý Văn")  # police
DUNG = FakeUser(2004, "Dung", "Ma Thị")  # head of Thôn Bản Duồm
STRANGER = FakeUser(2009, "Lạ")
HEADS = {AN.id: ("Thôn Nà Làng", False), BINH.id: ("Thôn Nà Làng", True), DUNG.id: ("Thôn Bản Duồm", False)}


@contextlib.asynccontextmanager
async def heads_bot(engine, database_url, clock, request: RecordingRequest) -> AsyncIterator[BotClient]:
    """Hiệp Lực set up, the application on `request`, the three village heads signed up."""
    with session_scope(engine) as s:
        apply_setup_file(s, now=clock())
    invites = [
        (FakeUser(user, "x"), {"role": "village_head", "village": village, "deputy": deputy})
        for user, (village, deputy) in HEADS.items()
    ]
    async with running_bot(engine, database_url, clock, request=request, invites=invites) as bot:
        yield bot


@pytest.fixture
async def bot(engine, database_url, clock):
    async with heads_bot(engine, database_url, clock, RecordingRequest()) as b:
        with session_scope(engine) as s:
            code = create_invite(s, role="police", commune="hiep-luc", now=clock(), actor="t").code
        await b.send(CUONG, f"/start {code}")
        yield b


async def test_list_shows_open_report_with_deadline(bot) -> None:
    await bot.send(AN, "/baocao")
    text = bot.texts(AN)[-1]
    assert "6 tháng đầu năm 2026" in text and "hết ngày 19/05/2026" in text and "Chưa bắt đầu" in text


async def test_walk_submit_and_receipt(bot) -> None:
    await bot.submit_report(AN)
    receipt = bot.texts(AN)[-1]
    assert "Đã gửi báo cáo" in receipt and "Mã biên nhận" in receipt and "nộp muộn" not in receipt
    (sub,) = bot.submissions()
    assert sub.version_no == 1 and sub.is_current and sub.on_time and sub.answers["so_buoi_tuyen_truyen"] == 3
    with session_scope(bot.engine) as s:
        assert s.exec(select(Draft)).all() == []
        assert [a.action for a in s.exec(select(AuditLog).where(AuditLog.action.like("report.%")))] == [
            "report.submit"
        ]


async def test_bad_number_is_explained_and_the_same_question_asked_again(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    assert "Câu 1/" in bot.texts(AN)[-1]
    await bot.send(AN, "nhiều lắm")
    assert "Câu 1/" in bot.texts(AN)[-1]
    assert "nhiều lắm" in "\n".join(bot.texts(AN)[-2:])  # the bot says what it could not read
    await bot.send(AN, "mười hai")
    assert "Câu 2/" in bot.texts(AN)[-1]


async def test_draft_survives_a_restart_and_resumes_at_the_same_question(
    bot, engine, database_url, clock
) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    for answer in ("4", "4", "không"):  # question 3 opens the optional "online propaganda" part
        await bot.send(AN, answer)
    assert "Câu 4/" in bot.texts(AN)[-1]
    request = RecordingRequest()
    async with build_app(engine, database_url, clock, request) as app:
        fresh = BotClient(app, request, first_update_id=10_000)
        await fresh.send(AN, "/baocao")
        assert "Đang làm dở ở câu 4/" in request.texts(AN.id)[-1]
        await fresh.send(AN, "2")  # typed straight away: goes to question 4
        assert "Câu 5/" in request.texts(AN.id)[-1]
    with session_scope(engine) as s:
        (draft,) = s.exec(select(Draft)).all()
        assert draft.state["answers"]["so_mo_hinh"] == 2


async def test_two_reporters_share_one_draft_and_are_told_when_it_moved(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.send(AN, "7")
    await bot.send(BINH, "/baocao")
    assert "Đang làm dở ở câu 2/" in bot.texts(BINH)[-1]
    await bot.press_token(BINH, bot.last_keyboard(BINH)[1][0])
    assert "Câu 2/" in bot.texts(BINH)[-1]
    await bot.send(BINH, "40")  # Bình answers question 2
    await bot.send(AN, "41")  # An still thinks question 2 is open
    assert "vừa cập nhật bản nháp chung" in "\n".join(bot.texts(AN)[-2:])
    assert "Câu 3/" in bot.texts(AN)[-1]
    with session_scope(bot.engine) as s:
        (draft,) = s.exec(select(Draft)).all()
        assert draft.state["answers"]["so_luot_nguoi_du"] == 40  # not silently overwritten


async def test_submission_by_one_reporter_is_explained_to_the_other(bot) -> None:
    await bot.send(BINH, "/baocao")
    await bot.press_token(BINH, bot.last_keyboard(BINH)[1][0])
    await bot.submit_report(AN)
    await bot.send(BINH, "5")
    assert "đã được gửi" in bot.texts(BINH)[-1]
    assert len(bot.submissions()) == 1


async def test_old_button_does_not_change_the_draft(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    message_id, data = bot.last_keyboard(AN)
    await bot.send(AN, "3")
    await bot.send(AN, "3")
    old = next(d for d in data if d.endswith(":back"))
    await bot.press(AN, old, message_id=message_id)
    assert "Câu 3/" in bot.texts(AN)[-1]


async def test_amend_before_the_deadline_keeps_every_version(bot) -> None:
    await bot.submit_report(AN)
    await bot.send(AN, "/baocao")
    assert "Đã gửi" in bot.texts(AN)[-1] and "Có thể sửa đến hết ngày 19/05/2026" in bot.texts(AN)[-1]
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    assert "sửa báo cáo đã gửi" in "\n".join(bot.texts(AN)[-3:])
    await bot.press_token(AN, "e:1")
    await bot.send(AN, "2")
    await bot.answer_until(AN)
    await bot.press_token(AN, "confirm")
    first, second = bot.submissions()
    assert (first.version_no, first.is_current, second.version_no, second.is_current) == (1, False, 2, True)
    assert second.answers["so_buoi_tuyen_truyen"] == 2 and first.answers["so_buoi_tuyen_truyen"] == 3
    with session_scope(bot.engine) as s:
        amend = s.exec(select(AuditLog).where(AuditLog.action == "report.amend")).one()
        assert amend.detail["replaces"] == first.id


async def test_after_the_deadline_only_police_can_reopen(bot) -> None:
    await bot.submit_report(AN)
    bot.clock.at = datetime(2026, 5, 20, 1, 0, tzinfo=UTC)  # 08:00 on 20/5 local: past due
    await bot.send(AN, "/baocao")
    assert "Đã hết hạn sửa" in bot.texts(AN)[-1]
    with session_scope(bot.engine) as s:
        period_id = s.exec(select(Submission)).one().period_id
    await bot.press(AN, f"rp:{period_id}")
    assert "đã hết hạn sửa" in bot.texts(AN)[-1]
    await bot.send(AN, "/molai Thôn Nà Làng")
    assert "chỉ dành cho <b>cán bộ Công an xã</b>" in bot.texts(AN)[-1]
    await bot.send(CUONG, "/molai Thôn Không Có")
    assert "Không tìm thấy thôn" in bot.texts(CUONG)[-1]
    await bot.send(CUONG, "/molai thôn nà làng 2026-6T")
    assert "Đã mở lại" in bot.texts(CUONG)[-1]
    assert "mở lại" in bot.texts(AN)[-1]
    await bot.press(AN, f"rp:{period_id}")
    await bot.answer_until(AN)
    await bot.press_token(AN, "confirm")
    assert [s.version_no for s in bot.submissions()] == [1, 2]
    with session_scope(bot.engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "report.reopen")).one()


async def test_late_first_submission_is_taken_and_marked_late(bot) -> None:
    bot.clock.at = datetime(2026, 5, 25, 2, 0, tzinfo=UTC)
    await bot.send(AN, "/baocao")
    assert "Đã quá hạn" in bot.texts(AN)[-1]
    await bot.submit_report(AN)
    assert "nộp muộn" in bot.texts(AN)[-1]
    assert bot.submissions()[0].on_time is False


async def test_time_that_counts_is_when_the_message_was_sent(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.answer_until(AN)
    # Typed "gửi" leaves the phone at 23:50 on 19/5 but reaches us after midnight.
    bot.clock.at = datetime(2026, 5, 19, 17, 20, tzinfo=UTC)
    await bot.send(AN, "gửi", date=datetime(2026, 5, 19, 16, 50, tzinfo=UTC))
    (sub,) = bot.submissions()
    assert sub.on_time and sub.sent_at == datetime(2026, 5, 19, 16, 50, tzinfo=UTC)


async def test_incident_reaches_the_police_chat_with_photo(bot) -> None:
    await bot.send(AN, "/suco")
    for _ in range(60):
        tokens = bot.tokens(AN)
        if "confirm" in tokens:
            break
        text = bot.texts(AN)[-1]
        if "⚠️" in text:  # the last typed answer did not fit this question
            if "skip" in tokens:
                await bot.press_token(AN, "skip")
            else:
                await bot.send(AN, "3")
        elif "ảnh" in text.lower() and "skip" in tokens:
            await bot.send_photo(AN, "PHOTO-1")
        elif "vị trí" in text.lower() and "skip" in tokens:
            await bot.send_location(AN, 21.6, 105.8)
        else:
            for choice in ("submit", "more:n", "ok:0", "d:yday", "c:0", "n"):
                if choice in tokens:
                    await bot.press_token(AN, choice)
                    break
            else:
                await bot.send(AN, "<b>Cháy</b> & khói")
    await bot.press_token(AN, "confirm")
    alerts = bot.request.texts(POLICE_CHAT)
    # "Khẩn cấp" (the first choice) alerted the police at once; the full report follows it
    assert alerts and alerts[0].startswith("🚨 <b>KHẨN CẤP</b>") and "Thôn Nà Làng" in alerts[0]
    (full,) = [a for a in alerts if "bổ sung đủ chi tiết" in a]
    assert "&lt;b&gt;Cháy&lt;/b&gt; &amp; khói" in full
    photos = [c for c in bot.request.calls if c.method == "sendPhoto"]
    assert (
        photos and int(photos[0].params["chat_id"]) == POLICE_CHAT and photos[0].params["photo"] == "PHOTO-1"
    )


async def test_forged_button_for_another_village_is_refused(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    with session_scope(bot.engine) as s:
        draft = s.exec(select(Draft)).one()
        before = dict(draft.state)
    await bot.press(DUNG, f"f:{draft.id}:{before['seq']}:c:0")
    assert "không thuộc thôn của đồng chí" in bot.texts(DUNG)[-1]
    with session_scope(bot.engine) as s:
        assert s.exec(select(Draft)).one().state == before


@pytest.mark.parametrize("user", [STRANGER, CUONG])
async def test_only_village_heads_can_report(bot, user) -> None:
    await bot.send(user, "/baocao")
    await bot.send(user, "/suco")  # police get their communes' incidents instead (tests/test_incidents.py)
    said = bot.texts(user)[-2:]
    assert "chỉ dành cho" in said[0] or "chưa đăng ký" in said[0]
    assert "chưa đăng ký" in said[1] if user is STRANGER else "Sự việc đột xuất" in said[1]


async def test_sticker_mid_form_keeps_the_place(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.send(AN, "3")
    await bot.send_raw(
        AN,
        sticker={"file_id": "s", "file_unique_id": "s", "width": 1, "height": 1, "is_animated": False,
                 "is_video": False, "type": "regular"},
    )  # fmt: skip
    assert "không dùng được để trả lời" in bot.texts(AN)[-2] and "Câu 2/" in bot.texts(AN)[-1]


async def test_commands_mid_form_do_not_lose_the_draft(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.send(AN, "3")
    await bot.send(AN, "/help")
    await bot.send(AN, "8")  # still answers question 2
    with session_scope(bot.engine) as s:
        assert s.exec(select(Draft)).one().state["answers"]["so_luot_nguoi_du"] == 8


async def test_form_removed_while_filling(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    with session_scope(bot.engine) as s:
        for row in s.exec(select(CommuneForm).where(CommuneForm.form_id == "bao-cao-6-thang")):
            row.active = False
    await bot.send(AN, "3")
    assert "chưa được nạp hoặc đã bị gỡ" in bot.texts(AN)[-1]
    with session_scope(bot.engine) as s:
        assert s.exec(select(Person).where(Person.telegram_user_id == AN.id)).one().active_draft_id is None
        assert len(s.exec(select(Draft)).all()) == 1  # kept, never deleted


async def test_long_and_html_answers_are_escaped_in_review(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    for _ in range(60):
        tokens = bot.tokens(AN)
        if "submit" in tokens:
            break
        if "skip" in tokens and "c:0" not in tokens:
            await bot.send(AN, "<i>khó</i> & " + "x" * 300)
            continue
        for choice in ("more:n", "ok:0", "d:yday", "c:0", "n"):
            if choice in tokens:
                await bot.press_token(AN, choice)
                break
        else:
            await bot.send(AN, "2")
    pages = [bot.texts(AN)[-1]]
    while f"p:{len(pages)}" in bot.tokens(AN):  # the review is paged: walk to its last page
        await bot.press_token(AN, f"p:{len(pages)}")
        pages.append(bot.texts(AN)[-1])
    review = "\n".join(pages)
    assert "&lt;i&gt;khó&lt;/i&gt; &amp;" in review and "<i>khó</i>" not in review
    assert all(len(t) <= 4096 for t in bot.texts(AN))


async def test_duplicate_update_is_applied_once(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    update = await bot.send(AN, "6")
    await bot.feed(update.to_dict())
    with session_scope(bot.engine) as s:
        draft = s.exec(select(Draft)).one()
        assert draft.state["answers"] == {"so_buoi_tuyen_truyen": 6}
    assert "Câu 2/" in bot.texts(AN)[-1] and sum("Câu 2/" in t for t in bot.texts(AN)) == 1


async def test_ten_thousand_characters_and_edits_mid_form(bot) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.send(AN, "9" * 10_000)
    assert "Câu 1/" in bot.texts(AN)[-1] and all(len(t) <= 4096 for t in bot.texts(AN))
    await bot.send_raw(AN, "edited_message", text="5", edit_date=1)
    assert "đã sửa không được tính" in bot.texts(AN)[-1]
    with session_scope(bot.engine) as s:
        assert s.exec(select(Draft)).one().state["answers"] == {}
    await bot.send(AN, "5")
    assert "Câu 2/" in bot.texts(AN)[-1]


async def test_looking_at_the_shared_draft_does_not_move_it_on(bot) -> None:
    """Opening the draft (/baocao, resume) keeps seq; the other reporter's answer and buttons still count."""
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.send(AN, "7")
    message_id, data = bot.last_keyboard(AN)
    with session_scope(bot.engine) as s:
        seq = s.exec(select(Draft)).one().state["seq"]
    await bot.send(BINH, "/baocao")
    await bot.press_token(BINH, bot.last_keyboard(BINH)[1][0])
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    with session_scope(bot.engine) as s:
        assert s.exec(select(Draft)).one().state["seq"] == seq  # viewing is not a change
    back = next(d for d in data if d.endswith(":back"))
    await bot.press(AN, back, message_id=message_id)  # a button shown before the views still works
    assert "Câu 1/" in bot.texts(AN)[-1]
    await bot.send(BINH, "8")  # Bình saw question 2 before An went back: told, not taken
    assert "vừa cập nhật bản nháp chung" in "\n".join(bot.texts(BINH)[-2:])
    with session_scope(bot.engine) as s:
        assert s.exec(select(Draft)).one().state["answers"]["so_buoi_tuyen_truyen"] == 7


def answer_in_another_process(bot: BotClient, user: FakeUser, draft_id: int, text: str) -> None:
    """`user`'s answer `text` to draft `draft_id`, fed and committed in a session of its own (as another
    process would) while the caller holds its stale copy."""
    from bot.auth import load_actor
    from bot.forms import inputs
    from bot.services import reports

    with session_scope(bot.engine) as other:
        actor = load_actor(other, user.id)
        person = other.get(Person, actor.person.id)
        reports.feed(
            other,
            person,
            set(actor.villages),
            draft_id,
            inputs.Text(text),
            now=bot.clock(),
            sent_at=bot.clock(),
        )


async def test_a_save_that_lost_a_race_is_caught_and_reapplied(bot) -> None:
    """Another process writes the draft between our read and our save: the compare-and-set notices it,
    and the answer is applied to what is stored now (nothing overwritten)."""
    from bot.auth import load_actor
    from bot.forms import inputs
    from bot.services import reports

    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.send(AN, "7")
    with session_scope(bot.engine) as s:
        stale = s.exec(select(Draft)).one()
        an = s.exec(select(Person).where(Person.telegram_user_id == AN.id)).one()
        answer_in_another_process(bot, AN, stale.id, "40")  # question 2, committed
        state = reports.DraftState.from_json(stale.state)
        with pytest.raises(reports.DraftConflict):
            reports._save(stale, an, state, bot.clock())  # the stale copy is never written
    with session_scope(bot.engine) as s:
        actor = load_actor(s, AN.id)
        person = s.get(Person, actor.person.id)
        out = reports.feed(
            s, person, set(actor.villages), stale.id, inputs.Text("có"), now=bot.clock(), sent_at=bot.clock()
        )
        assert out.state is not None and out.state.answers["so_luot_nguoi_du"] == 40
    with session_scope(bot.engine) as s:
        answers = s.exec(select(Draft)).one().state["answers"]
    assert answers["so_buoi_tuyen_truyen"] == 7 and answers["so_luot_nguoi_du"] == 40
    assert answers["tuyen_truyen_mang"] is True  # the second message answered the next question


async def test_control_characters_are_dropped_from_typed_answers(bot) -> None:
    """A NUL (PostgreSQL cannot make text of it) and other control characters never reach the draft."""
    from bot.forms.parsing import clean_text

    assert clean_text("a\x00b\r\nc\rd\te\x1b\x7f") == "ab\nc\nd\te"
    assert clean_text("Thôn Nà Làng\n2 hộ") == "Thôn Nà Làng\n2 hộ"
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.send(AN, "\x00")  # nothing but a NUL: not an answer
    await bot.send(AN, "1\x002")
    with session_scope(bot.engine) as s:
        answers = s.exec(select(Draft)).one().state["answers"]
    assert answers == {"so_buoi_tuyen_truyen": 12}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of its own (needs root, as in CI here); skipped where mounting is not allowed."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


async def test_a_full_disk_gets_a_clear_message_keeps_the_draft_and_corrupts_nothing(
    bot, engine, database_url, clock, small_disk
) -> None:
    """The SQLite file on a disk that fills up: the answer is refused politely, nothing half-written."""
    import shutil
    import sqlite3

    from storage.db import make_engine

    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's full disk; PostgreSQL outages are in tests/security/test_db_faults.py")
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    await bot.send(AN, "mười hai")
    assert "Câu 2/" in bot.texts(AN)[-1]
    engine.dispose()
    src = database_url.removeprefix("sqlite:///")
    raw = sqlite3.connect(src)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    path = small_disk / "baocao.db"
    shutil.copyfile(src, path)
    url = f"sqlite:///{path}"
    on_disk = make_engine(url)
    request = RecordingRequest()
    async with build_app(on_disk, url, clock, request) as app:
        fresh = BotClient(app, request, first_update_id=10_000)
        await fresh.send(AN, "/baocao")  # opens the database (and its -shm) while there is room
        assert "câu 2/" in request.texts(AN.id)[-1].lower()
        filler = small_disk / "filler"
        with filler.open("wb", buffering=0) as f, pytest.raises(OSError):  # fill the disk to the last byte
            while True:
                f.write(b"\0" * 65536)  # unbuffered: a full disk raises here, closing has nothing to write
        before = len(request.texts(AN.id))
        await fresh.send(AN, "30")
        (reply,) = request.texts(AN.id)[before:]
        assert "Dữ liệu đã lưu vẫn còn nguyên" in reply and "thử lại" in reply
        filler.unlink()  # space again
        raw = sqlite3.connect(path)
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        raw.close()
        with session_scope(on_disk) as s:
            (draft,) = s.exec(select(Draft)).all()
            assert list(draft.state["answers"].values()) == [12]  # the saved answer, nothing half-written
        await fresh.send(AN, "30")  # the same answer, typed again, now goes through
        assert "Câu 3/" in request.texts(AN.id)[-1]
    on_disk.dispose()
