"""Safe YAML reading for scenario, world, event and sweep files.

Reads a file as strict UTF-8 text and parses it with PyYAML's safe loader, refusing what a
scenario file never needs: anchors and aliases (no alias bombs), Python-object and other
tags, dates, binary content, empty files, directories, very large files and deep nesting.
Every mapping comes back as a `LocatedDict`, a plain dict that also remembers the line of
each key, so that validation errors can name the line; `format_loc` writes a location as
`events[0].effects[1].target`. Holds no knowledge of the scenario schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from sim.errors import InputError

MAX_BYTES = 1_000_000
"""Largest scenario file read, in bytes."""

_PLAIN_TAGS = {
    ScalarNode: {
        "tag:yaml.org,2002:str",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:null",
    },
    SequenceNode: {"tag:yaml.org,2002:seq"},
    MappingNode: {"tag:yaml.org,2002:map"},
}
"""The tags allowed on each kind of node: plain values, lists and mappings."""


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


MAX_DEPTH = 32
"""Deepest nesting of lists and mappings accepted (scenario files need about 6)."""


def format_loc(loc: tuple | list) -> str:
    """Write a location as a readable field name: `("events", 0, "at")` -> `events[0].at`.

    Integers are list indices; everything else is a mapping key.
    """
    out = ""
    for key in loc:
        if isinstance(key, int) and not isinstance(key, bool):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
    return out


_IMPLICIT_TAGS = {
    "tag:yaml.org,2002:timestamp": "dates are not allowed (write a quarter like 2025Q4, or "
    "quote the text)",
    "tag:yaml.org,2002:merge": "merge keys (<<) are not allowed",
}
"""Tags YAML gives plain-looking text by itself, with a message saying what to write."""


def _tag_name(tag: str) -> str:
    prefix = "tag:yaml.org,2002:"
    return "!!" + tag[len(prefix):] if tag.startswith(prefix) else tag


def _tag_message(tag: str) -> str:
    if tag in _IMPLICIT_TAGS:
        return _IMPLICIT_TAGS[tag]
    return (f"YAML tag {_tag_name(tag)!r} is not allowed here (scenario files hold only plain "
            "values, lists and mappings)")


class _Loader(yaml.SafeLoader):
    """Safe loader that refuses aliases and deep nesting, and builds located containers."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases are not allowed in scenario files",
                problem_mark=event.start_mark,
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(
                    problem=f"nested more than {MAX_DEPTH} levels deep",
                    problem_mark=self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _build(node, path: str, loader: _Loader, loc: tuple = ()) -> Any:
    """Turn a composed node into plain values and located containers, refusing odd tags."""
    line = node.start_mark.line + 1
    field = format_loc(loc) or None
    if node.tag not in _PLAIN_TAGS.get(type(node), ()):
        raise InputError(path, _tag_message(node.tag), line=line, field=field)
    if isinstance(node, ScalarNode):
        try:
            return loader.construct_object(node)
        except (yaml.constructor.ConstructorError, ValueError, LookupError,
                ArithmeticError):  # an explicit tag on text that does not fit it
            raise InputError(path, f"{node.value!r} is not a valid {_tag_name(node.tag)} value",
                             line=line, field=field) from None
    if isinstance(node, SequenceNode):
        out = LocatedList()
        out.line = line
        for i, item in enumerate(node.value):
            out.append(_build(item, path, loader, (*loc, i)))
            out.item_lines.append(item.start_mark.line + 1)
        return out
    if isinstance(node, MappingNode):
        out = LocatedDict()
        out.line = line
        for knode, vnode in node.value:
            kline = knode.start_mark.line + 1
            if not isinstance(knode, ScalarNode):
                raise InputError(path, "mapping keys must be plain values", line=kline,
                                 field=field)
            key = _build(knode, path, loader, loc)
            kloc = (*loc, str(key))
            if key in out:
                raise InputError(path, f"duplicate key (first given at line {out.key_lines[key]})",
                                 line=kline, field=format_loc(kloc))
            out[key] = _build(vnode, path, loader, kloc)
            out.key_lines[key] = kline
        return out
    raise InputError(path, "unsupported YAML node", line=line, field=field)


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
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(p, f"cannot read file ({e.strerror or e})") from None
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
    except yaml.reader.ReaderError as e:  # checks every character up front
        raise InputError(path, f"invalid YAML: {e.reason} (character {e.character:#06x})",
                         line=text.count("\n", 0, e.position) + 1) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError(path, "file is empty, expected a YAML mapping")
        data = _build(node, str(path), loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = (e.problem or e.context or "invalid YAML").strip()
        if e.context and e.problem and e.context_mark is not None and (
            mark is None or e.context_mark.line != mark.line
        ):
            msg += f" ({e.context.strip()} started at line {e.context_mark.line + 1})"
        raise InputError(path, f"invalid YAML: {msg}", line=line) from None
    except yaml.YAMLError as e:
        raise InputError(path, f"invalid YAML: {e}") from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops nesting long before
        raise InputError(path, "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({data!r:.40})"
        raise InputError(path, f"top level must be a mapping of fields, found {kind}",
                         line=node.start_mark.line + 1)
    return data


def line_of(data: Any, loc: tuple) -> int | None:
    """Return the line of the deepest element of `loc` found in a located structure."""
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
