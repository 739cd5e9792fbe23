"""`baocao demo`: the same bot against the local emulator, with a terminal chat."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.cli.common import CliError
from bot.cli.parser import EXIT_USAGE
from bot.config import Settings
from bot.demo import run_demo


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """The same bot against the local emulator, with a terminal chat."""
    if not 0 <= args.reminder_in <= 24 * 3600:
        raise CliError("--reminder-in: số giây từ 0 đến 86400.", EXIT_USAGE)
    if not 1 <= args.deadline_after <= 24 * 60:
        raise CliError("--deadline-after: số phút từ 1 đến 1440.", EXIT_USAGE)
    return run_demo(
        settings,
        data_dir=Path(args.data_dir),
        setup_file=args.setup,
        as_police=args.as_role == "police",
        reminder_in=args.reminder_in,
        deadline_after=args.deadline_after,
        verbose=args.verbose,
    )
