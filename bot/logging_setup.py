"""Logging for the bot's processes: one line per event, as text or JSON, with secrets scrubbed
(`configure_logging`, `configure_file_logging`, `redact`, `RedactingFormatter`, `JsonFormatter`).

Design notes: docs/design-notes.md#botlogging_setuppy
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, TextIO

TOKEN_SHAPE = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{20,100}")
REDACTED = "<ẩn>"
QUIET_LOGGERS = ("httpx", "httpcore", "apscheduler", "alembic", "telegram.ext.Updater", "aiohttp.access")
QUIET_LOGGERS += ("uvicorn.access",)

# attributes every LogRecord has: anything else on a record came from `extra=` and is a field
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with ANSI colours
}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace the given secrets and anything shaped like a bot token with a placeholder."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return TOKEN_SHAPE.sub(REDACTED, text)


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a record carries (what was passed as `extra=`)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class RedactingFormatter(logging.Formatter):
    """The classic text line, scrubbed of secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Format as `time LEVEL logger: message`."""
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        """Format, then scrub."""
        return redact(super().format(record), self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the `extra=` fields, and exc if any."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Remember what to scrub."""
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record; values that are not JSON become strings."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(fields_of(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return redact(json.dumps(entry, ensure_ascii=False, default=str), self.secrets)


def configure_logging(
    fmt: str = "text",
    *,
    verbose: bool = False,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Replace the root handlers with one scrubbed text/JSON handler; returns it."""
    kept = [s for s in secrets if s]
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(kept) if fmt == "json" else RedactingFormatter(kept))
    _install(handler, verbose)
    return handler


class LocalTimeFormatter(RedactingFormatter):
    """The text line with its time in a given zone (ISO 8601 with the offset), scrubbed of secrets."""

    def __init__(self, tz: tzinfo, secrets: Iterable[str] = ()) -> None:
        """Format as `2026-12-07 13:05:01.123+07:00 LEVEL logger: message` in `tz`."""
        super().__init__(secrets)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time in the zone, to the millisecond, with its UTC offset."""
        return datetime.fromtimestamp(record.created, self.tz).isoformat(sep=" ", timespec="milliseconds")


def configure_file_logging(
    path: Path, tz: tzinfo, *, verbose: bool = False, secrets: Iterable[str | None] = ()
) -> logging.Handler:
    """Send every log line (and Python warnings) to the file `path`, times in `tz`; returns the handler.

    For `baocao demo`: the terminal is the chat, so logs must not land between its lines.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(LocalTimeFormatter(tz, [s for s in secrets if s]))
    _install(handler, verbose)
    logging.captureWarnings(True)
    return handler


def _install(handler: logging.Handler, verbose: bool) -> None:
    """Make `handler` the root logger's only one, at INFO (DEBUG when verbose), the chatty libraries quieter."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
