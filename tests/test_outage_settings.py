"""The database timeouts: read from the environment with a one-line fix when wrong, and applied by make_engine."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot.config import ConfigError, settings_from
from storage.db import make_engine

BASE = {"DATABASE_URL": "sqlite:///x.db"}


def test_defaults_and_the_engine_options() -> None:
    settings = settings_from(BASE)
    assert (settings.db_connect_timeout, settings.db_statement_timeout) == (5.0, 60.0)
    assert (settings.db_lock_timeout, settings.update_timeout) == (15.0, 20.0)
    assert settings.db_options == {"connect_timeout": 5.0, "statement_timeout": 60.0, "lock_timeout": 15.0}
    chosen = settings_from({**BASE, "BAOCAO_DB_LOCK_TIMEOUT": "2.5", "BAOCAO_UPDATE_TIMEOUT": "8"})
    assert chosen.db_lock_timeout == 2.5 and chosen.update_timeout == 8.0


@pytest.mark.parametrize(
    "name",
    [
        "BAOCAO_DB_CONNECT_TIMEOUT",
        "BAOCAO_DB_STATEMENT_TIMEOUT",
        "BAOCAO_DB_LOCK_TIMEOUT",
        "BAOCAO_UPDATE_TIMEOUT",
    ],
)
@pytest.mark.parametrize("raw", ["abc", "-1", "0", "99999999", "nan"])
def test_a_bad_value_names_the_setting_and_the_fix(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from({**BASE, name: raw})
    message = str(caught.value)
    assert message.startswith(f"{name}=") and "không hợp lệ" in message and "giây" in message


def test_make_engine_applies_the_timeouts(database_url: str, db_backend: str) -> None:
    engine = make_engine(database_url, connect_timeout=2, statement_timeout=7, lock_timeout=3)
    try:
        with engine.connect() as conn:
            if db_backend == "postgresql":
                assert conn.execute(text("SHOW statement_timeout")).scalar_one() == "7s"
                assert conn.execute(text("SHOW lock_timeout")).scalar_one() == "3s"
            else:
                assert conn.execute(text("PRAGMA busy_timeout")).scalar_one() == 3000
    finally:
        engine.dispose()
