"""load_actor's one outer-joined SELECT: the same actor as reading the person, then their memberships."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event

from bot.auth import Need, load_actor
from storage.models import Membership, Person, Role
from tests.support.world import seed_communes


def _person(session, now, uid: int, **extra) -> Person:
    person = Person(telegram_user_id=uid, full_name=f"P{uid}", created_at=now, updated_at=now, **extra)
    session.add(person)
    session.flush()
    return person


def _member(session, now, person: Person, role: Role, **where) -> Membership:
    membership = Membership(person_id=person.id, role=role, created_at=now, **where)
    session.add(membership)
    session.flush()
    return membership


def test_unknown_user_and_person_without_roles(session, clock) -> None:
    now = clock()
    assert load_actor(session, None) == load_actor(session, None)
    unknown = load_actor(session, 999)
    assert unknown.person is None and unknown.is_stranger and unknown.telegram_user_id == 999
    person = _person(session, now, 1001)
    actor = load_actor(session, 1001)
    assert (
        actor.person is person and actor.memberships == () and actor.villages == {} and actor.communes == {}
    )


def test_current_roles_of_active_places_only_in_one_statement(session, clock) -> None:
    now = clock()
    world = seed_communes(session, now)
    head = _person(session, now, 1002)
    village, gone_village = world.villages[0], world.villages[1]
    kept = _member(session, now, head, Role.VILLAGE_HEAD, village_id=village.id, commune_id=world.commune.id)
    _member(session, now, head, Role.VILLAGE_HEAD, village_id=gone_village.id)
    _member(
        session, now, head, Role.POLICE, commune_id=world.other_commune.id, ended_at=now - timedelta(days=1)
    )
    police = _member(session, now, head, Role.POLICE, commune_id=world.commune.id)
    gone_village.active = False
    world.other_commune.active = False
    _member(session, now, head, Role.SUPERVISOR, commune_id=world.other_commune.id, province="Tuyên Quang")
    session.flush()

    statements: list[str] = []

    def record(conn, cursor, statement, params, context, executemany) -> None:
        statements.append(statement)

    bind = session.get_bind()
    event.listen(bind, "before_cursor_execute", record)
    try:
        actor = load_actor(session, 1002)
    finally:
        event.remove(bind, "before_cursor_execute", record)
    assert len(statements) == 1
    assert actor.person is head
    assert actor.memberships == (kept, police)  # in membership order
    assert actor.villages == {village.id: village}
    assert actor.communes == {world.commune.id: world.commune}
    assert actor.satisfies(Need.VILLAGE_HEAD) and actor.satisfies(Need.POLICE)
    assert actor.roles == {Role.VILLAGE_HEAD, Role.POLICE}


def test_forgotten_person_has_no_roles(session, clock) -> None:
    now = clock()
    world = seed_communes(session, now)
    person = _person(session, now, 1003, forgotten_at=now)
    _member(session, now, person, Role.VILLAGE_HEAD, village_id=world.villages[0].id)
    actor = load_actor(session, 1003)
    assert actor.person is person and actor.is_stranger and actor.villages == {}
