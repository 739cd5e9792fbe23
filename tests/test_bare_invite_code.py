"""Issue 15: a bare invite code typed in a private chat by someone not registered is taken as `/start CODE`;
a registered person's code-like text is never taken for one (a head's answer stays an answer);
/help lists no English alias (they keep working)."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.services.accounts import create_invite, looks_like_code
from storage.db import session_scope
from storage.models import Membership, Person
from tests.support.client import running_bot
from tests.support.telegram import FakeUser
from tests.support.world import apply_setup_file

AN = FakeUser(3001, "An", "Hoàng Văn")  # head of Thôn Nà Làng, signed up
LA = FakeUser(3009, "Lạ")  # not registered
KHACH = FakeUser(3010, "Khách")  # not registered either
POLICE = FakeUser(3011, "Cường", "Lý Văn")  # police of Xã Hiệp Lực, signed up in the test
CODE_LIKE = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"


@pytest.fixture
async def bot(engine, database_url, clock):
    with session_scope(engine) as s:
        apply_setup_file(s, now=clock())
    invites = [(AN, {"role": "village_head", "village": "Thôn Nà Làng"})]
    async with running_bot(engine, database_url, clock, invites=invites) as b:
        yield b


def new_code(engine, clock, village: str = "Thôn Bản Duồm") -> str:
    with session_scope(engine) as s:
        return create_invite(s, role="village_head", village=village, now=clock(), actor="t").code


def memberships(engine, user: FakeUser) -> int:
    with session_scope(engine) as s:
        person = s.exec(select(Person).where(Person.telegram_user_id == user.id)).first()
        if person is None:
            return 0
        return len(s.exec(select(Membership).where(Membership.person_id == person.id)).all())


@pytest.mark.parametrize(
    ("text", "code_like"),
    [
        ("ABCD-EFGH-JKMN-PQRS", True),
        ("abcdefghjkmnpqrs", True),
        ("  abcd efgh jkmn pqrs ", True),
        ("ABCD-EFGH-JKMN", False),  # too short
        ("ABCD-EFGH-JKMN-PQRS-TVWX", False),  # too long
        ("mã của tôi ABCD-EFGH-JKMN-PQRS", False),  # more than a code
        ("12", False),
        ("/start ABCD-EFGH-JKMN-PQRS", False),
        ("ÀBCD-EFGH-JKMN-PQRS", False),
    ],
)
def test_the_shape_of_a_code(text: str, code_like: bool) -> None:
    assert looks_like_code(text) is code_like


@pytest.mark.parametrize("spelling", ["as_issued", "grouped", "lower_no_dashes"])
async def test_a_strangers_bare_code_signs_them_up(bot, engine, clock, spelling: str) -> None:
    code = new_code(engine, clock)
    typed = {
        "as_issued": code,
        "grouped": "-".join(code[i : i + 4] for i in range(0, 16, 4)),
        "lower_no_dashes": code.replace("-", "").lower(),
    }[spelling]
    await bot.send(LA, typed)
    text = bot.texts(LA)[-1]
    assert (
        "Đăng ký thành công" in text and "Đồng chí là <b>trưởng thôn</b>" in text and "Thôn Bản Duồm" in text
    )
    assert memberships(engine, LA) == 1


async def test_a_strangers_code_like_text_that_is_no_code_gets_the_wrong_code_answer(bot, engine) -> None:
    await bot.send(LA, CODE_LIKE)
    text = bot.texts(LA)[-1]
    assert "Mã mời <code>ZZZZ-ZZZZ-ZZZZ-ZZZZ</code> không đúng" in text
    assert memberships(engine, LA) == 0


async def test_wrong_bare_codes_count_towards_the_same_limit_as_start(bot, engine) -> None:
    for _ in range(5):
        await bot.send(KHACH, CODE_LIKE)
    await bot.send(KHACH, "ABCD-EFGH-JKMN-PQRS")
    assert "nhập sai mã quá nhiều lần" in bot.texts(KHACH)[-1]
    assert memberships(engine, KHACH) == 0


async def test_a_strangers_other_text_still_explains_how_to_join(bot) -> None:
    await bot.send(LA, "xin chào")
    assert "mã mời" in bot.texts(LA)[-1] and "không đúng" not in bot.texts(LA)[-1]


async def test_a_registered_heads_code_like_answer_stays_an_answer(bot, engine, clock) -> None:
    await bot.send(AN, "/baocao")
    await bot.press_token(AN, bot.last_keyboard(AN)[1][0])
    assert "Câu 1/" in bot.texts(AN)[-1]
    code = new_code(engine, clock)  # even a valid, unused code
    await bot.send(AN, code)
    said = "\n".join(bot.texts(AN)[-2:])
    assert "Câu 1/" in bot.texts(AN)[-1] and "Đăng ký" not in said and "Mã mời" not in said
    assert f"“{code}”" in said  # read as an answer to the count: refused, or a reading to confirm
    assert memberships(engine, AN) == 1
    await bot.send(AN, "3")  # the draft is still at question 1
    assert "Câu 2/" in bot.texts(AN)[-1]
    await bot.send(LA, code)  # the code is still unused
    assert "Đăng ký thành công" in bot.texts(LA)[-1]


async def test_a_registered_person_without_a_draft_is_not_signed_up_again(bot, engine, clock) -> None:
    await bot.send(AN, new_code(engine, clock))
    text = bot.texts(AN)[-1]
    assert "Bot chưa hiểu tin nhắn này" in text and "Đăng ký" not in text
    assert memberships(engine, AN) == 1


async def test_a_code_typed_in_a_group_registers_nobody(bot, engine, clock) -> None:
    group = {"id": -777, "type": "group", "title": "Nhóm thôn"}
    await bot.send(LA, new_code(engine, clock), group=group)
    assert memberships(engine, LA) == 0
    assert not any("Đăng ký thành công" in t for t in bot.texts(-777))


async def test_help_lists_no_english_alias_and_the_aliases_keep_working(bot, engine, clock) -> None:
    with session_scope(engine) as s:
        code = create_invite(s, role="police", commune="hiep-luc", now=clock(), actor="t").code
    await bot.send(POLICE, f"/start {code}")
    welcome = bot.texts(POLICE)[-1]
    await bot.send(POLICE, "/help")
    police_help = bot.texts(POLICE)[-1]
    await bot.send(AN, "/trogiup")
    head_help = bot.texts(AN)[-1]
    for text in (welcome, police_help, head_help):
        for english in ("/report", "/incident", "/summary", "/export"):
            assert english not in text, (english, text)
    for command in ("/tonghop", "/xuat", "/nhacnho", "/molai", "/help"):
        assert command in police_help
    for command in ("/baocao", "/suco", "/help"):
        assert command in head_help
    assert await bot.ask(POLICE, "/summary") == await bot.ask(POLICE, "/tonghop")
    await bot.send(AN, "/report")
    assert "6 tháng đầu năm 2026" in bot.texts(AN)[-1]


async def test_a_strangers_help_is_unchanged(bot) -> None:
    await bot.send(LA, "/help")
    assert "mã mời" in bot.texts(LA)[-1]
