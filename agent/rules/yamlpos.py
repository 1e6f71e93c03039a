"""YAML read with the position of every key and value, for file:line:column errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "Located",
    "Position",
    "YamlError",
    "read_located",
]

PathKey = tuple[str | int, ...]

#: A rule file larger than this is refused before it is parsed (shipped files are ~5 KB).
MAX_BYTES = 256 * 1024
#: Nodes a file may hold once every alias is expanded ("billion laughs" is refused here).
MAX_NODES = 50_000
#: Nesting depth of mappings and lists.
MAX_DEPTH = 64


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
    """Parse one YAML document safely, recording positions; duplicate keys are errors.

    The work is bounded: the file size, the node count with every alias expanded and the
    nesting depth are capped, each refusal a ``YamlError`` at the position where the cap
    was crossed, found before any of the expansion is built.
    """
    with path.open("rb") as handle:
        raw = handle.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise YamlError(
            f"the file is larger than {MAX_BYTES // 1024} KB; split the rules into several files",
            Position(1, 1),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError("not UTF-8 text", _offset(raw[: exc.start].decode("utf-8"))) from None
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as exc:
        where = _offset(text[: exc.position])
        raise YamlError(f"character {exc.character!r} is not allowed in YAML", where) from None
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


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that counts nodes as composed, an alias counting as all it expands to."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0
        self._sizes: dict[int, int] = {}
        self._open: list[str] = []

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise YamlError(
                    f"alias *{event.anchor} refers to the anchor that contains it",
                    _mark(event.start_mark),
                )
            target = self.anchors.get(event.anchor) if event.anchor is not None else None
            self._count(_expanded_size(target, self._sizes) if target is not None else 1, event)
            return super().compose_node(parent, index)
        self._count(1, event)
        nested = isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise YamlError(
                    f"nested more than {MAX_DEPTH} levels deep", _mark(event.start_mark)
                )
        anchor = getattr(event, "anchor", None)
        if nested and anchor is not None:
            self._open.append(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1
                if anchor is not None:
                    self._open.pop()

    def _count(self, size: int, event: yaml.Event) -> None:
        self._nodes += size
        if self._nodes > MAX_NODES:
            what = "aliases expand" if isinstance(event, yaml.AliasEvent) else "the file grows"
            raise YamlError(
                f"{what} to more than {MAX_NODES} values; a rule file is limited to that "
                "(write the rules out, or split them into several files)",
                _mark(event.start_mark),
            )


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for with its aliases expanded (memoised: linear work)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a cycle (not possible from the composer) counts once
    total = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total += _expanded_size(key, sizes) + _expanded_size(value, sizes)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _expanded_size(item, sizes)
    sizes[id(node)] = total
    return total


def _offset(before: str) -> Position:
    """The position just after ``before`` (the text preceding a bad character)."""
    return Position(before.count("\n") + 1, len(before) - before.rfind("\n"))


def _mark(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)


def _pos(node: yaml.Node) -> Position:
    style = getattr(node, "style", None)
    return Position(node.start_mark.line + 1, node.start_mark.column + 1, style)


def _convert(node: yaml.Node, path: PathKey, out: Located, loader: yaml.SafeLoader) -> Any:
    out.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlError("keys must be text, not a list or mapping", _pos(key_node))
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
