"""The report's words and numbers: rounding, display tables and the summary sentences.

Numbers are formatted in one place (`DECIMALS`, `fmt`): the CSV tables hold the rounded
values the HTML shows, and every number of a summary sentence is a `Num` taken from a CSV
row, so the text can be checked against the tables. Used by `sim.output.report`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis import explain as E
from sim.analysis import paired as C
from sim.output import plots
from sim.world.vocabulary import REGION

# --------------------------------------------------------------------------- formatting

DECIMALS: dict[str, int] = {
    "share_pct": 1, "ci_low_pct": 1, "ci_high_pct": 1,
    "diff_pp": 2, "diff_ci_low_pp": 2, "diff_ci_high_pp": 2,
    "runs_pct": 0, "leader_share_pct": 1, "runner_up_share_pct": 1, "margin_pp": 1,
    "runs_led_pct": 0, "tilt_before_pct": 1, "tilt_after_pct": 1, "tilt_change_pp": 1,
    "n": 0, "n_runs": 0, "n_overtake": 0, "ahead_at_start": 0, "ahead_at_end": 0,
    "n_differences": 0, "mean_width_pp": 2, "range_width_pp": 2, "n_draws": 0, "effective_draws": 1,
}
"""Decimals of each displayed number column; score terms (`*_before`, ...) have 3."""

SIGNED = {"diff_pp", "diff_ci_low_pp", "diff_ci_high_pp", "tilt_change_pp"}
"""Columns shown with an explicit + sign (differences and changes)."""

SCORE_DECIMALS = 3


def decimals(column: str) -> int:
    """Decimals a column is rounded to in the CSV tables and shown with in the HTML."""
    return DECIMALS.get(column, SCORE_DECIMALS)


def signed(column: str) -> bool:
    """Whether a column is shown with an explicit sign."""
    return column in SIGNED or column.endswith(("_change", "_pull"))


def round_value(value: Any, column: str) -> Any:
    """Round a number as the tables store it (NaN stays NaN; -0.0 becomes 0.0)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.nan
    d = decimals(column)
    return int(round(value)) if d == 0 else round(float(value), d) + 0.0


def fmt(value: Any, column: str, absolute: bool = False) -> str:
    """Text of a stored (rounded) number: fixed decimals, a true minus sign, `—` for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    v = abs(value) if absolute else value
    d = decimals(column)
    text = f"{v:.{d}f}"
    if text.lstrip("-").strip("0.") == "":
        return f"{0:.{d}f}"
    if signed(column) and not absolute:
        text = text if text.startswith("-") else "+" + text
    return text.replace("-", "\u2212")


def _rounded(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    out = frame.copy()
    for c in columns:
        vals = [round_value(v, c) for v in out[c]]
        out[c] = pd.array(vals, dtype="Int64") if decimals(c) == 0 else np.array(vals, float)
    return out


# --------------------------------------------------------------------------- display tables

def display_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The CSV tables: percentages and percentage points, rounded as the report shows them."""
    s = tables["shares"]
    shares = _rounded(pd.DataFrame({
        "scenario": s["scenario"], "area": s["area"], "power": s["power"],
        "quarter": s["quarter"], "n": s["n"], "share_pct": s["mean"] * 100,
        "ci_low_pct": s["ci_low"] * 100, "ci_high_pct": s["ci_high"] * 100}),
        ["n", "share_pct", "ci_low_pct", "ci_high_pct"])
    d = tables["differences"]
    diffs = _rounded(pd.DataFrame({
        "scenario": d["scenario"], "reference": d["reference"], "area": d["area"],
        "power": d["power"], "quarter": d["quarter"], "n": d["n"],
        "diff_pp": d["mean"] * 100, "diff_ci_low_pp": d["ci_low"] * 100,
        "diff_ci_high_pp": d["ci_high"] * 100, "distinct": d["distinct"]}),
        ["n", "diff_pp", "diff_ci_low_pp", "diff_ci_high_pp"])
    o = tables["overtaking"]
    over = _rounded(o.drop(columns="share_of_runs").assign(runs_pct=o["share_of_runs"] * 100),
                    ["n_runs", "n_overtake", "runs_pct", "ahead_at_start", "ahead_at_end"])
    over = over[["scenario", "area", "power", "rival", "n_runs", "n_overtake", "runs_pct",
                 "median", "earliest", "latest", "ahead_at_start", "ahead_at_end"]]
    lead = tables["leaders"]
    leaders = pd.DataFrame()
    if len(lead):
        leaders = lead.assign(leader_share_pct=lead["leader_share"] * 100,
                              runner_up_share_pct=lead["runner_up_share"] * 100,
                              margin_pp=lead["margin"] * 100,
                              runs_led_pct=lead["share_of_runs"] * 100)
        keep = ["scenario", "area", "quarter", "leader", "leader_share_pct", "runner_up",
                "runner_up_share_pct", "margin_pp", "runs_led_pct", "previous_leader",
                "changed", "reference_leader", "differs_from_reference"]
        leaders = _rounded(leaders[[c for c in keep if c in leaders.columns]],
                           ["leader_share_pct", "runner_up_share_pct", "margin_pp",
                            "runs_led_pct"])
    return {"shares": shares, "differences": diffs, "overtaking": over, "leaders": leaders}


def display_explanations(shifts: pd.DataFrame,
                         explanations: Sequence[pd.DataFrame]) -> tuple[pd.DataFrame,
                                                                        pd.DataFrame]:
    """The tilt-shift and explanation CSV tables (tilt in %, terms in score points)."""
    sh = _rounded(pd.DataFrame({
        "shift": np.arange(1, len(shifts) + 1), "scenario": shifts["scenario"],
        "state": shifts["state"], "power": shifts["power"],
        "quarter_before": shifts["quarter_before"], "quarter": shifts["quarter"],
        "tilt_before_pct": shifts["tilt_before"] * 100,
        "tilt_after_pct": shifts["tilt_after"] * 100,
        "tilt_change_pp": shifts["change"] * 100, "same_in": shifts["same_in"]}),
        ["tilt_before_pct", "tilt_after_pct", "tilt_change_pp"])
    frames = []
    for k, t in enumerate(explanations, start=1):
        f = pd.DataFrame({"shift": k, "scenario": t["scenario"], "state": t["state"],
                          "quarter_before": t["quarter_before"], "quarter": t["quarter"],
                          "n_runs": t["n_runs"], "power": t["power"],
                          "tilt_before_pct": t["tilt_before"] * 100,
                          "tilt_after_pct": t["tilt_after"] * 100,
                          "tilt_change_pp": t["tilt_change"] * 100})
        for term in (*E.TERMS, "score"):
            for part in ("before", "after", "change", "pull"):
                f[f"{term}_{part}"] = t[f"{term}_{part}"]
        f["reason"] = [E.reason(t, p) for p in t["power"]]
        frames.append(f)
    if not frames:
        return sh, pd.DataFrame()
    ex = pd.concat(frames, ignore_index=True)
    numeric = [c for c in ex.columns if c not in (
        "shift", "scenario", "state", "quarter_before", "quarter", "power", "reason")]
    return sh, _rounded(ex, numeric)


# --------------------------------------------------------------------------- sentences

@dataclass(frozen=True)
class Num:
    """A number in a sentence, taken from a CSV table row."""

    table: str
    row: int
    column: str
    value: Any
    absolute: bool = False

    @property
    def text(self) -> str:
        """The number as shown."""
        if isinstance(self.value, str):
            return self.value
        return fmt(self.value, self.column, self.absolute)


Sentence = list[str | Num]


def subject(power: str) -> str:
    """A power's name in a sentence: `China`, `the US`, `the rest of the world`."""
    if power == "other":
        return "the rest of the world"
    label = plots.power_label(power)
    return f"the {label}" if label.isupper() else label


def possessive(power: str) -> str:
    """`China's`, `the US's`, `the rest of the world's`."""
    return subject(power) + "'s"


def shift_title(state: str, scenario: str, power: str, change_pp: float) -> str:
    """Heading of a tilt shift, in the direction of its change as the table shows it.

    Args:
        state: The state.
        scenario: The scenario label.
        power: The partner whose tilt moved.
        change_pp: The change in percentage points, rounded as `tilt_shifts.csv` holds it.
    """
    where = f"{plots.area_label(state)}, {scenario}"
    who = subject(power)
    if round(float(change_pp), decimals("tilt_change_pp")) == 0:
        return f"{where}: tilt toward {who} hardly changed"
    return f"{where}: leaned {'toward' if change_pp > 0 else 'away from'} {who}"


def _area_phrase(area: str) -> str:
    return "region-wide" if area == REGION else f"in {plots.area_label(area)}"


INTERVAL_OF_MODE = {"none": "mean", "posterior": "runs"}
"""Which interval (`sim.analysis.paired.INTERVAL_KINDS`) a report shows in each uncertainty
mode. Without draws: the t interval of the mean (the runs differ by chance alone, so the
question is how precisely they pin down the model's average). With posterior draws: the
central range of the runs, a credible interval (the question is where the quantity lies
given what history leaves open; the interval of a mean over draws would narrow with every
added run and claim a precision no one can defend)."""


def interval_name(confidence: float, uncertainty: str = "none", long: bool = False) -> str:
    """What an interval is called in a sentence, a heading or a legend.

    `95% CI` / `95% credible interval`; long: `95% confidence interval of the mean` /
    `95% credible interval, the central 95% of the runs`.
    """
    if INTERVAL_OF_MODE[uncertainty] == "runs":
        return (f"{confidence:.0%} credible interval" + (
            f", the central {confidence:.0%} of the runs" if long else ""))
    return f"{confidence:.0%} confidence interval of the mean" if long else f"{confidence:.0%} CI"


def _difference_sentence(row: int, r: pd.Series, shares: pd.DataFrame,
                         share_rows: dict[tuple, int], ci: str) -> Sentence:
    d = "diff_pp"
    more = "higher" if r[d] > 0 else "lower"
    who = possessive(r["power"])
    where = "regional share" if r["area"] == REGION else f"share in {plots.area_label(r['area'])}"
    a = share_rows[(r["scenario"], r["area"], r["power"], r["quarter"])]
    b = share_rows[(r["reference"], r["area"], r["power"], r["quarter"])]
    if not bool(r["distinct"]):  # the interval includes zero: no clear difference
        return [f"Under {r['scenario']}, no clear difference in {who} {where} in ",
                Num("differences", row, "quarter", r["quarter"]),
                f" from {r['reference']} ({ci} ",
                Num("differences", row, "diff_ci_low_pp", r["diff_ci_low_pp"]), " to ",
                Num("differences", row, "diff_ci_high_pp", r["diff_ci_high_pp"]),
                " points; ", Num("shares", a, "share_pct", shares.at[a, "share_pct"]),
                "% against ", Num("shares", b, "share_pct", shares.at[b, "share_pct"]), "%)."]
    lo, hi = ("diff_ci_low_pp", "diff_ci_high_pp") if r[d] > 0 else (
        "diff_ci_high_pp", "diff_ci_low_pp")
    return [f"Under {r['scenario']}, {who} {where} in ",
            Num("differences", row, "quarter", r["quarter"]), " is ",
            Num("differences", row, d, r[d], True),
            f" points {more} than under {r['reference']} ({ci} ",
            Num("differences", row, lo, r[lo], True), "–",
            Num("differences", row, hi, r[hi], True), "; ",
            Num("shares", a, "share_pct", shares.at[a, "share_pct"]), "% against ",
            Num("shares", b, "share_pct", shares.at[b, "share_pct"]), "%)."]


def _overtaking_sentence(row: int, r: pd.Series) -> Sentence:
    who, rival = subject(r["power"]), subject(r["rival"])
    where = _area_phrase(r["area"])
    n = Num("overtaking", row, "n_runs", r["n_runs"])
    if r["n_overtake"] == 0:
        if r["ahead_at_start"] == r["n_runs"]:
            return [f"Under {r['scenario']}, {who} is ahead of {rival} {where} from the start "
                    "in all ", n, " runs."]
        return [f"Under {r['scenario']}, {who} does not overtake {rival} {where} in any of the ",
                n, " runs."]
    if r["n_overtake"] == 1:
        return [f"Under {r['scenario']}, {who} overtakes {rival} {where} in only ",
                Num("overtaking", row, "n_overtake", r["n_overtake"]), " of the ", n,
                " runs, in ", Num("overtaking", row, "median", r["median"]), "."]
    return [f"Under {r['scenario']}, {who} overtakes {rival} {where} in ",
            Num("overtaking", row, "n_overtake", r["n_overtake"]), " of ", n,
            " runs; the median quarter is ", Num("overtaking", row, "median", r["median"]),
            " (earliest ", Num("overtaking", row, "earliest", r["earliest"]), ", latest ",
            Num("overtaking", row, "latest", r["latest"]), ")."]


def _scenario_list(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _overtaking_group_sentence(rows: pd.DataFrame, n_scenarios: int) -> Sentence:
    """One sentence for scenarios whose region-wide overtaking reads the same."""
    first = rows.iloc[0]
    if len(rows) == 1:
        return _overtaking_sentence(int(rows.index[0]), first)
    who, rival = subject(first["power"]), subject(first["rival"])
    n = Num("overtaking", int(rows.index[0]), "n_runs", first["n_runs"])
    under = ("Under every scenario" if len(rows) == n_scenarios
             else f"Under {_scenario_list(rows['scenario'])}")
    if first["ahead_at_start"] == first["n_runs"]:
        return [f"{under}, {who} is ahead of {rival} {_area_phrase(first['area'])} from the "
                "start in all ", n, " runs."]
    return [f"{under}, {who} does not overtake {rival} {_area_phrase(first['area'])} in any of "
            "the ", n, " runs."]


def overtaking_note(over: pd.DataFrame, power: str, rival: str) -> str | None:
    """The line that stands for an overtaking chart with nothing to draw (else None).

    Args:
        over: The overtaking display table.
        power: The power that would overtake.
        rival: The power it would overtake.
    """
    d = over[(over["power"] == power) & (over["rival"] == rival)]
    if (d["n_overtake"] > 0).any():
        return None
    ahead = [plots.area_label(a) for a, g in d.groupby("area", sort=False)
             if (g["ahead_at_start"] == g["n_runs"]).all()]
    text = (f"{subject(power)} does not overtake {subject(rival)} in any run of any scenario, "
            "region-wide or in any state, so there is no chart")
    if ahead:
        text += f"; {subject(power)} is ahead from the start in {_scenario_list(ahead)}"
    return text + " (see the overtaking table)."


def _leader_sentence(row: int, r: pd.Series) -> Sentence:
    return [f"Under {r['scenario']}, the leading power {_area_phrase(r['area'])} in ",
            Num("leaders", row, "quarter", r["quarter"]),
            f" is {subject(r['leader'])} (",
            Num("leaders", row, "leader_share_pct", r["leader_share_pct"]),
            f"%), not {subject(r['reference_leader'])} as under the reference."]


def _leader_change_sentence(row: int, r: pd.Series) -> Sentence:
    return [f"Under {r['scenario']}, the leading power {_area_phrase(r['area'])} changes from "
            f"{subject(r['previous_leader'])} to {subject(r['leader'])} "
            "by ", Num("leaders", row, "quarter", r["quarter"]), " (",
            Num("leaders", row, "leader_share_pct", r["leader_share_pct"]), "%; it leads in ",
            Num("leaders", row, "runs_led_pct", r["runs_led_pct"]), "% of runs)."]


def _headline_sentence(row: int, r: pd.Series) -> Sentence:
    return [f"Under {r['scenario']} (the reference), {subject(r['leader'])} leads "
            f"{_area_phrase(r['area'])} in ", Num("leaders", row, "quarter", r["quarter"]),
            " with ", Num("leaders", row, "leader_share_pct", r["leader_share_pct"]),
            f"% of influence, ahead of {subject(r['runner_up'])} (",
            Num("leaders", row, "runner_up_share_pct", r["runner_up_share_pct"]),
            "%), and leads in ", Num("leaders", row, "runs_led_pct", r["runs_led_pct"]),
            "% of runs."]


def _worth_saying(r: pd.Series) -> bool:
    """A difference row with something to say: a clear difference, or a visible interval."""
    return bool(r["distinct"]) or any(
        r[c] != 0 for c in ("diff_pp", "diff_ci_low_pp", "diff_ci_high_pp"))


INTERVAL_SENTENCES = {
    "none": "Every interval here covers model randomness only: each run uses the scenarios' "
            "own parameter values, so uncertainty in those values is not included.",
    "posterior": "Every interval here covers model randomness and parameter uncertainty "
                 "(posterior draws): each replication runs its own parameter set drawn from "
                 "the calibrated posterior, the same one in every scenario, and each interval "
                 "is a credible interval, the central {confidence:.0%} of the runs' values "
                 "(more runs would estimate it better, not narrow it).",
}
"""The summary's last sentence: which kind of interval it speaks of."""


def summary_sentences(tables: dict[str, pd.DataFrame], display: dict[str, pd.DataFrame],
                      quarters: Sequence[str], confidence: float = C.CONFIDENCE,
                      max_leader: int = 6, uncertainty: str = "none") -> list[Sentence]:
    """Plain-language sentences on the largest differences, overtaking and leaders.

    Every number is a `Num` pointing at a row of a display (CSV) table. A difference whose
    interval includes zero is worded as "no clear difference", with its interval; the last
    sentence says which kind of interval the summary speaks of (`uncertainty`: `none` or
    `posterior`, as in `INTERVAL_SENTENCES`).
    """
    out: list[Sentence] = []
    lead = display["leaders"]
    if len(lead):
        head = lead[(lead["area"] == REGION) & (lead["quarter"] == quarters[-1])]
        if len(head):
            out.append(_headline_sentence(int(head.index[0]), head.iloc[0]))
    shares = display["shares"]
    share_rows = {(r.scenario, r.area, r.power, r.quarter): i
                  for i, r in enumerate(shares.itertuples())}
    picks = C.largest_differences(tables["differences"], quarters, distinct_only=False)
    diffs = display["differences"]
    scenarios = list(dict.fromkeys(diffs["scenario"]))
    for name in scenarios:
        rows = [int(i) for i in picks.loc[picks["scenario"] == name, "row"]
                if _worth_saying(diffs.loc[int(i)])]
        if not rows:  # nothing to tell apart (e.g. a scenario compared with itself)
            out.append([f"Under {name}, no share differs from the reference's at the chosen "
                        f"years beyond the play of chance (every {confidence:.0%} interval "
                        "includes zero)."])
        for i in rows:
            out.append(_difference_sentence(i, diffs.loc[i], shares, share_rows,
                                            interval_name(confidence, uncertainty)))
    over = display["overtaking"]
    first_pair = over[["power", "rival"]].drop_duplicates().head(1)
    if len(first_pair):
        p, r = first_pair.iloc[0]
        region = over[(over["area"] == REGION) & (over["power"] == p) & (over["rival"] == r)]
        never = (region["n_overtake"] == 0) & (region["ahead_at_start"] != region["n_runs"])
        ahead = (region["n_overtake"] == 0) & (region["ahead_at_start"] == region["n_runs"])
        n_scen = region["scenario"].nunique()
        for i, row in region.iterrows():  # scenario order; alike ones said once, in one place
            if never[i] and i == never[never].index[0]:
                out.append(_overtaking_group_sentence(region[never], n_scen))
            elif ahead[i] and i == ahead[ahead].index[0]:
                out.append(_overtaking_group_sentence(region[ahead], n_scen))
            elif not never[i] and not ahead[i]:
                out.append(_overtaking_sentence(int(i), row))
    n = 0
    if len(lead):
        for i, r in lead.iterrows():
            if n >= max_leader:
                break
            if bool(r.get("differs_from_reference", False)):
                out.append(_leader_sentence(int(i), r))
                n += 1
            elif bool(r["changed"]):
                out.append(_leader_change_sentence(int(i), r))
                n += 1
    out.append([INTERVAL_SENTENCES[uncertainty].format(confidence=confidence)])
    return out


def sentence_text(sentence: Sentence) -> str:
    """A sentence as plain text (for the terminal and summary.csv)."""
    return "".join(p.text if isinstance(p, Num) else p for p in sentence)
