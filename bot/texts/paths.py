"""Where the shipped templates are: the installed wheel's copy or the source checkout's `templates/`."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DATA = Path(__file__).resolve().parent.parent / "_data" / "templates"
_SOURCE_TREE = Path(__file__).resolve().parent.parent.parent / "templates"


def templates_dir() -> Path:
    """Where the shipped templates are (installed wheel or source checkout)."""
    return _PACKAGE_DATA if _PACKAGE_DATA.is_dir() else _SOURCE_TREE
