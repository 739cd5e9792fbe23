"""The one line-aware YAML reader: a safe loader that keeps the line of every key and list item and the keys
written twice, so messages can say where a mistake is."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"
_ALLOWED_CONTROLS = frozenset("\n\t\r")


def _is_control(char: str) -> bool:
    """A C0/C1 control character or DEL, other than a line break or a tab."""
    code = ord(char)
    return (code < 0x20 or 0x7F <= code < 0xA0) and char not in _ALLOWED_CONTROLS


@dataclass(frozen=True)
class RepeatedKey:
    """A key written twice in one mapping (YAML keeps only the last): the key, as read and as written,
    the line of the repeat and of the first."""

    key: Any
    text: str
    line: int
    first: int


@dataclass(frozen=True)
class Lines:
    """Where each mapping and list of a parsed document was written (1-based lines), by object identity."""

    places: Mapping[int, tuple[int, Any]] = field(default_factory=dict)
    repeats: Mapping[int, tuple[RepeatedKey, ...]] = field(default_factory=dict)

    def start_line(self, container: object) -> int | None:
        """The line a mapping or list starts on."""
        found = self.places.get(id(container))
        return found[0] if found else None

    def line_of(self, container: object, key: object) -> int | None:
        """The line of a key of a mapping, or of an item of a list."""
        found = self.places.get(id(container))
        if not found:
            return None
        inner = found[1]
        if isinstance(inner, dict):
            return inner.get(key)
        if isinstance(key, int) and 0 <= key < len(inner):
            return inner[key]
        return None

    def repeated_in(self, mapping: object) -> tuple[RepeatedKey, ...]:
        """The keys written twice in this mapping, in the order they appear."""
        return self.repeats.get(id(mapping), ())

    def all_repeated(self) -> Iterator[RepeatedKey]:
        """Every key written twice anywhere in the document, by line."""
        found = [r for repeats in self.repeats.values() for r in repeats]
        yield from sorted(found, key=lambda r: (r.line, r.first))


@dataclass(frozen=True)
class Parsed:
    """A parsed document and the lines of its parts."""

    data: Any
    lines: Lines


class LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every key and list item, and repeated keys.

    With `alias_problem` set, an alias (`*name`) is refused with that text as the problem, and a merge key
    (`<<:`) with PyYAML's "could not determine a constructor" error.
    """

    def __init__(self, stream: str, *, alias_problem: str | None = None) -> None:
        super().__init__(stream)
        self.alias_problem = alias_problem
        self.places: dict[int, tuple[int, Any]] = {}
        self.repeats: dict[int, tuple[RepeatedKey, ...]] = {}

    def construct_scalar(self, node: yaml.ScalarNode) -> Any:  # type: ignore[override]
        """Construct as PyYAML does, refusing control characters written as escapes ("\\a", "\\0")."""
        value = super().construct_scalar(node)
        if isinstance(value, str):
            bad = next((c for c in value if _is_control(c)), None)
            if bad is not None:
                raise yaml.MarkedYAMLError(
                    problem=f"có ký tự điều khiển U+{ord(bad):04X} trong chữ — hãy xóa nó đi",
                    problem_mark=node.start_mark,
                )
        return value

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        """Compose as PyYAML does, refusing aliases when asked to."""
        if self.alias_problem is not None and self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError(problem=self.alias_problem, problem_mark=self.peek_event().start_mark)
        return super().compose_node(parent, index)


def _construct_map(loader: LineLoader, node: yaml.MappingNode) -> Any:
    data: dict[Any, Any] = {}
    yield data
    first_seen: dict[Any, int] = {}
    repeated: list[RepeatedKey] = []
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        if key_node.tag == _MERGE_TAG and loader.alias_problem is None:
            continue  # `<<: *base` merges; without aliases a merge key is refused by constructing it
        key = loader.construct_object(key_node)  # keys equal as values are the same key ("1" and 01 not)
        line = key_node.start_mark.line + 1
        if key in first_seen:
            repeated.append(RepeatedKey(key, key_node.value, line, first_seen[key]))
        else:
            first_seen[key] = line
    loader.flatten_mapping(node)
    key_lines: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
            ) from exc
        data[key] = loader.construct_object(value_node, deep=True)
        key_lines.setdefault(key, key_node.start_mark.line + 1)
    loader.places[id(data)] = (node.start_mark.line + 1, key_lines)
    if repeated:
        loader.repeats[id(data)] = tuple(repeated)


def _construct_seq(loader: LineLoader, node: yaml.SequenceNode) -> Any:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)
    loader.places[id(data)] = (node.start_mark.line + 1, [child.start_mark.line + 1 for child in node.value])


LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def parse_yaml(text: str, *, alias_problem: str | None = None) -> Parsed:
    """Parse one YAML document with the lines of its parts; raises `yaml.YAMLError` on a syntax mistake."""
    loader = LineLoader(text, alias_problem=alias_problem)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    return Parsed(data, Lines(loader.places, loader.repeats))
