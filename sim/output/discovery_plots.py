"""Charts of a scenario discovery: the coverage-density trade-off, the box, feature scores.

Each takes the tables of `sim.analysis.discovery` (and the parameters' names in words) and
returns a Figure or Axes; the command decides where they are saved. Shares are drawn as
percent.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sim.output.plots import FONT, percent_ticks

CHOSEN = "#d1352b"
FINAL = "#111111"
BOX = "#2f5fa8"
DROPPED = "#9cb6dc"


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def plot_tradeoff(trajectory: pd.DataFrame, chosen: int, *, threshold: float | None = None,
                  final: tuple[float, float] | None = None, ax: Axes | None = None) -> Axes:
    """Coverage (x) against density (y) of every box PRIM visited, the chosen box ringed.

    Args:
        trajectory: `Discovery.trajectory` (box, coverage, density, restricted).
        chosen: The chosen box.
        threshold: The density the rule asked for (a dashed line).
        final: (coverage, density) of the box after insignificant limits were dropped, when
            it differs from the chosen box (a black diamond).
        ax: Where to draw (default: a new figure).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5))
    t = trajectory
    dims = sorted(t["restricted"].unique())
    cmap = plt.get_cmap("viridis", max(len(dims), 2))
    colour = {d: cmap(i) for i, d in enumerate(dims)}
    ax.plot(t["coverage"], t["density"], color="#bbbbbb", lw=0.8, zorder=1)
    ax.scatter(t["coverage"], t["density"], c=[colour[d] for d in t["restricted"]], s=22,
               zorder=2, edgecolors="none")
    row = t.loc[t["box"] == chosen].iloc[0]
    ax.scatter([row["coverage"]], [row["density"]], s=190, facecolors="none",
               edgecolors=CHOSEN, linewidths=2.2, zorder=3)
    note = f"chosen: box {chosen}\ncoverage {row['coverage']:.0%}, density {row['density']:.0%}"
    if final is not None:
        note += f"\nwithout insignificant limits:\ncoverage {final[0]:.0%}, density {final[1]:.0%}"
    # the upper right corner lies beyond the trade-off's frontier: no box is ever there
    ax.annotate(note, (row["coverage"], row["density"]), xytext=(0.97, 0.97),
                textcoords="axes fraction", ha="right", va="top",
                fontsize=FONT["note"] + 1, color=CHOSEN,
                bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none", "alpha": 0.85},
                arrowprops={"arrowstyle": "-", "color": CHOSEN, "lw": 0.8})
    handles = [Line2D([], [], ls="", marker="o", color=colour[d], label=f"{d}")
               for d in dims]
    handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec=CHOSEN, mew=2, ms=11,
                          label="chosen box"))
    if final is not None:
        ax.scatter([final[0]], [final[1]], marker="D", s=60, color=FINAL, zorder=4)
        handles.append(Line2D([], [], ls="", marker="D", color=FINAL,
                              label="chosen box, insignificant\nlimits dropped"))
    if threshold is not None and threshold <= 1:
        ax.axhline(threshold, color=CHOSEN, ls="--", lw=0.9, zorder=0)
        handles.append(Line2D([], [], color=CHOSEN, ls="--", lw=0.9,
                              label=f"density asked for ({threshold:.0%})"))
    base = t.loc[t["box"] == 0, "density"]
    if len(base):
        ax.axhline(float(base.iloc[0]), color="#777777", ls=":", lw=0.9, zorder=0)
        handles.append(Line2D([], [], color="#777777", ls=":", lw=0.9,
                              label=f"all runs ({float(base.iloc[0]):.0%})"))
    lo = min(float(t["density"].min()), float(base.iloc[0]) if len(base) else 1.0)
    ax.set_ylim(max(0.0, lo - 0.05), 1.08)
    ax.set_xlim(max(0.0, float(t["coverage"].min()) - 0.05), 1.02)
    ax.xaxis.set_major_formatter(percent_ticks())
    ax.yaxis.set_major_formatter(percent_ticks())
    ax.set_xlabel("coverage: share of the runs where the condition holds\nthat fall in the "
                  "box (%)", fontsize=FONT["label"])
    ax.set_ylabel("density: share of the box's runs\nwhere the condition holds (%)",
                  fontsize=FONT["label"])
    ax.grid(alpha=0.3)
    ax.legend(handles=handles, title="restricted parameters", fontsize=FONT["legend"] - 1,
              title_fontsize=FONT["legend"] - 1, loc="lower left", framealpha=0.9)
    ax.set_title("Coverage–density trade-off", fontsize=FONT["title"], loc="left")
    return ax


def plot_peeling(trajectory: pd.DataFrame, chosen: int, ax: Axes | None = None) -> Axes:
    """Coverage and density of each box against its mass, as PRIM peels from 100% down."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5))
    t = trajectory.sort_values("box")
    ax.plot(t["mass"], t["density"], color=BOX, lw=1.6, marker=".", ms=4, label="density")
    ax.plot(t["mass"], t["coverage"], color="#e08a1e", lw=1.6, marker=".", ms=4,
            label="coverage")
    row = t.loc[t["box"] == chosen].iloc[0]
    ax.axvline(row["mass"], color=CHOSEN, lw=1.2, ls="--")
    ax.annotate(f"box {chosen}\n({row['mass']:.0%} of runs)", (row["mass"], 0.02),
                xytext=(4, 0), textcoords="offset points", color=CHOSEN,
                fontsize=FONT["note"] + 1, va="bottom")
    ax.set_xlim(1.02, max(0.0, float(t["mass"].min()) - 0.03))  # peeling runs right to left
    ax.set_ylim(0, 1.04)
    ax.xaxis.set_major_formatter(percent_ticks())
    ax.yaxis.set_major_formatter(percent_ticks())
    ax.set_xlabel("mass: share of all runs in the box (%), peeled from 100%",
                  fontsize=FONT["label"])
    ax.set_ylabel("share (%)", fontsize=FONT["label"])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=FONT["legend"], loc="center left")
    ax.set_title("Peeling trajectory", fontsize=FONT["title"], loc="left")
    return ax


def tradeoff_figure(trajectory: pd.DataFrame, chosen: int, condition: str, *,
                    threshold: float | None = None,
                    final: tuple[float, float] | None = None) -> Figure:
    """The trade-off and the peeling trajectory side by side, titled with the condition."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.4))
    plot_tradeoff(trajectory, chosen, threshold=threshold, final=final, ax=left)
    plot_peeling(trajectory, chosen, ax=right)
    fig.suptitle(_wrap(f"PRIM boxes for: {condition}", 110), fontsize=FONT["title"],
                 x=0.01, ha="left")
    fig.tight_layout()
    return fig


def plot_box(limits: pd.DataFrame, labels: Mapping[str, str], title: str, *,
             fmt: Callable[[str, float], str] | None = None, ax: Axes | None = None) -> Axes:
    """The box's range of each restricted parameter within the range the sweep varied.

    Each parameter is a row: the grey bar is the sweep's range (0 to 100% of it), the blue
    bar the box's; a limit of the chosen box that was given up as not significant is a
    dashed mark. The chosen box's quasi-p-values are written on the right.

    Args:
        limits: `Discovery.limits`.
        labels: Parameter -> name in words.
        title: The chart's title.
        fmt: (parameter, value) -> the value as text (default: 3 significant digits).
        ax: Where to draw.
    """
    rows = limits.iloc[::-1].reset_index(drop=True)
    fmt = fmt or (lambda _name, v: f"{v:.3g}")
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.75 * max(len(rows), 2) + 1.8))
    for i, r in rows.iterrows():
        name = r["parameter"]
        ax.barh(i, 1.0, left=0.0, height=0.55, color="#e6e6e6", zorder=1)
        if r["kind"] == "category":
            ax.text(0.5, i, f"{r['values']}", ha="center", va="center",
                    fontsize=FONT["tick"], color=BOX, zorder=3)
            p_text = _p(r["qp_lower"])
        else:
            span = (r["max"] - r["min"]) or 1.0

            def pos(v, r=r, span=span):
                return (v - r["min"]) / span

            f_lo, f_hi = pos(r["final_lower"]), pos(r["final_upper"])
            ax.barh(i, f_hi - f_lo, left=f_lo, height=0.55, color=BOX, zorder=3)
            for key in ("lower", "upper"):
                if np.isnan(r[f"qp_{key}"]):
                    continue  # the chosen box does not limit this side
                x = pos(r[key])
                kept = r[f"final_{key}"] == r[key]
                if not kept:  # given up: a dashed mark where the chosen box had it
                    ax.plot([x, x], [i - 0.36, i + 0.36], color=DROPPED, ls="--", lw=1.6,
                            zorder=4)
                ax.text(x, i + 0.38, fmt(name, r[key]) + ("" if kept else " (dropped)"),
                        ha="center", va="bottom", fontsize=FONT["note"] + 0.5,
                        color="black" if kept else "#5a7db5")
            for key, x, ha in (("min", 0.0, "right"), ("max", 1.0, "left")):
                ax.text(x + (-0.01 if ha == "right" else 0.01), i,
                        fmt(name, r[key]), ha=ha, va="center",
                        fontsize=FONT["note"], color="#666666")
            p_text = ", ".join(f"{side} {_p(r[f'qp_{side}'])}" for side in ("lower", "upper")
                               if not np.isnan(r[f"qp_{side}"]))
        ax.text(1.13, i, p_text + ("" if r["in_sentence"] else "  (dropped)"), va="center",
                fontsize=FONT["note"] + 0.5)
    ax.set_yticks(range(len(rows)), [_wrap(labels.get(n, n), 38) for n in rows["parameter"]],
                  fontsize=FONT["tick"])
    ax.set_xlim(-0.12, 1.12)
    ax.set_ylim(-0.7, len(rows) - 0.2)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "100%"])
    ax.set_xlabel("position within the range the sweep varied (%); values at the bar ends",
                  fontsize=FONT["label"])
    ax.text(1.13, len(rows) - 0.35, "quasi-p-value", fontsize=FONT["note"] + 0.5,
            fontweight="bold", va="bottom")
    ax.legend(handles=[Line2D([], [], color="#e6e6e6", lw=8, label="range in the sweep"),
                       Line2D([], [], color=BOX, lw=8, label="box (significant limits)"),
                       Line2D([], [], color=DROPPED, lw=1.6, ls="--",
                              label="limit given up: not significant")],
              fontsize=FONT["legend"] - 1, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=3, frameon=False)
    ax.set_title(_wrap(title, 90), fontsize=FONT["title"], loc="left")
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    return ax


def _p(p: float) -> str:
    if np.isnan(p):
        return ""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def plot_feature_scores(scores: pd.DataFrame, labels: Mapping[str, str],
                        condition: str | None = None, ax: Axes | None = None) -> Axes:
    """Horizontal bars of the feature scores, the most informative parameter on top."""
    d = scores.iloc[::-1]
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.5 * len(d) + 1.8))
    y = np.arange(len(d))
    ax.barh(y, d["score"], color=BOX, height=0.6)
    for yi, s in zip(y, d["score"], strict=True):
        ax.text(s + 0.01, yi, f"{s:.2f}", va="center", fontsize=FONT["note"] + 0.5)
    ax.set_yticks(y, [_wrap(labels.get(n, n), 45) for n in d["parameter"]],
                  fontsize=FONT["tick"])
    ax.set_xlim(0, min(1.0, float(d["score"].max()) + 0.12) if len(d) else 1.0)
    ax.set_xlabel("feature score: share of the extra-trees forest's impurity reduction "
                  "(sums to 1)", fontsize=FONT["label"])
    ax.grid(axis="x", alpha=0.3)
    title = "Which parameters tell where the condition holds"
    ax.set_title(_wrap(title + (f": {condition}" if condition else ""), 80),
                 fontsize=FONT["title"], loc="left")
    return ax
