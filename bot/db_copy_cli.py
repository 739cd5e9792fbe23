"""`baocao db copy --from URL --to URL`: move a whole database, e.g. from SQLite to PostgreSQL."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bot.config import ConfigError, Settings, settings_from


def add_copy_arguments(db_parser: argparse.ArgumentParser) -> None:
    """Add the options of `baocao db copy` to the `db` sub-command's parser."""
    db_parser.add_argument(
        "--from", dest="copy_from", metavar="URL", help="với copy: cơ sở dữ liệu nguồn (sqlite:///…)"
    )
    db_parser.add_argument(
        "--to", dest="copy_to", metavar="URL", help="với copy: cơ sở dữ liệu đích (postgresql://…)"
    )
    db_parser.add_argument(
        "--force", action="store_true", help="với copy: xoá hết dữ liệu đang có ở đích rồi chép đè"
    )
    db_parser.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        metavar="N",
        help="với copy: số dòng đọc và ghi mỗi lần (mặc định 1000)",
    )


def add_copy_parser(db_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add a `copy` sub-command to a `db` sub-parser group (for a `db` built with sub-parsers)."""
    copy = db_subparsers.add_parser("copy", help="chép toàn bộ dữ liệu sang cơ sở dữ liệu khác")
    add_copy_arguments(copy)
    copy.set_defaults(func=cmd_db_copy)
    return copy


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
    from storage.copy import CopyError, copy_database, safe_url

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
