"""YAML read with the position of every key and value, for file:line:column errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Located", "Position", "YamlError", "read_located"]

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Position:
    """1-based line and column; ``style`` is the scalar style (None: plain)."""

    line: int
    column: int
    style: str | None = None


@dataclass(slots=True)
class Located:
    """Plain data plus where each value (and each mapping key) was written."""

    data: Any
    values: dict[PathKey, Position] = field(default_factory=dict)
    keys: dict[PathKey, Position] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def value_at(self, path: PathKey) -> Position:
        """The closest recorded position: the value itself, or its nearest parent."""
        for cut in range(len(path), -1, -1):
            found = self.values.get(path[:cut])
            if found is not None:
                return found
        return Position(1, 1)

    def key_at(self, path: PathKey) -> Position:
        return self.keys.get(path) or self.value_at(path)


class YamlError(ValueError):
    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


def read_located(path: Path) -> Located:
    """Parse one YAML document safely, recording positions; duplicate keys are errors."""
    text = path.read_text(encoding="utf-8")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        located = Located(data=None, lines=text.splitlines())
        located.data = _convert(node, (), located, loader) if node is not None else None
        return located
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        raise YamlError(f"YAML syntax: {exc.problem or exc.context}", where) from None
    finally:
        loader.dispose()


def _pos(node: yaml.Node) -> Position:
    style = getattr(node, "style", None)
    return Position(node.start_mark.line + 1, node.start_mark.column + 1, style)


def _convert(node: yaml.Node, path: PathKey, out: Located, loader: yaml.SafeLoader) -> Any:
    out.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                raise YamlError(f"keys must be text, not {key!r}", _pos(key_node))
            if key in result:
                raise YamlError(f"key '{key}' appears twice", _pos(key_node))
            out.keys[(*path, key)] = _pos(key_node)
            result[key] = _convert(value_node, (*path, key), out, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), out, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node)
