"""`baocao db upgrade | current | copy --from URL --to URL` (copy: move a whole database, e.g. to PostgreSQL)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bot.cli.common import DB_URL_FALLBACK, open_engine
from bot.config import ConfigError, Settings, settings_from
from storage.copy import CopyError, copy_database, safe_url
from storage.db import current_revision, head_revision, make_engine


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """Apply migrations, show the current revision, or copy a database (`db copy --from URL --to URL`)."""
    if args.db_action == "copy":
        return cmd_db_copy(args, settings)
    engine = open_engine(settings) if args.db_action == "upgrade" else make_engine(settings.database_url)
    current, head = current_revision(engine), head_revision()
    shown = safe_url(settings.database_url, DB_URL_FALLBACK)
    print(f"Cơ sở dữ liệu: {shown} — phiên bản {current or '(trống)'}, mới nhất {head}.")
    return 0 if current == head else 1


def _normalise(option: str, raw: str | None) -> str:
    if not raw or not raw.strip():
        raise ConfigError(
            f"Thiếu {option} URL: ví dụ baocao db copy --from sqlite:///baocao.db "
            "--to postgresql://baocao:matkhau@127.0.0.1:5432/baocao"
        )
    try:
        return settings_from({"DATABASE_URL": raw}).database_url
    except ConfigError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def _progress_printer(every_seconds: float = 5.0) -> Callable[[str, int], None]:
    last = [time.monotonic()]

    def show(table: str, copied: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every_seconds:
            last[0] = now
            print(f"  … {table}: đã chép {copied} dòng", file=sys.stderr, flush=True)

    return show


def cmd_db_copy(args: argparse.Namespace, settings: Settings) -> int:
    """Copy every table from --from to --to, print the row counts; 0 when they all match."""
    del settings  # the copy names both databases explicitly; DATABASE_URL is not used
    try:
        source = _normalise("--from", getattr(args, "copy_from", None))
        destination = _normalise("--to", getattr(args, "copy_to", None))
    except ConfigError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 2
    print(f"Sao chép {safe_url(source)} → {safe_url(destination)} …")
    try:
        report = copy_database(
            source,
            destination,
            force=bool(getattr(args, "force", False)),
            batch_size=int(getattr(args, "batch_size", 1000)),
            progress=_progress_printer(),
        )
    except CopyError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
    width = max(len(t.table) for t in report.tables)
    print(f"  {'bảng':<{width}}  {'nguồn':>9}  {'đích':>9}")
    for t in report.tables:
        mark = "✓" if t.ok else "✗"
        print(f"  {t.table:<{width}}  {t.source:>9}  {t.destination:>9}  {mark}")
    print(f"Xong: đã chép {report.total_rows} dòng, {len(report.tables)} bảng, số dòng khớp từng bảng.")
    return 0 if report.ok else 1
