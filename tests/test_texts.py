"""Templates are read once per process: rendering does not touch the file system again."""

from __future__ import annotations

import os

import pytest

from bot.texts import templates
from bot.texts.templates import Renderer, environment, render


def overrides(monkeypatch: pytest.MonkeyPatch, path: object) -> None:
    """Use `path` as BAOCAO_TEMPLATES_DIR for this test only."""
    monkeypatch.setattr(templates, "_current", Renderer(str(path)))


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
    """The per-commune overlay (BAOCAO_TEMPLATES_DIR) does not look templates up again either."""
    (tmp_path / "xa-a" / "common").mkdir(parents=True)
    (tmp_path / "xa-a" / "common" / "error.html").write_text("Mẫu riêng của xã A", encoding="utf-8")
    overrides(monkeypatch, tmp_path)
    assert render("common/error.html", "xa-a") == "Mẫu riêng của xã A"

    def no_stat(*_: object, **__: object) -> float:
        raise AssertionError("the template file was looked at again")

    monkeypatch.setattr(os.path, "getmtime", no_stat)
    assert render("common/error.html", "xa-a") == "Mẫu riêng của xã A"


@pytest.fixture
def override_dir(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A directory overriding common/error.html for every commune; the shipped texts again afterwards."""
    monkeypatch.setattr(templates, "_current", Renderer())
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

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    (tmp_path / ".env").write_text(f"BAOCAO_TEMPLATES_DIR={override_dir}\n", encoding="utf-8")
    assert render("common/error.html", "xa-b") != "Mẫu riêng của tỉnh"
    assert main(["periods"]) == 0
    assert render("common/error.html", "xa-b") == "Mẫu riêng của tỉnh"


def test_the_application_takes_the_templates_dir_from_its_settings(override_dir, database_url: str) -> None:
    from bot.app import build_application
    from bot.config import settings_from
    from tests.support.telegram import TOKEN, RecordingRequest

    env = {"TELEGRAM_BOT_TOKEN": TOKEN, "DATABASE_URL": database_url}
    build_application(
        settings_from({**env, "BAOCAO_TEMPLATES_DIR": str(override_dir)}), request=RecordingRequest()
    )
    assert render("common/error.html") == "Mẫu riêng của tỉnh"
    build_application(settings_from(env), request=RecordingRequest())
    assert render("common/error.html") != "Mẫu riêng của tỉnh"


def test_a_templates_dir_that_does_not_exist_stops_the_command(tmp_path) -> None:
    from bot.config import ConfigError, settings_from

    with pytest.raises(ConfigError, match="BAOCAO_TEMPLATES_DIR") as caught:
        settings_from({"BAOCAO_TEMPLATES_DIR": str(tmp_path / "khong-co")})
    assert "thư mục" in str(caught.value)
    assert settings_from({"BAOCAO_TEMPLATES_DIR": " "}).templates_dir is None


def test_the_vn_number_filter_formats_numbers_and_leaves_text_alone() -> None:
    from decimal import Decimal

    from bot.texts.filters import vn_number_filter, vn_number_rounded

    assert vn_number_filter(1234567) == "1.234.567"
    assert vn_number_filter(Decimal("1234.50")) == "1.234,5"
    assert vn_number_filter(1234.567) == "1.234,57" == vn_number_rounded(1234.567)
    assert vn_number_filter(3.0) == "3"
    assert vn_number_filter("0.25") == "0.25" and vn_number_filter(None) == "None"


def test_a_deployment_override_reaches_every_text(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only reminders and Word: any template, e.g. the people CLI's plain `.txt` (not escaped)."""
    (tmp_path / "people").mkdir()
    (tmp_path / "people" / "forget_confirm.txt").write_text("Xoá <{{ person_id }}>?", encoding="utf-8")
    overrides(monkeypatch, tmp_path)
    assert render("people/forget_confirm.txt", person_id=7) == "Xoá <7>?"


def test_every_notice_of_the_services_is_worded_by_a_shipped_template() -> None:
    from typing import get_args

    from bot.services.report_notices import Notice
    from bot.texts.templates import templates_dir
    from bot.views.notices import TEMPLATES

    kinds = get_args(Notice)
    assert set(kinds) == set(TEMPLATES)
    assert all((templates_dir() / TEMPLATES[kind]).is_file() for kind in kinds)


def test_a_deadline_reads_as_the_plan_writes_it() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot.texts.filters import vn_deadline

    hcm = ZoneInfo("Asia/Ho_Chi_Minh")
    assert vn_deadline(datetime(2026, 5, 20, tzinfo=hcm)) == "trước ngày 20/05/2026 (hết ngày 19/05)"
    assert vn_deadline(datetime(2026, 5, 19, 17, 0, tzinfo=hcm)) == "17:00 ngày 19/05/2026"
    assert vn_deadline(None) == ""
