"""The condition language of `greatgame discover`: parse, check, evaluate and describe.

A condition is a yes-or-no question asked of every run of a sweep, written over its
outcomes, e.g. `china.region.2030Q4 > russia.region.2030Q4`. The grammar (docs/discovery.md)
is, from the loosest binding to the tightest::

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum (("<" | "<=" | ">" | ">=") sum)*       chains: a < b < c
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := ("-" | "+") unary | atom
    atom       := NUMBER ["%"] | TERM | "(" condition ")"
    TERM       := POWER "." AREA "." QUARTER              china.region.2030Q4

Terms are a power's share of influence (`other` is the rest of the world) in an area (a
state or `region`) at a quarter, **in percentage points** (0 to 100), as every table and
chart shows them: `china.region.2030Q4 > 30` asks for more than 30%, and `30%` is the same
number as `30`. Arithmetic is on numbers, comparisons turn numbers into conditions, `and`,
`or` and `not` join conditions; a mix-up is an error at parse time, as is a name the sweep
did not record. Parsing is a hand-written recursive descent over a tokenizer: nothing is
ever passed to `eval`.

Nothing here reads files: the caller gives the powers, areas and quarters the sweep holds,
and the values of the terms per run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sim.errors import InputError, did_you_mean, shorten
from sim.world.quarters import parse_quarter
from sim.world.vocabulary import OTHER, REGION

FIELD = "--when"
"""The option the condition comes from, named in every error."""

MAX_LENGTH = 1000
"""Longest condition accepted (a longer one is surely a mistake, and is not echoed)."""

COMPARISONS = ("<", "<=", ">", ">=")
KEYWORDS = ("and", "or", "not")


# --------------------------------------------------------------------------- the tree

@dataclass(frozen=True)
class Term:
    """A power's share in an area at a quarter (the value the condition reads per run)."""

    power: str
    area: str
    quarter: str

    def __str__(self) -> str:
        return f"{self.power}.{self.area}.{self.quarter}"


@dataclass(frozen=True)
class Node:
    """One node of a parsed condition; `pos` is its 1-based character position."""

    kind: str
    """`number`, `term`, `neg`, `arith`, `compare`, `not`, `and`, `or`."""
    pos: int
    value: float | Term | None = None
    op: str | None = None
    """The operator of an `arith` node (`+ - * /`)."""
    args: tuple[Node, ...] = ()
    ops: tuple[str, ...] = ()
    """The comparison operators of a `compare` node, one fewer than its args."""

    @property
    def is_condition(self) -> bool:
        """Whether the node is a yes-or-no condition (else a number)."""
        return self.kind in ("compare", "not", "and", "or")


@dataclass(frozen=True)
class Condition:
    """A parsed, checked condition: its source text, its tree and the terms it reads."""

    text: str
    root: Node

    @property
    def terms(self) -> list[Term]:
        """The distinct terms the condition reads, in the order they are written."""
        out: dict[Term, None] = {}

        def walk(n: Node) -> None:
            if n.kind == "term":
                out[n.value] = None
            for a in n.args:
                walk(a)

        walk(self.root)
        return list(out)

    def evaluate(self, shares: Mapping[Term, np.ndarray]) -> np.ndarray:
        """Whether the condition holds in each run.

        Args:
            shares: Each term's value per run as a share (0 to 1, as results store it);
                all arrays have one entry per run, in the same order.

        Returns:
            A boolean array, one entry per run. Dividing by a share of zero gives plus or
            minus infinity; zero by zero is not a number, and a comparison with it is false.
        """
        n = len(next(iter(shares.values()))) if shares else 0
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = np.asarray(_eval(self.root, shares), dtype=bool)
        return np.broadcast_to(out, (n,)).copy()

    def describe(self) -> str:
        """The condition in words, for the sentence (the source text when it has no words)."""
        words = _describe(self.root)
        return words if words is not None else f"the condition `{self.text}` holds"


def _eval(n: Node, shares: Mapping[Term, np.ndarray]):
    if n.kind == "number":
        return n.value
    if n.kind == "term":
        return np.asarray(shares[n.value], dtype=float) * 100.0
    args = [_eval(a, shares) for a in n.args]
    if n.kind == "neg":
        return -args[0]
    if n.kind == "arith":
        a, b = args
        return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[n.op](
            a, np.asarray(b, dtype=float) if n.op == "/" else b)
    if n.kind == "compare":
        ops = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
        out = True
        for op, a, b in zip(n.ops, args, args[1:], strict=False):
            out = np.logical_and(out, ops[op](a, b))
        return out
    if n.kind == "not":
        return np.logical_not(args[0])
    if n.kind == "and":
        return np.logical_and(*args)
    return np.logical_or(*args)


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?%?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_*]+)*\.?)
  | (?P<op><=|>=|==|!=|=>|=<|&&|\|\||[<>+\-*/()=!&|^%])
""", re.VERBOSE)

_WRONG = {
    "==": "`==` is not part of the language: shares are almost never exactly equal; "
          "compare with >= or <=",
    "=": "`=` is not part of the language: compare with >, >=, < or <=",
    "!=": "`!=` is not part of the language: compare with > or <",
    "=>": "write `>=`, not `=>`",
    "=<": "write `<=`, not `=<`",
    "&&": "write `and`, not `&&`", "&": "write `and`, not `&`",
    "||": "write `or`, not `||`", "|": "write `or`, not `|`",
    "!": "write `not`, not `!`",
    "^": "`^` is not part of the language (no powers): use *",
    "%": "`%` may only follow a number (30% is 30 percentage points)",
}


@dataclass(frozen=True)
class _Tok:
    kind: str  # number, word, op, end
    text: str
    pos: int   # 1-based


def _tokens(text: str) -> list[_Tok]:
    out, i = [], 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise _error(i + 1, f"unexpected character {text[i]!r}")
        kind = m.lastgroup
        if kind != "space":
            tok = m.group()
            if kind == "op" and tok in _WRONG:
                raise _error(i + 1, _WRONG[tok])
            out.append(_Tok(kind, tok, i + 1))
        i = m.end()
    out.append(_Tok("end", "", len(text) + 1))
    return out


def _error(pos: int, message: str) -> InputError:
    return InputError(None, f"at character {pos}: {message}", field=FIELD)


# --------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class Names:
    """What a sweep recorded: the names a term may use."""

    powers: Sequence[str]
    areas: Sequence[str]
    quarters: Sequence[str]


def parse_condition(text: str, names: Names) -> Condition:
    """Parse and check a condition against the names a sweep recorded.

    Args:
        text: The condition, e.g. `china.region.2030Q4 > russia.region.2030Q4`.
        names: The powers (with `other`), areas (states and `region`) and quarters the
            sweep holds.

    Returns:
        The parsed condition.

    Raises:
        InputError: one line naming the character position and what is wrong, with
            "did you mean" for a misspelt power, area or quarter.
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(None, "the condition is empty; write one like "
                               "\"china.region.2030Q4 > russia.region.2030Q4\"", field=FIELD)
    if len(text) > MAX_LENGTH:
        raise InputError(None, f"the condition is {len(text):,} characters long; at most "
                               f"{MAX_LENGTH:,}", field=FIELD)
    parser = _Parser(_tokens(text), names)
    root = parser.condition()
    end = parser.peek()
    if end.kind != "end":
        hint = (" (join conditions with `and` or `or`)" if end.kind in ("word", "number")
                else "")
        raise _error(end.pos, f"unexpected {_show(end)} after a complete "
                              f"{'condition' if root.is_condition else 'number'}{hint}")
    if not root.is_condition:
        raise InputError(None, f"{shorten(text.strip(), 60)} is a number, not a condition: "
                               "compare it with something, e.g. "
                               f"\"{text.strip()[:40]} > 30\"", field=FIELD)
    if not any(True for _ in _term_nodes(root)):
        raise InputError(None, "the condition reads no outcome: name at least one share "
                               "like china.region.2030Q4", field=FIELD)
    return Condition(text.strip(), root)


def _term_nodes(n: Node):
    if n.kind == "term":
        yield n
    for a in n.args:
        yield from _term_nodes(a)


def _show(tok: _Tok) -> str:
    if tok.kind == "end":
        return "the end of the condition"
    return f"`{tok.text}`" if len(tok.text) <= 30 else f"`{tok.text[:29]}…`"


class _Parser:
    """Recursive descent over the tokens; each method parses one rule of the grammar."""

    def __init__(self, tokens: list[_Tok], names: Names):
        self.toks, self.i, self.names = tokens, 0, names

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind == kind and (not texts or tok.text in texts)

    # condition := or
    def condition(self) -> Node:
        return self.joined("or", self.conjunction)

    def conjunction(self) -> Node:
        return self.joined("and", self.negation)

    def joined(self, word: str, part) -> Node:
        left = part()
        while self.at("word", word):
            tok = self.take()
            right = part()
            for side in (left, right):
                self.need_condition(side, f"`{word}` joins conditions")
            left = Node(word, tok.pos, args=(left, right))
        return left

    def negation(self) -> Node:
        if self.at("word", "not"):
            tok = self.take()
            inner = self.negation()
            self.need_condition(inner, "`not` applies to a condition")
            return Node("not", tok.pos, args=(inner,))
        return self.comparison()

    def comparison(self) -> Node:
        first = self.sum()
        args, ops = [first], []
        while self.at("op", *COMPARISONS):
            ops.append(self.take().text)
            args.append(self.sum())
        if not ops:
            return first
        for a in args:
            self.need_number(a, "comparisons take numbers")
        return Node("compare", first.pos, args=tuple(args), ops=tuple(ops))

    def sum(self) -> Node:
        return self.arith(("+", "-"), self.product)

    def product(self) -> Node:
        return self.arith(("*", "/"), self.unary)

    def arith(self, ops: tuple[str, ...], part) -> Node:
        left = part()
        while self.at("op", *ops):
            tok = self.take()
            right = part()
            for side in (left, right):
                self.need_number(side, f"`{tok.text}` takes numbers")
            left = Node("arith", left.pos, op=tok.text, args=(left, right))
        return left

    def unary(self) -> Node:
        if self.at("op", "-", "+"):
            tok = self.take()
            inner = self.unary()
            self.need_number(inner, f"`{tok.text}` takes a number")
            if tok.text == "+":
                return inner
            if inner.kind == "number":
                return Node("number", tok.pos, value=-inner.value)
            return Node("neg", tok.pos, args=(inner,))
        return self.atom()

    def atom(self) -> Node:
        tok = self.peek()
        if tok.kind == "number":
            self.take()
            number = float(tok.text.rstrip("%"))
            if not np.isfinite(number):
                raise _error(tok.pos, f"{tok.text[:20]} is too large a number")
            return Node("number", tok.pos, value=number)
        if tok.kind == "word":
            if tok.text in KEYWORDS:
                raise _error(tok.pos, f"expected a number, a share or `(` before `{tok.text}`")
            self.take()
            return Node("term", tok.pos, value=self.term(tok))
        if self.at("op", "("):
            self.take()
            inner = self.condition()
            if not self.at("op", ")"):
                raise _error(self.peek().pos, f"expected `)` to close the `(` at character "
                                              f"{tok.pos}, got {_show(self.peek())}")
            self.take()
            return inner
        raise _error(tok.pos, f"expected a number, a share like china.region.2030Q4 or `(`, "
                              f"got {_show(tok)}")

    def term(self, tok: _Tok) -> Term:
        parts = tok.text.split(".")
        if len(parts) != 3 or not all(parts):
            raise _error(tok.pos, f"expected POWER.AREA.QUARTER like china.region.2030Q4, got "
                                  f"{shorten(tok.text)}")
        power, area, quarter = parts
        n = self.names
        if power not in n.powers:
            raise _error(tok.pos, f"unknown power {shorten(power)}{did_you_mean(power, n.powers)}"
                                  f"; the sweep holds {', '.join(n.powers)}")
        if area not in n.areas:
            states = [a for a in n.areas if a != REGION]
            raise _error(tok.pos + len(power) + 1,
                         f"unknown area {shorten(area)}{did_you_mean(area, n.areas)}; the sweep "
                         f"holds {REGION}" + (f" and {', '.join(states)}" if states else ""))
        pos = tok.pos + len(power) + len(area) + 2
        label = quarter.upper()
        try:
            parse_quarter(label)
        except ValueError as e:
            raise _error(pos, str(e)) from None
        if label not in n.quarters:
            raise _error(pos, f"quarter {label} was not recorded by this sweep"
                              f"{_nearest_quarter(label, n.quarters)}; it recorded "
                              f"{quarters_text(n.quarters)}")
        return Term(power, area, label)

    def need_condition(self, n: Node, what: str) -> None:
        if not n.is_condition:
            raise _error(n.pos, f"{what}, but this is a number; compare it first, e.g. "
                                "`... > 30`")

    def need_number(self, n: Node, what: str) -> None:
        if n.is_condition:
            raise _error(n.pos, f"{what}, but this is a condition (use `and`/`or` to join "
                                "conditions)")


def _nearest_quarter(label: str, quarters: Sequence[str], within: int = 8) -> str:
    """` (did you mean '2030Q4'?)` for the recorded quarter nearest in time, if near."""
    q = parse_quarter(label)
    near = sorted(quarters, key=lambda r: (abs(parse_quarter(r) - q), r))
    if near and abs(parse_quarter(near[0]) - q) <= within:
        return f" (did you mean {near[0]!r}?)"
    return did_you_mean(label, quarters)


def quarters_text(quarters: Sequence[str], most: int = 6) -> str:
    """Quarters for a message: listed when few, else their count and first and last."""
    qs = sorted(set(quarters), key=parse_quarter)
    if len(qs) <= most:
        return ", ".join(qs) if qs else "no quarter"
    span = parse_quarter(qs[-1]) - parse_quarter(qs[0]) + 1
    kind = "every quarter" if span == len(qs) else f"{len(qs)} quarters"
    return f"{kind} from {qs[0]} to {qs[-1]}"


# --------------------------------------------------------------------------- words

_SAY = {">": "above", ">=": "at least", "<": "below", "<=": "at most"}
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


def actor_name(power: str) -> str:
    """A power as a sentence names it: China, Russia, the EU, the US, the rest of the world."""
    if power == OTHER:
        return "the rest of the world"
    return {"eu": "the EU", "us": "the US"}.get(power, power.replace("_", " ").title())


def possessive(name: str) -> str:
    """`China` -> `China's` (a name ending in s takes a bare apostrophe)."""
    return name + ("'" if name.endswith("s") else "'s")


def area_phrase(area: str) -> str:
    """`region` -> `regional share`; a state -> `share in Kazakhstan`."""
    return "regional share" if area == REGION else f"share in {area.replace('_', ' ').title()}"


def _term_words(t: Term) -> str:
    return f"{possessive(actor_name(t.power))} {area_phrase(t.area)} in {t.quarter}"


def points_text(value: float) -> str:
    """A number of percentage points as a share: 30 -> `30%`, 2.5 -> `2.5%`."""
    return f"{value:.3g}%"


def _describe(n: Node) -> str | None:
    if n.kind in ("and", "or"):
        parts = [_describe(a) for a in n.args]
        if any(p is None for p in parts) or any(a.kind in ("and", "or") and a.kind != n.kind
                                                 for a in n.args):
            return None  # mixed and/or: words would hide the grouping
        return f" {n.kind} ".join(parts)
    if n.kind != "compare" or len(n.ops) != 1:
        return None
    left, right = n.args
    op = n.ops[0]
    if left.kind == "number" and right.kind != "number":
        left, right, op = right, left, _FLIP[op]
    if left.kind == "term" and right.kind == "number":
        return f"{_term_words(left.value)} is {_SAY[op]} {points_text(right.value)}"
    if left.kind == "term" and right.kind == "term":
        a, b = left.value, right.value
        if (a.area, a.quarter) == (b.area, b.quarter):
            return f"{_term_words(a)} is {_SAY[op]} {possessive(actor_name(b.power))}"
        return f"{_term_words(a)} is {_SAY[op]} {_term_words(b)}"
    if (left.kind == "arith" and left.op == "-" and right.kind == "number"
            and all(a.kind == "term" for a in left.args) and op in (">", ">=")
            and right.value >= 0):
        a, b = (x.value for x in left.args)
        if (a.area, a.quarter) == (b.area, b.quarter):
            more = "more than" if op == ">" else "at least"
            return (f"{_term_words(a)} is {more} {right.value:.3g} points above "
                    f"{possessive(actor_name(b.power))}")
    return None


def shares_warning(condition: Condition) -> str | None:
    """A note when a share is compared with a number between 0 and 1 (meant as a fraction?).

    The language speaks in percentage points, so `china.region.2030Q4 > 0.3` asks for more
    than 0.3%, which is seldom what was meant.
    """
    for n in _nodes(condition.root):
        if n.kind != "compare":
            continue
        for a, b in zip(n.args, n.args[1:], strict=False):
            for x, y in ((a, b), (b, a)):
                if x.kind == "term" and y.kind == "number" and 0 < abs(y.value) < 1:
                    return (f"{x.value} is compared with {y.value:g}: values are percentage "
                            f"points (0-100), so this means {y.value:g}%; for "
                            f"{y.value * 100:g}% write {y.value * 100:g}")
    return None


def _nodes(n: Node) -> Iterable[Node]:
    yield n
    for a in n.args:
        yield from _nodes(a)
