"""What every command shares: exit codes, the error line, argument types, progress, saving.

Argument types turn text into values or raise `argparse.ArgumentTypeError` (argparse then
prints the usage and exits 2). No command logic here.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2

MAX_DIGITS = 40
"""Longest whole number accepted on the command line (seeds are spread from any size)."""


def err(message: str) -> None:
    """Print one error line on stderr."""
    print(f"error: {message}", file=sys.stderr)


# --------------------------------------------------------------------------- argument types

def whole_number(text: str, minimum: int) -> int:
    """A whole number in ASCII digits (no `1_000`, no `١٠`), at least `minimum`."""
    from sim.errors import shorten

    digits = text.strip().removeprefix("-").removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {shorten(text)}")
    if len(digits) > MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"a {len(digits)}-digit number is too large (at "
                                         f"most {MAX_DIGITS} digits)")
    v = int(text)
    if v < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {v}")
    return v


def positive_int(text: str) -> int:
    """A whole number of at least 1 (runs, workers, samples)."""
    return whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number of at least 0 (counts that may be zero)."""
    return whole_number(text, 0)


def seed(text: str) -> int:
    """A seed: a whole number of at least 0."""
    return whole_number(text, 0)


def year(text: str) -> int:
    """A year a model can simulate (`sim.world.quarters.FIRST_YEAR`-`LAST_YEAR`)."""
    from sim.world.quarters import FIRST_YEAR, LAST_YEAR

    v = whole_number(text, FIRST_YEAR)
    if v > LAST_YEAR:
        raise argparse.ArgumentTypeError(f"must be at most {LAST_YEAR}, got {v}")
    return v


def _number(text: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a quantile, a share)."""
    v = _number(text)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {v:g}")
    return v


def non_negative_float(text: str) -> float:
    """A finite number of at least 0 (a threshold, seconds)."""
    v = _number(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {v:g}")
    return v


def quarter(text: str) -> str:
    """A quarter label, YYYYQn, in the years a model can simulate."""
    from sim.world.quarters import parse_quarter

    try:
        parse_quarter(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


# --------------------------------------------------------------------------- uncertainty

def add_uncertainty_options(p: argparse.ArgumentParser) -> None:
    """Add `--uncertainty posterior|none` and `--posterior FILE` to a command's parser."""
    p.add_argument("--uncertainty", choices=("posterior", "none"), default=None,
                   help="posterior: replication i runs parameter set i drawn from the "
                        "calibrated posterior (the same in every scenario), so intervals "
                        "cover model randomness and parameter uncertainty; none: the "
                        "scenario's own values, intervals cover model randomness only "
                        "(default: posterior when one is installed for the scenario's "
                        "world, else none; see docs/uncertainty.md)")
    p.add_argument("--posterior", metavar="FILE", default=None,
                   help="draw parameters from this posterior file instead of the installed "
                        "one (implies --uncertainty posterior)")


def uncertainty_for(args: argparse.Namespace, scenarios):
    """The `sim.runs.runner.Uncertainty` a command's options ask for, for these scenarios.

    Raises:
        InputError: see `sim.runs.runner.choose_uncertainty` (exit 2, one line).
    """
    from sim.runs.runner import choose_uncertainty

    return choose_uncertainty(args.uncertainty, args.posterior,
                              [s.world.name for s in scenarios])


def uncertainty_args(u) -> list[str]:
    """The options that ask for the same uncertainty again (for commands a report prints)."""
    out = ["--uncertainty", u.mode]
    if u.drawn:
        out += ["--posterior", str(Path(u.path).resolve())]
    return out


# --------------------------------------------------------------------------- progress, files

def progress(total: int, desc: str, unit: str = "run"):
    """A tqdm bar on stderr (none for a single item)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=True,
                dynamic_ncols=True, disable=total <= 1)


def progress_callback(desc: str, unit: str = "run"):
    """A bar fed by `update(done, total)` calls (sweeps, calibration); returns (update, close)."""
    state = {"bar": None}

    def update(done: int, total: int) -> None:
        bar = state["bar"]
        if bar is None:
            bar = state["bar"] = progress(total, desc, unit)
            bar.update(done)
        else:
            if total != bar.total:  # a count that is only an estimate (ABC generations)
                bar.total = total
            bar.update(done - bar.n)

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].close()

    return update, close


def run_with_progress(desc: str, unit: str, work, interrupted):
    """Run `work(update, note)` under a progress bar; on Ctrl-C print `interrupted()`.

    `update(done, total)` feeds the bar and `note(text)` prints a line above it. The bar is
    closed whatever happens; a KeyboardInterrupt is re-raised after the message (which says
    what was saved and how to resume).
    """
    from tqdm import tqdm

    update, close = progress_callback(desc, unit)
    try:
        result = work(update, lambda m: tqdm.write(f"  {m}", file=sys.stderr))
    except KeyboardInterrupt:
        close()
        err(interrupted())
        raise
    except BaseException:
        close()
        raise
    close()
    return result


def save_figure(fig, path: Path, dpi: int = 130) -> None:
    """Save a matplotlib figure as PNG, atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight", facecolor="white")
    if getattr(fig, "number", None) is not None:  # made by pyplot: free it
        import matplotlib.pyplot as plt

        plt.close(fig)
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_csv(path: Path, df) -> None:
    """Write a table as CSV atomically, numbers to 6 significant digits."""
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)
