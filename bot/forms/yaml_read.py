"""Line-aware YAML reading for form files: a safe loader that refuses aliases and reports duplicate keys,
and YAML syntax errors turned into Vietnamese messages with line and column.
"""

from __future__ import annotations

from typing import Any

import yaml

from bot.forms.form_errors import Report

YAML_PROBLEMS = {
    "mapping values are not allowed here": "dấu ':' không đúng chỗ (chuỗi có dấu ':' hãy đặt trong ngoặc kép)",
    "could not find expected ':'": "thiếu dấu ':' sau tên khóa",
    "found character '\\t' that cannot start any token": "có ký tự tab; YAML chỉ thụt lề bằng dấu cách",
    "found a tab character that violates indentation": "có ký tự tab; YAML chỉ thụt lề bằng dấu cách",
    "found unexpected end of stream": "tệp kết thúc giữa chừng (thiếu dấu ngoặc kép đóng?)",
}


class YamlLoader(yaml.SafeLoader):
    """A safe loader that refuses aliases and remembers duplicate keys (YAML would silently keep the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[Any, int, int]] = []

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem="không dùng alias (*tên) trong tệp biểu mẫu", problem_mark=event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # type: ignore[override]
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append((key, line, seen[key]))
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, rep: Report) -> Any:
    loader = YamlLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or exc.context or "")
        where = f" ở dòng {mark.line + 1}, cột {mark.column + 1}" if mark else ""
        if problem.startswith(("expected ',' or '}'", "expected ',' or ']'")):
            problem = "trong { ... } hoặc [ ... ], chữ có dấu ',', ':', '?' hãy đặt trong ngoặc kép"
        rep.add(f"lỗi cú pháp YAML{where}: {YAML_PROBLEMS.get(problem, problem)}")
        return None
    except yaml.YAMLError as exc:
        rep.add(f"lỗi YAML: {exc}")
        return None
    finally:
        loader.dispose()
    for key, line, first in loader.duplicates:
        rep.add(f"khóa '{key}' bị lặp ở dòng {line} (đã có ở dòng {first}); YAML sẽ chỉ giữ cái sau")
    return data
