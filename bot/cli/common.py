"""What every `baocao` command shares: the error type, settings and logging set-up around a command,
the database engine (migrated, with a one-line error), and the `--at` / `--commune` readers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError
from sqlmodel import Session

from bot.cli.parser import EXIT_USAGE, OFFLINE
from bot.clock import system_clock
from bot.config import ConfigError, Settings, load_settings
from bot.logging_setup import configure_logging
from storage.db import make_engine, upgrade
from storage.schema_version import at_head

DB_URL_FALLBACK = "DATABASE_URL"  # how messages name a DATABASE_URL that cannot be read as a URL

Command = Callable[[argparse.Namespace, Settings], int]


class CliError(Exception):
    """A problem to report in one line, with an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def open_engine(settings: Settings) -> Engine:
    """The engine of DATABASE_URL, migrated to the newest revision; CliError (exit 2) if unreachable.

    A database already at the shipped head is not handed to Alembic (its imports are most of a short
    command's start-up); any other state runs the real upgrade.
    """
    engine = make_engine(settings.database_url, **settings.db_options)
    if at_head(engine):
        return engine
    try:
        upgrade(engine)
    except DatabaseError as exc:
        from storage.copy import safe_url  # only on this error path: it imports Alembic

        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if _damaged(reason):
            raise CliError(
                f"Tệp cơ sở dữ liệu {safe_url(settings.database_url, DB_URL_FALLBACK)} bị hỏng ({reason}). "
                "Hãy dừng bot và khôi phục từ bản sao lưu: README, mục 'Backup and restore'.",
                EXIT_USAGE,
            ) from None
        raise CliError(
            f"Không mở được cơ sở dữ liệu ({safe_url(settings.database_url, DB_URL_FALLBACK)}): {reason}",
            EXIT_USAGE,
        ) from None
    return engine


def _damaged(reason: str) -> bool:
    """Whether SQLite's reason says the file itself is damaged (not merely unreachable or locked)."""
    return any(words in reason for words in ("file is not a database", "malformed", "file is encrypted"))


def parse_at(raw: str | None, settings: Settings) -> datetime:
    """`--at "YYYY-MM-DD HH:MM"` in local time (BAOCAO_TIMEZONE) as aware UTC; now when absent."""
    if raw is None:
        return system_clock()
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            local = datetime.strptime(raw.strip(), pattern)
        except ValueError:
            continue
        return local.replace(tzinfo=settings.timezone).astimezone(UTC)
    raise CliError(
        f'--at "{raw}" không đúng dạng "YYYY-MM-DD HH:MM" (giờ địa phương), ví dụ --at "2026-05-17 08:00".',
        EXIT_USAGE,
    )


def commune_id(session: Session, ref: str | None) -> int | None:
    """The id of the commune named by `--commune` (code or name), None when not given."""
    if not ref:
        return None
    from bot.services.accounts import find_commune  # the accounts service imports the forms engine

    return find_commune(session, ref).id


def execute(args: argparse.Namespace, command: Command) -> int:
    """Load the settings, set up texts and logging, run `command`; its errors become one line and a code."""
    try:
        settings = load_settings(args.env_file, check_ca=getattr(args, "group", None) not in OFFLINE)
        _install_renderer(settings.templates_dir)
        configure_logging(
            settings.log_format, verbose=args.verbose, secrets=(settings.token, settings.webhook_secret)
        )
        return command(args, settings)
    except ConfigError as exc:
        print(f"Lỗi cấu hình: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _account_error(exc):
            raise
        print(f"Lỗi: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)


def _install_renderer(templates_dir: str | None) -> None:
    """Install the deployment's texts for every command that renders one; Jinja2 is not imported for those
    that do not (a renderer imported later starts as `Renderer(None)`, which is what it would be given)."""
    if templates_dir is None and "bot.texts.templates" not in sys.modules:
        return
    from bot.texts.templates import Renderer, use_renderer

    use_renderer(Renderer(templates_dir))


def _account_error(exc: Exception) -> bool:
    """Whether `exc` is the accounts service's AccountError (only possible once that module was imported)."""
    accounts = sys.modules.get("bot.services.accounts")
    return accounts is not None and isinstance(exc, accounts.AccountError)
