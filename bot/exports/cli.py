"""`baocao export`: the same files as /xuat, written to disk (wired into bot/cli.py by the lead)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.exports import FORMATS, ExportError, build_export, normalise_format, record_export, resolve


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `export` sub-command to the `baocao` parser's subparsers."""
    parser = subparsers.add_parser(
        "export",
        help="xuất báo cáo tổng hợp một kỳ của xã: Excel, Word hoặc CSV",
        description="Xuất báo cáo tổng hợp một kỳ của xã (cùng tệp với lệnh /xuat trong Telegram).",
    )
    parser.add_argument("--commune", required=True, help="mã hoặc tên xã, ví dụ hiep-luc")
    parser.add_argument("--form", help="mã biểu mẫu (mặc định: biểu mẫu chính của xã)")
    parser.add_argument("--period", help="mã kỳ, ví dụ 2026-6T (mặc định: kỳ đang mở hoặc vừa kết thúc)")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="xlsx, docx hoặc csv (mặc định: theo đuôi của tệp -o, nếu không có thì xlsx)",
    )
    parser.add_argument(
        "-o",
        "--output",
        help="tệp ghi ra; một thư mục thì ghi vào đó với tên mặc định; '-' ghi ra stdout "
        "(mặc định: tên tiếng Việt có dấu trong thư mục hiện tại)",
    )
    parser.add_argument("--ascii-name", action="store_true", help="tên tệp mặc định không dấu")
    parser.set_defaults(func=cmd_export)
    return parser


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
    from bot.cli import _engine
    from bot.clock import system_clock
    from bot.services.accounts import find_commune
    from storage import audit
    from storage.db import session_scope

    fmt = _format(args)
    engine = _engine(settings)
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
    if args.output == "-":
        sys.stdout.buffer.write(file.content)
        sys.stdout.buffer.flush()
        return 0
    name = file.ascii_filename if args.ascii_name else file.filename
    path = Path(args.output) if args.output else Path.cwd() / name
    if path.is_dir():
        path = path / name
    path.write_bytes(file.content)
    print(f"Đã ghi {path} ({len(file.content):,} byte): {form.title}, {period.label}, {commune.name}.")
    return 0
