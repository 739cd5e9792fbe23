"""`baocao demo`: the same bot against the local emulator, with a terminal chat."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.config import Settings
from bot.demo import run_demo


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The same bot against the local emulator, with a terminal chat."""
    return run_demo(
        settings, data_dir=Path(args.data_dir), setup_file=args.setup, as_police=args.as_role == "police"
    )
