"""Write the vocabulary and parameter tables into docs/scenarios.md and docs/ODD.md.

The tables sit between `<!-- BEGIN name -->` and `<!-- END name -->` markers and are made
from the definitions in `sim/vocabulary.py`, so the docs cannot drift from the code:

    python docs/make_tables.py          # rewrite the tables
    python docs/make_tables.py --check  # exit 1 if a table is out of date (the tests do this)
"""

import re
import sys
from pathlib import Path

from sim.world.vocabulary import PairAttrs, Params, PowerAttrs, StateAttrs, field_table

DOCS = Path(__file__).parent


def _num(x):
    if x is None:
        return ""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def table(model, with_default: bool) -> str:
    """A markdown table of a vocabulary model's fields."""
    head = "| name | unit | range | default | meaning |" if with_default else \
        "| name | unit | range | meaning |"
    sep = "|---|---|---|---|---|" if with_default else "|---|---|---|---|"
    rows = [head, sep]
    for r in field_table(model):
        rng = f"{_num(r['min'])} to {_num(r['max'])}" if r["max"] is not None else \
            (f"≥ {_num(r['min'])}" if r["min"] is not None else "")
        if r["name"] == "regional_weighting":
            rng = "gdp or population"
        cells = [f"`{r['name']}`", r["unit"], rng]
        if with_default:
            cells.append(f"`{_num(r['default'])}`")
        cells.append(r["doc"].replace("|", "/"))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


TABLES = {
    "power-attributes": lambda: table(PowerAttrs, False),
    "state-attributes": lambda: table(StateAttrs, False),
    "pair-attributes": lambda: table(PairAttrs, False),
    "parameters": lambda: table(Params, True),
}
FILES = ["scenarios.md", "ODD.md"]


def render(text: str) -> str:
    """Replace every marked table in `text` with a freshly generated one."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        text = pattern.sub(lambda m, make=make: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main() -> int:
    stale = []
    for f in FILES:
        path = DOCS / f
        old = path.read_text(encoding="utf-8")
        new = render(old)
        if new != old:
            if "--check" in sys.argv:
                stale.append(f)
            else:
                path.write_text(new, encoding="utf-8")
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python docs/make_tables.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
