"""Statistics for comparing scenarios run with common random numbers (CRN).

Pure DataFrame -> DataFrame functions on the tidy frames of `sim.runs.runner` (`shares`:
scenario, replication, seed, quarter, step, area, power, channel columns, share;
`metrics`: ... state, power, tilt, ...). Replication i of every scenario uses the same seed,
so differences are paired by replication. Intervals are Student t intervals from
`scipy.stats` over replications. Shares are fractions (0-1) here; turning them into
percentages for display is `sim.output.report`'s job. No I/O, no plotting, no printing.

What it holds: mean shares with intervals, paired differences against a reference,
the quarter one power first overtakes another, the leading power at chosen quarters, the
largest one-year tilt shifts, and the check of whether stored runs can be reused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from sim.analysis.bands import area_order, power_order
from sim.world.quarters import parse_quarter, quarter_year
from sim.world.vocabulary import OTHER, REGION

CONFIDENCE = 0.95
"""Default confidence level of every interval."""

KEYS = ["scenario", "area", "power", "quarter"]
_INTERVAL = ["n", "mean", "sd", "ci_low", "ci_high"]

INTERVAL_KINDS = ("mean", "runs")
"""What an interval is. `mean`: the Student t confidence interval of the mean over
replications (how precisely the runs pin down the model's average; it narrows as 1/sqrt(n)).
`runs`: the central range holding `confidence` of the replications' own values (with
posterior draws, a credible interval: where the quantity lies across the parameter values
history allows and the model's chance; more runs estimate it better but do not narrow it)."""


# --------------------------------------------------------------------------- helpers

def t_interval(mean: np.ndarray, sd: np.ndarray, n: np.ndarray,
               confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Student t interval of a mean from its sample mean, standard deviation and count.

    Uses `scipy.stats.t.interval` with n - 1 degrees of freedom and scale sd / sqrt(n). A
    zero standard deviation gives a zero-width interval (exactly the mean); fewer than two
    values give NaN.

    Returns:
        (low, high) arrays.
    """
    mean = np.asarray(mean, dtype=float)
    sd = np.asarray(sd, dtype=float)
    n = np.asarray(n, dtype=float)
    ok = n >= 2
    sem = np.where(ok, sd / np.sqrt(np.where(ok, n, 1.0)), np.nan)
    spread = ok & (sem > 0)
    low = np.where(ok, mean, np.nan)
    high = low.copy()
    if spread.any():
        lo, hi = stats.t.interval(confidence, df=n[spread] - 1, loc=mean[spread],
                                  scale=sem[spread])
        low[spread], high[spread] = lo, hi
    return low, high


def run_range(values: pd.DataFrame, by: list[str], column: str,
              confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """The central `confidence` range of `column` over the rows of each group.

    The (1 - confidence) / 2 and (1 + confidence) / 2 quantiles (linear interpolation), in
    the group order of `values.groupby(by, sort=False)`; NaN for a group of fewer than two
    values. Equal values give a zero-width range, exactly that value.

    Returns:
        (low, high) arrays.
    """
    g = values.groupby(by, sort=False)[column]
    tail = (1 - confidence) / 2
    n = g.count().to_numpy()
    low = np.where(n >= 2, g.quantile(tail).to_numpy(float), np.nan)
    high = np.where(n >= 2, g.quantile(1 - tail).to_numpy(float), np.nan)
    return low, high


def _summarise(values: pd.DataFrame, by: list[str], column: str,
               confidence: float, interval: str = "mean") -> pd.DataFrame:
    """n, mean, sd and interval (`INTERVAL_KINDS`) of `column` over the rows of each group."""
    if interval not in INTERVAL_KINDS:
        raise ValueError(f"unknown interval {interval!r} (expected one of "
                         f"{', '.join(INTERVAL_KINDS)})")
    g = values.groupby(by, sort=False)[column]
    out = g.agg(n="count", mean="mean", sd="std").reset_index()
    out["sd"] = out["sd"].where(out["n"] >= 2)
    if interval == "mean":
        out["ci_low"], out["ci_high"] = t_interval(out["mean"], out["sd"], out["n"], confidence)
    else:
        out["ci_low"], out["ci_high"] = run_range(values, by, column, confidence)
    return out


def _sort(frame: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """Sort rows by scenario (compare order), area (region first), power, then time."""
    scen = {s: i for i, s in enumerate(dict.fromkeys(shares["scenario"]))}
    areas = {a: i for i, a in enumerate([REGION, *area_order(shares)])}
    powers = {p: i for i, p in enumerate(power_order(shares))}
    keys = {"scenario": scen, "area": areas, "power": powers}
    cols = [c for c in ("scenario", "area", "power") if c in frame.columns]
    tmp = frame.assign(**{f"_{c}": frame[c].map(keys[c]) for c in cols})
    order = [f"_{c}" for c in cols]
    if "quarter" in frame.columns:
        tmp["_q"] = frame["quarter"].map(parse_quarter)
        order.append("_q")
    tmp = tmp.sort_values(order, kind="stable")
    return tmp.drop(columns=order).reset_index(drop=True)


# --------------------------------------------------------------------------- shares

def share_intervals(shares: pd.DataFrame, confidence: float = CONFIDENCE,
                    quarters: Iterable[str] | None = None,
                    interval: str = "mean") -> pd.DataFrame:
    """Mean share of each power in each state and the region, with an interval.

    Args:
        shares: Tidy shares of one or more scenarios.
        confidence: Confidence level of the interval.
        quarters: Keep only these quarters (all if None).
        interval: `mean` (t interval of the mean) or `runs` (central range of the runs),
            see `INTERVAL_KINDS`.

    Returns:
        Rows scenario, area, power, quarter, year (decimal), n (replications), mean, sd,
        ci_low, ci_high; shares as fractions.
    """
    s = shares if quarters is None else shares[shares["quarter"].isin(list(quarters))]
    out = _summarise(s, KEYS, "share", confidence, interval)
    out.insert(4, "year", out["quarter"].map(quarter_year))
    return _sort(out, shares)


def paired(shares: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per-replication differences of each scenario's shares from the reference's.

    Rows are matched on replication, area, power and quarter; the seeds of matched rows
    must be equal (common random numbers).

    Returns:
        Rows scenario, reference, replication, area, power, quarter, diff (fraction),
        for every scenario other than the reference.

    Raises:
        ValueError: the reference is missing or a replication's seed differs between a
            scenario and the reference.
    """
    names = list(dict.fromkeys(shares["scenario"]))
    if reference not in names:
        raise ValueError(f"reference {reference!r} is not among the scenarios {names}")
    cols = ["replication", "seed", "area", "power", "quarter", "share"]
    ref = shares.loc[shares["scenario"] == reference, cols]
    frames = []
    for name in names:
        if name == reference:
            continue
        other = shares.loc[shares["scenario"] == name, cols]
        m = other.merge(ref, on=["replication", "area", "power", "quarter"],
                        suffixes=("", "_ref"), how="inner", validate="one_to_one")
        bad = m["seed"] != m["seed_ref"]
        if bad.any():
            r = m[bad].iloc[0]
            raise ValueError(f"replication {r['replication']} of {name!r} used seed "
                             f"{r['seed']} but of {reference!r} seed {r['seed_ref']}: runs "
                             "are not paired (common random numbers need equal seeds)")
        frames.append(pd.DataFrame({
            "scenario": name, "reference": reference, "replication": m["replication"],
            "area": m["area"], "power": m["power"], "quarter": m["quarter"],
            "diff": m["share"] - m["share_ref"]}))
    if not frames:
        return pd.DataFrame(columns=["scenario", "reference", "replication", "area", "power",
                                     "quarter", "diff"])
    return pd.concat(frames, ignore_index=True)


def paired_differences(shares: pd.DataFrame, reference: str,
                       confidence: float = CONFIDENCE,
                       quarters: Iterable[str] | None = None,
                       interval: str = "mean") -> pd.DataFrame:
    """Mean paired difference (scenario minus reference) with an interval, per power and area.

    With `interval="mean"` the interval is the paired t interval (a one-sample t interval of
    the per-replication differences); with `"runs"` the central range of those differences
    (a credible interval when replications draw their parameters from a posterior).
    Comparing a scenario with itself gives differences of exactly zero and zero-width
    intervals either way.

    Args:
        shares: Tidy shares of the reference and the other scenarios, same seeds.
        reference: The reference scenario's label.
        confidence: Confidence level.
        quarters: Keep only these quarters (all if None).
        interval: `mean` or `runs` (`INTERVAL_KINDS`).

    Returns:
        Rows scenario, reference, area, power, quarter, year, n, mean, sd, ci_low, ci_high
        (fractions of influence: 0.061 is 6.1 percentage points), and `distinct`: True when
        the interval excludes zero.
    """
    s = shares if quarters is None else shares[shares["quarter"].isin(list(quarters))]
    d = paired(s, reference)
    out = _summarise(d, ["scenario", "reference", *KEYS[1:]], "diff", confidence, interval)
    out.insert(5, "year", out["quarter"].map(quarter_year))
    out["distinct"] = (out["ci_low"] > 0) | (out["ci_high"] < 0)
    return _sort(out, shares)


# --------------------------------------------------------------------------- overtaking

def overtaking(shares: pd.DataFrame, pairs: Sequence[tuple[str, str]] = (("china", "russia"),),
               areas: Iterable[str] | None = None) -> pd.DataFrame:
    """When one power first overtakes another, per scenario and area, over replications.

    Power p overtakes rival r in the first quarter whose share of p is above r's after a
    quarter in which it was not (a power ahead from the first quarter has not overtaken;
    if it falls behind and passes again, that quarter counts).

    Args:
        shares: Tidy shares.
        pairs: (power, rival) pairs.
        areas: Areas to report (default: the region, then every state).

    Returns:
        Rows scenario, area, power, rival, n_runs, n_overtake (runs in which it happens),
        share_of_runs, median, earliest, latest (quarter labels over the runs in which it
        happens; the median is the lower middle value when their number is even),
        ahead_at_start and ahead_at_end (runs in which p is ahead of r in the first and
        last quarter).
    """
    areas = list(areas) if areas is not None else [REGION, *area_order(shares)]
    rows: list[dict[str, Any]] = []
    for scenario, g in shares[shares["area"].isin(areas)].groupby("scenario", sort=False):
        quarters = sorted(g["quarter"].unique(), key=parse_quarter)
        wide = g.pivot_table(index=["area", "replication"], columns=["power", "quarter"],
                             values="share", aggfunc="first")
        for area in areas:
            if area not in wide.index.get_level_values(0):
                continue
            w = wide.loc[area]
            for p, r in pairs:
                ahead = (w[p][quarters].to_numpy() > w[r][quarters].to_numpy())
                passed = ahead[:, 1:] & ~ahead[:, :-1]
                has = passed.any(axis=1)
                first = np.where(has, passed.argmax(axis=1) + 1, -1)
                idx = np.sort(first[has])
                label = quarters.__getitem__
                rows.append({
                    "scenario": scenario, "area": area, "power": p, "rival": r,
                    "n_runs": int(len(first)), "n_overtake": int(has.sum()),
                    "share_of_runs": float(has.mean()) if len(first) else np.nan,
                    "median": label(int(idx[(len(idx) - 1) // 2])) if len(idx) else None,
                    "earliest": label(int(idx[0])) if len(idx) else None,
                    "latest": label(int(idx[-1])) if len(idx) else None,
                    "ahead_at_start": int(ahead[:, 0].sum()),
                    "ahead_at_end": int(ahead[:, -1].sum()),
                })
    return pd.DataFrame(rows, columns=[
        "scenario", "area", "power", "rival", "n_runs", "n_overtake", "share_of_runs",
        "median", "earliest", "latest", "ahead_at_start", "ahead_at_end"])


# --------------------------------------------------------------------------- leaders

def leaders(shares: pd.DataFrame, quarters: Sequence[str], reference: str | None = None,
            exclude: Iterable[str] = (OTHER,)) -> pd.DataFrame:
    """The leading power of each state and the region at chosen quarters, and where it changes.

    The leader is the power with the highest mean share over replications (the `other`
    bucket, the rest of the world, is not a power and is left out by default).

    Args:
        shares: Tidy shares.
        quarters: Quarters to report, in time order.
        reference: The reference scenario; adds the reference's leader for comparison.
        exclude: Partners that cannot lead.

    Returns:
        Rows scenario, area, quarter, leader, leader_share (mean), runner_up,
        runner_up_share, margin (leader minus runner-up), share_of_runs (runs in which the
        leader has the highest share), previous_leader (at the previous chosen quarter),
        changed (the leader differs from previous_leader), reference_leader,
        differs_from_reference.
    """
    exclude = set(exclude)
    s = shares[shares["quarter"].isin(list(quarters)) & ~shares["power"].isin(exclude)]
    means = s.groupby(["scenario", "area", "quarter", "power"], sort=False)["share"].mean()
    wide = s.pivot_table(index=["scenario", "area", "quarter", "replication"],
                         columns="power", values="share", aggfunc="first")
    run_leader = wide.idxmax(axis=1)
    rows = []
    for (scenario, area, quarter), m in means.groupby(level=[0, 1, 2], sort=False):
        m = m.droplevel([0, 1, 2]).sort_values(ascending=False, kind="stable")
        lead, second = m.index[0], (m.index[1] if len(m) > 1 else None)
        runs = run_leader.loc[(scenario, area, quarter)]
        rows.append({
            "scenario": scenario, "area": area, "quarter": quarter, "leader": lead,
            "leader_share": float(m.iloc[0]), "runner_up": second,
            "runner_up_share": float(m.iloc[1]) if second else np.nan,
            "margin": float(m.iloc[0] - m.iloc[1]) if second else np.nan,
            "share_of_runs": float((runs == lead).mean()),
        })
    out = _sort(pd.DataFrame(rows), shares)
    prev = out.groupby(["scenario", "area"], sort=False)["leader"].shift(1)
    out["previous_leader"] = prev
    out["changed"] = prev.notna() & (prev != out["leader"])
    if reference is not None:
        ref = out.loc[out["scenario"] == reference, ["area", "quarter", "leader"]]
        out = out.merge(ref.rename(columns={"leader": "reference_leader"}),
                        on=["area", "quarter"], how="left")
        out["differs_from_reference"] = out["leader"] != out["reference_leader"]
    return out


# --------------------------------------------------------------------------- tilt shifts

def tilt_shifts(metrics: pd.DataFrame, lag_quarters: int = 4, top: int = 4,
                since: str | None = None) -> pd.DataFrame:
    """The largest changes, over `lag_quarters`, of a state's mean tilt toward a partner.

    Each (scenario, state) contributes at most its largest shift, and each (state, partner,
    quarter) appears once, under the scenario where it is largest; scenarios where it is
    exactly the same (common history and common random numbers) are named in `same_in`.

    Args:
        metrics: Tidy metrics (scenario, replication, quarter, state, power, tilt).
        lag_quarters: Length of the window (4: a year).
        top: How many shifts to return.
        since: Only windows ending in or after this quarter (all if None).

    Returns:
        Rows scenario, state, power, quarter_before, quarter, tilt_before, tilt_after, change
        (fractions of the state's alignment), same_in (comma-separated scenarios).
    """
    cols = ["scenario", "state", "power", "quarter_before", "quarter", "tilt_before",
            "tilt_after", "change", "same_in"]
    mean = metrics.groupby(["scenario", "state", "power", "quarter"], sort=False)["tilt"].mean()
    frame = mean.reset_index()
    frame["_q"] = frame["quarter"].map(parse_quarter)
    frame = frame.sort_values(["scenario", "state", "power", "_q"], kind="stable")
    g = frame.groupby(["scenario", "state", "power"], sort=False)
    frame["tilt_before"] = g["tilt"].shift(lag_quarters)
    frame["quarter_before"] = g["quarter"].shift(lag_quarters)
    frame = frame.dropna(subset=["tilt_before"])
    if since is not None:
        frame = frame[frame["_q"] >= parse_quarter(since)]
    frame = frame.rename(columns={"tilt": "tilt_after"})
    frame["change"] = frame["tilt_after"] - frame["tilt_before"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    order = {s: i for i, s in enumerate(dict.fromkeys(metrics["scenario"]))}
    frame["_abs"] = frame["change"].abs()
    frame["_s"] = frame["scenario"].map(order)
    best = (frame.sort_values(["_abs", "_s", "_q"], ascending=[False, True, True], kind="stable")
            .groupby(["scenario", "state"], sort=False).head(1))
    picked: list[dict[str, Any]] = []
    ranked = best.sort_values(["_abs", "_s"], ascending=[False, True], kind="stable")
    for r in ranked.to_dict("records"):
        twin = next((p for p in picked if (p["state"], p["power"], p["quarter"])
                     == (r["state"], r["power"], r["quarter"])), None)
        if twin is not None:
            if twin["change"] == r["change"]:
                twin["same_in"] = ", ".join(filter(None, [twin["same_in"], r["scenario"]]))
            continue
        if len(picked) < top:
            picked.append({c: r.get(c) for c in cols[:-1]} | {"same_in": ""})
    return pd.DataFrame(picked, columns=cols)


# --------------------------------------------------------------------------- summary rows

def largest_differences(diffs: pd.DataFrame, quarters: Sequence[str], per_scenario: int = 3,
                        exclude: Iterable[str] = (OTHER,),
                        distinct_only: bool = True) -> pd.DataFrame:
    """The rows of a difference table worth a sentence: the largest distinct differences.

    Per scenario: the largest regional difference, the next largest regional difference of
    another power, and the largest difference in a single state, at the chosen quarters,
    powers other than `exclude`. With `distinct_only`, only rows whose interval excludes
    zero; without, rows whose interval excludes zero come first and the largest of the
    others stand in where a scenario has none (a summary then says there is no clear
    difference, which with wide posterior intervals is the finding).

    Args:
        diffs: `paired_differences` output.
        quarters: Quarters to consider.
        per_scenario: At most this many rows per scenario.
        exclude: Partners left out.
        distinct_only: Leave out rows whose interval includes zero.

    Returns:
        The chosen rows of `diffs`, in scenario order then size, with their index in `diffs`
        kept in a column `row`.
    """
    d = diffs.reset_index(names="row")
    d = d[d["quarter"].isin(list(quarters)) & ~d["power"].isin(set(exclude))]
    if distinct_only:
        d = d[d["distinct"]]
    out = []
    for _, g in d.groupby("scenario", sort=False):
        g = g.assign(_abs=g["mean"].abs(), _vague=~g["distinct"].astype(bool)).sort_values(
            ["_vague", "_abs"], ascending=[True, False], kind="stable")
        reg = g[g["area"] == REGION]
        chosen = []
        if len(reg):
            chosen.append(reg.iloc[0])
            other = reg[reg["power"] != reg.iloc[0]["power"]]
            if len(other):
                chosen.append(other.iloc[0])
        states = g[g["area"] != REGION]
        if len(states):
            chosen.append(states.iloc[0])
        out.extend(chosen[:per_scenario])
    if not out:
        return d.iloc[0:0].drop(columns=[], errors="ignore")
    return pd.DataFrame(out).drop(columns=["_abs", "_vague"]).reset_index(drop=True)


def headline_width(diffs: pd.DataFrame, quarter: str,
                   exclude: Iterable[str] = (OTHER,)) -> tuple[float, int]:
    """Mean interval width of the headline differences, and how many there are.

    The headline differences are each power's regional difference from the reference in
    `quarter` (the quarter a report's headline speaks of), for every scenario compared
    with the reference: a fixed set, so two kinds of interval can be compared on it.

    Args:
        diffs: `paired_differences` output (fractions).
        quarter: The headline quarter.
        exclude: Partners left out.

    Returns:
        (mean of ci_high - ci_low, as a fraction; number of differences). NaN and 0 when
        there is none.
    """
    d = diffs[(diffs["area"] == REGION) & (diffs["quarter"] == quarter)
              & ~diffs["power"].isin(set(exclude))]
    if d.empty:
        return float("nan"), 0
    return float((d["ci_high"] - d["ci_low"]).mean()), int(len(d))


# --------------------------------------------------------------------------- reuse

def common_quarters(shares: pd.DataFrame) -> list[str]:
    """Quarters simulated in every scenario, in time order."""
    sets = [set(g["quarter"].unique()) for _, g in shares.groupby("scenario", sort=False)]
    common = set.intersection(*sets) if sets else set()
    return sorted(common, key=parse_quarter)


# --------------------------------------------------------------------------- all tables

def build(shares: pd.DataFrame, reference: str, quarters: Sequence[str],
          pairs: Sequence[tuple[str, str]] = (("china", "russia"),),
          confidence: float = CONFIDENCE, interval: str = "mean") -> dict[str, pd.DataFrame]:
    """Every table of a comparison, as fractions, over the quarters all scenarios simulate.

    Args:
        shares: Tidy shares of the scenarios, replication i with the same seed in each.
        reference: The reference scenario's label.
        quarters: Quarters at which to name the leaders (see `sim.world.quarters.year_quarter`).
        pairs: (power, rival) pairs for overtaking.
        confidence: Confidence level of the intervals.
        interval: What the intervals of shares and differences are (`INTERVAL_KINDS`).

    Returns:
        `shares` (share_intervals), `differences` (paired_differences), `overtaking` and
        `leaders` (at `quarters`).
    """
    common = common_quarters(shares)
    s = shares[shares["quarter"].isin(common)]
    return {
        "shares": share_intervals(s, confidence, interval=interval),
        "differences": paired_differences(s, reference, confidence, interval=interval),
        "overtaking": overtaking(s, pairs),
        "leaders": leaders(s, list(quarters), reference),
    }
