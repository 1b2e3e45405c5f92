"""Fit to the sourced history: the model's value of each sourced figure, and the loss.

`observe` turns recorded runs (arrays of trade, investment and debt) into the model's value
of each sourced figure; `loss` scores them (a weighted mean squared log error, by group;
docs/calibration.md). Used by `greatgame validate` and by the calibration. Pure numpy and
pandas: no runs, no files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

METRIC_ARRAYS = ("exports", "imports", "investment_stock", "debt")
"""The recorded pair metrics `observe` reads, each (B, T, J, S)."""

LOSS_VERSION = "msle-groups-1"
"""Changes when the loss definition changes (a log of another loss cannot be resumed)."""

GROUPS: dict[str, tuple[str, ...]] = {
    "trade_levels": ("china_trade", "china_exports", "china_imports", "partner_trade"),
    "trade_shares": ("china_trade_share",),
    "investment": ("china_investment_stock",),
    "debt": ("china_debt_share", "china_debt"),
}
"""Loss groups and the history series in each; each group counts equally."""


# --------------------------------------------------------------------------- observation

TARGET_FIELDS = ("series", "area", "partner", "year", "quarter")


def target_tuples(targets: pd.DataFrame) -> tuple[tuple, ...]:
    """The fields `observe` needs of each figure, as plain tuples (picklable, hashable)."""
    return tuple((r.series, r.area, r.partner, int(r.year), r.quarter or "")
                 for r in targets.itertuples(index=False))


def _annual(arr: np.ndarray, quarters: list[str], year: int) -> np.ndarray:
    """Mean over a year's quarters along axis 1 (NaN unless all four were simulated)."""
    idx = [i for i, q in enumerate(quarters) if q.startswith(f"{year}Q")]
    if len(idx) < 4:
        return np.full(arr.shape[:1] + arr.shape[2:], np.nan)
    return arr[:, idx].mean(axis=1)


def _at(arr: np.ndarray, quarters: list[str], quarter: str) -> np.ndarray:
    if quarter not in quarters:
        return np.full(arr.shape[:1] + arr.shape[2:], np.nan)
    return arr[:, quarters.index(quarter)]


def observe(arrays: dict[str, np.ndarray], quarters: list[str], partners: list[str],
            states: list[str], targets: Sequence[tuple], ratios: dict[str, float]
            ) -> np.ndarray:
    """The model's value of each sourced figure, per run.

    Args:
        arrays: (B, T, J, S) arrays `exports`, `imports`, `investment_stock`, `debt`.
        quarters: Labels of the T quarters.
        partners: Names of the J axis (powers, then `other`).
        states: Names of the S axis.
        targets: (series, area, partner, year, quarter) per figure (`target_tuples`).
        ratios: National-basis / GACC ratio per state (`history.mirror_ratios`), used to
            put the model's GACC-basis trade with China on the basis of share figures.

    Returns:
        (B, n_figures); NaN where the figure's period was not simulated.
    """
    B = next(iter(arrays.values())).shape[0]
    out = np.full((B, len(targets)), np.nan)
    trade = arrays["exports"] + arrays["imports"]
    china = partners.index("china")
    r = np.array([ratios.get(s, 1.0) for s in states])
    cache: dict[tuple, np.ndarray] = {}

    def annual(name, year):
        key = (name, year)
        if key not in cache:
            src = trade if name == "trade" else arrays[name]
            cache[key] = _annual(src, quarters, year)  # (B, J, S)
        return cache[key]

    for i, (series, area, partner, year, quarter) in enumerate(targets):
        cols = list(range(len(states))) if area == "region" else [states.index(area)]
        j = partners.index(partner) if partner in partners else None
        if series in ("china_trade", "partner_trade"):
            out[:, i] = annual("trade", year)[:, j, cols].sum(axis=-1)
        elif series in ("china_exports", "china_imports"):
            name = "exports" if series == "china_exports" else "imports"
            out[:, i] = annual(name, year)[:, j, cols].sum(axis=-1)
        elif series == "china_trade_share":
            t = annual("trade", year)[:, :, cols]  # (B, J, s)
            national = t[:, china] * r[cols]
            rest = t.sum(axis=1) - t[:, china]
            out[:, i] = national.sum(axis=-1) / (national + rest).sum(axis=-1)
        elif series == "china_investment_stock":
            out[:, i] = _at(arrays["investment_stock"], quarters, quarter)[:, j, cols].sum(-1)
        elif series == "china_debt":
            out[:, i] = _at(arrays["debt"], quarters, quarter)[:, j, cols].sum(axis=-1)
        elif series == "china_debt_share":
            d = _at(arrays["debt"], quarters, quarter)[:, :, cols]
            out[:, i] = d[:, j].sum(axis=-1) / d.sum(axis=(1, 2))
        else:
            raise ValueError(f"no model counterpart for series {series!r}")
    return out


PATH_PARTNERS = ("russia", "eu", "us")
"""Partners whose trade the model-vs-history chart draws beside China's."""


def path_targets(areas: Sequence[str], quarters: Sequence[str]) -> tuple[list[tuple],
                                                                          list[tuple]]:
    """What the model-vs-history chart draws, as `observe` targets, and where.

    Yearly: trade with China, China's share of trade, trade with each of
    `PATH_PARTNERS`; every quarter: the Chinese investment stock and China's share of
    debt (not for the region). Only years with four simulated quarters.

    Returns:
        The targets and, for each, (series, area, partner, year, quarter, x) with x the
        point on a year axis (a year's middle, or a quarter's end).
    """
    years = sorted({int(q[:4]) for q in quarters
                    if sum(x.startswith(q[:4]) for x in quarters) == 4})
    targets, meta = [], []
    for area in areas:
        for y in years:
            for series, partner in (("china_trade", "china"), ("china_trade_share", "china"),
                                    *(("partner_trade", p) for p in PATH_PARTNERS)):
                targets.append((series, area, partner, y, ""))
                meta.append((series, area, partner, y, "", y + 0.5))
        for q in quarters:
            for series in ("china_investment_stock", "china_debt_share"):
                if series == "china_debt_share" and area == "region":
                    continue
                targets.append((series, area, "china", int(q[:4]), q))
                meta.append((series, area, "china", int(q[:4]), q,
                             int(q[:4]) + int(q[-1]) / 4))
    return targets, meta


# --------------------------------------------------------------------------- loss

def log_errors(model: np.ndarray, targets: pd.DataFrame) -> np.ndarray:
    """ln(model / sourced) per figure; one-sided for bounds (0 on the right side)."""
    m = np.maximum(np.asarray(model, dtype=float), 1e-9)
    e = np.log(m / targets["value"].to_numpy(float))
    bound = targets["bound"].to_numpy()
    e = np.where((bound == "lower") & (e > 0), 0.0, e)
    e = np.where((bound == "upper") & (e < 0), 0.0, e)
    return e


def loss(model: np.ndarray, targets: pd.DataFrame) -> tuple[float, dict[str, float]]:
    """The calibration loss of replication-mean model values against sourced figures.

    Each group g (trade levels, trade shares, investment, debt) scores the weighted mean
    of squared log errors, L_g = sum(w_i e_i^2) / sum(w_i) with e_i = ln(model_i /
    sourced_i); the loss is the mean of L_g over the groups that have figures. Its square
    root is roughly the typical relative error (0.1 = 10%).

    Returns:
        The loss and each group's L_g. A figure the model did not simulate (NaN) makes
        the loss infinite.
    """
    e = log_errors(model, targets)
    w = targets["weight"].to_numpy(float)
    comps = {}
    for g, series in GROUPS.items():
        sel = targets["series"].isin(series).to_numpy()
        if sel.any():
            comps[g] = float(np.sum(w[sel] * e[sel] ** 2) / np.sum(w[sel]))
    if not comps or any(not math.isfinite(v) for v in comps.values()):
        return float("inf"), comps
    return float(np.mean(list(comps.values()))), comps




def losses(model: np.ndarray, targets: pd.DataFrame) -> np.ndarray:
    """`loss` of each row of `model` (n, figures): one total per row, infinite on NaN.

    The same definition as `loss`, vectorised over rows (an ABC population).
    """
    m = np.maximum(np.atleast_2d(np.asarray(model, dtype=float)), 1e-9)
    with np.errstate(invalid="ignore"):
        e = np.log(m / targets["value"].to_numpy(float))
    bound = targets["bound"].to_numpy()
    e = np.where((bound == "lower") & (e > 0), 0.0, e)
    e = np.where((bound == "upper") & (e < 0), 0.0, e)
    w = targets["weight"].to_numpy(float)
    comps = []
    for series in GROUPS.values():
        sel = targets["series"].isin(series).to_numpy()
        if sel.any():
            comps.append((e[:, sel] ** 2 * w[sel]).sum(axis=1) / w[sel].sum())
    if not comps:
        return np.full(m.shape[0], np.inf)
    out = np.mean(comps, axis=0)
    return np.where(np.isfinite(out), out, np.inf)
