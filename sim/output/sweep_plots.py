"""Charts of sweeps and sensitivity analyses. Each takes a DataFrame, returns a Figure/Axes.

No saving here: the CLI decides where charts go.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.output.plots import (
    FONT,
    POWER_COLOURS,
    TickFormatter,
    percent_ticks,
    power_colour,
    power_label,
)

_MARKERS = ["o", "s", "^", "D", "v", "P"]


def _ordered(powers) -> list[str]:
    known = [p for p in POWER_COLOURS if p in set(powers)]
    return known + sorted(set(powers) - set(known))


def _year(quarters: pd.Series) -> np.ndarray:
    q = quarters.astype(str)
    return q.str[:4].astype(int).to_numpy() + (q.str[-1].astype(int).to_numpy() - 1) / 4


def _shade(colour: str, k: int, n: int) -> tuple[float, float, float]:
    """The k-th of n shades of a colour, light (first) to full (last)."""
    from matplotlib.colors import to_rgb

    a = 1.0 if n <= 1 else 0.3 + 0.7 * k / (n - 1)
    return tuple(1.0 - a + a * c for c in to_rgb(colour))


def _point_label(point: int, points: pd.DataFrame | None) -> str:
    if points is None or points.empty:
        return f"point {point}"
    row = points[points["point"] == point]
    if row.empty:
        return f"point {point}"
    values = [f"{c.split('.')[-1]} {row.iloc[0][c]:.4g}" for c in points.columns if c != "point"]
    return ", ".join(values) or f"point {point}"


def plot_sweep_bands(band: pd.DataFrame, title: str,
                     points: pd.DataFrame | None = None) -> Figure:
    """One panel per scenario: each power's regional share over time.

    With a `point` column (`sim.runs.sweep_summary.band_table(..., by_point=True)`), each parameter
    point gets its own line (its mean) and faint 5-95% band, shaded from light (first
    point) to full colour (last), so the points can be told apart. Without it (pooled over
    points), one mean and band per power, and the title says they pool the points.

    Args:
        band: Columns scenario, [point,] quarter, power, mean, p05, p95, n.
        title: Figure title.
        points: Optional rows point and the parameter values, to name the points.
    """
    scenarios = list(dict.fromkeys(band.scenario))
    by_point = "point" in band.columns
    fig, axes = plt.subplots(1, max(1, len(scenarios)), figsize=(5.6 * len(scenarios), 4.9),
                             sharey=True, squeeze=False, layout="constrained")
    ids = sorted(band.point.unique()) if by_point else [None]
    for ax, scen in zip(axes[0], scenarios, strict=True):
        sub = band[band.scenario == scen]
        for power in _ordered(sub.power):
            sp = sub[sub.power == power]
            for k, point in enumerate(ids):
                s = sp if point is None else sp[sp.point == point]
                x = _year(s.quarter)
                c = power_colour(power) if point is None else _shade(power_colour(power), k,
                                                                     len(ids))
                ax.fill_between(x, s.p05, s.p95, color=c, alpha=0.22 if point is None else 0.08,
                                lw=0)
                ax.plot(x, s["mean"], color=c, lw=2 if point is None else 1.4)
        n = int(sub.groupby("quarter").n.max().max()) if len(sub) else 0
        runs = f"{n} runs" + (" per point" if by_point else "")
        ax.set_title(f"{scen} ({runs})", fontsize=FONT["label"] + 1, loc="left")
        ax.set_xlabel("Year", fontsize=FONT["label"])
        ax.yaxis.set_major_formatter(percent_ticks())
        ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=power_colour(p), lw=2, label=power_label(p))
               for p in _ordered(band.power)]
    if by_point:
        handles += [Line2D([], [], color=_shade("#222222", k, len(ids)), lw=2,
                           label=_point_label(int(point), points))
                    for k, point in enumerate(ids)]
    axes[0][0].set_ylabel("Regional share of influence", fontsize=FONT["label"])
    fig.legend(handles=handles, loc="outside lower center", fontsize=FONT["legend"],
               frameon=False, ncols=min(len(handles), 5))
    what = ("each parameter point's mean (light to dark: first to last point) and 5–95% range"
            if by_point else "mean and 5–95% range over all runs, parameter points pooled")
    fig.suptitle(f"{title}: regional shares, {what}", fontsize=FONT["title"], x=0.01,
                 ha="left")
    return fig


def plot_outcome_vs_parameters(final: pd.DataFrame, parameters: list[str],
                               powers: list[str] | None = None) -> Figure:
    """Each power's final regional share against each varied parameter (one panel each).

    Points are runs; lines join the mean at each parameter value (grids) or a binned mean
    (sampled designs); colours are powers, markers scenarios.
    """
    powers = powers or _ordered(final.power)
    n = max(len(parameters), 1)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows + 0.9), squeeze=False,
                             sharey=True, layout="constrained")
    scenarios = list(dict.fromkeys(final.scenario))
    quarter = final.quarter.iloc[0] if len(final) else ""
    for k, name in enumerate(parameters):
        ax = axes[k // cols][k % cols]
        for si, scen in enumerate(scenarios):
            for power in powers:
                s = final[(final.power == power) & (final.scenario == scen)]
                if s.empty:
                    continue
                c = power_colour(power)
                ax.scatter(s[name], s.share, s=9, alpha=0.35, color=c,
                           marker=_MARKERS[si % len(_MARKERS)], lw=0)
                values = s[name].nunique()
                if values <= 12:
                    m = s.groupby(name).share.mean()
                else:
                    bins = pd.cut(s[name], 8)
                    m = s.groupby(bins, observed=True).agg(x=(name, "mean"), y=("share", "mean"))
                    m = pd.Series(m.y.to_numpy(), index=m.x.to_numpy())
                ls = "-" if si == 0 else "--"
                label = power_label(power) if si == 0 else None
                ax.plot(m.index, m.to_numpy(), color=c, lw=1.8, ls=ls, label=label)
        ax.set_xlabel(name, fontsize=FONT["tick"])
        ax.yaxis.set_major_formatter(percent_ticks())
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel(f"Regional share, {quarter}", fontsize=FONT["label"])
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if len(scenarios) > 1:
        from matplotlib.lines import Line2D

        handles += [Line2D([], [], color="black", ls="-" if i == 0 else "--",
                           marker=_MARKERS[i % len(_MARKERS)], label=s)
                    for i, s in enumerate(scenarios)]
        labels += scenarios
    fig.legend(handles, labels, loc="outside lower center", fontsize=FONT["legend"],
               frameon=False, ncols=min(len(handles), 4 if cols == 1 else 7))
    fig.suptitle("Final regional share against each varied parameter\n(dots: runs, lines: "
                 "means)" if cols == 1 else "Final regional share against each varied "
                 "parameter (dots: runs, lines: means)", fontsize=FONT["title"], x=0.01,
                 ha="left")
    return fig


def plot_sensitivity(indices: pd.DataFrame, method: str, outcome: str, ax=None):
    """Horizontal bars of the indices with 95% intervals, most influential on top."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * len(indices) + 1.8))
    d = indices.iloc[::-1]
    y = np.arange(len(d))
    if method == "sobol":
        ax.barh(y + 0.2, d.ST, height=0.4, xerr=d.ST_conf, color="#2f5fa8",
                label="total order (ST)", capsize=3)
        ax.barh(y - 0.2, d.S1, height=0.4, xerr=d.S1_conf, color="#9cb6dc",
                label="first order (S1)", capsize=3)
        ax.set_xlabel("Sobol index (share of the outcome's variance)", fontsize=FONT["label"])
    else:
        ax.barh(y, d.mu_star, height=0.6, xerr=d.mu_star_conf, color="#2f5fa8",
                label="mu* (mean |elementary effect|)", capsize=3)
        ax.scatter(d.sigma, y, color="black", zorder=3, s=18, label="sigma (interactions)")
        ax.xaxis.set_major_formatter(TickFormatter(signed=False, scale=100.0))
        ax.set_xlabel("Morris mu* and sigma: change in the share, percentage points, across "
                      "the parameter's range", fontsize=FONT["label"])
    ax.set_yticks(y, d.parameter, fontsize=FONT["tick"])
    ax.axvline(0, color="black", lw=0.8)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=FONT["legend"], loc="lower right")
    ax.set_title(f"What drives {outcome}? {method.capitalize()} indices, 95% intervals",
                 fontsize=FONT["title"], loc="left")
    return ax
