"""The `baocao` package's wiring: every command resolves to its function, and building the parser stays cheap."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    return _imported_after(argv, env, HEAVY)


# modules a reading command over SQLite has no use for (issue 18, gate 2: each was on its path before):
# the forms engine and loader (only a draft's progress needs them), the upward reminders' texts and outbox,
# PostgreSQL's dialect (imported by the upsert helper) and its async driver
NOT_FOR_READING = (
    "bot.forms.engine",
    "bot.forms.loader",
    "bot.services.forms",
    "bot.services.upward",
    "bot.services.outbox_messages",
    "bot.texts.templates",
    "sqlalchemy.dialects.postgresql",
    "asyncpg",
    "psycopg2",
)


def _imported_after(argv: list[str], env: dict[str, str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (top-level packages or full module names) a fresh `baocao ARGV` process has imported."""
    code = (
        "import sys, contextlib, io, bot.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        bot.cli.main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"names = set({names!r})\n"
        "print(sorted({m for m in sys.modules if m in names} | {m.split('.')[0] for m in sys.modules} & names))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env=env
    )
    return eval(done.stdout.strip().splitlines()[-1])  # a list of names printed by the child


def test_help_imports_no_heavy_library() -> None:
    assert _heavy_after(["--help"], dict(os.environ)) == []


READING = [["periods"], ["remind", "--dry-run"], ["periods", "--at", "2026-05-17 08:00"]]
READING += [["remind", "--dry-run", "--at", "2026-05-17 08:00"]]


@pytest.fixture(scope="module")
def set_up_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a SQLite database migrated and set up from the shipped Hiệp Lực file."""
    path = tmp_path_factory.mktemp("reading") / "b.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "TELEGRAM_BOT_TOKEN": f"123456789:{'A' * 35}"}
    env.pop("BAOCAO_TEMPLATES_DIR", None)
    setup = Path(__file__).resolve().parent.parent / "deploy" / "hiep-luc.yaml"
    subprocess.run(
        [sys.executable, "-c", f"import bot.cli; bot.cli.main(['setup', {str(setup)!r}])"],
        check=True,
        env=env,
        capture_output=True,
        timeout=120,
    )
    return env


@pytest.mark.parametrize("argv", READING, ids=" ".join)
def test_reading_commands_skip_alembic_telegram_and_the_writers(set_up_env, argv: list[str]) -> None:
    heavy = set(_heavy_after(argv, set_up_env))  # the database is at head: Alembic is not needed
    assert not heavy & {"alembic", "telegram", "openpyxl", "docx", "matplotlib", "httpx", "apscheduler"}
    if argv[0] == "periods":
        assert "jinja2" not in heavy


@pytest.mark.parametrize("argv", READING, ids=" ".join)
def test_reading_commands_skip_the_forms_engine_upward_texts_and_postgresql(set_up_env, argv) -> None:
    assert _imported_after(argv, set_up_env, NOT_FOR_READING) == []


def test_a_dry_run_over_drafts_reads_their_progress_without_the_whole_engine(tmp_path) -> None:
    """The other side of the laziness above: with drafts, their forms are loaded for "câu 2/34", by the
    flow alone (the engine's `progress`), not the engine with its events and inputs."""
    db = tmp_path / "drafts.db"
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, str(root / "bench" / "cli_startup.py"), "--make-db", str(db)],
        check=True,
        capture_output=True,
        timeout=180,
        cwd=root,
    )
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "TELEGRAM_BOT_TOKEN": f"123456789:{'A' * 35}"}
    argv = ["remind", "--dry-run", "--at", "2026-05-17 08:00"]
    names = (*NOT_FOR_READING, "bot.forms.flow", "bot.forms.events", "bot.forms.inputs")
    assert _imported_after(argv, env, names) == ["bot.forms.flow", "bot.forms.loader", "bot.services.forms"]


def test_a_reader_that_goes_away_ends_the_command_quietly(set_up_env) -> None:
    """`baocao periods | head -1`: the pipe closes before the output is written; no traceback, exit 141."""
    from bot.cli.parser import EXIT_BROKEN_PIPE

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, bot.cli; sys.exit(bot.cli.main(['periods']))"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=set_up_env,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader leaves at once: the command's first write meets a broken pipe
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == EXIT_BROKEN_PIPE
    assert "Traceback" not in err and "BrokenPipe" not in err


def _gc_after_console_main(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    """How a fresh process's collector stands after `main()` read `argv` from the command line (as the console
    script does) or was given it (as tests do): enabled, objects frozen, the command's exit code."""
    code = (
        "import sys, gc, contextlib, io, bot.cli\n"
        f"argv = {argv!r}\n"
        "given = sys.argv[1] == 'given'\n"
        "sys.argv = ['baocao', *argv]\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = bot.cli.main(argv if given else None)\n"
        "print(repr({'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count(), 'code': code}))"
    )
    out = {}
    for how in ("console", "given"):
        done = subprocess.run(
            [sys.executable, "-c", code, how],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env=env,
        )
        out[how] = eval(done.stdout.strip().splitlines()[-1])  # a dict printed by the child
    return out


@pytest.mark.parametrize("argv", READING, ids=" ".join)
def test_a_short_command_freezes_its_imports_only_in_a_process_of_its_own(set_up_env, argv) -> None:
    """Issue 18, gate 2: the console script pauses the collector while the command's modules load and freezes
    what they built; the collector is on again for the command, which answers as before. Called with `argv`
    (tests, other callers in a process of their own making), nothing is frozen."""
    seen = _gc_after_console_main(argv, set_up_env)
    assert seen["console"]["enabled"] and seen["console"]["code"] == 0
    assert seen["console"]["frozen"] > 10_000  # SQLAlchemy, pydantic and the models
    assert seen["given"] == {"enabled": True, "frozen": 0, "code": 0}


def test_the_bot_keeps_the_default_collector() -> None:
    from bot.cli.parser import LONG_RUNNING

    assert {build_parser().parse_args([name]).group for name in ("run", "serve", "demo")} == LONG_RUNNING


@pytest.mark.parametrize("enabled", [True, False])
def test_a_command_module_that_fails_to_import_is_reported_and_the_collector_restored(
    monkeypatch, enabled: bool
) -> None:
    import gc

    from bot.cli import parser

    monkeypatch.setitem(parser.COMMANDS, "periods", "bot.cli.no_such_module")
    args = build_parser().parse_args(["periods"])
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(ModuleNotFoundError, match="no_such_module"):
            parser.load_command_frozen(args)
        assert gc.isenabled() is enabled
        assert gc.get_freeze_count() == 0
    finally:
        (gc.enable if was else gc.disable)()
