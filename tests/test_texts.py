"""Templates are read once per process: rendering does not touch the file system again."""

from __future__ import annotations

import os

import pytest

from bot.texts import environment, render


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
    from bot.reminders.content import TEMPLATES_ENV, render_text

    (tmp_path / "xa-a" / "common").mkdir(parents=True)
    (tmp_path / "xa-a" / "common" / "error.html").write_text("Mẫu riêng của xã A", encoding="utf-8")
    monkeypatch.setenv(TEMPLATES_ENV, str(tmp_path))
    assert render_text("common/error.html", "xa-a") == "Mẫu riêng của xã A"

    def no_stat(*_: object, **__: object) -> float:
        raise AssertionError("the template file was looked at again")

    monkeypatch.setattr(os.path, "getmtime", no_stat)
    assert render_text("common/error.html", "xa-a") == "Mẫu riêng của xã A"
