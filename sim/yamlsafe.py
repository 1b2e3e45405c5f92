"""Safe YAML reading for scenario, world, event and sweep files.

Reads a file as strict UTF-8 text and parses it with PyYAML's safe loader, refusing what a
scenario file never needs: anchors and aliases (no alias bombs), Python-object tags, binary
content, empty files, directories and very large files. Every mapping comes back as a
`LocatedDict`, a plain dict that also remembers the line of each key, so that validation
errors can name the line. Holds no knowledge of the scenario schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

MAX_BYTES = 1_000_000
"""Largest scenario file read, in bytes."""

_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}


class InputError(ValueError):
    """Bad input, carrying the file, line and field it is about.

    `str(err)` is the one line shown to the user: `FILE:LINE: FIELD: message`.
    """

    def __init__(self, path: str | Path | None, message: str, *, line: int | None = None,
                 field: str | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self.format())

    def format(self) -> str:
        """The one-line message: file, line, field, then what is wrong."""
        where = self.path or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        parts = [where]
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts).replace("\n", " ")


class LocatedDict(dict):
    """A dict that remembers the 1-based line of the mapping and of each of its keys."""

    line: int | None = None
    key_lines: dict[Any, int]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_lines = {}


class LocatedList(list):
    """A list that remembers the 1-based line of each item."""

    line: int | None = None
    item_lines: list[int]

    def __init__(self, *args):
        super().__init__(*args)
        self.item_lines = []


class _Loader(yaml.SafeLoader):
    """Safe loader that refuses aliases and builds located containers."""

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases are not allowed in scenario files",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


def _build(node, path: str) -> Any:
    if node.tag not in _PLAIN_TAGS:
        raise InputError(path, f"YAML tag {node.tag!r} is not allowed (scenario files hold only "
                         "plain values, lists and mappings)", line=node.start_mark.line + 1)
    if isinstance(node, ScalarNode):
        return _Loader.construct_object(_LOADER_FOR_SCALARS, node)
    if isinstance(node, SequenceNode):
        out = LocatedList()
        out.line = node.start_mark.line + 1
        for item in node.value:
            out.append(_build(item, path))
            out.item_lines.append(item.start_mark.line + 1)
        return out
    if isinstance(node, MappingNode):
        out = LocatedDict()
        out.line = node.start_mark.line + 1
        for knode, vnode in node.value:
            key = _build(knode, path)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise InputError(path, "mapping keys must be plain values",
                                 line=knode.start_mark.line + 1)
            if key in out:
                raise InputError(path, "duplicate key", line=knode.start_mark.line + 1,
                                 field=str(key))
            out[key] = _build(vnode, path)
            out.key_lines[key] = knode.start_mark.line + 1
        return out
    raise InputError(path, "unsupported YAML node", line=node.start_mark.line + 1)


_LOADER_FOR_SCALARS = _Loader("")


def read_text(path: str | Path) -> str:
    """Read a scenario-like file as UTF-8 text, refusing directories, binaries and huge files.

    Raises:
        InputError: the file is missing, a directory, too large, binary or not UTF-8.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    if p.is_dir():
        raise InputError(p, "is a directory, expected a YAML file")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise InputError(p, f"file is {size} bytes; scenario files are limited to {MAX_BYTES}")
    data = p.read_bytes()
    if b"\x00" in data:
        raise InputError(p, "binary file (contains NUL bytes), expected YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(p, f"not UTF-8 text (bad byte at offset {e.start})") from None


def load_yaml(path: str | Path, text: str | None = None) -> LocatedDict:
    """Parse a YAML file whose top level must be a mapping.

    Args:
        path: The file (used in messages; read unless `text` is given).
        text: The file's text, if already read.

    Returns:
        The top-level mapping, with line numbers.

    Raises:
        InputError: on any reading or parsing problem, naming the file and line.
    """
    if text is None:
        text = read_text(path)
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise InputError(path, "file is empty, expected a YAML mapping")
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = (e.problem or e.context or "invalid YAML").strip()
        raise InputError(path, f"invalid YAML: {msg}", line=line) from None
    except yaml.YAMLError as e:
        raise InputError(path, f"invalid YAML: {e}") from None
    if node is None:
        raise InputError(path, "file is empty, expected a YAML mapping")
    try:
        data = _build(node, str(path))
    except yaml.constructor.ConstructorError as e:
        mark = e.problem_mark
        raise InputError(path, f"invalid value: {e.problem}",
                         line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError(path, f"top level must be a mapping, found {type(data).__name__}",
                         line=node.start_mark.line + 1)
    return data


def line_of(data: Any, loc: tuple) -> int | None:
    """The line of the deepest element of `loc` found in a located structure."""
    line = getattr(data, "line", None)
    cur = data
    for key in loc:
        if isinstance(cur, LocatedDict) and key in cur:
            line = cur.key_lines.get(key, line)
            cur = cur[key]
        elif isinstance(cur, LocatedList) and isinstance(key, int) and 0 <= key < len(cur):
            line = cur.item_lines[key]
            cur = cur[key]
        else:
            break
    return line
