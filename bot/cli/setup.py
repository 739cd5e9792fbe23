"""`baocao setup FILE`: validate a commune's setup file (and its forms), then apply it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.common import open_engine
from bot.clock import system_clock
from bot.config import Settings
from bot.services.forms import FormStoreError, store_setup_forms
from bot.services.setup import apply_setup
from bot.setup_file import load_setup
from storage import audit
from storage.db import session_scope


def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    """Validate a setup file (and its forms) and apply it only if nothing is wrong."""
    result = load_setup(Path(args.file))
    for warning in result.warnings:
        print(f"Chú ý: {warning}", file=sys.stderr)
    if result.errors:
        print(f"Tệp thiết lập có {len(result.errors)} lỗi, chưa ghi gì vào cơ sở dữ liệu:", file=sys.stderr)
        for error in result.errors:
            print(f"  - {error}", file=sys.stderr)
        return 1
    engine = open_engine(settings)
    now, actor = system_clock(), audit.cli_actor()
    try:
        with session_scope(engine) as session:
            report = apply_setup(session, result.setup, now=now, actor=actor)
            extra = store_setup_forms(session, result.setup, now=now, actor=actor)
    except FormStoreError as exc:
        print(f"Biểu mẫu có {len(exc.reasons)} lỗi, chưa ghi gì vào cơ sở dữ liệu:", file=sys.stderr)
        for reason in exc.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return 1
    for line in [*report.lines(), *extra]:
        print(line)
    return 0
