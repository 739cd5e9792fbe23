"""Reading and checking a whole setup file: from a path, from text or from already-loaded data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.setup_file.checking import INVALID, Context, Invalid, Where, all_valid, read_mapping
from bot.setup_file.readers import TOP_KEYS
from bot.setup_file.specs import SetupError, SetupFile, SetupResult
from bot.yamlkit.messages import describe_value, setup_syntax_error
from bot.yamlkit.reader import parse_yaml


def _check(ctx: Context, data: Any, source: Path) -> SetupResult:
    if data is None:
        ctx.error(Where(), "tệp trống — cần có 'version: 1' và danh sách 'communes'")
        fields: dict[str, Any] | Invalid = INVALID
    elif not isinstance(data, dict):
        ctx.error(
            Where(line=ctx.start_line(data)),
            f"đầu tệp phải là các khóa 'version' và 'communes', {describe_value(data)}",
        )
        fields = INVALID
    else:
        fields = read_mapping(ctx, data, Where(), TOP_KEYS)
    errors = ctx.problems.sorted_errors()
    warnings = tuple(ctx.problems.warnings)
    if errors or fields is INVALID or not all_valid(fields):
        return SetupResult(None, errors, warnings)
    assert isinstance(fields, dict)
    return SetupResult(SetupFile(source=source, **fields), (), warnings)


def parse_setup(data: Any, source: str | Path) -> SetupResult:
    """Check already-loaded data (e.g. from `yaml.safe_load`); `source` names the file and anchors form paths."""
    path = Path(source)
    return _check(Context(str(source), path.resolve().parent), data, path)


def loads_setup(text: str, source: str | Path) -> SetupResult:
    """Check setup YAML given as text; errors carry line numbers."""
    path = Path(source)
    try:
        parsed = parse_yaml(text)
    except yaml.YAMLError as exc:
        return SetupResult(None, (setup_syntax_error(str(source), exc),))
    ctx = Context(str(source), path.resolve().parent, parsed.lines)
    return _check(ctx, parsed.data, path)


def load_setup(path: str | Path) -> SetupResult:
    """Read and check a setup file; every error is returned at once, nothing raises for a bad file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        reason = (
            "không thấy tệp" if isinstance(exc, FileNotFoundError) else f"không đọc được tệp ({exc.strerror})"
        )
        return SetupResult(None, (SetupError(str(path), "", reason),))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        reason = "tệp không lưu bằng mã UTF-8 — hãy lưu lại với mã hóa UTF-8"
        return SetupResult(None, (SetupError(str(path), "", reason, line),))
    return loads_setup(text, path)
