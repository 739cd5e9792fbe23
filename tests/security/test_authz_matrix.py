"""Authorisation matrix: every handler in the registry × every role, driven through the real Application.

The handlers come from the registry after `load_all()`, so a handler module wired in later is in the
matrix at once. Each handler's declared need must match the rules below (a new command, button prefix
or message handler that is not in `EXPECTED_NEEDS` fails the suite until someone decides who may use
it), and each role must get exactly what the rules say: "served" (the handler ran) or "refused" (the
polite refusal text and an `auth.refused` audit row). Then callback data is forged to name another
village's draft, another commune's period and another village's submission.
"""

from __future__ import annotations

import importlib
import logging
import re
from typing import Any

import pytest
from sqlmodel import select

from bot.auth import Need
from bot.handlers import load_all
from bot.handlers.registry import Spec
from bot.texts.templates import render
from storage.db import session_scope
from storage.models import Draft, Outbox, Submission
from tests.security.conftest import Figures
from tests.security.world import (
    COMMUNE_Y,
    DEPUTY_A,
    HEAD_A,
    HEAD_B,
    HEAD_Y,
    POLICE_X,
    POLICE_Y,
    ROLES,
    STRANGER,
    SUPERVISOR,
    VILLAGE_A,
    VILLAGE_B,
    VILLAGE_Y,
)
from tests.support.client import BotClient
from tests.support.telegram import FakeUser

pytestmark = pytest.mark.security

# Who may use what: one line per command name (aliases included), callback prefix and message handler.
# Adding a handler to the bot without adding it here fails test_every_handler_has_an_expectation.
EXPECTED_NEEDS: dict[tuple[str, str], Need] = {
    ("command", "start"): Need.ANYONE,
    ("command", "help"): Need.ANYONE,
    ("command", "trogiup"): Need.ANYONE,
    ("command", "baocao"): Need.VILLAGE_HEAD,
    ("command", "report"): Need.VILLAGE_HEAD,
    ("command", "suco"): Need.MEMBER,  # heads get the incident form, police the list of incidents
    ("command", "incident"): Need.MEMBER,
    ("command", "molai"): Need.POLICE,
    ("command", "nhacnho"): Need.POLICE,
    ("command", "summary"): Need.POLICE,
    ("command", "tonghop"): Need.POLICE,
    ("command", "xuat"): Need.POLICE,
    ("command", "export"): Need.POLICE,
    ("command", "yeucau"): Need.POLICE,
    ("command", "huy"): Need.MEMBER,
    ("callback", "f"): Need.VILLAGE_HEAD,
    ("callback", "rp"): Need.VILLAGE_HEAD,
    ("callback", "nudge"): Need.POLICE,
    ("callback", "sm"): Need.POLICE,
    ("callback", "xe"): Need.POLICE,
    ("callback", "xc"): Need.POLICE,
    ("callback", "in"): Need.POLICE,
    ("callback", "inn"): Need.VILLAGE_HEAD,
    ("callback", "xp"): Need.POLICE,
    ("callback", "mo"): Need.POLICE,
    ("callback", "yc"): Need.POLICE,
    ("callback", "xn"): Need.POLICE,
    ("callback", "hs"): Need.POLICE,  # a report's file sent again (the report's commune only)
    ("callback", "hz"): Need.POLICE,  # a period's files as one zip (the period's commune only)
    ("callback", "xr"): Need.POLICE,  # the province roll-up export (a supervisor of that province only)
    ("message", "text"): Need.ANYONE,
    ("message", "unknown_command"): Need.ANYONE,
    ("message", "edited"): Need.ANYONE,
    ("stale_button", "stale"): Need.ANYONE,
    ("unhandled", "update"): Need.ANYONE,
}

# The truth table, written out rather than computed with Actor.satisfies (which is what is under test).
SERVED: dict[Need, frozenset[str]] = {
    Need.ANYONE: frozenset(ROLES),
    Need.MEMBER: frozenset(ROLES) - {"stranger"},
    Need.VILLAGE_HEAD: frozenset({"head_a", "head_b"}),
    Need.POLICE: frozenset({"police_x", "police_y", "supervisor"}),
}


def _entries() -> list[tuple[str, str, Spec]]:
    """(kind, name, spec) for every command name, callback prefix and message handler after load_all()."""
    out = []
    for spec in load_all().specs:
        names = spec.names if spec.kind == "command" else spec.names[:1]
        out += [(spec.kind, name, spec) for name in names]
    return out


ENTRIES = _entries()


def test_every_handler_has_an_expectation() -> None:
    """Every registered handler (at run time) declares a Need that matches the expectation rules."""
    problems = []
    for kind, name, spec in _entries():
        if not isinstance(spec.need, Need):
            problems.append(f"{kind} {name}: no declared Need ({spec.need!r})")
        elif (kind, name) not in EXPECTED_NEEDS:
            problems.append(
                f"{kind} {name}: not in EXPECTED_NEEDS (declares {spec.need}); decide who may use it"
            )
        elif EXPECTED_NEEDS[(kind, name)] != spec.need:
            problems.append(f"{kind} {name}: declares {spec.need}, expected {EXPECTED_NEEDS[(kind, name)]}")
    assert not problems, "\n".join(problems)
    assert {("command", "start"), ("callback", "f"), ("message", "text")} <= {(k, n) for k, n, _ in ENTRIES}


async def test_no_handler_bypasses_the_registry(world: BotClient) -> None:
    """Every handler installed in the Application is a registry wrapper (need checked) — nothing added aside."""
    wrapped = {f"{s.kind}:{s.names[0]}" for s in load_all().specs}
    stray = []
    for group, handlers in world.app.handlers.items():
        for handler in handlers:
            name = getattr(handler.callback, "__name__", repr(handler.callback))
            if name not in wrapped:
                stray.append(f"group {group}: {type(handler).__name__} → {name}")
    assert not stray, "handlers without a declared need:\n" + "\n".join(stray)
    assert len([h for hs in world.app.handlers.values() for h in hs]) >= len(wrapped)


async def _drive(world: BotClient, kind: str, name: str, user: FakeUser) -> Any:
    if kind == "command":
        return await world.send(user, f"/{name}")
    if kind == "callback":
        return await world.press(user, f"{name}:0")
    if kind == "stale_button":
        return await world.press(user, "zz-old-keyboard:1")
    if name == "unknown_command":
        return await world.send(user, "/khongcolenhnay")
    if name == "edited":
        return await world.send_raw(user, "edited_message", text="5", edit_date=1)
    if kind == "unhandled":  # chatter in a police group: no handler takes it
        return await world.send(user, "xin chào cả nhóm", group={"id": -100778, "type": "supergroup"})
    return await world.send(user, "xin chào")


def _routed(caplog: pytest.LogCaptureFixture, update_id: int) -> list[str]:
    """The registry's own log line says which handler ran an update (kind:name)."""
    out = []
    for record in caplog.records:
        if record.name != "bot.updates.pipeline":
            continue
        message = record.getMessage()
        update = re.search(r"\bupdate[= ](\d+)", message)
        handler = re.search(r"\bhandler[= ](\S+:\S+)", message)
        if update and handler and int(update.group(1)) == update_id:
            out.append(handler.group(1))
    return out


@pytest.mark.parametrize(("kind", "name", "spec"), ENTRIES, ids=[f"{k}:{n}" for k, n, _ in ENTRIES])
async def test_matrix(
    world: BotClient, kind: str, name: str, spec: Spec, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    """Each of the six roles gets the handler or a refusal, exactly as the need's rule says."""
    caplog.set_level(logging.INFO, logger="bot.updates.pipeline")
    expected_need = EXPECTED_NEEDS.get((kind, name))
    assert expected_need is not None, f"{kind} {name} has no expectation rule"
    table, wrong = [], []
    for role, user in ROLES.items():
        refusals_before = len(world.audit("auth.refused"))
        sent_before = len(world.texts(user))
        update = await _drive(world, kind, name, user)
        figures.fault("authz probe")
        routed = _routed(caplog, update.update_id)
        refusals = [
            r
            for r in world.audit("auth.refused")[refusals_before:]
            if r.entity_id == f"{kind}:{spec.names[0]}"
        ]
        texts = world.texts(user)[sent_before:]
        refusal_text = render("auth/refused.html", need=str(spec.need), stranger=role == "stranger")
        outcome = "refused" if refusals else "served"
        expected = "served" if role in SERVED[expected_need] else "refused"
        table.append(f"{role:<11} {outcome:<8} (expected {expected})")
        if routed != [f"{spec.kind}:{spec.names[0]}"]:
            wrong.append(f"{role}: routed to {routed}, not {spec.kind}:{spec.names[0]}")
        if outcome != expected:
            wrong.append(f"{role}: {outcome}, expected {expected}")
        if outcome == "refused":
            if texts != [refusal_text]:
                wrong.append(f"{role}: refusal text {texts!r}")
            if refusals[0].actor != f"telegram:{user.id}" or refusals[0].detail.get("need") != str(spec.need):
                wrong.append(f"{role}: refusal audit {refusals[0].actor} {refusals[0].detail}")
        elif refusal_text in texts:
            wrong.append(f"{role}: served but told it was refused")
    assert not wrong, f"{kind}:{name}\n" + "\n".join(table + wrong)


@pytest.mark.parametrize(
    "name", sorted({n for k, n, s in ENTRIES if k == "command" and not s.in_groups}) or ["start"]
)
async def test_private_commands_never_run_in_groups(world: BotClient, name: str) -> None:
    """A command not declared for groups, sent by police in an unknown group, only gets the group's id."""
    group = {"id": -100777, "type": "supergroup", "title": "Nhóm lạ"}
    await world.send(POLICE_X, f"/{name}", group=group)
    assert world.request.texts(-100777) == [render("group/unregistered.html", chat_id=-100777)]


# ---------------------------------------------------------------------------------------------- forgery


async def _draft_with_answer(world: BotClient, user: FakeUser, answer: str = "4321") -> Draft:
    await world.open_report(user)
    await world.send(user, answer)
    with session_scope(world.engine) as s:
        person = world.person(user)
        return s.get(Draft, person.active_draft_id)


async def test_forged_form_button_cannot_change_another_villages_draft(
    world: BotClient, figures: Figures
) -> None:
    """`f:<draft of A>:<seq>:<token>` pressed by B, by Y's head and by police: refused, draft unchanged."""
    draft = await _draft_with_answer(world, HEAD_A)
    seq = draft.state["seq"]
    for user in (HEAD_B, HEAD_Y):
        for token in ("back", "skip", "n", "c:0", "submit", "confirm", "e:1"):
            await world.press(user, f"f:{draft.id}:{seq}:{token}")
            figures.fault("forged callback")
            assert world.texts(user)[-1] == render("report/not_yours.html"), (user, token)
    for user in (POLICE_X, SUPERVISOR, STRANGER):
        await world.press(user, f"f:{draft.id}:{seq}:back")
        figures.fault("forged callback")
        assert "4321" not in world.texts(user)[-1]
    after = world.draft_of(VILLAGE_A)
    assert after.state == draft.state and after.updated_by_person_id == draft.updated_by_person_id
    assert all("4321" not in t for u in (HEAD_B, HEAD_Y, POLICE_X) for t in world.texts(u))


async def test_the_deputy_may_press_the_villages_shared_draft(world: BotClient) -> None:
    """The same forged-looking data is served for the other reporter of village A (control case)."""
    draft = await _draft_with_answer(world, HEAD_A, "12")
    await world.press(DEPUTY_A, f"f:{draft.id}:{draft.state['seq']}:back")
    assert world.texts(DEPUTY_A)[-1] != render("report/not_yours.html")
    assert world.draft_of(VILLAGE_A).state["seq"] != draft.state["seq"]


async def test_incident_draft_is_its_owners_only(world: BotClient, figures: Figures) -> None:
    """An incident draft belongs to the person who opened it, not to the other reporter of the village."""
    await world.send(HEAD_A, "/suco")
    with session_scope(world.engine) as s:
        draft = s.exec(select(Draft).where(Draft.period_id.is_(None))).one()  # type: ignore[union-attr]
    await world.press(DEPUTY_A, f"f:{draft.id}:{draft.state['seq']}:back")
    figures.fault("forged callback")
    assert world.texts(DEPUTY_A)[-1] == render("report/not_yours.html")
    with session_scope(world.engine) as s:
        assert s.get(Draft, draft.id).state == draft.state


async def test_forged_period_button_opens_nothing_of_another_commune(
    world: BotClient, figures: Figures
) -> None:
    """`rp:<period of commune Y>` from A's head: not open; no draft appears anywhere."""
    await world.press(HEAD_A, f"rp:{world.period_id(COMMUNE_Y)}")
    figures.fault("forged callback")
    assert world.texts(HEAD_A)[-1] == render("report/not_open.html")
    assert world.drafts() == []
    for bogus in ("rp:999999", "rp:-1", "rp:abc", "rp:1:2"):
        await world.press(HEAD_A, bogus)
        figures.fault("forged callback")
    assert world.drafts() == []


async def test_same_period_button_only_ever_opens_the_senders_village(
    world: BotClient, figures: Figures
) -> None:
    """B pressing the period A is filling in gets B's own (empty) draft, never A's answers."""
    draft_a = await _draft_with_answer(world, HEAD_A)
    await world.press(HEAD_B, f"rp:{draft_a.period_id}")
    figures.fault("forged callback")
    assert "Câu 1/" in world.texts(HEAD_B)[-1] and "4321" not in "\n".join(world.texts(HEAD_B))
    own = world.draft_of(VILLAGE_B)
    assert own.id != draft_a.id and own.state["answers"] == {}
    assert world.draft_of(VILLAGE_A).state == draft_a.state


async def test_forged_nudge_buttons(world: BotClient, figures: Figures) -> None:
    """Nudges for another commune's period, or a village outside the period's commune: refused, nothing queued."""
    period_x, period_y = world.period_id(), world.period_id(COMMUNE_Y)
    village_y, village_b = world.village_id(VILLAGE_Y, COMMUNE_Y), world.village_id(VILLAGE_B)
    forged = [
        (POLICE_X, f"nudge:all:{period_y}"),
        (POLICE_X, f"nudge:v:{village_y}:{period_x}"),  # own period, foreign village
        (POLICE_Y, f"nudge:v:{village_b}:{period_x}"),
        (POLICE_Y, f"nudge:v:{village_b}:{period_y}"),  # own period, foreign village
        (SUPERVISOR, f"nudge:all:{period_y}"),  # Tuyên Quang is not the supervisor's province
    ]
    for user, data in forged:
        before = len(world.audit("auth.refused"))
        await world.press(user, data)
        figures.fault("forged callback")
        assert world.texts(user)[-1] == render("remind/nudge_not_yours.html"), data
        assert len(world.audit("auth.refused")) == before + 1, data
    with session_scope(world.engine) as s:
        assert s.exec(select(Outbox).where(Outbox.kind == "nudge")).all() == []
    await world.press(POLICE_X, f"nudge:v:{village_b}:{period_x}")  # control: served
    with session_scope(world.engine) as s:
        assert len(s.exec(select(Outbox).where(Outbox.kind == "nudge")).all()) >= 1


def _load_police_handlers() -> None:
    """Summary and export handlers (import registers them if load_all() does not wire them yet)."""
    for module in ("bot.handlers.summary", "bot.handlers.export"):
        importlib.import_module(module)


async def _submitted_world(world: BotClient) -> Submission:
    await world.submit_report(HEAD_A, text="bí mật thôn A 4321")
    (sub,) = world.submissions()
    return sub


async def test_forged_summary_buttons_cannot_read_another_villages_report(
    engine: Any, database_url: str, figures: Figures
) -> None:
    """`sm:s:<period>:<village>` and `sm:t:…` naming A's report, from police of Y: refused, nothing leaks."""
    _load_police_handlers()
    from tests.security.world import start_world

    async for world in start_world(engine, database_url, figures=figures):
        sub = await _submitted_world(world)
        period_x, period_y = sub.period_id, world.period_id(COMMUNE_Y)
        village_a = sub.village_id
        village_y = world.village_id(VILLAGE_Y, COMMUNE_Y)
        forged = [
            f"sm:s:{period_x}:{village_a}",
            f"sm:s:{period_y}:{village_a}",  # own period, A's village
            f"sm:p:{period_x}",
            f"sm:v:{period_x}:0",
            f"sm:r:{period_x}",
            f"sm:l:{period_x}",
            f"sm:L:{period_x}",
            f"sm:F:{period_x}",
            f"sm:c:{period_x}:0",
        ] + [f"sm:t:{period_y}:{village_a}:{i}" for i in range(40)]
        for data in forged:
            await world.press(POLICE_Y, data)
            figures.fault("forged callback")
        leaked = [t for t in world.texts(POLICE_Y) if "4321" in t or VILLAGE_A in t]
        assert not leaked, leaked
        yen_son_report = f"sm:s:{period_y}:{village_y}"
        for data in (f"sm:p:{period_y}", f"sm:r:{period_y}", f"sm:c:{period_y}:0", yen_son_report):
            await world.press(SUPERVISOR, data)  # Thái Nguyên's supervisor, Tuyên Quang's commune
            figures.fault("forged callback")
            assert world.texts(SUPERVISOR)[-1] == render("summary/forbidden.html"), data
        await world.press(POLICE_X, f"sm:s:{period_x}:{village_y}")  # X's period, Y's village
        figures.fault("forged callback")
        assert world.texts(POLICE_X)[-1] == render("summary/forbidden.html")
        await world.press(POLICE_X, f"sm:s:{period_x}:{village_a}")  # control: served
        assert "4321" in world.texts(POLICE_X)[-1]


async def test_forged_export_buttons_send_no_file(engine: Any, database_url: str, figures: Figures) -> None:
    """`xe:<period of X>:xlsx` and `xc:<commune X>` from police of Y and heads: refused, no document sent."""
    _load_police_handlers()
    from tests.security.world import start_world

    async for world in start_world(engine, database_url, figures=figures):
        sub = await _submitted_world(world)
        with session_scope(world.engine) as s:
            from storage.models import Period

            commune_x = s.get(Period, sub.period_id).commune_id
        for user in (POLICE_Y, HEAD_A, HEAD_B, STRANGER):
            for data in (f"xe:{sub.period_id}:xlsx", f"xe:{sub.period_id}:docx", f"xc:{commune_x}"):
                await world.press(user, data)
                figures.fault("forged callback")
        assert [c for c in world.request.calls if c.method == "sendDocument"] == []
        await world.press(POLICE_X, f"xe:{sub.period_id}:csv")  # control: served
        assert [c for c in world.request.calls if c.method == "sendDocument"]


async def test_reopen_only_in_communes_where_the_sender_is_police(world: BotClient, figures: Figures) -> None:
    """Police of Y who is also head of village A (commune X) cannot reopen village B of commune X."""
    from datetime import timedelta

    from bot.services.accounts import create_invite
    from tests.security.world import NOW

    with session_scope(world.engine) as s:
        code = create_invite(s, role="police", commune=COMMUNE_Y, now=NOW, actor="cli:test").code
    await world.send(HEAD_A, f"/start {code}")
    assert "Đăng ký thành công" in world.texts(HEAD_A)[-1]
    world.clock.at = NOW + timedelta(days=6)  # after the 2026-6T deadline
    await world.send(HEAD_A, f"/molai {VILLAGE_B} 2026-6T")
    figures.fault("cross-role reopen")
    assert world.audit("report.reopen") == [], world.texts(HEAD_A)[-1]
