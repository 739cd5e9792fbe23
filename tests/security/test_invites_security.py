"""Invite codes through the real bot: brute force limited per Telegram user and audited, expiry, single use,
and the audit log's who-and-when for sign-up, removal, reopening and amendment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.services.accounts import MAX_WRONG_CODES_PER_HOUR, create_invite, generate_code, remove_person
from storage.db import session_scope
from storage.models import AuditLog, Invite, Membership
from tests.security.conftest import Figures
from tests.security.world import COMMUNE_X, HEAD_A, NOW, POLICE_X, VILLAGE_A
from tests.support.client import BotClient
from tests.support.telegram import FakeUser

pytestmark = pytest.mark.security

MALLORY = FakeUser(7101, "Mallory")
TRUDY = FakeUser(7102, "Trudy")
RATE_LIMITED = "nhập sai mã quá nhiều lần"


def _invite(world: BotClient, **kwargs: object) -> str:
    kwargs = {"role": "village_head", "village": "Thôn Khuổi Ổ", "commune": COMMUNE_X, **kwargs}
    with session_scope(world.engine) as s:
        return create_invite(s, now=world.clock(), actor="cli:test", **kwargs).code  # type: ignore[arg-type]


def _memberships(world: BotClient, user: FakeUser) -> list[Membership]:
    person = world.person(user)
    with session_scope(world.engine) as s:
        return list(s.exec(select(Membership).where(Membership.person_id == person.id)))


async def test_brute_force_is_stopped_after_five_wrong_codes_per_hour(
    world: BotClient, figures: Figures
) -> None:
    """Five wrong codes, then even the right code is refused for an hour; every try is audited."""
    assert MAX_WRONG_CODES_PER_HOUR == 5
    good = _invite(world)
    for _ in range(5):
        await world.send(MALLORY, f"/start {generate_code()}")
        figures.fault("wrong invite code")
        assert "không đúng" in world.texts(MALLORY)[-1]
    await world.send(MALLORY, f"/start {good}")
    figures.fault("wrong invite code")
    assert RATE_LIMITED in world.texts(MALLORY)[-1]
    refused = [a for a in world.audit("invite.refused") if a.actor == f"telegram:{MALLORY.id}"]
    limited = [a for a in world.audit("invite.rate_limited") if a.actor == f"telegram:{MALLORY.id}"]
    assert [a.detail["reason"] for a in refused] == ["unknown"] * 5 and len(limited) == 1
    assert all(a.at == NOW for a in refused + limited)
    with session_scope(world.engine) as s:
        assert (
            s.exec(select(Invite).order_by(Invite.id)).all()[-1].used_at is None
        )  # the good code was not spent

    await world.send(TRUDY, "/start ABCD-EFGH-JKMN-PQRS")  # another user is not blocked by Mallory
    assert "không đúng" in world.texts(TRUDY)[-1]

    world.clock.at = NOW + timedelta(minutes=59)
    await world.send(MALLORY, f"/start {good}")
    assert RATE_LIMITED in world.texts(MALLORY)[-1]
    world.clock.at = NOW + timedelta(hours=1, seconds=1)
    await world.send(MALLORY, f"/start {good}")
    assert "Đăng ký thành công" in world.texts(MALLORY)[-1]


async def test_many_wrong_codes_in_a_burst_never_sign_up(world: BotClient, figures: Figures) -> None:
    """Forty guesses in a minute: five are checked, the rest are refused without looking the code up."""
    for i in range(40):
        world.clock.at = NOW + timedelta(seconds=i)
        await world.send(MALLORY, f"/start {generate_code()}")
        figures.fault("wrong invite code")
    rows = [a for a in world.audit() if a.actor == f"telegram:{MALLORY.id}"]
    assert sum(a.action == "invite.refused" for a in rows) == 5
    assert sum(a.action == "invite.rate_limited" for a in rows) == 35
    with session_scope(world.engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "person.signup").order_by(AuditLog.id)).all()[
            -1
        ].actor != (f"telegram:{MALLORY.id}")


async def test_codes_expire(world: BotClient, figures: Figures) -> None:
    """A code past its expiry is refused and signs nobody up."""
    code = _invite(world, ttl=timedelta(days=2))
    world.clock.at = NOW + timedelta(days=2)
    await world.send(MALLORY, f"/start {code}")
    figures.fault("expired invite code")
    assert "hết hạn" in world.texts(MALLORY)[-1]
    assert [a.detail["reason"] for a in world.audit("invite.refused")] == ["expired"]
    assert not _has_person(world, MALLORY) or _memberships(world, MALLORY) == []


def _has_person(world: BotClient, user: FakeUser) -> bool:
    try:
        world.person(user)
    except Exception:
        return False
    return True


async def test_codes_are_single_use(world: BotClient, figures: Figures) -> None:
    """The second person to use a code is refused; the first keeps the place."""
    code = _invite(world)
    await world.send(TRUDY, f"/start {code}")
    assert "Đăng ký thành công" in world.texts(TRUDY)[-1]
    await world.send(MALLORY, f"/start {code}")
    figures.fault("reused invite code")
    assert "đã được người khác dùng" in world.texts(MALLORY)[-1]
    assert not _has_person(world, MALLORY) or _memberships(world, MALLORY) == []
    assert len(_memberships(world, TRUDY)) == 1
    assert [a.detail["reason"] for a in world.audit("invite.refused")] == ["used"]


async def test_revoked_codes_are_refused(world: BotClient, figures: Figures) -> None:
    """A revoked code signs nobody up."""
    from bot.services.accounts import revoke_invite

    code = _invite(world)
    with session_scope(world.engine) as s:
        revoke_invite(s, code, now=NOW, actor="cli:test")
    await world.send(MALLORY, f"/start {code}")
    figures.fault("revoked invite code")
    assert "bị huỷ" in world.texts(MALLORY)[-1]
    assert [a.action for a in world.audit("invite.revoke")] == ["invite.revoke"]


async def test_audit_records_signup_removal_reopen_and_amendment_with_who_and_when(
    world: BotClient, figures: Figures
) -> None:
    """Each of the four changes leaves one row naming the person (or operator) and the time."""
    signups = world.audit("person.signup")
    head = world.person(HEAD_A)
    mine = [a for a in signups if a.actor == f"person:{head.id}"]
    assert len(mine) == 1 and mine[0].at == NOW and mine[0].detail["village"] == VILLAGE_A

    await world.submit_report(HEAD_A)
    world.clock.at = NOW + timedelta(hours=1)
    await world.open_report(HEAD_A)  # amend before the deadline
    await world.answer_until(HEAD_A)
    await world.press_token(HEAD_A, "confirm")
    (amend,) = world.audit("report.amend")
    assert amend.actor == f"person:{head.id}" and amend.at == NOW + timedelta(hours=1)
    assert amend.detail["replaces"] == world.submissions()[0].id

    world.clock.at = NOW + timedelta(days=6)  # past the deadline (end of 19/05)
    await world.send(POLICE_X, f"/molai {VILLAGE_A} 2026-6T")
    (reopen,) = world.audit("report.reopen")
    police = world.person(POLICE_X)
    assert reopen.actor == f"person:{police.id}" and reopen.at == NOW + timedelta(days=6)

    with session_scope(world.engine) as s:
        remove_person(s, head.id, now=NOW + timedelta(days=7), actor="cli:admin")
    (removal,) = world.audit("person.remove")
    assert removal.actor == "cli:admin" and removal.at == NOW + timedelta(days=7)
    assert removal.detail["person_id"] == head.id


async def test_refusals_of_a_valid_code_are_audited(world: BotClient, figures: Figures) -> None:
    """A valid code refused because the village's slot is taken is in the audit log like other refusals."""
    code = _invite(world, village=VILLAGE_A, deputy=True)  # A already has a deputy: Bình
    await world.send(MALLORY, f"/start {code}")
    figures.fault("slot taken")
    assert "đã có người báo cáo" in world.texts(MALLORY)[-1]
    rows = [
        a
        for a in world.audit()
        if a.actor in (f"telegram:{MALLORY.id}", f"person:{world.person(MALLORY).id}")
    ]
    assert rows, "a refused sign-up (slot_taken) left no audit row"
