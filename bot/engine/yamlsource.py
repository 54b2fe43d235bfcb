"""YAML loading that remembers line numbers and refuses duplicate keys.

PyYAML silently keeps the last of two equal keys; for content written by hand that hides
mistakes, so the loader raises instead, naming the line. Every mapping and list remembers
where it and each of its items started, so later validation errors can point at a line too.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode


@dataclass(frozen=True, slots=True)
class SourceError:
    """A problem in a content file, pointing at its line (1-based; 0 when unknown)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.message}"
            if self.line
            else f"{self.file}: {self.message}"
        )


class YamlDuplicateKeyError(ValueError):
    def __init__(self, key: object, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key {key!r} (first defined on line {first_line})")
        self.line = line


class LineDict(dict[Any, Any]):
    """A dict that knows the line of itself and of each key."""

    line: int
    key_lines: dict[Any, int]


class LineList(list[Any]):
    """A list that knows the line of itself and of each item."""

    line: int
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> LineDict:
        self.flatten_mapping(node)
        result = LineDict()
        result.line = node.start_mark.line + 1
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, "unhashable key", key_node.start_mark
                )
            if key in result:
                raise YamlDuplicateKeyError(key, line, result.key_lines[key])
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = line
        return result

    def construct_sequence(self, node: SequenceNode, deep: bool = False) -> LineList:
        result = LineList(self.construct_object(child, deep=True) for child in node.value)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


def _construct_map(loader: _Loader, node: Node) -> LineDict:
    assert isinstance(node, MappingNode)
    return loader.construct_mapping(node, deep=True)


def _construct_seq(loader: _Loader, node: Node) -> LineList:
    assert isinstance(node, SequenceNode)
    return loader.construct_sequence(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def load_yaml(path: Path, display_name: str | None = None) -> tuple[Any, list[SourceError]]:
    """Parse one file; return its data, or None and the errors (with lines) if it cannot be read."""
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [SourceError(name, 0, f"cannot read file: {exc}")]
    try:
        return yaml.load(text, Loader=_Loader), []
    except YamlDuplicateKeyError as exc:
        return None, [SourceError(name, exc.line, str(exc))]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        return None, [SourceError(name, line, f"invalid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [SourceError(name, 0, f"invalid YAML: {exc}")]


def line_of(data: Any, path: Sequence[Any]) -> int:
    """The line of the deepest part of `path` found in `data` (0 if none)."""
    line = getattr(data, "line", 0)
    node = data
    for part in path:
        if isinstance(node, LineDict) and part in node:
            line = node.key_lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.item_lines[part]
            node = node[part]
        else:
            break
    return line
