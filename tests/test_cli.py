"""The `baocao` command line, run in-process against the test database."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bot.cli import main
from bot.services.accounts import hash_code
from storage.db import session_scope
from storage.models import Invite
from tests.support.world import seed_communes


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path, engine, clock):
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_URL", "BAOCAO_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "baocao_thon_bot")
    with session_scope(engine) as s:
        seed_communes(s, clock())
    return engine


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_invite_json_gives_code_and_deep_link(env, capsys) -> None:
    code, out, _ = run(capsys, "invite", "--village", "Thôn Bản Mới", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["link"] == f"https://t.me/baocao_thon_bot?start={data['code']}"
    with session_scope(env) as s:
        assert len(s.exec(select(Invite).where(Invite.code_hash == hash_code(data["code"]))).all()) == 1


def test_invite_for_police_and_revoke(env, capsys) -> None:
    code, out, _ = run(capsys, "invite", "--commune", "hiep-luc", "--role", "police")
    assert code == 0 and "Mã mời cho Xã Hiệp Lực" in out
    issued = out.split(": ", 1)[1].splitlines()[0]
    assert run(capsys, "invite", "revoke", issued)[0] == 0
    code, _, err = run(capsys, "invite", "revoke", "NOT-A-CODE")
    assert code == 1 and "Không tìm thấy mã mời" in err
    code, out, _ = run(capsys, "invite", "list")
    assert code == 0 and "đã huỷ" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("invite",), "Cần --village"),
        (("invite", "--village", "Thôn Đại Sơn"), "thêm --commune"),
        (("invite", "--village", "Thôn Bản Mới", "--days", "0"), "--days"),
        (("people", "remove", "42"), "Không có người"),
    ],
)
def test_bad_requests_fail_in_one_line(env, capsys, argv, message) -> None:
    code, _, err = run(capsys, *argv)
    assert code in (1, 2) and message in err and "Traceback" not in err


def test_people_lists_and_removes(env, capsys) -> None:
    from bot.services.accounts import TelegramUser, create_invite, redeem_invite

    with session_scope(env) as s:
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        issued = create_invite(s, role="village_head", village="Thôn Nà Mòn", now=now, actor="t")
        redeem_invite(s, issued.code, TelegramUser(7, 7, "Lò Văn Tám"), now=now)
    code, out, _ = run(capsys, "people", "--json")
    rows = json.loads(out)
    assert code == 0 and rows[0]["name"] == "Lò Văn Tám" and rows[0]["village"] == "Thôn Nà Mòn"
    assert run(capsys, "people", "remove", str(rows[0]["person_id"]))[0] == 0
    assert json.loads(run(capsys, "people", "--json")[1]) == []


def test_bad_config_is_one_line_without_traceback(env, capsys, monkeypatch) -> None:
    monkeypatch.setenv("BAOCAO_TIMEZONE", "Mars/Olympus")
    code, _, err = run(capsys, "people")
    assert code == 2 and err.count("\n") == 1 and "BAOCAO_TIMEZONE" in err


def test_db_upgrade_and_current(env, capsys) -> None:
    assert run(capsys, "db", "upgrade")[0] == 0
    code, out, _ = run(capsys, "db", "current")
    assert code == 0 and "mới nhất" in out
