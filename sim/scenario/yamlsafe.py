"""Safe YAML reading for scenario, world, event and sweep files.

Reads a file as strict UTF-8 text and parses it with PyYAML's safe loader, refusing what a
scenario file never needs: anchors and aliases (no alias bombs), Python-object and other
tags, dates, binary content, empty files, very large files, deep nesting, and anything that
is not a regular file (directories, named pipes, devices such as /dev/zero: reading them
would hang or never end). Plain values are read as YAML 1.2 reads them, not as YAML 1.1:
only `true`/`false` are booleans and only plain decimal numbers are numbers, so `1:30`,
`1_000` or `yes` stay text (and are refused where a number is expected) instead of silently
becoming 90, 1000 or true, and `012` is twelve, not octal ten. Messages name the problem,
never the file's content beyond a short, clipped value.

Every mapping comes back as a `LocatedDict`, a plain dict that also remembers the line of
each key, so that validation errors can name the line; `format_loc` writes a location as
`events[0].effects[1].target`. Holds no knowledge of the scenario schema.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from sim.errors import InputError, shorten

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


_BOOL, _INT, _FLOAT = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                       "tag:yaml.org,2002:float")
_YAML12 = [
    (_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (_INT, re.compile(r"^[-+]?[0-9]+$"), "-+0123456789"),
    (_FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), "-+.0123456789"),
]
"""Booleans and numbers as YAML 1.2's core schema reads plain text (ASCII digits only)."""


class _Loader(yaml.SafeLoader):
    """Safe loader that refuses aliases and deep nesting, and builds located containers.

    It resolves booleans and numbers by YAML 1.2's rules (`_YAML12`) instead of PyYAML's
    YAML 1.1 ones (base-60 `1:30`, octal `012`, `1_000`, `yes`/`no`/`on`/`off`).
    """

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in rules if tag not in (_BOOL, _INT, _FLOAT)]
        for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_yaml_int(self, node):
        """Read an integer in decimal (a leading 0 is not octal, as in YAML 1.2)."""
        text = self.construct_scalar(node)
        if not re.fullmatch(r"[-+]?[0-9]+", text):  # an explicit !!int on other text
            raise ValueError("not a decimal integer")
        digits = len(text.lstrip("+-"))
        if digits > 4000:
            raise ValueError(f"a {digits}-digit number")
        return int(text)

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


for _tag, _rx, _first in _YAML12:
    _Loader.add_implicit_resolver(_tag, _rx, list(_first))
_Loader.add_constructor(_INT, _Loader.construct_yaml_int)


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
            digits = len(node.value.strip().lstrip("+-"))
            if node.tag == _INT and node.value.strip().lstrip("+-").isdigit() and digits > 4000:
                msg = f"a {digits}-digit number is too large"
            else:
                msg = f"{shorten(node.value)} is not a valid {_tag_name(node.tag)} value"
            raise InputError(path, msg, line=line, field=field) from None
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


_KINDS = [
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a named pipe (FIFO)"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
    (stat.S_ISSOCK, "is a socket"),
]


def _not_regular(mode: int) -> str:
    """Say what a file that is not a regular file is (`is a named pipe (FIFO)`, ...)."""
    return next((what for test, what in _KINDS if test(mode)), "is not a regular file")


def read_text(path: str | Path) -> str:
    """Read a scenario-like file as UTF-8 text; only regular files of at most `MAX_BYTES`.

    Directories, named pipes, devices (`/dev/zero`, `/dev/urandom`) and sockets are refused
    before anything is read from them (a pipe would hang, a device never ends), and no more
    than `MAX_BYTES` + 1 bytes are ever read.

    Raises:
        InputError: the file is missing, not a regular file, too large, binary or not UTF-8.
    """
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    except OSError as e:
        raise InputError(p, f"cannot read file ({e.strerror or type(e).__name__})") from None
    if not stat.S_ISREG(mode):
        expected = "expected a YAML file" if stat.S_ISDIR(mode) else "expected a regular file"
        raise InputError(p, f"{_not_regular(mode)}, {expected}")
    try:  # non-blocking: a file swapped for a pipe after the check cannot hang the open
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError(p, f"cannot read file ({e.strerror or type(e).__name__})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(p, f"{_not_regular(info.st_mode)}, expected a regular file")
        if info.st_size > MAX_BYTES:
            raise InputError(p, f"file is {info.st_size} bytes; scenario files are limited to "
                             f"{MAX_BYTES}")
        try:
            data = f.read(MAX_BYTES + 1)
        except OSError as e:
            raise InputError(p, f"cannot read file ({e.strerror or type(e).__name__})") from None
    if len(data) > MAX_BYTES:
        raise InputError(p, f"file is over {MAX_BYTES} bytes; scenario files are limited to "
                         f"{MAX_BYTES}")
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
    except yaml.YAMLError:  # its text can quote the file: name the problem only
        raise InputError(path, "invalid YAML") from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops nesting long before
        raise InputError(path, "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else (
            "a line of text" if isinstance(data, str) else "a single value")
        raise InputError(path, f"top level must be a mapping of `field: value` lines, found "
                         f"{kind} (is this a scenario file?)", line=node.start_mark.line + 1)
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
