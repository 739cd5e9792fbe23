"""`baocao forms check FILE… | try FORM`: validate form files, or walk a form in the terminal."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.cli.common import CliError
from bot.cli.parser import EXIT_USAGE
from bot.clock import system_clock
from bot.config import Settings
from bot.forms.loader import load_form_file, load_form_files
from bot.forms.model import Form
from bot.texts.templates import templates_dir
from bot.views.form_preview import run_preview


def cmd_forms(args: argparse.Namespace, settings: Settings) -> int:
    """Validate form files, or walk a form in the terminal."""
    if args.forms_action == "check":
        result = load_form_files([Path(p) for p in args.files])
        for error in result.errors:
            print(f"  - {error}", file=sys.stderr)
        if result.errors:
            print(f"{len(result.errors)} lỗi.", file=sys.stderr)
            return 1
        for form in result.forms:
            print(f"OK  {form.id} v{form.version}: {form.title} ({len(form.answerable)} câu)")
        return 0
    form = find_form(args.form)
    answers = run_preview(form, now=system_clock().astimezone(settings.timezone))
    print(json.dumps(answers, ensure_ascii=False, indent=2, default=str))
    return 0


def find_form(ref: str) -> Form:
    """The form in the YAML file `ref`, else the newest version of form id `ref` in deploy/forms."""
    path = Path(ref)
    if path.is_file():
        result = load_form_file(path)
    else:
        forms_dir = templates_dir().parent / "deploy" / "forms"
        result = load_form_files(sorted(forms_dir.glob("*.yaml")))
        result_forms = [f for f in result.forms if f.id == ref]
        if not result_forms:
            known = ", ".join(sorted({f.id for f in result.forms})) or "(không có)"
            raise CliError(
                f"Không có biểu mẫu '{ref}'. Có: {known}; hoặc đưa đường dẫn tệp YAML.", EXIT_USAGE
            )
        return max(result_forms, key=lambda f: f.version)
    if result.errors:
        raise CliError("\n".join(str(e) for e in result.errors))
    return result.forms[0]
