"""The `baocao` package's wiring: every command resolves to its function, and building the parser stays cheap."""

from __future__ import annotations

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
