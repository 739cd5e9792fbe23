"""Settings: defaults, .env merging, and one clear line for each bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULT_API_URL, ConfigError, load_environment, settings_from

TOKEN = "123456789:AAEexampleexampleexampleexample12345"


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = settings_from({})
    assert s.token is None and s.api_url == DEFAULT_API_URL
    assert s.database_url == f"sqlite:///{tmp_path / 'baocao.db'}"
    assert str(s.timezone) == "Asia/Ho_Chi_Minh"


def test_self_hosted_api_url_builds_both_roots() -> None:
    s = settings_from({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": "http://127.0.0.1:8081/"})
    assert s.base_url == "http://127.0.0.1:8081/bot"
    assert s.base_file_url == "http://127.0.0.1:8081/file/bot"


def test_postgres_urls_use_psycopg3() -> None:
    assert settings_from({"DATABASE_URL": "postgres://u@h/db"}).database_url == "postgresql+psycopg://u@h/db"
    assert (
        settings_from({"DATABASE_URL": "postgresql://u@h/db"}).database_url == "postgresql+psycopg://u@h/db"
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"TELEGRAM_BOT_TOKEN": "abc"}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_API_URL": "api.telegram.org"}, "TELEGRAM_API_URL"),
        ({"TELEGRAM_API_URL": f"https://api.telegram.org/bot{TOKEN}"}, "TELEGRAM_API_URL"),
        ({"DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL"),
        ({"BAOCAO_TIMEZONE": "Asia/Hanoi_City"}, "BAOCAO_TIMEZONE"),
        ({"TELEGRAM_BOT_USERNAME": "@1bad name"}, "TELEGRAM_BOT_USERNAME"),
    ],
)
def test_bad_settings_name_the_variable_in_one_line(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from(env)
    message = str(info.value)
    assert names in message and "\n" not in message


def test_missing_token_only_matters_when_running() -> None:
    s = settings_from({})
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN chưa được đặt"):
        s.require_token()


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "TELEGRAM_API_URL=http://127.0.0.1:1\nBAOCAO_TIMEZONE=Asia/Bangkok\n", encoding="utf-8"
    )
    merged = load_environment(env_file, {"BAOCAO_TIMEZONE": "Asia/Ho_Chi_Minh"})
    s = settings_from(merged)
    assert s.api_url == "http://127.0.0.1:1" and str(s.timezone) == "Asia/Ho_Chi_Minh"
