"""The real bot process and the emulator: an urgent incident reaches the police group after three interactions
(/suco, the kind, "Khẩn cấp"), its first line the urgency; the full report follows with the same code, its
photo and its pin; the officer's /suco in the group lists it as delivered."""

from __future__ import annotations

import time

import pytest

from bot.emulator.client import UserSession
from bot.emulator.server import EmulatorServer
from tests.e2e.conftest import invite, press, say, tokens

pytestmark = pytest.mark.e2e

GROUP = -100777  # the police chat of the setup file
OFFICER, HEAD = 7101, 7102


def wait_keyboard(user: UserSession, timeout: float = 20) -> None:
    """Wait until the user's chat shows a message with buttons."""
    deadline = time.monotonic() + timeout
    while user.latest(with_keyboard=True) is None:
        assert time.monotonic() < deadline, [m.plain for m in user.messages()[-3:]]
        time.sleep(0.1)


def test_an_urgent_incident_reaches_the_police_group_in_three_interactions(
    bot, client, emulator: EmulatorServer
) -> None:
    officer = client.user(OFFICER, "Cường", "Lý Văn")
    emulator.add_group(GROUP, "Công an xã Hiệp Lực", [OFFICER])
    group = officer.in_group(GROUP)
    head = client.user(HEAD, "An", "Hoàng Văn")
    say(officer, f"/start {invite(bot, '--commune', 'hiep-luc', '--role', 'police')}")
    assert "Xin lỗi" not in say(head, f"/start {invite(bot, '--village', 'Thôn Nà Làng')}"), bot.log()[-3000:]

    started = time.monotonic()
    interactions = 0
    say(head, "/suco")
    interactions += 1
    wait_keyboard(head)  # the form's introduction first, then the first question with its buttons
    press(head, "c:0")  # Trộm cắp tài sản
    interactions += 1
    assert "Khẩn cấp" in " ".join(b.text for b in head.latest(with_keyboard=True).flat_buttons)
    press(head, "c:0")  # Khẩn cấp, cần Công an xã đến ngay
    interactions += 1
    alert = group.wait_reply(timeout=20)
    seconds = time.monotonic() - started
    assert interactions == 3
    assert alert.plain.splitlines()[0] == "🚨 KHẨN CẤP — Thôn Nà Làng", alert.plain
    assert "Loại sự việc: Trộm cắp tài sản" in alert.plain
    assert f'Người báo: <a href="tg://user?id={HEAD}">' in alert.text  # a tap opens the head's profile
    assert "Đã xảy ra việc gì" not in alert.plain  # short labels, not the questions
    assert any("bot báo ngay cho Công an xã" in (m.plain or "") for m in head.messages()[-3:])
    print(f"\nurgent alert: {interactions} interactions, {seconds:.2f} s from /suco to the police group")

    # the rest of the form, with a photo and a location, then "Gửi"
    for _ in range(60):
        available = tokens(head)
        if "confirm" in available:
            break
        text = head.messages()[-1].plain
        if "ảnh hiện trường" in text and "skip" in available:
            head.send_photo()
            head.wait_reply(timeout=20)
        elif "vị trí trên bản đồ" in text and "skip" in available:
            head.send_location(21.6, 105.8)
            head.wait_reply(timeout=20)
        else:
            for choice in ("submit", "ok:0", "d:yday", "c:0", "n", "skip"):
                if choice in available:
                    press(head, choice)
                    break
            else:
                say(head, "Mất trộm xe máy ở cổng nhà văn hoá")
    press(head, "confirm")
    receipt = next(m.plain for m in reversed(head.messages()) if "Mã biên nhận" in (m.plain or ""))
    code = receipt.split("Mã biên nhận:")[1].split()[0]
    assert "bản sửa" not in receipt and code in alert.plain

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = group.messages()
        if any(m.location for m in messages) and any(
            "bổ sung đủ chi tiết" in (m.plain or "") for m in messages
        ):
            break
        time.sleep(0.2)
    messages = group.messages()
    (full,) = [m for m in messages if "bổ sung đủ chi tiết" in (m.plain or "")]
    assert full.plain.startswith("🚨 KHẨN CẤP") and code in full.plain and "Vị trí:" in full.plain
    assert any(m.photo for m in messages) and any(m.location for m in messages)
    assert (
        sum("BÁO CÁO ĐỘT XUẤT" in (m.plain or "") for m in messages) == 2
    )  # the early alert and the follow-up

    listing = say(group, "/suco")
    assert "Sự việc đột xuất — Xã Hiệp Lực" in listing and "✅ đã báo" in listing and "Trộm cắp" in listing
