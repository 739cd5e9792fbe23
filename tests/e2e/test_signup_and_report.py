"""The real bot process: sign-up through deep links, two village heads report, a restart mid-way."""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage.db import make_engine, session_scope
from storage.models import Draft, Submission
from tests.e2e.conftest import answer, invite, press, say, tokens

pytestmark = pytest.mark.e2e


def test_deep_link_sign_up_for_police_and_two_village_heads(bot, client, emulator) -> None:
    police = client.user(5001, "Cường", "Lý Văn")
    an = client.user(5002, "An", "Hoàng Văn")
    binh = client.user(5003, "Bình", "Nông Thị")
    assert "mã mời" in say(an, "/start")  # no code yet: explains how to get one
    assert "cán bộ Công an" in say(
        police, f"/start {invite(bot, '--commune', 'hiep-luc', '--role', 'police')}"
    )
    assert "Thôn Nà Làng" in say(an, f"/start {invite(bot, '--village', 'Thôn Nà Làng')}")
    welcome = say(binh, f"/start {invite(bot, '--village', 'Thôn Bản Duồm')}")
    assert "trưởng thôn" in welcome and "/baocao" in welcome
    assert "dùng một lần" not in say(an, "/trogiup")
    # a used code cannot be used by someone else
    code = invite(bot, "--village", "Thôn Khuổi Ổ")
    assert "Đăng ký thành công" in say(client.user(5004, "Dũng"), f"/start {code}")
    assert "đã được người khác dùng" in say(client.user(5005, "Em"), f"/start {code}")
    # role menus were registered per chat with setMyCommands
    scopes = {(c["scope"].get("type"), c["scope"].get("chat_id")): c for c in client.commands()}
    assert ("default", None) in scopes and ("chat", 5002) in scopes
    heads_menu = {cmd["command"] for cmd in scopes[("chat", 5002)]["commands"]}
    police_menu = {cmd["command"] for cmd in scopes[("chat", 5001)]["commands"]}
    assert "baocao" in heads_menu and "molai" not in heads_menu and "molai" in police_menu
    # police commands refuse a village head, politely
    assert "chỉ dành cho" in say(an, "/molai Thôn Nà Làng")
    # people are listed by the CLI
    people = bot.cli("people", "--json")
    assert "Hoàng Văn An" in people or "An Hoàng Văn" in people


def test_two_heads_report_one_restarts_midway_and_the_incident_reaches_police(
    bot, client, emulator, database_url
) -> None:
    police = client.user(6001, "Cường", "Lý Văn")
    group = police.in_group(-100777)
    emulator.add_group(-100777, "Công an xã Hiệp Lực", [6001])
    say(police, f"/start {invite(bot, '--commune', 'hiep-luc', '--role', 'police')}")
    an = client.user(6002, "An", "Hoàng Văn")
    binh = client.user(6003, "Bình", "Nông Thị")
    say(an, f"/start {invite(bot, '--village', 'Thôn Nà Làng')}")
    say(binh, f"/start {invite(bot, '--village', 'Thôn Bản Duồm')}")

    for user in (an, binh):
        assert "Kỳ thử nghiệm" in say(user, "/baocao")
        press(user, tokens(user)[0])
    assert "Câu 2/" in say(an, "mười hai")  # words are numbers too
    say(binh, "5")
    say(an, "40")
    say(an, "không")  # question 3 opens an optional part: "Không" goes on to question 4

    bot.kill()  # power cut in the middle of An's report
    bot.start()

    assert "câu 4/" in say(an, "/baocao").lower()
    press(an, tokens(an)[0])
    answer(an)
    press(an, "confirm")
    assert "Mã biên nhận" in an.messages()[-1].plain
    answer(binh)
    press(binh, "confirm")

    engine = make_engine(database_url)
    with session_scope(engine) as s:
        subs = s.exec(select(Submission).order_by(Submission.village_id)).all()
        assert len(subs) == 2 and all(sub.on_time and sub.version_no == 1 for sub in subs)
        assert {sub.answers["so_buoi_tuyen_truyen"] for sub in subs} == {12, 5}
        assert s.exec(select(Draft)).all() == []
    engine.dispose()

    # an incident report goes straight to the police group, with the photo
    say(an, "/suco")
    for _ in range(60):
        available = tokens(an)
        if "confirm" in available:
            break
        text = an.messages()[-1].plain.lower()
        if "ảnh" in text and "skip" in available and "câu" in text:
            an.send_photo()
            an.wait_reply(timeout=20)
        elif "skip" in available and any(
            m in text for m in ("⚠", "vị trí", "giờ", "số người", "thiệt hại", "xử lý")
        ):
            press(an, "skip")
        else:
            for choice in ("submit", "ok:0", "d:yday", "c:0", "n"):
                if choice in available:
                    press(an, choice)
                    break
            else:
                say(an, "Cháy rơm rạ gần nhà văn hoá")
    press(an, "confirm")
    alert = group.wait_reply(timeout=20)
    assert "BÁO CÁO ĐỘT XUẤT" in alert.plain and "Thôn Nà Làng" in alert.plain
    assert any(m.photo for m in group.messages())
