"""Short labels (`short:` in the form YAML): read, checked at load, kept on the model, round-tripped."""

from __future__ import annotations

import textwrap
from pathlib import Path

from bot.forms.form_limits import MAX_SHORT
from bot.forms.loader import LoadResult, form_from_dict, form_to_dict, load_form_file

FORM = """\
id: thu
title: Biểu mẫu thử
version: 1
kind: periodic
questions:
"""


def _load(tmp_path: Path, questions: str) -> LoadResult:
    path = tmp_path / "thu.yaml"
    path.write_text(FORM + textwrap.indent(textwrap.dedent(questions), "  "), encoding="utf-8")
    return load_form_file(path)


def test_short_label_is_read_and_falls_back_to_the_label(tmp_path: Path) -> None:
    result = _load(
        tmp_path,
        """
        - {id: a, type: integer, label: "Thôn đã tổ chức bao nhiêu buổi tuyên truyền?", short: Buổi tuyên truyền}
        - {id: b, type: integer, label: "Bao nhiêu hộ?"}
        - id: g
          type: repeat
          label: Các vụ việc
          short: Vụ việc
          required: false
          questions:
            - {id: n, type: text, label: "Vụ gì?", short: Loại}
        """,
    )
    assert result.errors == ()
    form = result.forms[0]
    assert form.question("a").short == "Buổi tuyên truyền"
    assert form.question("a").short_label == "Buổi tuyên truyền"
    assert form.question("b").short is None
    assert form.question("b").short_label == "Bao nhiêu hộ?"
    assert form.question("g").short_label == "Vụ việc"
    assert form.question("g.n").short_label == "Loại"
    again = form_from_dict(form_to_dict(form), form.source)
    assert again.ok and again.forms[0] == form


def test_short_label_too_long_or_empty_is_a_clear_error(tmp_path: Path) -> None:
    long = "x" * (MAX_SHORT + 1)
    result = _load(
        tmp_path,
        f"""
        - {{id: a, type: integer, label: A, short: {long}}}
        - {{id: b, type: integer, label: B, short: "  "}}
        - {{id: c, type: integer, label: C, short: }}
        - {{id: d, type: integer, label: D, short: 12}}
        """,
    )
    assert result.forms == ()
    reasons = {e.question: e.reason for e in result.errors}
    assert reasons["a"].startswith(f"'short' dài quá: {MAX_SHORT + 1} ký tự (tối đa {MAX_SHORT})")
    assert reasons["b"].startswith("'short' đang để trống")
    assert reasons["c"].startswith("'short' đang để trống")
    assert reasons["d"] == "'short' phải là chuỗi chữ, không phải 12"


def test_every_shipped_question_has_a_short_label() -> None:
    for path in sorted(Path("deploy/forms").glob("*.yaml")):
        result = load_form_file(path)
        assert result.errors == (), path
        for form in result.forms:
            for q in form.questions:
                if q.type == "note":
                    continue
                assert q.short, (path.name, q.id)
                assert len(q.short) <= MAX_SHORT
                for sub in q.questions:
                    assert sub.short, (path.name, q.id, sub.id)
