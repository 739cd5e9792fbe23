"""`baocao periods` and `baocao remind --dry-run | --now`, run as a person would run them."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.cli import main
from bot.services import reminders, reports
from storage.db import session_scope
from storage.models import Outbox, Person, Submission, Village
from tests.support.world import SignedUpCommune, local, sign_up_commune


@pytest.fixture
def world(engine, database_url, monkeypatch, tmp_path) -> SignedUpCommune:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "BAOCAO_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    return sign_up_commune(engine)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def outbox(engine) -> list[Outbox]:
    with session_scope(engine) as s:
        return list(s.exec(select(Outbox)))


def test_periods_open_now_with_counts_and_the_next_ones(world, engine, capsys) -> None:
    with session_scope(engine) as s:
        s.add(
            Submission(
                village_id=world.ban_duom,
                form_id="bao-cao-6-thang",
                period_id=world.period_id,
                form_version=1,
                answers={},
                sent_at=local(5, 16),
                received_at=local(5, 16),
                on_time=True,
                receipt="BC-AAAAAA",
            )
        )
        reports.begin_periodic(
            s, s.get(Person, world.an), s.get(Village, world.na_lang), world.period_id, local(5, 16)
        )
    code, out, _ = run(capsys, "periods", "--at", "2026-05-17 08:00")
    assert code == 0
    assert out.splitlines()[:4] == [
        "Xã Hiệp Lực (hiep-luc) — lúc 08:00 ngày 17/05/2026",
        "  Đang mở:",
        "    2026-6T    6 tháng đầu năm 2026 — Báo cáo 6 tháng về phong trào toàn dân bảo vệ ANTQ",
        "               mở 01/05/2026 · hạn hết ngày 19/05/2026 (còn 2 ngày)",
    ]
    assert "14 thôn: đã nộp 1 · đang làm 1 · chưa bắt đầu 12" in out
    assert "  Kỳ tới:\n    2026-CN    Năm 2026" in out and "mở 01/11/2026 · hạn hết ngày 19/11/2026" in out


def test_periods_after_the_deadline_and_for_one_commune(world, capsys) -> None:
    code, out, _ = run(capsys, "periods", "--commune", "hiep-luc", "--at", "2026-05-21 09:00")
    assert code == 0 and "(đã quá hạn, nhận muộn đến hết ngày 18/06/2026)" in out
    code, out, _ = run(capsys, "periods", "--at", "2026-07-01")
    assert "Không có kỳ nào đang mở." in out


def test_periods_of_an_unknown_commune(world, capsys) -> None:
    code, _, err = run(capsys, "periods", "--commune", "khong-co")
    assert code == 1 and "Không có xã 'khong-co'" in err


def test_periods_before_any_setup(engine, database_url, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, _ = run(capsys, "periods")
    assert code == 0 and "Chưa có xã nào" in out


def test_dry_run_prints_who_gets_what_and_writes_nothing(world, engine, capsys) -> None:
    code, out, _ = run(capsys, "remind", "--dry-run", "--at", "2026-05-19 08:00", "--days", "2")
    assert code == 0
    assert out.splitlines() == [
        "Chạy thử lúc 08:00 ngày 19/05/2026 (Asia/Ho_Chi_Minh) — không gửi, không ghi gì.",
        "Xã Hiệp Lực — 6 tháng đầu năm 2026 (2026-6T), hạn hết ngày 19/05/2026:",
        "  07:30 19/05  last_day   → Hoàng Văn An (trưởng thôn, Thôn Nà Làng) — chưa bắt đầu",
        "  07:30 19/05  last_day   → Nông Thị Bình (phó, Thôn Nà Làng) — chưa bắt đầu",
        "  07:30 19/05  last_day   → Ma Thị Dung (trưởng thôn, Thôn Bản Duồm) — chưa bắt đầu",
        "Đến hạn: 3 tin nhắc, 0 tin tổng hợp.",
        "Sắp tới trong 2 ngày:",
        "  06:30 21/05  a1         → 3 người (Thôn Bản Duồm, Thôn Nà Làng) — 2026-6T",
    ]
    assert outbox(engine) == []


def test_dry_run_shows_drafts_the_digest_and_what_is_already_queued(world, engine, capsys) -> None:
    with session_scope(engine) as s:
        reports.begin_periodic(
            s, s.get(Person, world.dung), s.get(Village, world.ban_duom), world.period_id, local(5, 16)
        )
    with session_scope(engine) as s:
        reminders.plan(s, local(5, 20, 6, 30))
    code, out, _ = run(capsys, "remind", "--dry-run", "--at", "2026-05-20 09:00")
    assert code == 0
    assert "  07:30 19/05  last_day   → Ma Thị Dung (trưởng thôn, Thôn Bản Duồm) — bản nháp câu 1/" in out
    assert "[đã có trong hàng đợi]" in out
    assert "  06:30 20/05  tổng hợp   → nhóm/cán bộ công an -1001234567890   [đã có trong hàng đợi]" in out
    assert "Đến hạn: 3 tin nhắc, 1 tin tổng hợp (4 đã có trong hàng đợi)." in out
    before = len(outbox(engine))
    run(capsys, "remind", "--dry-run", "--at", "2026-05-22 09:00")
    assert len(outbox(engine)) == before


def test_dry_run_marks_a_catch_up(world, capsys) -> None:
    _, out, _ = run(capsys, "remind", "--dry-run", "--at", "2026-05-18 12:00", "--commune", "hiep-luc")
    assert (
        "  06:30 17/05  b3d        → Hoàng Văn An (trưởng thôn, Thôn Nà Làng) — chưa bắt đầu   [gửi bù]"
        in out
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["remind", "--dry-run", "--at", "19/05/2026"], 'không đúng dạng "YYYY-MM-DD HH:MM"'),
        (["periods", "--at", "2026-13-01 08:00"], 'không đúng dạng "YYYY-MM-DD HH:MM"'),
        (["remind", "--now", "--at", "2026-05-19 08:00"], "--at và --commune chỉ dùng với --dry-run"),
    ],
)
def test_usage_errors(world, capsys, argv: list[str], message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err


@pytest.mark.parametrize("argv", [["remind"], ["remind", "--dry-run", "--now"]])
def test_remind_needs_exactly_one_mode(world, capsys, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "--dry-run" in capsys.readouterr().err


def test_now_runs_the_dispatcher_once(world, monkeypatch, capsys) -> None:
    import bot.cli.send_now as dispatch

    seen = []

    def fake_run_once(settings, **_):
        seen.append(settings.database_url)
        print("đã gửi 0 tin")
        return 3

    monkeypatch.setattr(dispatch, "run_once", fake_run_once)
    code, out, _ = run(capsys, "remind", "--now")
    assert code == 3 and len(seen) == 1 and "đã gửi 0 tin" in out


def test_periods_years_ahead_shows_the_period_the_running_bot_will_have_added(world, capsys) -> None:
    """Set up in 2026 only: on 03/06/2028 the 2028 semiannual period is there (the bot adds the coming periods
    itself; `periods --at` adds what it would have by then), and nothing says "no period"."""
    code, out, _ = run(capsys, "periods", "--commune", "hiep-luc", "--at", "2028-05-03 08:00")
    assert code == 0
    assert "Không có kỳ nào đang mở" not in out
    assert "2028-6T    6 tháng đầu năm 2028" in out and "hạn hết ngày 19/05/2028 (còn 16 ngày)" in out
    assert "2028-CN    Năm 2028" in out  # the next one, in "Kỳ tới"
