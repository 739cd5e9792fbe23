"""`baocao export`: the same files as /xuat, written to disk (or stdout)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.common import open_engine
from bot.clock import system_clock
from bot.config import Settings
from bot.exports import ExportError, ExportFile, build_export, normalise_format, record_export, resolve
from bot.services.accounts import find_commune
from storage import audit
from storage.db import session_scope


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    if args.output and args.output != "-":
        guessed = normalise_format(Path(args.output).suffix)
        if guessed is not None:
            return guessed
    return "xlsx"


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write one export file; 1 with the valid forms/periods listed when a name is wrong."""
    if getattr(args, "incidents", False):
        return _export_incidents(args, settings)
    if getattr(args, "province", None):
        return _export_province(args, settings)
    fmt = _format(args)
    engine = open_engine(settings)
    now = system_clock()
    with session_scope(engine) as session:
        commune = find_commune(session, args.commune)
        try:
            form, period = resolve(session, commune, args.form, args.period, now)
            file = build_export(session, commune, form, period, fmt, now, default_tz=settings.timezone)
        except ExportError as exc:
            print(f"Lỗi: {exc.message}", file=sys.stderr)
            if exc.forms:
                print(f"  Các biểu mẫu: {', '.join(exc.forms)}", file=sys.stderr)
            if exc.periods:
                print(f"  Các kỳ: {', '.join(exc.periods)}", file=sys.stderr)
            return 1
        record_export(
            session, at=now, actor=audit.cli_actor(), commune=commune, period=period, fmt=fmt, file=file
        )
    return _write(args, file, f"{form.title}, {period.label}, {commune.name}")


def _export_province(args: argparse.Namespace, settings: Settings) -> int:
    """`baocao export --province NAME`: the roll-up of the province's communes (one row per commune)."""
    from bot.exports.rollup import find_province, resolve_rollup
    from bot.exports.rollup_export import build_rollup_export
    from bot.services.province_forms import provinces

    if getattr(args, "incidents", False):
        print("Lỗi: --incidents xuất sự việc của một xã; dùng --commune.", file=sys.stderr)
        return 1
    fmt = _format(args)
    engine = open_engine(settings)
    now = system_clock()
    with session_scope(engine) as session:
        try:
            province = find_province(session, args.province, provinces(session))
            communes, form, period = resolve_rollup(session, province, args.form, args.period, now)
            file = build_rollup_export(
                session, province, communes, form, period, fmt, now, default_tz=settings.timezone
            )
        except ExportError as exc:
            print(f"Lỗi: {exc.message}", file=sys.stderr)
            return 1
        audit.record(
            session,
            at=now,
            actor=audit.cli_actor(),
            action="export.province",
            entity="period",
            entity_id=period.id,
            format=fmt,
            province=province,
            bytes=len(file.content),
        )
    return _write(args, file, f"{form.title}, {period.label}, {province} ({len(communes)} xã)")


def _export_incidents(args: argparse.Namespace, settings: Settings) -> int:
    """`baocao export --incidents --commune X`: the commune's incidents as an Excel file."""
    from bot.exports.incidents import incidents_xlsx  # lazy: the incidents pull in the outbox and Telegram
    from bot.services.incidents import all_incidents
    from bot.services.zones import commune_zone

    if args.form or args.period or (args.format and args.format != "xlsx"):
        print("Lỗi: --incidents xuất tệp Excel của cả xã; bỏ --form, --period và --format.", file=sys.stderr)
        return 1
    engine = open_engine(settings)
    now = system_clock()
    with session_scope(engine) as session:
        commune = find_commune(session, args.commune)
        found = all_incidents(session, [commune.id])
        tz = commune_zone(commune, settings.timezone.key)
        file = incidents_xlsx(found, [commune], now, tz)
        audit.record(
            session,
            at=now,
            actor=audit.cli_actor(),
            action="export.incidents",
            entity="commune",
            entity_id=str(commune.id),
            rows=len(found),
        )
        name = commune.name
    return _write(args, file, f"{len(found)} sự việc đột xuất, {name}")


def _write(args: argparse.Namespace, file: ExportFile, what: str) -> int:
    """Write the file to stdout (`-o -`), a path or a folder (its own name), and say what was written."""
    if args.output == "-":
        sys.stdout.buffer.write(file.content)
        sys.stdout.buffer.flush()
        return 0
    name = file.ascii_filename if args.ascii_name else file.filename
    path = Path(args.output) if args.output else Path.cwd() / name
    if path.is_dir():
        path = path / name
    path.write_bytes(file.content)
    print(f"Đã ghi {path} ({len(file.content):,} byte): {what}.")
    return 0
