"""Quarters: labels like `2025Q4`, their indices (year * 4 + quarter - 1) and arithmetic.

The one place quarter labels are parsed, formatted, ordered and stepped. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sim.errors import shorten

QUARTER_RE = re.compile(r"^([0-9]{4})Q([1-4])$")
"""A quarter label: four ASCII digits, Q, 1 to 4."""
FIRST_YEAR, LAST_YEAR = 1900, 2200
"""The years a quarter may fall in (any period, event, `--end`): a run to 2200Q4 takes
about 9 times the baseline's time and memory; years outside are refused as mistakes."""


def parse_quarter(text: Any) -> int:
    """Turn `2025Q4` into a quarter index (year * 4 + quarter - 1).

    Raises:
        ValueError: the text is not of the form YYYYQn (ASCII digits), or its year is
            outside `FIRST_YEAR`-`LAST_YEAR`.
    """
    m = QUARTER_RE.match(str(text).strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"expected a quarter like 2025Q4, got {shorten(text)}")
    year = int(m.group(1))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"year {year} is outside the years a model can simulate "
                         f"({FIRST_YEAR}-{LAST_YEAR}), got {text.strip()!r}")
    return year * 4 + int(m.group(2)) - 1


def format_quarter(index: int) -> str:
    """Turn a quarter index back into `YYYYQn`."""
    return f"{index // 4}Q{index % 4 + 1}"


def quarter_year(quarter: str) -> float:
    """Turn `2025Q4` into a decimal year at the start of the quarter (2025.75), for axes."""
    return parse_quarter(quarter) / 4.0


def next_quarter(quarter: str) -> str:
    """Return the quarter after `quarter` (`2025Q4` -> `2026Q1`)."""
    return format_quarter(parse_quarter(quarter) + 1)


def year_quarter(year: int) -> str:
    """The quarter that stands for a year in tables: its fourth (`2030` -> `2030Q4`)."""
    return f"{int(year)}Q4"


def quarter_range(start: str, end: str) -> list[str]:
    """Quarter labels from `start` to `end` inclusive."""
    return [format_quarter(q) for q in range(parse_quarter(start), parse_quarter(end) + 1)]


def in_time_order(quarters: Iterable[str]) -> list[str]:
    """The distinct quarter labels in time order."""
    return sorted(set(quarters), key=parse_quarter)
