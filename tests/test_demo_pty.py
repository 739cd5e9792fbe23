"""`baocao demo` driven in a pseudo-terminal, the real process end to end: the head is signed up, a
reminder is delivered, a report is answered and sent, an incident reaches the police group in the same
demo, and the head's chat announces what arrived elsewhere."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

from tests.support.pty_program import PtyProgram

BAOCAO = str(Path(sys.executable).with_name("baocao"))
HEAD_PROMPT = r"\[trưởng thôn\] Bạn: "
RECEIPT = r"✅ Đã gửi|Mã biên nhận|\bBC-[A-Z0-9]{4,}"
NAV = ("Quay lại", "Tạm dừng", "Hủy", "Huỷ", "Sửa")

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pty")]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DATABASE_URL", "BAOCAO_"))}
    env["TERM"] = "xterm"
    return env


def _buttons(screen: str) -> list[str]:
    """The labels of the last button line of a screen ("[1] A  [2] B")."""
    lines = [line for line in screen.splitlines() if re.match(r"\s*\[1\] ", line)]
    if not lines:
        return []
    return [b.strip() for b in re.split(r"\s*\[\d+\] ", lines[-1])[1:]]


def _press(p: PtyProgram, buttons: list[str], *wanted: str) -> bool:
    """Press the first button whose label contains one of `wanted` (in that order of preference)."""
    for word in wanted:
        for i, label in enumerate(buttons, start=1):
            if word in label:
                p.send(f"#{i}")
                return True
    return False


def _answer(p: PtyProgram, screen: str) -> str:
    """One answer to whatever the bot asks on `screen`, as a village head in a hurry would give it."""
    buttons = _buttons(screen)
    if _press(p, buttons, "Gửi báo cáo", "Gửi ngay", "Gửi"):
        return "send"
    number = re.findall(r"Gõ một số từ ([\d.]+)", screen)
    if number:
        p.send(number[-1].replace(".", ""))
        return "number"
    if _press(p, buttons, "Không", "Bỏ qua"):
        return "button"
    keys = re.findall(r"⌨\s+Bàn phím: ([^\n]+?) \(gõ", screen)  # a reply keyboard: type a key's text
    if keys:
        typed = [k.strip() for k in keys[-1].split("|")]
        p.send(next((k for k in typed if k in ("Không", "Chưa", "Bỏ qua")), typed[0]))
        return "key"
    choices = [i for i, label in enumerate(buttons, start=1) if not any(n in label for n in NAV)]
    if choices:
        p.send(f"#{choices[0]}")
        return "choice"
    if "ngày" in screen.split("Câu")[-1].lower():
        p.send("hôm nay")
        return "date"
    p.send("Có người lạ đi xe máy hỏi đường vào bản")
    return "text"


def _fill(p: PtyProgram, first_screen: str, done: str, *, steps: int = 45) -> list[str]:
    """Answer screen after screen until `done` (a regex) is seen; returns what was done at each step."""
    screen, actions = first_screen, []
    for _ in range(steps):
        actions.append(_answer(p, screen))
        since = p.pos
        reply = p.expect(HEAD_PROMPT, timeout=20)
        screen = reply.string[since : reply.start()]
        if re.search(done, screen):
            return actions
    raise AssertionError(f"{done!r} not reached in {steps} answers ({actions}); last screen:\n{screen}")


def test_demo_in_a_terminal_head_police_group_reminder(tmp_path: Path) -> None:
    started = time.monotonic()
    data = tmp_path / "demo"
    p = PtyProgram(
        [BAOCAO, "demo", "--data-dir", str(data), "--reminder-in", "5", "--deadline-after", "1"],
        cwd=tmp_path,
        env=_env(),
    )
    try:
        p.expect(r"Mã mời trưởng thôn Thôn Nà Làng: \w+", timeout=40)
        p.expect(r"Đổi cuộc trò chuyện: :head — trưởng thôn; :police — công an; :group — nhóm công an")
        p.expect(r"Đăng ký thành công")  # the head signs up with the printed code
        p.expect(r"Cán bộ Công an \(thử\) đã gửi “/start \w+” ở \[công an\]")
        p.expect(r"Kỳ báo cáo “Kỳ thử [^”]+” đã mở\. Bot nhắc trưởng thôn lúc")
        p.expect(HEAD_PROMPT)

        # a reminder arrives on its own, while the terminal waits for the keyboard
        p.expect(r"⏰ Nhắc báo cáo\s+Thôn Nà Làng chưa gửi", timeout=30)
        p.expect(HEAD_PROMPT)

        # a police command from the head is refused, and the head stays where they were
        p.send("/nhacnho")
        p.expect(r"chỉ dành cho cán bộ Công an xã")
        p.expect(HEAD_PROMPT)
        p.send("#7")
        p.expect(r"Không có nút số 7\. Chọn từ #1 đến #1\.")  # bad input: the reminder has one button
        p.expect(HEAD_PROMPT)

        # the report: digits answer, #N presses; sent with a receipt
        p.send("#1")  # the reminder's "Làm báo cáo" button
        first = p.expect(r"Câu 1/\d+[\s\S]*?" + HEAD_PROMPT, timeout=20)
        actions = _fill(p, first.group(0), RECEIPT)
        assert "number" in actions and "send" in actions

        # an incident, filed by the head, reaches the police group in the same demo
        before_incident = p.pos
        p.send("/suco")
        first = p.expect(r"(Đã xảy ra việc gì\?|Câu 1/\d+)[\s\S]*?" + HEAD_PROMPT, timeout=20)
        _fill(p, first.group(0), RECEIPT, steps=25)
        p.send("")  # the marker of the other chat is printed before a prompt at the latest
        p.expect(HEAD_PROMPT)
        p.pos = before_incident  # it may have come with the receipt
        p.expect(r"🔔 Tin mới ở \[nhóm công an\]: 🚨[^\n]*— gõ :group để xem", timeout=20)
        p.send(":group")
        p.expect(r"— Bây giờ bạn là Cán bộ Công an \(thử\) trong \[nhóm công an\] —")
        p.expect(r"🚨[^\n]*\n[\s\S]*Thôn Nà Làng|🚨[^\n]*Thôn Nà Làng")
        p.expect(r"\[nhóm công an\] Bạn: ")

        p.send(":police")
        p.expect(r"Đăng ký thành công\. Chào Cán bộ Công an \(thử\)!")  # the officer's sign-up, kept
        p.send("/thoat")
        p.expect("Tạm biệt!")
        assert p.close() == 0
    finally:
        if p.proc.poll() is None:
            p.close(timeout=1)
        (tmp_path / "terminal.txt").write_text(p.text, encoding="utf-8")  # to read when it fails
        os.environ.get("DEMO_PTY_DUMP") and Path(os.environ["DEMO_PTY_DUMP"]).write_text(p.text)
    log = (data / "demo.log").read_text(encoding="utf-8")
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\+07:00 INFO ", log, re.M)  # local time
    assert "bot.updates.pipeline" not in p.text  # logs stay out of the chat
    print(f"pty demo test: {time.monotonic() - started:.1f} s")  # about 25 s here; meant to stay < 60 s
