"""The one template renderer: every text the bot sends or writes, with the deployment's and commune's
overrides; installed once at start (bot/app.py, the CLI) with `use_renderer`, asked by `render`."""

from __future__ import annotations

import html
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from bot.texts.filters import FILTERS
from bot.texts.paths import templates_dir
from bot.texts.units import UNIT_FILTERS, WHO

_TAG = re.compile(r"<[^>]+>")


def _configured(env: Environment) -> Environment:
    """`env` with the Vietnamese filters registered (bot/texts/filters.py) and the units' words (`who`,
    `unit_noun`, `head_title`, `units_count`: bot/texts/units.py)."""
    env.filters.update(FILTERS)
    env.filters.update(UNIT_FILTERS)
    env.globals["who"] = WHO
    return env


@lru_cache(maxsize=8)
def _shipped(shipped: str) -> Environment:
    """The shipped texts: `.html` autoescaped for Telegram, `.txt` plain; read once (`auto_reload=False`)."""
    return _configured(
        Environment(
            loader=FileSystemLoader(shipped),
            autoescape=select_autoescape(disabled_extensions=("txt",), default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
        )
    )


def _override_dirs(overrides: str | None, commune_code: str | None, sub: str = "") -> list[str]:
    """`<dir>/<commune code>/<sub>`, then `<dir>/<sub>`; nothing without a directory."""
    if not overrides:
        return []
    dirs = [str(Path(overrides) / commune_code / sub)] if commune_code else []
    return [*dirs, str(Path(overrides) / sub)]


@lru_cache(maxsize=64)
def _telegram(shipped: str, overrides: str | None, commune_code: str | None) -> Environment:
    """The shipped environment, overlaid with the deployment's and the commune's directories when set."""
    base = _shipped(shipped)
    dirs = _override_dirs(overrides, commune_code)
    if not dirs:
        return base
    loaders: list[BaseLoader] = [FileSystemLoader(dirs), base.loader]  # type: ignore[list-item]
    return base.overlay(loader=ChoiceLoader(loaders))


@lru_cache(maxsize=16)
def _document(shipped: str, overrides: str | None, commune_code: str) -> Environment:
    """Word texts (names inside `export/`): overrides, the shipped commune copy, the shipped text; plain."""
    root = Path(shipped) / "export"
    search = [*_override_dirs(overrides, commune_code, "export"), str(root / "communes" / commune_code)]
    return _configured(
        SandboxedEnvironment(
            loader=FileSystemLoader([*search, str(root)]),
            autoescape=False,  # plain text for Word, never HTML
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
    )


@cache
def _template(env: Environment, name: str) -> Any:
    """The compiled template `name` of `env`, looked up once (Jinja's own lookup builds a cache key each time)."""
    return env.get_template(name)


class Renderer:
    """Renders templates by name, preferring the deployment's (`overrides`) and the commune's own copies.

    `name` is looked up in `<overrides>/<commune code>/<name>`, then `<overrides>/<name>`, then the
    shipped `templates/<name>`. Word texts (`render_document`, names inside `export/`) add the shipped
    commune copy `templates/export/communes/<commune code>/` before the shipped one and render in a
    sandbox. `.html` is Telegram HTML (autoescaped), `.txt` plain. Templates are read once per process.
    """

    def __init__(self, overrides: str | Path | None = None, *, shipped: str | Path | None = None) -> None:
        self.overrides = str(overrides) if overrides else None
        self.shipped = str(shipped or templates_dir())

    def environment(self, commune_code: str | None = None) -> Environment:
        """The Jinja2 environment for Telegram texts (and the CLI's `.txt`) of one commune, or of none."""
        return _telegram(self.shipped, self.overrides, commune_code)

    def render(self, name: str, commune_code: str | None = None, /, **context: Any) -> str:
        """Render `name` (e.g. "start/greet_police.html") to Telegram HTML (`.txt`: plain text), trimmed."""
        return _template(self.environment(commune_code), name).render(**context).strip()

    def render_plain(self, name: str, commune_code: str | None = None, /, **context: Any) -> str:
        """Render a template and strip HTML tags, for terminal output (demo, forms try)."""
        return html.unescape(_TAG.sub("", self.render(name, commune_code, **context)))

    def render_document(self, name: str, commune_code: str, context: dict[str, Any]) -> str:
        """Render a Word text `export/<name>` in the sandbox, untrimmed; Jinja's errors propagate."""
        return _template(_document(self.shipped, self.overrides, commune_code), name).render(**context)


_current = Renderer()  # the installed renderer; replaced only through `use_renderer`


def use_renderer(renderer: Renderer) -> Renderer:
    """Install `renderer` for call sites without wiring (done once at start); returns it."""
    global _current
    _current = renderer
    return renderer


def renderer() -> Renderer:
    """The installed renderer (shipped texts only until `use_renderer` is called)."""
    return _current


def environment() -> Environment:
    """The installed renderer's Jinja2 environment for texts of no particular commune."""
    return _current.environment()


def render(name: str, commune_code: str | None = None, /, **context: Any) -> str:
    """Render `name` with the installed renderer (see `Renderer.render`)."""
    return _current.render(name, commune_code, **context)


def render_plain(name: str, commune_code: str | None = None, /, **context: Any) -> str:
    """Render `name` as terminal text with the installed renderer (see `Renderer.render_plain`)."""
    return _current.render_plain(name, commune_code, **context)


__all__ = [
    "Markup",
    "Renderer",
    "environment",
    "escape",
    "render",
    "render_plain",
    "renderer",
    "templates_dir",
    "use_renderer",
]
