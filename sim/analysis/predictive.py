"""Posterior predictive coverage: the sourced figures against the model's 90% band.

Pure numpy and pandas: given the model's value of each sourced figure in many runs (each
run with its own parameter draw), the 5-95% predictive band per figure, whether the
figure lies inside it, and the share inside per series. No runs, no files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = 0.80
"""The share of sourced figures a calibrated model's 90% band should hold."""

DISCREPANCY_STREAM = 0xD15C
"""Mixed into the root seed for the discrepancy draws (never shared with a run's draws)."""


def coverage(draws: np.ndarray, targets: pd.DataFrame, lo: float = 0.05,
             hi: float = 0.95) -> pd.DataFrame:
    """Each figure against the model's predictive band.

    Args:
        draws: (runs, figures) model values, one row per run.
        targets: The figures (`sim.scenario.history.fit_targets` rows), one per column.
        lo: Lower quantile of the band.
        hi: Upper quantile of the band.

    Returns:
        `targets` with `p05`, `p50`, `p95` (the band's quantiles over runs; named for the
        default band) and `inside`. A lower bound ("more than ...") is inside when the
        band reaches above it, an upper bound when it reaches below; a figure the runs did
        not simulate is not inside.
    """
    draws = np.atleast_2d(np.asarray(draws, dtype=float))
    if draws.shape[1] != len(targets):
        raise ValueError(f"{draws.shape[1]} columns of draws for {len(targets)} figures")
    with np.errstate(all="ignore"):
        q = np.nanquantile(draws, [lo, 0.5, hi], axis=0) if draws.size else \
            np.full((3, len(targets)), np.nan)
    value = targets["value"].to_numpy(float)
    bound = targets["bound"].fillna("").to_numpy() if "bound" in targets else \
        np.full(len(targets), "")
    inside = np.where(bound == "lower", q[2] >= value,
                      np.where(bound == "upper", q[0] <= value,
                               (q[0] <= value) & (value <= q[2])))
    out = targets.reset_index(drop=True).copy()
    out["p05"], out["p50"], out["p95"] = q[0], q[1], q[2]
    out["inside"] = inside & np.isfinite(q).all(axis=0)
    return out


def by_series(table: pd.DataFrame) -> pd.DataFrame:
    """Figures inside the band per series, and a last row `all`.

    Returns:
        Columns series, figures, inside, share.
    """
    g = table.groupby("series", sort=True).inside.agg(["size", "sum"]).reset_index()
    g.columns = ["series", "figures", "inside"]
    g = pd.concat([g, pd.DataFrame([{"series": "all", "figures": int(len(table)),
                                     "inside": int(table.inside.sum())}])],
                  ignore_index=True)
    g["inside"] = g.inside.astype(int)
    g["share"] = g.inside / g.figures.where(g.figures > 0)
    return g


def share_inside(table: pd.DataFrame) -> float:
    """Share of the figures inside the band (NaN for no figure)."""
    return float(table.inside.mean()) if len(table) else float("nan")


# --------------------------------------------------------------------------- model discrepancy

def point_figures(targets: pd.DataFrame) -> np.ndarray:
    """Which figures are point values (not "more than"/"less than" bounds)."""
    if "bound" not in targets:
        return np.ones(len(targets), dtype=bool)
    return targets["bound"].fillna("").to_numpy() == ""


def residual_scale(draws: np.ndarray, targets: pd.DataFrame,
                   use: np.ndarray | None = None) -> tuple[float, int]:
    """The model's typical error on sourced figures: the RMS of ln(sourced / model median).

    The median is over runs (each run its own posterior draw); bounds are left out, and so
    are figures the runs did not simulate. One pooled scale for all series: a series has
    too few figures in any span of years to estimate its own.

    Args:
        draws: (runs, figures) model values.
        targets: The figures, one per column.
        use: Which figures to estimate on (all point figures if None).

    Returns:
        (sigma, number of figures used); NaN and 0 when none can be used.
    """
    draws = np.atleast_2d(np.asarray(draws, dtype=float))
    with np.errstate(all="ignore"):
        med = np.nanmedian(draws, axis=0) if draws.size else np.full(len(targets), np.nan)
        e = np.log(targets["value"].to_numpy(float) / med)
    ok = point_figures(targets) & np.isfinite(e)
    if use is not None:
        ok &= np.asarray(use, dtype=bool)
    if not ok.any():
        return float("nan"), 0
    return float(np.sqrt(np.mean(e[ok] ** 2))), int(ok.sum())


def with_discrepancy(draws: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Each run's model values times exp(N(0, sigma^2)): the figure a source would publish.

    The model-discrepancy term of a predictive band (the model's own error, which no
    parameter draw removes): independent per run and figure, drawn from `seed` alone.
    """
    draws = np.atleast_2d(np.asarray(draws, dtype=float))
    z = np.random.default_rng([seed, DISCREPANCY_STREAM]).standard_normal(draws.shape)
    return draws * np.exp(sigma * z)
