"""/summary (/tonghop) in process: who may see what, buttons re-checked, splitting and escaping.

Three communes from the shipped Hiệp Lực setup: Hiệp Lực and Phú Đình in Thái Nguyên, Yên Sơn in Tuyên
Quang. Reports are stored directly (the conversation itself is tested elsewhere); the clock stands after
the 2026-6T deadline.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import select

import bot.handlers.summary as summary_handlers  # registers /summary on the global registry
from bot.auth import load_actor
from bot.clock import FixedClock
from bot.forms.model import Form, QType
from bot.services.forms import get_form
from bot.views.form import tg_len
from storage.db import session_scope
from storage.models import AuditLog, Commune, CommuneForm, Period, Submission, Village
from tests.support.client import running_bot
from tests.support.telegram import FakeUser
from tests.support.world import apply_setup_file

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 5, 25, 3, 0, tzinfo=UTC)  # 10:00 on 25/5 in Hà Nội, after the 2026-6T deadline
DUE = datetime(2026, 5, 19, 17, 0, tzinfo=UTC)
CUONG = FakeUser(3001, "Cường", "Lý Văn")  # police of Hiệp Lực
KHOA = FakeUser(3002, "Khoa", "Hà Văn")  # police of Yên Sơn (another province)
SANG = FakeUser(3003, "Sáng", "Trần Văn")  # supervisor of Thái Nguyên
AN = FakeUser(3004, "An", "Hoàng Văn")  # head of Thôn Nà Làng
LA = FakeUser(3009, "Lạ")
EVIL_VILLAGE = "Thôn <i>Mới</i> & Cũ"
EVIL_TEXT = "<script>alert(1)</script> & <b>đậm</b>"


def setup_data() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "deploy" / "hiep-luc.yaml").read_text(encoding="utf-8"))
    hiep_luc = data["communes"][0]
    hiep_luc["villages"].append(EVIL_VILLAGE)
    phu_dinh = copy.deepcopy(hiep_luc)
    phu_dinh.update(code="phu-dinh", name="Xã Phú Đình", villages=["Thôn Đồng Hút", "Thôn Khẩu Đống"])
    phu_dinh["police_chats"] = [{"chat_id": -1009000000001, "title": "CA Phú Đình"}]
    yen_son = copy.deepcopy(hiep_luc)
    yen_son.update(code="yen-son", name="Xã Yên Sơn", province="Tuyên Quang", villages=["Thôn Bình Ca"])
    yen_son["police_chats"] = [{"chat_id": -1009000000002, "title": "CA Yên Sơn"}]
    data["communes"] += [phu_dinh, yen_son]
    return data


def answers_for(form: Form, number: int, *, yes: bool = True, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for q in form.questions:
        if q.type == QType.INTEGER:
            out[q.id] = max(number, int(q.min or 0))
        elif q.type == QType.YES_NO:
            out[q.id] = yes
        elif q.type == QType.SINGLE_CHOICE:
            out[q.id] = q.choices[0].value
        elif q.type == QType.DATE:
            out[q.id] = "2026-05-10"
        elif q.type == QType.LONG_TEXT:
            out[q.id] = text
    out["so_ho_cam_ket"] = min(out["so_ho_cam_ket"], out["tong_so_ho"])
    return out


def file_report(
    s, village: Village, period: Period, answers: dict[str, Any], sent: datetime, no: int = 1
) -> None:
    if no > 1:
        for old in s.exec(
            select(Submission).where(Submission.village_id == village.id, Submission.period_id == period.id)
        ):
            old.is_current = False
    s.add(
        Submission(
            village_id=village.id,
            form_id=period.form_id,
            period_id=period.id,
            form_version=1,
            version_no=no,
            is_current=True,
            answers=answers,
            sent_at=sent,
            received_at=sent,
            on_time=sent < period.due_at,
            receipt=f"BC-{village.id:03d}{no}",
        )
    )
    s.flush()


async def all_pages(bot, user: FakeUser, action: str) -> tuple[str, list[tuple[str, str]]]:
    """Send a command (or press a button's data) and then "Trang sau" until the last page: every page's
    text and buttons; each page is checked against the phone limits on the way."""
    out = await (bot.ask(user, action) if action.startswith("/") else bot.tap(user, action))
    texts, buttons = list(out), list(bot.buttons(user))
    for _ in range(200):
        assert len(out) == 1 and tg_len(out[0]) <= 1200 and len(bot.buttons(user)) <= 12, out
        for tag in ("b", "i", "code"):
            assert out[0].count(f"<{tag}>") == out[0].count(f"</{tag}>"), out[0]
        following = next((d for label, d in bot.buttons(user) if "Trang sau" in label), None)
        if following is None:
            return "\n".join(texts), buttons
        out = await bot.tap(user, following)
        texts += out
        buttons += bot.buttons(user)
    raise AssertionError("never reached the last page")


@pytest.fixture
async def bot(engine, database_url):
    clock = FixedClock(NOW)
    with session_scope(engine) as s:
        apply_setup_file(s, setup_data(), now=NOW, path=ROOT / "deploy" / "test-summary.yaml")
    invites = [
        (CUONG, {"role": "police", "commune": "hiep-luc"}),
        (KHOA, {"role": "police", "commune": "yen-son"}),
        (SANG, {"role": "supervisor", "province": "Thái Nguyên"}),
        (AN, {"role": "village_head", "village": "Thôn Nà Làng", "commune": "hiep-luc"}),
    ]
    async with running_bot(engine, database_url, clock, invites=invites, date=NOW) as client:
        yield client


def period_of(s, commune_code: str, code: str, form_id: str = "bao-cao-6-thang") -> Period:
    commune = s.exec(select(Commune).where(Commune.code == commune_code)).one()
    return s.exec(
        select(Period).where(Period.commune_id == commune.id, Period.code == code, Period.form_id == form_id)
    ).one()


def villages_of(s, commune_code: str) -> list[Village]:
    commune = s.exec(select(Commune).where(Commune.code == commune_code)).one()
    return list(s.exec(select(Village).where(Village.commune_id == commune.id).order_by(Village.id)))


@pytest.fixture
def reports(bot):
    """Hiệp Lực: 3 on time (one amended late), 1 late, the rest missing; last year 2 reports; Phú Đình: 1."""
    with session_scope(bot.engine) as s:
        form = get_form(s, "bao-cao-6-thang")
        cur, prev = period_of(s, "hiep-luc", "2026-6T"), period_of(s, "hiep-luc", "2025-6T")
        v = villages_of(s, "hiep-luc")
        evil = next(x for x in v if x.name == EVIL_VILLAGE)
        file_report(
            s, v[0], cur, answers_for(form, 2, text="Thiếu kinh phí cho tổ tự quản."), DUE - timedelta(days=3)
        )
        file_report(s, v[1], cur, answers_for(form, 3, yes=False), DUE - timedelta(days=2))
        file_report(
            s, v[1], cur, answers_for(form, 5, yes=False), DUE + timedelta(days=1), no=2
        )  # amended late
        file_report(s, v[2], cur, answers_for(form, 4), DUE + timedelta(days=1, hours=2, minutes=5))  # late
        file_report(
            s,
            evil,
            cur,
            answers_for(form, 1, text=EVIL_TEXT + " " + "rất dài " * 60),
            DUE - timedelta(hours=1),
        )
        file_report(s, v[0], prev, answers_for(form, 1), prev.due_at - timedelta(days=1))
        file_report(s, v[1], prev, answers_for(form, 1), prev.due_at - timedelta(days=1))
        pd = villages_of(s, "phu-dinh")
        file_report(
            s, pd[0], period_of(s, "phu-dinh", "2026-6T"), answers_for(form, 10), DUE - timedelta(days=1)
        )
        ys = villages_of(s, "yen-son")
        file_report(
            s, ys[0], period_of(s, "yen-son", "2026-6T"), answers_for(form, 100), DUE - timedelta(days=1)
        )
        return {
            "period": cur.id,
            "villages": [x.id for x in v],
            "evil": evil.id,
            "names": [x.name for x in v],
        }


async def test_police_get_their_commune_summary(bot, reports) -> None:
    text, buttons = await all_pages(bot, CUONG, "/tonghop")
    assert "TỔNG HỢP BÁO CÁO — Xã Hiệp Lực" in text and "6 tháng đầu năm 2026" in text
    assert "Tình hình nộp: 4/15 thôn đã nộp" in text
    assert "Thôn Khuổi Ổ — muộn 1 ngày 2 giờ" in text  # late by its first version
    assert "Nộp muộn: 1" in text and "Đúng hạn: 3" in text  # the late amendment keeps Bản Duồm on time
    # so_buoi_tuyen_truyen: 2 + 5 (the amendment counts, not the first version) + 4 + 1; last year 1 + 1
    assert re.search(r"• Buổi tuyên truyền: <b>12</b> \(4/4 thôn\) · ▲ 10", text), text  # its short label
    assert "trả lời Không: Thôn Bản Duồm" in text
    assert "Phú Đình" not in text and "Bình Ca" not in text
    data = [d for _, d in buttons]
    assert any(d.startswith("sm:t:") for d in data)  # the long free text has a "xem đủ" button
    assert all(len(d.encode()) <= 64 for d in data)
    assert "Trang 1/" in text and any(d.startswith("sm:p:") for d in data)  # paged
    first = await bot.ask(CUONG, "/tonghop")
    assert await bot.ask(CUONG, "/summary") == first  # the English alias says the same


async def test_village_head_and_stranger_are_refused_and_told_nothing_else(bot, reports) -> None:
    for user, words in ((AN, "chỉ dành cho <b>cán bộ Công an xã</b>"), (LA, "chưa đăng ký")):
        out = await bot.ask(user, "/tonghop")
        assert len(out) == 1 and words in out[0], out
        out = await bot.tap(user, f"sm:p:{reports['period']}")
        assert len(out) == 1 and words in out[0] and "Hiệp Lực" not in out[0]


async def test_other_communes_police_see_only_their_own(bot, reports) -> None:
    out = "\n".join(await bot.ask(KHOA, "/tonghop"))
    assert "Xã Yên Sơn" in out and "1/1 thôn đã nộp" in out and "Hiệp Lực" not in out and "Nà Làng" not in out


@pytest.mark.parametrize(
    "forge",
    [
        "sm:p:{period}",
        "sm:v:{period}:0",
        "sm:s:{period}:{village}",
        "sm:t:{period}:{village}:30",
        "sm:l:{period}",
        "sm:r:{period}",
        "sm:L:{period}",
        "sm:c:{period}:0",
        "sm:f:{commune}",
        "sm:g:{cf}",
        "sm:G:{cf}",
    ],
)
async def test_forged_buttons_for_another_commune_are_refused(bot, reports, forge) -> None:
    with session_scope(bot.engine) as s:
        commune = s.exec(select(Commune).where(Commune.code == "hiep-luc")).one()
        cf = s.exec(select(CommuneForm).where(CommuneForm.commune_id == commune.id)).first()
    data = forge.format(
        period=reports["period"], village=reports["villages"][0], commune=commune.id, cf=cf.id
    )
    out = await bot.tap(KHOA, data)
    assert len(out) == 1 and "không có quyền xem" in out[0], out
    assert not any(name in out[0] for name in reports["names"])
    with session_scope(bot.engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "summary.refused")).first() is not None


async def test_police_cannot_roll_up_a_province_or_reach_into_another_commune(bot, reports) -> None:
    assert "không có quyền xem" in (await bot.tap(CUONG, f"sm:r:{reports['period']}"))[0]
    with session_scope(bot.engine) as s:
        other_village = villages_of(s, "yen-son")[0].id
        unknown_period = max(p.id for p in s.exec(select(Period))) + 100
    out = await bot.tap(CUONG, f"sm:s:{reports['period']}:{other_village}")
    assert len(out) == 1 and "không có quyền xem" in out[0] and "Bình Ca" not in out[0]
    assert "không có quyền xem" in (await bot.tap(CUONG, f"sm:p:{unknown_period}"))[0]
    for junk in ("sm:zz:1", "sm:p:abc", "sm:p", "sm:s:1", f"sm:p:{reports['period']}:9:9"):
        assert await bot.tap(CUONG, junk) == []  # a toast only
    assert "Nút này đã cũ" in (bot.answers()[-1] or "")


async def test_supervisor_sees_the_province_roll_up(bot, reports) -> None:
    text, _ = await all_pages(bot, SANG, "/tonghop")
    assert "TỔNG HỢP TOÀN TỈNH — Thái Nguyên" in text and "2 xã" in text
    assert "Tình hình nộp: 5/17 thôn đã nộp" in text  # 15 + 2 villages; Yên Sơn (Tuyên Quang) left out
    assert "Xã Hiệp Lực: 4/15" in text and "Xã Phú Đình: 1/2" in text and "Yên Sơn" not in text
    assert re.search(r"Buổi tuyên truyền: <b>22</b> \(5/5 thôn\)", text), text  # 12 + 10
    assert "Thôn Bản Duồm (Xã Hiệp Lực)" in text
    await bot.ask(SANG, "/tonghop")
    data = [d for _, d in bot.buttons(SANG)]
    communes = next(d for d in data if d.startswith("sm:c:"))
    await bot.tap(SANG, communes)
    buttons = bot.buttons(SANG)
    hiep_luc = next(d for label, d in buttons if "Hiệp Lực" in label)
    out = "\n".join(await bot.tap(SANG, hiep_luc))
    assert "TỔNG HỢP BÁO CÁO — Xã Hiệp Lực" in out and any(
        d.startswith("sm:r:") for _, d in bot.buttons(SANG)
    )


async def test_supervisor_cannot_open_another_province(bot, reports) -> None:
    with session_scope(bot.engine) as s:
        other = period_of(s, "yen-son", "2026-6T").id
    for data in (f"sm:p:{other}", f"sm:r:{other}"):
        out = await bot.tap(SANG, data)
        assert len(out) == 1 and "không có quyền xem" in out[0]


async def test_wrong_period_lists_the_valid_ones_and_a_code_picks_directly(bot, reports) -> None:
    (out,) = await bot.ask(CUONG, "/tonghop 2030-XX")
    assert (
        "Không tìm thấy kỳ “2030-XX”" in out
        and "2026-6T" in out
        and "bao-cao-nam" in out
        and "2025-CN" in out
    )
    (out,) = await bot.ask(CUONG, "/tonghop khong-co 2026-6T")
    assert "Không tìm thấy biểu mẫu “khong-co”" in out
    text = "\n".join(await bot.ask(CUONG, "/tonghop 2025-6T"))
    assert "6 tháng đầu năm 2025" in text and "2/15 thôn đã nộp" in text and "Chưa có kỳ trước" in text
    text = "\n".join(await bot.ask(CUONG, "/tonghop bao-cao-nam 2025-CN"))
    assert "Năm 2025" in text and "0/15 thôn đã nộp" in text
    text = "\n".join(await bot.ask(SANG, "/tonghop 2030-XX"))
    assert "trong tỉnh Thái Nguyên" in text and "2026-6T" in text


async def test_switching_period_and_form_by_buttons(bot, reports) -> None:
    await bot.ask(CUONG, "/tonghop")
    periods = next(d for _, d in bot.buttons(CUONG) if d.startswith("sm:l:"))
    await bot.tap(CUONG, periods)
    last_year = next(d for label, d in bot.buttons(CUONG) if label.startswith("2025-6T"))
    assert "6 tháng đầu năm 2025" in "\n".join(await bot.tap(CUONG, last_year))
    forms = next(d for _, d in bot.buttons(CUONG) if d.startswith("sm:f:"))
    await bot.tap(CUONG, forms)
    labels = bot.buttons(CUONG)
    assert len(labels) == 2  # the incident form has no periods and is not offered
    annual = next(d for label, d in labels if "năm" in label.lower() and "6 tháng" not in label)
    assert "Năm 2025" in "\n".join(await bot.tap(CUONG, annual))  # 2026-CN opens in November


async def test_by_village_whole_submission_and_full_text(bot, reports) -> None:
    await bot.ask(CUONG, "/tonghop")
    villages = next(d for _, d in bot.buttons(CUONG) if d.startswith("sm:v:"))
    _, buttons = await all_pages(bot, CUONG, villages)
    assert sum(1 for _, d in buttons if d.startswith("sm:s:")) == 15  # on two pages
    assert next(label for label, _ in buttons if "Bản Duồm" in label).startswith("✅")
    assert next(label for label, _ in buttons if "Khuổi Ổ" in label).startswith("⏰")
    duom = next(d for label, d in buttons if "Bản Duồm" in label)
    text, _ = await all_pages(bot, CUONG, duom)
    assert "Thôn Bản Duồm" in text and "bản sửa lần 1" in text and "Nộp đúng hạn" in text
    assert "• Buổi tuyên truyền: <b>5</b>" in text  # the current version, under its short label
    missing = next(d for label, d in buttons if "Pác Cáp" in label)
    text = "\n".join(await bot.tap(CUONG, missing))
    assert "chưa bắt đầu" in text and "/molai Thôn Pác Cáp 2026-6T" in text
    _, buttons = await all_pages(bot, CUONG, "/tonghop")
    full = next(d for _, d in buttons if d.startswith("sm:t:"))
    text, _ = await all_pages(bot, CUONG, full)
    assert "rất dài " * 59 in text.replace("\n", " ") and "&lt;script&gt;" in text


async def test_html_in_names_and_free_text_is_escaped(bot, reports) -> None:
    text, _ = await all_pages(bot, CUONG, "/tonghop")
    assert "Thôn &lt;i&gt;Mới&lt;/i&gt; &amp; Cũ" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;đậm&lt;/b&gt;" in text
    assert "<script>" not in text and "<i>Mới" not in text
    await bot.tap(CUONG, f"sm:s:{reports['period']}:{reports['evil']}")
    assert "Thôn &lt;i&gt;Mới&lt;/i&gt; &amp; Cũ" in bot.texts(CUONG)[-1]
    _, buttons = await all_pages(bot, CUONG, f"sm:v:{reports['period']}:0")
    assert any(label.endswith(EVIL_VILLAGE) for label, _ in buttons)  # buttons are plain text


async def test_a_long_summary_is_split_at_line_boundaries(bot, reports) -> None:
    with session_scope(bot.engine) as s:
        form = get_form(s, "bao-cao-6-thang")
        cur = period_of(s, "hiep-luc", "2026-6T")
        for i, village in enumerate(villages_of(s, "hiep-luc")[3:], start=3):
            if village.name == EVIL_VILLAGE:
                continue
            long = " ".join(f"ý-kiến-{i}-{k}" for k in range(150))
            file_report(s, village, cur, answers_for(form, i, text=long), DUE - timedelta(days=1))
    text, buttons = await all_pages(bot, CUONG, "/tonghop")  # every page ≤ 1,200 characters, ≤ 12 buttons
    assert text.count("<i>Trang ") >= 5
    bullets = [line for line in text.split("\n") if line.startswith("• <b>Thôn")]
    assert len(bullets) == 3 * 13  # 13 villages with three free texts each, every bullet whole on one page
    shortened = [line for line in bullets if re.search(r"… \[\d+\]$", line)]
    full = {d for _, d in buttons if d.startswith("sm:t:")}
    assert len(shortened) >= 3 * 12 and len(full) == len(shortened)  # every shortened text: its "xem đủ"


async def test_render_summary_messages_checks_the_actor(bot, reports) -> None:
    with session_scope(bot.engine) as s:
        period = s.get(Period, reports["period"])
        khoa = load_actor(s, KHOA.id)
        with pytest.raises(PermissionError):
            summary_handlers.render_summary_messages(s, period, khoa, NOW)
        messages = summary_handlers.render_summary_messages(s, period, None, NOW)
        assert messages and "Xã Hiệp Lực" in messages[0][0]
        assert any(b.data.startswith("sm:v:") for row in messages[0][1] for b in row)
        rollup = summary_handlers.render_summary_messages(s, period, "Thái Nguyên", NOW)
        assert "TỔNG HỢP TOÀN TỈNH" in rollup[0][0]


# ---------------------------------------------------------------------------------------------- wiring, menus


def test_load_all_wires_summary_and_export_in_a_fresh_interpreter() -> None:
    import subprocess
    import sys

    code = (
        "from bot.handlers import load_all\n"
        "names = {n for s in load_all().specs for n in s.names}\n"
        "print(sorted(names & {'summary', 'tonghop', 'xuat', 'export', 'sm', 'xe', 'xc'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "['export', 'sm', 'summary', 'tonghop', 'xc', 'xe', 'xuat']"


def _menu(bot, user: FakeUser) -> list[str]:
    calls = [
        c
        for c in bot.request.calls
        if c.method == "setMyCommands" and c.params.get("scope", {}).get("chat_id") == user.id
    ]
    assert calls, f"no menu set for {user.first_name}"
    return [item["command"] for item in calls[-1].params["commands"]]


async def test_police_menus_hold_summary_and_export_and_others_do_not(bot) -> None:
    police = _menu(bot, CUONG)
    assert {"summary", "tonghop", "xuat", "export", "nhacnho"} <= set(police), police
    assert {"summary", "tonghop", "xuat", "export"} <= set(_menu(bot, SANG))
    head = _menu(bot, AN)
    assert not {"summary", "tonghop", "xuat", "export", "nhacnho"} & set(head), head
    default = [c for c in bot.request.calls if c.method == "setMyCommands"]
    assert all(
        "summary" not in str(c.params) for c in default if c.params.get("scope", {}).get("type") == "default"
    )
    (help_text,) = await bot.ask(CUONG, "/help")
    assert "/tonghop — Tổng hợp báo cáo của xã" in help_text and "/xuat — Xuất Excel / Word" in help_text


@pytest.mark.parametrize("command", ["/summary", "/tonghop", "/xuat", "/export", "/xuat hiep-luc excel"])
async def test_every_name_refuses_village_heads_and_strangers_politely(bot, reports, command) -> None:
    for user, words in ((AN, "chỉ dành cho <b>cán bộ Công an xã</b>"), (LA, "chưa đăng ký")):
        out = await bot.ask(user, command)
        assert len(out) == 1 and words in out[0] and "Hiệp Lực" not in out[0], out
    assert not [c for c in bot.request.calls if c.method == "sendDocument"]


async def test_other_communes_police_cannot_name_hiep_luc(bot, reports) -> None:
    (out,) = await bot.ask(KHOA, "/xuat hiep-luc 2026-6T excel")
    assert "Không có biểu mẫu “hiep-luc”" in out and "Xã Hiệp Lực" not in out  # read as Yên Sơn's form
    period = reports["period"]
    for data in (f"xe:{period}:xlsx", f"sm:p:{period}"):
        out = await bot.tap(KHOA, data)
        assert len(out) == 1 and "Hiệp Lực" not in out[0] and "Nà Làng" not in out[0]
    assert not [c for c in bot.request.calls if c.method == "sendDocument"]


async def test_too_many_words_and_stale_buttons(bot, reports) -> None:
    (out,) = await bot.ask(CUONG, "/tonghop bao-cao-6-thang 2026-6T thừa")
    assert "quá nhiều phần" in out and "<code>bao-cao-6-thang 2026-6T thừa</code>" in out
    (out,) = await bot.ask(CUONG, "/tonghop <b>x</b> y z")
    assert "&lt;b&gt;x&lt;/b&gt;" in out and "<b>x</b>" not in out
    (out,) = await bot.ask(CUONG, "/xuat bao-cao-6-thang 2026-6T thừa")
    assert "quá nhiều phần" in out
    for data in ("sm:zz:1", "sm:p:abc", "sm:p", "sm:v:1:2:3", "xe:abc:xlsx", "xe"):
        assert await bot.tap(CUONG, data) == []
    assert all("cũ" in (t or "") or "hết hạn" in (t or "") for t in bot.answers()[-6:]), bot.answers()[-6:]
