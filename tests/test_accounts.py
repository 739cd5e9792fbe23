"""The accounts service: invite codes, sign-up outcomes, people listing and removal."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from bot.auth import Need, load_actor
from bot.services.accounts import (
    ALPHABET,
    CODE_LENGTH,
    AccountError,
    RedeemOutcome,
    TelegramUser,
    create_invite,
    format_code,
    generate_code,
    hash_code,
    list_people,
    normalize_code,
    redeem_invite,
    remove_person,
    revoke_invite,
)
from storage import audit
from storage.models import Invite, Role
from tests.support.world import seed_communes

AN = TelegramUser(1001, 1001, "Nguyễn Văn An", "an_nv")
BINH = TelegramUser(1002, 1002, "Trần Thị Bình")


@pytest.fixture
def world(session, clock):
    return seed_communes(session, clock())


def test_codes_have_at_least_64_bits_and_readable_alphabet() -> None:
    assert CODE_LENGTH * math.log2(len(ALPHABET)) >= 64
    codes = {generate_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)
    assert not set(ALPHABET) & set("ILOU")


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("abcd-efgh-jkmn-pqrs", "ABCDEFGHJKMNPQRS"),
        (" ABCD EFGH JKMN PQRS ", "ABCDEFGHJKMNPQRS"),
        ("0O1IL", "00111"),
        ("ư-ơ", "ƯƠ"),  # non-Latin letters survive normalisation and simply never match
    ],
)
def test_normalize_code(typed: str, stored: str) -> None:
    assert normalize_code(typed) == stored
    assert hash_code(typed) == hash_code(stored)


def test_format_code_groups_by_four() -> None:
    assert format_code("ABCDEFGHJKMNPQRS") == "ABCD-EFGH-JKMN-PQRS"


def test_only_the_hash_is_stored(session, clock, world) -> None:
    issued = create_invite(
        session, role=Role.VILLAGE_HEAD, village="Thôn Bản Mới", now=clock(), actor="cli:test"
    )
    row = session.get(Invite, issued.invite.id)
    assert issued.code not in (row.code_hash, row.code_hint) and row.code_hash == hash_code(issued.code)


def test_sign_up_binds_village_head_and_audits(session, clock, world) -> None:
    issued = create_invite(
        session, role=Role.VILLAGE_HEAD, village="thôn bản  mới", now=clock(), actor="cli:test"
    )
    result = redeem_invite(session, format_code(issued.code).lower(), AN, now=clock())
    assert result.outcome == RedeemOutcome.OK
    assert result.village.name == "Thôn Bản Mới" and result.commune.name == "Xã Hiệp Lực"
    actor = load_actor(session, AN.id)
    assert actor.satisfies(Need.VILLAGE_HEAD) and not actor.satisfies(Need.POLICE)
    assert [e.action for e in audit.entries(session)] == ["invite.create", "person.signup"]


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        ("expire", RedeemOutcome.EXPIRED),
        ("revoke", RedeemOutcome.REVOKED),
        ("deactivate_village", RedeemOutcome.PLACE_GONE),
        ("used_by_other", RedeemOutcome.USED),
    ],
)
def test_refused_codes(session, clock, world, prepare: str, expected: RedeemOutcome) -> None:
    issued = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    now = clock()
    if prepare == "expire":
        now = now + timedelta(days=7, seconds=1)
    elif prepare == "revoke":
        revoke_invite(session, issued.code, now=now, actor="cli")
    elif prepare == "deactivate_village":
        world.villages[2].active = False
    elif prepare == "used_by_other":
        assert redeem_invite(session, issued.code, BINH, now=now).outcome == RedeemOutcome.OK
    assert redeem_invite(session, issued.code, AN, now=now).outcome == expected
    assert load_actor(session, AN.id).is_stranger


def test_same_person_reusing_their_code_is_welcomed_again(session, clock, world) -> None:
    issued = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    assert redeem_invite(session, issued.code, AN, now=clock()).outcome == RedeemOutcome.OK
    assert redeem_invite(session, issued.code, AN, now=clock()).outcome == RedeemOutcome.ALREADY


def test_unknown_codes_are_rate_limited_per_user(session, clock, world) -> None:
    outcomes = [redeem_invite(session, f"WRONG{i}", AN, now=clock()).outcome for i in range(6)]
    assert outcomes == [RedeemOutcome.UNKNOWN] * 5 + [RedeemOutcome.RATE_LIMITED]
    good = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    assert redeem_invite(session, good.code, AN, now=clock()).outcome == RedeemOutcome.RATE_LIMITED
    assert (
        redeem_invite(session, good.code, BINH, now=clock()).outcome == RedeemOutcome.OK
    )  # others unaffected
    later = clock() + timedelta(hours=1, seconds=1)
    good2 = create_invite(
        session, role=Role.VILLAGE_HEAD, village="Thôn Đại Sơn", commune="hiep-luc", now=later, actor="c"
    )
    assert redeem_invite(session, good2.code, AN, now=later).outcome == RedeemOutcome.OK


def test_one_head_and_one_deputy_per_village(session, clock, world) -> None:
    first = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    second = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    deputy = create_invite(
        session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", deputy=True, now=clock(), actor="c"
    )
    assert redeem_invite(session, first.code, AN, now=clock()).outcome == RedeemOutcome.OK
    assert redeem_invite(session, second.code, BINH, now=clock()).outcome == RedeemOutcome.SLOT_TAKEN
    assert redeem_invite(session, deputy.code, BINH, now=clock()).outcome == RedeemOutcome.OK
    with pytest.raises(AccountError, match="đã có trưởng thôn"):
        create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")


def test_a_village_head_cannot_take_a_second_village(session, clock, world) -> None:
    a = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    b = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Bản Mới", now=clock(), actor="cli")
    assert redeem_invite(session, a.code, AN, now=clock()).outcome == RedeemOutcome.OK
    assert redeem_invite(session, b.code, AN, now=clock()).outcome == RedeemOutcome.HAS_OTHER_ROLE


def test_police_invite_and_commune_scope(session, clock, world) -> None:
    issued = create_invite(session, role=Role.POLICE, commune="Xã Hiệp Lực", now=clock(), actor="cli")
    assert redeem_invite(session, issued.code, BINH, now=clock()).outcome == RedeemOutcome.OK
    actor = load_actor(session, BINH.id)
    assert actor.satisfies(Need.POLICE) and not actor.satisfies(Need.VILLAGE_HEAD)
    assert actor.can_see_commune(world.commune) and not actor.can_see_commune(world.other_commune)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"role": Role.VILLAGE_HEAD, "village": "Thôn Đại Sơm", "commune": "hiep-luc"},
            "Có phải: Thôn Đại Sơn",
        ),
        ({"role": Role.VILLAGE_HEAD, "village": "Thôn Đại Sơn"}, "thêm --commune"),
        ({"role": Role.VILLAGE_HEAD}, "Cần --village"),
        ({"role": Role.POLICE}, "Cần --commune"),
        ({"role": Role.POLICE, "commune": "Xã Không Có"}, "Không có xã"),
        ({"role": Role.SUPERVISOR}, "Cần --province"),
        ({"role": Role.POLICE, "commune": "hiep-luc", "ttl": timedelta(0)}, "Thời hạn"),
    ],
)
def test_bad_invite_requests(session, clock, world, kwargs, message) -> None:
    with pytest.raises(AccountError, match=message):
        create_invite(session, now=clock(), actor="cli", **kwargs)


def test_revoke_errors(session, clock, world) -> None:
    with pytest.raises(AccountError, match="Không tìm thấy"):
        revoke_invite(session, "NOPE", now=clock(), actor="cli")
    issued = create_invite(session, role=Role.POLICE, commune="hiep-luc", now=clock(), actor="cli")
    redeem_invite(session, issued.code, AN, now=clock())
    with pytest.raises(AccountError, match="đã được dùng"):
        revoke_invite(session, issued.code, now=clock(), actor="cli")


def test_people_list_and_remove_loses_access_at_once(session, clock, world) -> None:
    head = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    police = create_invite(session, role=Role.POLICE, commune="hiep-luc", now=clock(), actor="cli")
    redeem_invite(session, head.code, AN, now=clock())
    redeem_invite(session, police.code, BINH, now=clock())
    rows = list_people(session, "hiep-luc")
    assert {(r.full_name, r.role, r.village) for r in rows} == {
        ("Nguyễn Văn An", "village_head", "Thôn Nà Mòn"),
        ("Trần Thị Bình", "police", None),
    }
    person_id = next(r.person_id for r in rows if r.role == "village_head")
    remove_person(session, person_id, now=clock(), actor="cli")
    assert load_actor(session, AN.id).is_stranger
    assert len(list_people(session)) == 1 and len(list_people(session, include_ended=True)) == 2
    with pytest.raises(AccountError, match="không còn gắn"):
        remove_person(session, person_id, now=clock(), actor="cli")
    with pytest.raises(AccountError, match="Không có người"):
        remove_person(session, 999, now=clock(), actor="cli")


def test_inactive_village_membership_does_not_count(session, clock, world) -> None:
    head = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    redeem_invite(session, head.code, AN, now=clock())
    world.villages[2].active = False
    session.flush()
    assert load_actor(session, AN.id).is_stranger


def test_refusals_of_a_valid_code_are_audited_without_the_code(session, clock, world) -> None:
    """Slot taken and role already held: one `invite.refused` row each, with the reason, never the code."""
    first = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    second = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Nà Mòn", now=clock(), actor="cli")
    other = create_invite(session, role=Role.VILLAGE_HEAD, village="Thôn Bản Mới", now=clock(), actor="cli")
    assert redeem_invite(session, first.code, AN, now=clock()).outcome == RedeemOutcome.OK
    assert redeem_invite(session, second.code, BINH, now=clock()).outcome == RedeemOutcome.SLOT_TAKEN
    assert redeem_invite(session, other.code, AN, now=clock()).outcome == RedeemOutcome.HAS_OTHER_ROLE
    refused = audit.entries(session, action="invite.refused")
    assert [(r.actor, r.entity_id, r.detail["reason"]) for r in refused] == [
        (f"telegram:{BINH.id}", str(second.invite.id), str(RedeemOutcome.SLOT_TAKEN)),
        (f"telegram:{AN.id}", str(other.invite.id), str(RedeemOutcome.HAS_OTHER_ROLE)),
    ]
    for row in refused:
        stored = f"{row.entity_id} {row.detail}"
        for code in (first.code, second.code, other.code):
            assert code not in stored and format_code(code) not in stored
    # a right code refused is not a wrong code: it does not count towards the rate limit
    assert redeem_invite(session, "WRONG", BINH, now=clock()).outcome == RedeemOutcome.UNKNOWN
