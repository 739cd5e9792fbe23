"""Webhook settings and `baocao webhook set|delete|info` against the emulator."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import common, main, running
from bot.cli.parser import add_serve_parsers, resolve_command
from bot.config import DEFAULT_WEBHOOK_PATH, ConfigError, settings_from
from bot.emulator import EmulatorServer

TOKEN = "424242:WebCliTokenWebCliTokenWebCliToken0"
SECRET = "cli-secret_0123456789abcdef"


def test_webhook_settings_defaults_and_derivations() -> None:
    s = settings_from({})
    assert (s.webhook_url, s.webhook_secret, s.log_format) == (None, None, "text")
    assert (s.listen_host, s.listen_port, s.webhook_path) == ("127.0.0.1", 8080, DEFAULT_WEBHOOK_PATH)
    s = settings_from(
        {
            "BAOCAO_WEBHOOK_URL": "https://baocao.example.vn/tg/hook-7",
            "BAOCAO_WEBHOOK_SECRET": SECRET,
            "BAOCAO_LISTEN": "0.0.0.0:9000",
            "BAOCAO_LOG_FORMAT": "JSON",
        }
    )
    assert s.webhook_path == "/tg/hook-7" and s.require_webhook_secret() == SECRET
    assert (s.listen_host, s.listen_port, s.log_format) == ("0.0.0.0", 9000, "json")
    assert settings_from({"BAOCAO_LISTEN": "[::1]:81"}).listen_host == "::1"
    assert settings_from({"BAOCAO_LISTEN": ":81"}).listen_host == "0.0.0.0"
    explicit = settings_from({"BAOCAO_WEBHOOK_URL": "https://x.vn/a", "BAOCAO_WEBHOOK_PATH": "/b"})
    assert explicit.webhook_path == "/b"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"BAOCAO_WEBHOOK_URL": "baocao.example.vn/hook"}, "BAOCAO_WEBHOOK_URL"),
        ({"BAOCAO_WEBHOOK_URL": f"https://x.vn/{TOKEN}"}, "BAOCAO_WEBHOOK_URL"),
        ({"BAOCAO_WEBHOOK_SECRET": "short"}, "BAOCAO_WEBHOOK_SECRET"),
        ({"BAOCAO_WEBHOOK_SECRET": "has spaces in it, sixteen+"}, "BAOCAO_WEBHOOK_SECRET"),
        ({"BAOCAO_LISTEN": "8080"}, "BAOCAO_LISTEN"),
        ({"BAOCAO_LISTEN": "host:99999"}, "BAOCAO_LISTEN"),
        ({"BAOCAO_WEBHOOK_PATH": "hook"}, "BAOCAO_WEBHOOK_PATH"),
        ({"BAOCAO_WEBHOOK_PATH": "/metrics"}, "BAOCAO_WEBHOOK_PATH"),
        ({"BAOCAO_LOG_FORMAT": "xml"}, "BAOCAO_LOG_FORMAT"),
    ],
)
def test_bad_webhook_settings_say_which_in_one_line(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from(env)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_missing_secret_and_url_are_one_vietnamese_line_each() -> None:
    s = settings_from({})
    for require, name in (
        (s.require_webhook_secret, "BAOCAO_WEBHOOK_SECRET"),
        (s.require_webhook_url, "URL"),
    ):
        with pytest.raises(ConfigError) as info:
            require()
        assert name in str(info.value) and "chưa được đặt" in str(info.value) and "\n" not in str(info.value)


def test_add_serve_parsers_wires_serve_and_webhook() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_parsers(sub)
    assert resolve_command(parser.parse_args(["serve"])) is running.cmd_serve
    args = parser.parse_args(["webhook", "set", "--drop-pending", "--max-connections", "5"])
    assert (resolve_command(args), args.webhook_action, args.drop_pending, args.max_connections) == (
        running.cmd_webhook,
        "set",
        True,
        5,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["webhook"])


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """The emulator in a thread (the CLI runs its own event loop)."""
    server = EmulatorServer(token=TOKEN)
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture
def env(emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings pointing at the emulator; logging left to pytest."""
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": emulator.url,
        "BAOCAO_WEBHOOK_URL": "https://baocao.example.vn/telegram/webhook",
        "BAOCAO_WEBHOOK_SECRET": SECRET,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(common, "configure_logging", lambda *a, **k: None)


def test_webhook_set_info_delete(
    env: None, emulator: EmulatorServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["webhook", "set", "--max-connections", "7"]) == 0
    out = capsys.readouterr().out
    assert "Đã đăng ký webhook" in out and "https://baocao.example.vn/telegram/webhook" in out
    assert SECRET not in out and TOKEN not in out
    hook = emulator.webhook
    assert hook is not None and hook["secret_token"] == SECRET and hook["max_connections"] == 7
    assert emulator.allowed_updates and "callback_query" in emulator.allowed_updates

    assert main(["webhook", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["url"] == "https://baocao.example.vn/telegram/webhook" and info["pending_update_count"] == 0

    assert main(["webhook", "delete", "--drop-pending"]) == 0
    assert "Đã xoá webhook" in capsys.readouterr().out and emulator.webhook is None
    assert main(["webhook", "info"]) == 0
    assert "Chưa đăng ký webhook" in capsys.readouterr().out


def test_webhook_set_refused_by_the_server_is_one_line(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BAOCAO_WEBHOOK_URL", "http://baocao.example.vn/hook")  # Telegram wants https
    assert main(["webhook", "set"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Lỗi: Máy chủ Bot API") and "https" in err.lower() and err.count("\n") == 1


def test_webhook_set_without_url_or_secret_is_a_config_error(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BAOCAO_WEBHOOK_URL")
    assert main(["webhook", "set"]) == 2
    assert "BAOCAO_WEBHOOK_URL chưa được đặt" in capsys.readouterr().err
    monkeypatch.delenv("BAOCAO_WEBHOOK_SECRET")
    assert main(["serve"]) == 2
    assert "BAOCAO_WEBHOOK_SECRET chưa được đặt" in capsys.readouterr().err
