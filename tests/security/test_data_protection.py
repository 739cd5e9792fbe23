"""Data protection: no token, invite code, name or answer in the logs at INFO; removal ends access at once;
`forget_person` (baocao people forget ID) erases a person everywhere while the village's reports stay."""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from bot.cli.parser import add_forget_parser, resolve_command
from bot.cli.people import cmd_people_forget
from bot.config import settings_from
from bot.logging_setup import JsonFormatter, RedactingFormatter, fields_of
from bot.services.accounts import (
    FORGOTTEN_NAME,
    AccountError,
    create_invite,
    forget_person,
    generate_code,
    remove_person,
)
from bot.texts.templates import render
from storage.db import session_scope
from storage.models import AuditLog, Draft, Outbox, Person, Submission
from tests.security.conftest import Figures
from tests.security.world import (
    COMMUNE_X,
    DEPUTY_A,
    HEAD_A,
    NOW,
    POLICE_X,
    VILLAGE_A,
    start_world,
)
from tests.support.client import BotClient
from tests.support.telegram import TOKEN, DocumentRecorder, FakeUser

pytestmark = pytest.mark.security

SECRET_ANSWER = "Bí-mật-thôn-Zq7"  # typed into every free-text answer
QUEN = FakeUser(987654321, "Quên", "Hoàng Văn", "quen_hv_987")  # the person to be forgotten


class FailingOnce(DocumentRecorder):
    """Answers one sendMessage with Telegram's 400, to run the bot's error path too."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False

    async def do_request(self, url: str, method: str, request_data: Any = None, **kwargs: Any):
        """Fail the next sendMessage once when armed."""
        if self.fail_next and url.endswith("/sendMessage"):
            self.fail_next = False
            return 400, json.dumps({"ok": False, "error_code": 400, "description": "Bad Request: x"}).encode()
        return await super().do_request(url, method, request_data, **kwargs)


@pytest.fixture
def log_lines() -> Iterator[list[logging.LogRecord]]:
    """Every record at INFO and above, as the app's own text and JSON handlers would see it."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler, level = Keep(logging.INFO), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "apscheduler")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)  # as configure_logging does
    yield records
    root.removeHandler(handler)
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


async def test_no_token_code_name_or_answer_in_the_logs(
    engine: Engine, database_url: str, figures: Figures, log_lines: list[logging.LogRecord]
) -> None:
    """A sign-up, a whole report, an incident with a photo, a summary, an export and an error, logged at INFO."""
    request = FailingOnce()
    async for world in start_world(engine, database_url, figures=figures, request=request):
        with session_scope(engine) as s:
            code = create_invite(s, role="police", commune=COMMUNE_X, now=NOW, actor="cli:test").code
        await world.send(QUEN, f"/start {code}")
        await world.send(FakeUser(7301, "Đoán"), f"/start {generate_code()}")
        await world.submit_report(HEAD_A, text=SECRET_ANSWER)
        await world.send(POLICE_X, "/tonghop")
        (sub,) = world.submissions()
        await world.press(POLICE_X, f"sm:s:{sub.period_id}:{sub.village_id}")
        await world.press(POLICE_X, f"xe:{sub.period_id}:xlsx")
        request.fail_next = True
        await world.send(DEPUTY_A, "/baocao")
        figures.fault("telegram 400")
        assert SECRET_ANSWER in "\n".join(world.texts(POLICE_X))  # the secrets did flow through the bot
    assert any("update" in r.getMessage() for r in log_lines), "the registry logged nothing at INFO"
    secrets = {
        "token": TOKEN,
        "token secret part": TOKEN.split(":", 1)[1],
        "invite code": code,
        "answer": SECRET_ANSWER,
        "name": HEAD_A.last_name or "",
        "first name": "Quên",
        "username": HEAD_A.username or "",
    }
    raw, text_out, json_out = io.StringIO(), RedactingFormatter([]), JsonFormatter([])
    leaks = []
    for record in log_lines:
        lines = [
            record.getMessage(),
            str(fields_of(record)),
            text_out.format(record),
            json_out.format(record),
        ]
        raw.write("\n".join(lines) + "\n")
        for what, secret in secrets.items():
            if secret and any(secret in line for line in lines):
                leaks.append(f"{what} in {record.name}: {record.getMessage()[:200]}")
    figures.check("log lines checked", len(log_lines))
    assert not leaks, "\n".join(leaks)


async def test_a_removed_village_head_loses_access_at_once(world: BotClient, figures: Figures) -> None:
    """Removed mid-report: the next answer, the old buttons and /baocao all fail; the deputy carries on."""
    await world.open_report(HEAD_A)
    await world.send(HEAD_A, "5")
    message_id, data = world.last_keyboard(HEAD_A)
    before = world.draft_of(VILLAGE_A).state
    with session_scope(world.engine) as s:
        remove_person(s, world.person(HEAD_A).id, now=NOW, actor="cli:test")
    await world.send(HEAD_A, "6")
    assert world.texts(HEAD_A)[-1] == render("start/no_code.html")
    for token_data in data:
        await world.press(HEAD_A, token_data, message_id=message_id)
        figures.fault("removed person's button")
    await world.send(HEAD_A, "/baocao")
    assert world.texts(HEAD_A)[-1] == render("auth/refused.html", need="village_head", stranger=True)
    assert world.draft_of(VILLAGE_A).state == before
    await world.send(DEPUTY_A, "/baocao")
    await world.press_token(DEPUTY_A, world.last_keyboard(DEPUTY_A)[1][0])
    await world.send(DEPUTY_A, "6")
    assert world.draft_of(VILLAGE_A).state["answers"]["so_luot_nguoi_du"] == 6


async def test_removed_police_lose_summaries_and_exports_at_once(world: BotClient, figures: Figures) -> None:
    """Removed officer: /tonghop, /xuat, /molai and the export button are refused; no document sent."""
    await world.submit_report(HEAD_A)
    (sub,) = world.submissions()
    with session_scope(world.engine) as s:
        remove_person(s, world.person(POLICE_X).id, now=NOW, actor="cli:test")
    before = len(world.audit("auth.refused"))
    for command in ("/tonghop", "/xuat", f"/molai {VILLAGE_A}", "/nhacnho"):
        await world.send(POLICE_X, command)
    await world.press(POLICE_X, f"xe:{sub.period_id}:xlsx")
    await world.press(POLICE_X, f"sm:s:{sub.period_id}:{sub.village_id}")
    figures.fault("removed person's request", 6)
    assert len(world.audit("auth.refused")) == before + 6
    assert [c for c in world.request.calls if c.method == "sendDocument"] == []


def _everything(engine: Engine) -> str:
    """Every row of every table, as text."""
    out = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(text(f'SELECT * FROM "{table.name}"')):
                out.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(out)


async def test_forget_erases_the_person_everywhere_and_keeps_the_report(
    engine: Engine, database_url: str, figures: Figures
) -> None:
    """After forget_person no table holds the name, username or Telegram id; the submission stays, 'đã xoá'."""
    users = [(QUEN, {"role": "village_head", "village": VILLAGE_A, "commune": COMMUNE_X}), (POLICE_X, {"role": "police", "commune": COMMUNE_X})]  # fmt: skip
    async for world in start_world(engine, database_url, figures=figures, users=users):
        await world.send(QUEN, f"/start {generate_code()}")  # a wrong code: an attempt row with the id
        await world.send(POLICE_X, f"/nhacnho {VILLAGE_A}")  # an outbox row with Quên's chat id
        await world.submit_report(QUEN, text=SECRET_ANSWER)
        await world.send(QUEN, "/suco")  # an incident draft only Quên could continue
        person_id = world.person(QUEN).id
        with session_scope(engine) as s:
            assert s.exec(select(Outbox).where(Outbox.person_id == person_id)).all()
        dump = _everything(engine)
        assert str(QUEN.id) in dump and QUEN.username in dump and "Quên Hoàng Văn" in dump  # control
        with session_scope(engine) as s:
            result = forget_person(s, person_id, NOW + timedelta(days=1), "cli:admin")
        figures.fault("person forgotten")
        assert result.memberships_ended == 1 and result.submissions_kept == 1 and result.drafts_removed == 1
        dump = _everything(engine)
        for secret in (str(QUEN.id), QUEN.username or "", "Quên Hoàng Văn", "Hoàng Văn"):
            assert secret not in dump and json.dumps(secret)[1:-1] not in dump, f"{secret!r} still stored"
        with session_scope(engine) as s:
            person = s.get(Person, person_id)
            assert (person.full_name, person.username, person.telegram_user_id, person.chat_id) == (
                FORGOTTEN_NAME,
                None,
                None,
                None,
            )
            (sub,) = s.exec(select(Submission)).all()
            assert sub.submitted_by_person_id == person_id and SECRET_ANSWER in json.dumps(
                sub.answers, ensure_ascii=False
            )
            assert s.exec(select(Draft)).all() == []
            assert all(r.chat_id == 0 for r in s.exec(select(Outbox).where(Outbox.person_id == person_id)))
            (row,) = s.exec(select(AuditLog).where(AuditLog.action == "person.forget")).all()
            assert (
                row.actor == "cli:admin"
                and row.at == NOW + timedelta(days=1)
                and row.entity_id == str(person_id)
            )
        figures.answers(1, len(world.submissions()), "forget keeps the submission")
        await world.send(POLICE_X, "/tonghop")
        await world.press(POLICE_X, f"sm:s:{sub.period_id}:{sub.village_id}")
        assert SECRET_ANSWER in world.texts(POLICE_X)[-1]  # the village's report is still readable
        await world.send(QUEN, "/baocao")
        assert world.texts(QUEN)[-1] == render("auth/refused.html", need="village_head", stranger=True)
        with session_scope(engine) as s, pytest.raises(AccountError):
            forget_person(s, person_id, NOW, "cli:admin")


def test_forget_unknown_person_is_refused(session: Any) -> None:
    """An unknown id is an AccountError, not a crash."""
    with pytest.raises(AccountError, match="999"):
        forget_person(session, 999, NOW, "cli:test")


async def test_people_forget_command(
    engine: Engine, database_url: str, figures: Figures, capsys: pytest.CaptureFixture[str]
) -> None:
    """`baocao people forget ID` asks for --yes, then erases and prints what it did."""
    users = [(QUEN, {"role": "police", "commune": COMMUNE_X})]
    async for world in start_world(engine, database_url, figures=figures, users=users):
        person_id = world.person(QUEN).id
    settings = settings_from({"DATABASE_URL": database_url})
    parser = argparse.ArgumentParser()
    add_forget_parser(parser.add_subparsers(dest="people_action"))
    args = parser.parse_args(["forget", str(person_id)])
    assert resolve_command(args) is cmd_people_forget
    assert cmd_people_forget(args, settings) == 1 and "--yes" in capsys.readouterr().out
    with session_scope(engine) as s:
        assert s.get(Person, person_id).full_name != FORGOTTEN_NAME
    assert cmd_people_forget(parser.parse_args(["forget", str(person_id), "--yes"]), settings) == 0
    out = capsys.readouterr().out
    assert f"mã số {person_id}" in out and "Vai trò đã gỡ: 1" in out
    with session_scope(engine) as s:
        assert s.get(Person, person_id).full_name == FORGOTTEN_NAME


def test_people_forget_is_wired_into_the_baocao_command() -> None:
    """`baocao people forget ID --yes` reaches cmd_people_forget."""
    from bot.cli import build_parser

    try:
        args = build_parser().parse_args(["people", "forget", "5", "--yes"])
    except SystemExit:
        pytest.skip("bot/cli/parser.py does not wire `people forget`")
    assert resolve_command(args) is cmd_people_forget
