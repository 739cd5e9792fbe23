"""Templates are read once per process: rendering does not touch the file system again."""

from __future__ import annotations

import os

import pytest

from bot.texts import environment, render


def overrides(monkeypatch: pytest.MonkeyPatch, path: object) -> None:
    """Use `path` as BAOCAO_TEMPLATES_DIR for this test only."""
    from bot.reminders import content

    monkeypatch.setitem(content._OVERRIDES, "dir", str(path))


def test_a_loaded_template_is_rendered_without_looking_at_its_file(monkeypatch: pytest.MonkeyPatch) -> None:
    first = render("common/error.html")

    def no_stat(*_: object, **__: object) -> float:
        raise AssertionError("the template file was looked at again")

    monkeypatch.setattr(os.path, "getmtime", no_stat)
    assert render("common/error.html") == first
    assert environment().auto_reload is False


def test_an_unknown_template_is_still_an_error() -> None:
    from jinja2 import TemplateNotFound

    with pytest.raises(TemplateNotFound):
        render("common/no_such_template.html")


def test_a_communes_override_is_read_once_too(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reminders' per-commune overlay (BAOCAO_TEMPLATES_DIR) looks templates up on every render."""
    from bot.reminders.content import render_text

    (tmp_path / "xa-a" / "common").mkdir(parents=True)
    (tmp_path / "xa-a" / "common" / "error.html").write_text("Mẫu riêng của xã A", encoding="utf-8")
    overrides(monkeypatch, tmp_path)
    assert render_text("common/error.html", "xa-a") == "Mẫu riêng của xã A"

    def no_stat(*_: object, **__: object) -> float:
        raise AssertionError("the template file was looked at again")

    monkeypatch.setattr(os.path, "getmtime", no_stat)
    assert render_text("common/error.html", "xa-a") == "Mẫu riêng của xã A"


@pytest.fixture
def override_dir(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A directory overriding common/error.html for every commune; the shipped texts again afterwards."""
    from bot.reminders import content

    monkeypatch.setitem(content._OVERRIDES, "dir", None)
    (tmp_path / "mau" / "common").mkdir(parents=True)
    (tmp_path / "mau" / "common" / "error.html").write_text("Mẫu riêng của tỉnh", encoding="utf-8")
    for name in ("BAOCAO_TEMPLATES_DIR", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "mau"


def test_the_templates_dir_in_a_dotenv_file_is_used_by_every_command(
    override_dir, tmp_path, monkeypatch: pytest.MonkeyPatch, database_url: str, engine
) -> None:
    """Set in `.env` (not the environment), as the README says settings may be."""
    from bot.cli import main
    from bot.reminders.content import render_text

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    (tmp_path / ".env").write_text(f"BAOCAO_TEMPLATES_DIR={override_dir}\n", encoding="utf-8")
    assert render_text("common/error.html", "xa-b") != "Mẫu riêng của tỉnh"
    assert main(["periods"]) == 0
    assert render_text("common/error.html", "xa-b") == "Mẫu riêng của tỉnh"


def test_the_application_takes_the_templates_dir_from_its_settings(override_dir, database_url: str) -> None:
    from bot.app import build_application
    from bot.config import settings_from
    from bot.reminders.content import render_text
    from tests.support.telegram import TOKEN, RecordingRequest

    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url}
    build_application(
        settings_from({**env, "BAOCAO_TEMPLATES_DIR": str(override_dir)}), request=RecordingRequest()
    )
    assert render_text("common/error.html") == "Mẫu riêng của tỉnh"
    build_application(settings_from(env), request=RecordingRequest())
    assert render_text("common/error.html") != "Mẫu riêng của tỉnh"


def test_a_templates_dir_that_does_not_exist_stops_the_command(tmp_path) -> None:
    from bot.config import ConfigError, settings_from

    with pytest.raises(ConfigError, match="BAOCAO_TEMPLATES_DIR") as caught:
        settings_from({"BAOCAO_TEMPLATES_DIR": str(tmp_path / "khong-co")})
    assert "thư mục" in str(caught.value)
    assert settings_from({"BAOCAO_TEMPLATES_DIR": " "}).templates_dir is None
