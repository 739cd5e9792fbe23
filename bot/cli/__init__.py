"""The `baocao` command line: `main` (the console script's entry point) and its parser."""

from bot.cli.parser import EXIT_USAGE, build_parser, main

__all__ = ["EXIT_USAGE", "build_parser", "main"]
