"""Forms as YAML, the entry points: load files or a dict (every error at once), and turn forms back into
dicts (`load_form_file`, `load_form_files`, `form_from_dict`, `form_to_dict`, `FormError`).

Design notes: docs/design-notes.md#botformsloaderpy
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from bot.forms.build_form import form_to_dict, read_form
from bot.forms.check_form import dedupe
from bot.forms.form_errors import FormError, LoadResult, Report
from bot.forms.form_limits import MAX_CHOICE_LABEL, MAX_FILE_BYTES, MAX_LABEL, MAX_TITLE
from bot.forms.model import Form
from bot.forms.read_questions import choice_value_slug
from bot.yamlkit.messages import TEXTS, form_syntax_message
from bot.yamlkit.reader import parse_yaml


def _parse_yaml(text: str, rep: Report) -> Any:
    """The parsed document, or None after reporting a syntax mistake; keys written twice are reported too."""
    try:
        parsed = parse_yaml(text, alias_problem=TEXTS["alias_form"])
    except yaml.YAMLError as exc:
        rep.add(form_syntax_message(exc))
        return None
    for repeat in parsed.lines.all_repeated():
        rep.add(TEXTS["repeated_key_form"].format(key=repeat.key, line=repeat.line, first=repeat.first))
    return parsed.data


def _load_file(path: str | PathLike[str]) -> tuple[list[Form], list[FormError]]:
    name = str(path)
    rep = Report(name)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        rep.add(f"không đọc được tệp: {exc.strerror or exc}")
        return [], rep.errors
    if len(raw) > MAX_FILE_BYTES:
        rep.add(f"tệp quá lớn ({len(raw)} byte, tối đa {MAX_FILE_BYTES})")
        return [], rep.errors
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        rep.add(f"tệp không phải UTF-8 (byte lạ ở vị trí {exc.start}); hãy lưu lại với mã hóa UTF-8")
        return [], rep.errors
    data = _parse_yaml(text, rep)
    parse_errors = len(rep.errors)
    if parse_errors and data is None:
        return [], rep.errors
    if data is None:
        rep.add("tệp trống")
        return [], rep.errors
    items = data if isinstance(data, list) else [data]
    if not isinstance(data, (list, Mapping)):
        rep.add("tệp phải chứa một biểu mẫu (mapping) hoặc một danh sách biểu mẫu")
        return [], rep.errors
    forms: list[Form] = []
    for n, item in enumerate(items, 1):
        rep.form = None
        if isinstance(data, list) and not isinstance(item, Mapping):
            rep.add(f"mục thứ {n} của danh sách không phải một biểu mẫu (mapping)")
            continue
        form = read_form(item, rep, name)
        if form is not None:
            forms.append(form)
    # Duplicate keys make the file ambiguous: report everything, build nothing from it.
    return ([] if parse_errors else forms), rep.errors


def load_form_file(path: str | PathLike[str]) -> LoadResult:
    """Load one YAML file holding one form (a mapping) or several (a list of mappings)."""
    forms, errors = _load_file(path)
    forms = dedupe(forms, errors)
    return LoadResult(tuple(forms), tuple(errors))


def load_form_files(paths: Iterable[str | PathLike[str]]) -> LoadResult:
    """Load several files; also reports the same (id, version) defined twice anywhere."""
    forms: list[Form] = []
    errors: list[FormError] = []
    for path in paths:
        got, errs = _load_file(path)
        forms.extend(got)
        errors.extend(errs)
    forms = dedupe(forms, errors)
    return LoadResult(tuple(forms), tuple(errors))


def form_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> LoadResult:
    """Validate and build one form from already-parsed data (e.g. the dict stored per form version)."""
    rep = Report(source)
    form = read_form(data, rep, source)
    return LoadResult((form,) if form is not None else (), tuple(rep.errors))


__all__ = [
    "MAX_CHOICE_LABEL",
    "MAX_LABEL",
    "MAX_TITLE",
    "FormError",
    "LoadResult",
    "choice_value_slug",
    "form_from_dict",
    "form_to_dict",
    "load_form_file",
    "load_form_files",
]
