"""The shared YAML reading kit: lines of keys and items, repeated keys, aliases, texts and "did you mean"."""

from __future__ import annotations

import pytest
import yaml

from bot.yamlkit.messages import (
    SYNTAX_TEXTS,
    Problems,
    YamlError,
    form_syntax_message,
    setup_syntax_error,
    syntax_reason,
)
from bot.yamlkit.reader import RepeatedKey, parse_yaml
from bot.yamlkit.suggest import closest, did_you_mean


def test_lines_of_keys_and_items() -> None:
    parsed = parse_yaml("a: 1\nb:\n  - x\n  - {c: 2}\n")
    data, lines = parsed.data, parsed.lines
    assert lines.start_line(data) == 1
    assert (lines.line_of(data, "a"), lines.line_of(data, "b")) == (1, 2)
    assert [lines.line_of(data["b"], i) for i in range(3)] == [3, 4, None]
    assert lines.line_of(data["b"][1], "c") == 4
    assert lines.line_of({}, "a") is None


def test_repeated_keys_are_the_keys_yaml_would_overwrite() -> None:
    parsed = parse_yaml('x:\n  y: 1\n  y: 2\nx: 3\n"1": a\n1: b\n2: c\n02: d\n')
    assert list(parsed.lines.all_repeated()) == [
        RepeatedKey("y", "y", 3, 2),
        RepeatedKey("x", "x", 4, 1),
        RepeatedKey(2, "02", 8, 7),
    ]
    assert parsed.lines.repeated_in(parsed.data) == (RepeatedKey("x", "x", 4, 1), RepeatedKey(2, "02", 8, 7))


def test_aliases_and_merges_are_allowed_unless_refused() -> None:
    text = "a: &x {b: 1}\nc:\n  <<: *x\n"
    assert parse_yaml(text).data == {"a": {"b": 1}, "c": {"b": 1}}
    with pytest.raises(yaml.MarkedYAMLError) as refused:
        parse_yaml(text, alias_problem="không dùng alias")
    assert form_syntax_message(refused.value) == "lỗi cú pháp YAML ở dòng 3, cột 7: không dùng alias"
    with pytest.raises(yaml.constructor.ConstructorError):
        parse_yaml("<<: {a: 1}\n", alias_problem="không dùng alias")


@pytest.mark.parametrize(
    ("text", "setup", "form"),
    [
        (
            "a:\n\tb: 1\n",
            "lỗi cú pháp YAML: có ký tự Tab — chỉ thụt lề bằng dấu cách (dòng 2, cột 1)",
            "lỗi cú pháp YAML ở dòng 2, cột 1: có ký tự tab; YAML chỉ thụt lề bằng dấu cách",
        ),
        (
            "a: [1, 2\n",
            "lỗi cú pháp YAML: danh sách trong '[...]' thiếu dấu ']' đóng hoặc thiếu dấu ',' giữa các mục (dòng 2, cột 1)",
            "lỗi cú pháp YAML ở dòng 2, cột 1: trong { ... } hoặc [ ... ], chữ có dấu ',', ':', '?' "
            "hãy đặt trong ngoặc kép",
        ),
        (
            "a: 1\n b: 2\n",
            "lỗi cú pháp YAML: dấu ':' không đúng chỗ — thiếu dấu cách sau ':', hoặc giá trị có ':' mà chưa đặt "
            "trong ngoặc kép (dòng 2, cột 3)",
            "lỗi cú pháp YAML ở dòng 2, cột 3: dấu ':' không đúng chỗ (chuỗi có dấu ':' hãy đặt trong ngoặc kép)",
        ),
        (
            "- a\nb: 1\n",
            "lỗi cú pháp YAML: thụt lề không đều (dòng 2, cột 1)",
            "lỗi cú pháp YAML ở dòng 2, cột 1: expected <block end>, but found '?'",
        ),
    ],
)
def test_one_syntax_table_two_wordings(text: str, setup: str, form: str) -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        parse_yaml(text)
    assert str(setup_syntax_error("x.yaml", caught.value)) == f"x.yaml: {setup}"
    assert form_syntax_message(caught.value) == form


def test_every_row_has_a_text() -> None:
    assert all(row.setup or row.form for row in SYNTAX_TEXTS)
    assert syntax_reason(yaml.YAMLError("lạ"), "setup") == "lạ"


def test_problems_collects_errors_by_line() -> None:
    problems = Problems("x.yaml")
    problems.error("b", "sai", 5)
    problems.error("", "sai hết")
    problems.warn("a", "để ý", 2)
    assert [e.line for e in problems.sorted_errors()] == [None, 5]
    assert problems.warnings == [YamlError("x.yaml", "a", "để ý", 2)]


def test_did_you_mean() -> None:
    assert closest("lable", ["label", "hint"]) == "label"
    assert closest("LABEL", ["label"]) is None
    assert closest("LABEL", ["label"], ignore_case=True) == "label"
    assert closest(3, ["label"]) is None
    assert did_you_mean("intger", ["integer", "text"]) == " — có phải 'integer'?"
    assert did_you_mean("zzz", ["integer"]) == ""
