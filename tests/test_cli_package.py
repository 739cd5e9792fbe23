"""The `baocao` package's wiring: every command resolves to its function, and building the parser stays cheap."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.cli.parser import COMMANDS, EXPORT_FORMATS, build_parser, resolve_command
from bot.exports import FORMATS

ONE_OF_EACH = [
    ["run"],
    ["demo"],
    ["setup", "x.yaml"],
    ["invite", "--village", "A"],
    ["invite", "list"],
    ["people"],
    ["people", "remove", "1"],
    ["people", "forget", "1"],
    ["db", "current"],
    ["forms", "check", "a.yaml"],
    ["periods"],
    ["remind", "--dry-run"],
    ["remind", "--now"],
    ["export", "--commune", "x"],
    ["request", "--commune", "x", "--form", "f", "--due", "20/12"],
    ["serve"],
    ["webhook", "info"],
]
HEAVY = ("telegram", "sqlalchemy", "sqlmodel", "jinja2", "dateparser", "openpyxl", "docx", "matplotlib")
HEAVY += ("starlette", "uvicorn", "apscheduler", "httpx", "alembic")


@pytest.mark.parametrize("argv", ONE_OF_EACH, ids=" ".join)
def test_every_command_resolves_to_a_function_of_its_group_module(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    command = resolve_command(args)
    assert callable(command) and command.__module__ == COMMANDS[args.group]


def test_every_group_is_reachable_and_the_export_formats_agree() -> None:
    groups = {build_parser().parse_args(argv).group for argv in ONE_OF_EACH}
    assert groups == set(COMMANDS)
    assert tuple(EXPORT_FORMATS) == tuple(FORMATS)


def test_building_the_parser_imports_no_heavy_library() -> None:
    code = (
        "import sys, bot.cli; bot.cli.build_parser(); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def _heavy_after(argv: list[str], env: dict[str, str]) -> list[str]:
    """The heavy libraries a fresh `baocao ARGV` process has imported when its command returns."""
    code = (
        "import sys, contextlib, io, bot.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        bot.cli.main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env=env
    )
    return eval(done.stdout.strip().splitlines()[-1])  # a list of names printed by the child


def test_help_imports_no_heavy_library() -> None:
    assert _heavy_after(["--help"], dict(os.environ)) == []


@pytest.mark.parametrize("argv", [["periods"], ["remind", "--dry-run"]], ids=" ".join)
def test_reading_commands_skip_alembic_telegram_and_the_writers(tmp_path, argv: list[str]) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"}
    env.pop("BAOCAO_TEMPLATES_DIR", None)
    subprocess.run(
        [sys.executable, "-c", "import bot.cli; bot.cli.main(['db', 'upgrade'])"],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    heavy = set(_heavy_after(argv, env))  # the database is at head: Alembic is not needed
    assert not heavy & {"alembic", "telegram", "openpyxl", "docx", "matplotlib", "httpx", "apscheduler"}
    if argv == ["periods"]:
        assert "jinja2" not in heavy
