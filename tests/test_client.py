"""The in-process test client itself: a village head presses buttons by label and reads the screen."""

from __future__ import annotations

from sqlmodel import select

from storage.db import session_scope
from storage.models import Draft
from tests.support.client import running_bot
from tests.support.telegram import FakeUser
from tests.support.world import apply_setup_file

AN = FakeUser(2001, "An", "Hoàng Văn")


async def test_a_button_is_pressed_by_part_of_its_label_and_the_screen_follows(
    engine, database_url, clock
) -> None:
    with session_scope(engine) as s:
        apply_setup_file(s, now=clock())
    invites = [(AN, {"role": "village_head", "village": "Thôn Nà Làng"})]
    async with running_bot(engine, database_url, clock, invites=invites) as bot:
        assert "Đăng ký thành công" in bot.last_text(AN)
        await bot.send(AN, "/baocao")
        assert any("6 tháng" in label for label, _ in bot.buttons(AN))
        await bot.press_button(AN, "6 tháng")
        assert bot.said(AN) and "Câu 1/" in bot.said(AN)[-1]
        await bot.send(AN, "4")
        assert "Câu 2/" in bot.last_text(AN)
    with session_scope(engine) as s:
        (draft,) = s.exec(select(Draft)).all()
        assert list(draft.state["answers"].values()) == [4]
