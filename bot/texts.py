"""Every text the bot sends is a Jinja2 template under `templates/`; this module renders them."""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

_PACKAGE_DATA = Path(__file__).parent / "_data" / "templates"
_SOURCE_TREE = Path(__file__).resolve().parent.parent / "templates"


def templates_dir() -> Path:
    """Where the shipped templates are (installed wheel or source checkout)."""
    return _PACKAGE_DATA if _PACKAGE_DATA.is_dir() else _SOURCE_TREE


def _vn_number(value: Any) -> str:
    """Format a number the Vietnamese way: 1.234.567 and 3,5."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}".replace(",", ".")
    if isinstance(value, float):
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
        return text.replace(",", "_").replace(".", ",").replace("_", ".")
    return str(value)


def _vn_datetime(value: Any) -> str:
    """17:00 ngày 19/05/2026 (the caller converts to local time first)."""
    return f"{value:%H:%M} ngày {value:%d/%m/%Y}" if value is not None else ""


def vn_due(value: Any) -> str:
    """A local due time: midnight reads "hết ngày 19/05/2026", else "17:00 ngày 19/05/2026"."""
    if value is None:
        return ""
    if (value.hour, value.minute, value.second) == (0, 0, 0):
        from datetime import timedelta

        return f"hết ngày {value - timedelta(days=1):%d/%m/%Y}"
    return _vn_datetime(value)


def _vn_date(value: Any) -> str:
    """19/05/2026."""
    return f"{value:%d/%m/%Y}" if value is not None else ""


@lru_cache(maxsize=8)
def environment(extra_dir: str | None = None) -> Environment:
    """The Jinja2 environment: HTML autoescape always on, commune overrides searched first.

    Templates are read once per process (`auto_reload=False`: no `stat` of the file on every render);
    edited templates take effect at the next start.
    """
    search = [extra_dir] if extra_dir else []
    search.append(str(templates_dir()))
    env = Environment(
        loader=FileSystemLoader(search),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    env.filters["vn_number"] = _vn_number
    env.filters["vn_datetime"] = _vn_datetime
    env.filters["vn_date"] = _vn_date
    env.filters["vn_due"] = vn_due
    return env


def render(name: str, /, **context: Any) -> str:
    """Render template `name` (e.g. "start/greet_police.html") to Telegram HTML, trimmed."""
    return _template(environment(), name).render(**context).strip()


@cache
def _template(env: Environment, name: str) -> Any:
    """The compiled template `name` of `env`, looked up once (Jinja's own lookup builds a cache key each time)."""
    return env.get_template(name)


def render_plain(name: str, /, **context: Any) -> str:
    """Render a template and strip HTML tags, for terminal output (demo, forms try)."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", render(name, **context)))


__all__ = ["Markup", "environment", "escape", "render", "render_plain", "templates_dir"]
