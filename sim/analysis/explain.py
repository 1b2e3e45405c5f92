"""Why a state's tilt moved: each partner's alignment score split into its terms.

Each quarter a state scores every partner (economic benefit, security, sentiment, minus
dependence cost and hedging; `sim.engine.kernels.alignment_scores`) and moves its tilt (the share
of its alignment each partner gets) part of the way toward a logit choice over the scores.
`explain` runs a scenario with one or more seeds to a quarter, records the terms a year (or
any span) before and at that quarter, and returns them side by side with the tilt change;
`reason` turns that table into one sentence that agrees with it in direction and size.

The terms of every quarter are recorded by the runner (`sim.runs.runner.run_traced`);
`sim.runs.gather.explain` runs a scenario and calls `explain_trace`. Nothing here runs a
model, reads files or prints.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.world.quarters import format_quarter, parse_quarter
from sim.world.values import Scenario
from sim.world.vocabulary import ALIGNMENT_TERMS

TERMS = ALIGNMENT_TERMS
"""The terms of a partner's alignment score, in the order they are shown."""

VALUES = (*TERMS, "score", "tilt")
"""The columns of a trace (`sim.runs.tables.alignment_frame`) the explain table compares."""

TERM_LABELS = {
    "economy": "economic benefit",
    "security": "security",
    "sentiment": "sentiment",
    "dependence": "dependence cost",
    "hedging": "hedging",
    "score": "total score",
    "tilt": "tilt",
}
"""Plain names of the terms (the dependence and hedging terms enter with a minus sign)."""




# --------------------------------------------------------------------------- explaining

def check_quarter(scenario: Scenario, quarter: str, what: str = "quarter") -> int:
    """Quarter label -> index, checked against the scenario's period.

    Raises:
        InputError: malformed, or outside the period.
    """
    try:
        q = parse_quarter(quarter)
    except ValueError as e:
        raise InputError(None, f"{what}: {e}") from None
    if not scenario.start <= q <= scenario.end:
        raise InputError(None, f"{what} {quarter} is outside {scenario.name}'s period "
                           f"{format_quarter(scenario.start)}–{format_quarter(scenario.end)}")
    return q


def check_state(scenario: Scenario, state: str) -> str:
    """Return the state's name (case-insensitive match).

    Raises:
        InputError: no such state in the scenario's world.
    """
    states = scenario.world.state_names
    match = next((s for s in states if s.lower() == str(state).strip().lower()), None)
    if match is None:
        raise InputError(None, f"unknown state {state!r} (states: {', '.join(states)})")
    return match


def explain_trace(trace: pd.DataFrame, state: str, quarter: str, before: str) -> pd.DataFrame:
    """The explain table from recorded traces (`run_traced`): mean over the runs in `trace`.

    Args:
        trace: Traces of one scenario, one or more runs, covering both quarters.
        state: The state.
        quarter: The quarter after the move.
        before: The quarter before it.

    Returns:
        See `explain`.

    Raises:
        InputError: the trace lacks the state or a quarter.
    """
    t = trace[(trace["state"] == state) & trace["quarter"].isin([before, quarter])]
    for q in (before, quarter):
        if not (t["quarter"] == q).any():
            raise InputError(None, f"no recorded quarter {q} for {state}")
    n = int(t["replication"].nunique())
    means = t.groupby(["quarter", "power"], sort=False)[list(VALUES)].mean()
    powers = list(dict.fromkeys(t["power"]))
    b = means.loc[before].reindex(powers)
    a = means.loc[quarter].reindex(powers)
    out = pd.DataFrame({"scenario": t["scenario"].iloc[0], "state": state,
                        "quarter_before": before, "quarter": quarter, "n_runs": n,
                        "power": powers})
    weight = ((b["tilt"] + a["tilt"]) / 2.0).to_numpy()
    for k in VALUES:
        out[f"{k}_before"] = b[k].to_numpy()
        out[f"{k}_after"] = a[k].to_numpy()
        out[f"{k}_change"] = out[f"{k}_after"] - out[f"{k}_before"]
    for k in (*TERMS, "score"):
        ch = out[f"{k}_change"].to_numpy()
        out[f"{k}_pull"] = ch - float(np.sum(weight * ch) / np.sum(weight))
    return out


def explain_shift(traces: pd.DataFrame, shift) -> pd.DataFrame:
    """The explain table of one tilt shift (a `sim.analysis.paired.tilt_shifts` row).

    Computed from that scenario's rows of `traces`.
    """
    own = traces[traces["scenario"] == shift.scenario]
    return explain_trace(own, shift.state, shift.quarter, shift.quarter_before)


# --------------------------------------------------------------------------- reason

def _name(x: str) -> str:
    return "the rest of the world" if x == "other" else (
        {"eu": "the EU", "us": "the US"}.get(x, x.replace("_", " ").title()))


def signed(x: float, decimals: int = 3) -> str:
    """A change or pull as the tables show it: rounded, explicit sign, true minus, bare zero."""
    v = round(float(x), decimals) + 0.0
    if v == 0:
        return f"{0:.{decimals}f}"
    return f"{v:+.{decimals}f}".replace("-", "\u2212")


def _possessive(x: str) -> str:
    return _name(x) + "'s"


def reason(table: pd.DataFrame, power: str | None = None) -> str:
    """One sentence on a partner's tilt move that agrees with the table in sign and size.

    The sentence gives the move (the tilt before and after, the change in points), then its
    cause as the table shows it, every number rounded as the table shows it:

    - when the partner's score pull has the sign of the move, the term of the partner that
      pulled most that way (and a larger term that pulled the other way, if any);
    - otherwise, that the partner's score did not move that way against the partners'
      tilt-weighted average, so the tilt was still moving toward the choice earlier
      scores pointed to (it moves only part of the way each quarter);
    - and the largest pull anywhere in the table (partner and term), unless it is the term
      already named (a partner's loss in a term shows as the others' gain in it).

    Args:
        table: `explain` output.
        power: The partner to explain (default: the one whose tilt changed most).

    Returns:
        E.g. "From 2026Q2 to 2027Q2 Kyrgyzstan leaned away from China (tilt 24.1% to 21.0%,
        −3.1 points), mostly because of sentiment (pull −0.050 score points against the
        partners' tilt-weighted average)."

    Raises:
        InputError: `power` is not a partner in the table.
    """
    t = table.reset_index(drop=True)
    if power is None:
        i = int(t["tilt_change"].abs().to_numpy().argmax())
    else:
        hits = t.index[t["power"] == power]
        if not len(hits):
            raise InputError(None, f"unknown partner {power!r}")
        i = int(hits[0])
    r = t.iloc[i]
    state = str(r["state"]).replace("_", " ").title()
    who = _name(str(r["power"]))
    span = f"From {r['quarter_before']} to {r['quarter']}"
    points = signed(float(r["tilt_change"]) * 100, 1)
    tilt = f"tilt {r['tilt_before']:.1%} to {r['tilt_after']:.1%}, {points} points"
    if round(float(r["tilt_change"]) * 100, 1) == 0:
        return f"{span} {state}'s tilt toward {who} hardly changed ({tilt})."
    d = 1.0 if r["tilt_change"] > 0 else -1.0
    direction = "toward" if d > 0 else "away from"
    pulls = {k: float(r[f"{k}_pull"]) for k in TERMS}
    score_pull = float(r["score_pull"])
    text = f"{span} {state} leaned {direction} {who} ({tilt})"
    named: set[str] = set()
    if round(score_pull, 3) * d > 0 and any(v * d > 0 for v in pulls.values()):
        same = {k: v for k, v in pulls.items() if v * d > 0}
        term = max(same, key=lambda k: abs(same[k]))
        named.add(term)
        text += (f", mostly because of {TERM_LABELS[term]} (pull {signed(pulls[term])} score "
                 "points against the partners' tilt-weighted average")
        other = {k: v for k, v in pulls.items() if v * d < 0 and abs(v) > abs(pulls[term])}
        if other:
            k2 = max(other, key=lambda k: abs(other[k]))
            named.add(k2)
            text += f"; {TERM_LABELS[k2]} pulled the other way, {signed(pulls[k2])}"
        text += ")"
    else:
        verb = "rise" if d > 0 else "fall"
        text += (f", although its score did not {verb} against the partners' tilt-weighted "
                 f"average (score pull {signed(score_pull)}): the tilt was still moving "
                 "toward the choice earlier scores pointed to")
    every = [(str(p), k, float(v)) for p, row in zip(t["power"], t.itertuples(), strict=True)
             for k in TERMS for v in [getattr(row, f"{k}_pull")]]
    q, k, v = max(every, key=lambda x: abs(x[2]))
    if round(v, 3) != 0 and k not in named:
        way = "toward" if v > 0 else "away from"
        text += (f"; the largest pull in the table was {_possessive(q)} {TERM_LABELS[k]} "
                 f"({signed(v)}, {way} {_name(q)})")
    return text + "."


# --------------------------------------------------------------------------- text

def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others, a rule under the header."""
    cells = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths), *map(line, cells[1:])]


def describe(table: pd.DataFrame) -> str:
    """The explain table as text, for the terminal.

    Tilt and term changes per partner, then every term before and after (the table's
    numbers, rounded).
    """
    r0 = table.iloc[0]
    state = str(r0["state"]).replace("_", " ").title()
    b, a = r0["quarter_before"], r0["quarter"]
    n = int(r0["n_runs"])
    head = [f"Why {state}'s tilt moved: {r0['scenario']}, {b} to {a} "
            f"(mean of {n} run{'s' if n != 1 else ''})",
            f"tilt = share of {state}'s alignment each partner gets (adds up to 100%); score "
            "terms in score points.", ""]
    main = _text_table(
        ["partner", f"tilt {b}", f"tilt {a}", "change", *[f"Δ {TERM_LABELS[t]}" for t in TERMS],
         "Δ score", "score pull"],
        [[_name(str(r["power"])), f"{r['tilt_before']:.1%}", f"{r['tilt_after']:.1%}",
          f"{signed(r['tilt_change'] * 100, 1)} pt",
          *[signed(r[f'{t}_change']) for t in TERMS], signed(r["score_change"]),
          signed(r["score_pull"])] for _, r in table.iterrows()])
    rows = []
    for _, r in table.iterrows():
        for t in (*TERMS, "score"):
            rows.append([_name(str(r["power"])), TERM_LABELS[t],
                         *[signed(r[f"{t}_{part}"]) for part in ("before", "after",
                                                                  "change", "pull")]])
    long = _text_table(["partner", "term", b, a, "change", "pull"], rows)
    note = ["", "Each term before and after (dependence cost and hedging are subtracted, so "
            "zero or negative; pull = change minus the partners' tilt-weighted mean change, "
            "> 0 draws the state toward the partner):", ""]
    return "\n".join(head + main + note + long)
