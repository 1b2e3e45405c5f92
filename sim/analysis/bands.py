"""Summaries of run results across replications: means and 5-95% bands of influence shares.

Pure DataFrame -> DataFrame functions on the tidy `shares` frame of `sim.runs.runner` (columns
scenario, replication, seed, quarter, step, area, power, the channel columns and `share`).
Quantiles are pandas' default (linear interpolation between order statistics). No I/O,
no plotting, no printing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from pandas.api.typing import SeriesGroupBy

from sim.world.quarters import in_time_order, quarter_year
from sim.world.vocabulary import HISTORY_END, OTHER, REGION

LOW, HIGH = 0.05, 0.95
"""Quantiles of the band reported across replications."""

_STATS = ["mean", "p05", "p95", "n"]


def quarter_order(frame: pd.DataFrame) -> list[str]:
    """Return the distinct quarters of a frame in time order."""
    return in_time_order(frame["quarter"].unique())


def power_order(frame: pd.DataFrame) -> list[str]:
    """Powers in order of first appearance (the world file's order), `other` last."""
    powers = list(dict.fromkeys(frame["power"]))
    return [p for p in powers if p != OTHER] + ([OTHER] if OTHER in powers else [])


def area_order(frame: pd.DataFrame) -> list[str]:
    """States in order of first appearance, without the region."""
    return [a for a in dict.fromkeys(frame["area"]) if a != REGION]


def _spread(values: SeriesGroupBy) -> pd.DataFrame:
    """Mean, 5% and 95% quantiles and count of a grouped series."""
    out = values.agg(mean="mean", n="count")
    out["p05"] = values.quantile(LOW)
    out["p95"] = values.quantile(HIGH)
    return out[_STATS]


def summarise(shares: pd.DataFrame, quarters: Iterable[str] | None = None,
              area: str = REGION) -> pd.DataFrame:
    """Each power's share at a few quarters: mean, 5% and 95% quantile over replications.

    Args:
        shares: Tidy shares of one or more scenarios.
        quarters: Quarters to report. Default: 2025Q4 (if simulated) and each scenario's
            last quarter, once each.
        area: `region` for regional shares, or a state name.

    Returns:
        Tidy rows scenario, quarter, power, mean, p05, p95, n (n = replications), in the
        order of the scenarios, the quarters and the powers (`other` last).

    Raises:
        KeyError: a requested quarter or the area is not in the results.
    """
    s = shares[shares["area"] == area]
    if s.empty:
        raise KeyError(f"no rows for area {area!r}")
    frames = []
    for scenario, g in s.groupby("scenario", sort=False):
        have = quarter_order(g)
        wanted = list(quarters) if quarters is not None else (
            [q for q in (HISTORY_END, have[-1]) if q in have])
        wanted = list(dict.fromkeys(wanted))
        missing = [q for q in wanted if q not in have]
        if missing:
            raise KeyError(f"quarter {missing[0]} not in the results of {scenario!r} "
                           f"({have[0]}-{have[-1]})")
        sel = g[g["quarter"].isin(wanted)]
        out = _spread(sel.groupby(["quarter", "power"], sort=False)["share"]).reset_index()
        out.insert(0, "scenario", scenario)
        out["quarter"] = pd.Categorical(out["quarter"], wanted, ordered=True)
        out["power"] = pd.Categorical(out["power"], power_order(g), ordered=True)
        out = out.sort_values(["quarter", "power"])
        out["quarter"] = out["quarter"].astype(str)
        out["power"] = out["power"].astype(str)
        frames.append(out)
    return pd.concat(frames, ignore_index=True)[["scenario", "quarter", "power", *_STATS]]


def band(shares: pd.DataFrame, area: str = REGION, value: str = "share") -> pd.DataFrame:
    """Per scenario, quarter and power: mean, 5% and 95% quantile of a column over replications.

    Args:
        shares: Tidy shares.
        area: `region` or a state name.
        value: The column to summarise: `share` or a channel (`trade`, `security`, ...).

    Returns:
        Rows scenario, quarter, year (decimal, for plotting), power, mean, p05, p95, n,
        sorted by scenario, time and power order.
    """
    s = shares[shares["area"] == area]
    if s.empty:
        raise KeyError(f"no rows for area {area!r}")
    out = _spread(s.groupby(["scenario", "quarter", "power"], sort=False)[value]).reset_index()
    out.insert(2, "year", out["quarter"].map(quarter_year))
    scen = {x: i for i, x in enumerate(dict.fromkeys(s["scenario"]))}
    rank = {p: i for i, p in enumerate(power_order(s))}
    out["_s"], out["_r"] = out["scenario"].map(scen), out["power"].map(rank)
    out = out.sort_values(["_s", "year", "_r"]).drop(columns=["_s", "_r"])
    return out.reset_index(drop=True)


def state_bands(shares: pd.DataFrame, value: str = "share") -> pd.DataFrame:
    """`band` for every state at once, with an `area` column."""
    frames = [band(shares, a, value).assign(area=a) for a in area_order(shares)]
    return pd.concat(frames, ignore_index=True)


def stacked_band(shares: pd.DataFrame, order: Sequence[str] | None = None,
                 area: str = REGION) -> pd.DataFrame:
    """Bands of the boundaries of a stacked-area chart of shares.

    The boundary above power k is the sum of the shares of the powers up to k in `order`;
    its mean, 5% and 95% quantile are taken over replications (the mean boundary is the
    sum of the mean shares, so the stacked means sit exactly on it).

    Args:
        shares: Tidy shares of one scenario.
        order: Stacking order, bottom first. Default: `power_order`.
        area: `region` or a state name.

    Returns:
        Rows quarter, year, power (whose top edge the boundary is), mean, p05, p95, n.
    """
    s = shares[shares["area"] == area]
    order = list(order) if order is not None else power_order(s)
    wide = s.pivot_table(index=["replication", "quarter"], columns="power", values="share",
                         aggfunc="first")[order]
    cum = wide.cumsum(axis=1).stack().rename("share").reset_index()
    out = _spread(cum.groupby(["quarter", "power"], sort=False)["share"]).reset_index()
    out.insert(1, "year", out["quarter"].map(quarter_year))
    rank = {p: i for i, p in enumerate(order)}
    out["_r"] = out["power"].map(rank)
    return out.sort_values(["year", "_r"]).drop(columns="_r").reset_index(drop=True)


def wide_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario and power, with mean/p05/p95 columns per quarter (`2025Q4_mean`)."""
    quarters = list(dict.fromkeys(summary["quarter"]))
    w = summary.pivot_table(index=["scenario", "power"], columns="quarter",
                            values=["mean", "p05", "p95"], sort=False)
    w.columns = [f"{q}_{stat}" for stat, q in w.columns]
    cols = [f"{q}_{stat}" for q in quarters for stat in ("mean", "p05", "p95")]
    w = w[cols].reset_index()
    order = {(s, p): i for i, (s, p) in enumerate(zip(summary["scenario"], summary["power"],
                                                        strict=True))}
    w["_o"] = [order[(s, p)] for s, p in zip(w["scenario"], w["power"], strict=True)]
    return w.sort_values("_o").drop(columns="_o").reset_index(drop=True)


def started_events(events: pd.DataFrame, ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Events that started during the run, one row per event id with its first quarter.

    Args:
        events: The event log (`quarter`, `event` = "start ID" or "end ID").
        ids: Keep only these ids (all if None).

    Returns:
        Rows id, quarter, in time order.
    """
    if events.empty:
        return pd.DataFrame({"id": pd.Series(dtype=str), "quarter": pd.Series(dtype=str)})
    e = events[events["event"].str.startswith("start ")]
    e = pd.DataFrame({"id": e["event"].str.removeprefix("start ").to_numpy(),
                      "quarter": e["quarter"].to_numpy()})
    if ids is not None:
        e = e[e["id"].isin(list(ids))]
    e = e.drop_duplicates("id")
    e = e.assign(_y=e["quarter"].map(quarter_year)).sort_values(["_y", "id"])
    return e.drop(columns="_y").reset_index(drop=True)
