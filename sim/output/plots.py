"""Charts of run results: regional shares, small multiples per state, fit to history.

Each function takes a DataFrame and an optional Axes (or Figure) and returns what it drew
on; the caller decides where the chart goes (`sim.runs.store` saves them). No `savefig`, no
`show`, no modelling: numbers come from `sim.analysis.bands`. When no Axes is given, a new
figure is made with pyplot so the chart shows in a notebook.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter, MultipleLocator

from sim.analysis import bands as A
from sim.world.quarters import next_quarter, quarter_year
from sim.world.vocabulary import HISTORY_END, REGION

POWER_COLOURS: dict[str, str] = {
    "china": "#d1352b",   # red
    "russia": "#2f5fa8",  # blue
    "eu": "#e3b505",      # gold
    "us": "#7a4fa3",      # purple (not green: red/green is the commonest colour blindness)
    "other": "#a6a6a6",   # grey
}
"""One colour per power, used by every chart."""

POWER_LABELS: dict[str, str] = {
    "china": "China", "russia": "Russia", "eu": "EU", "us": "US", "other": "Rest of world",
}
"""Display names of the powers."""

AREA_LABELS: dict[str, str] = {"region": "Central Asia (5)"}
"""Display names of areas that are not simply the capitalised state name."""

KEY_EVENTS: dict[str, str] = {
    "ukraine_war_2022": "Russia invades Ukraine",
    "china_central_asia_treaty_2025": "China–Central Asia treaty",
}
"""Events worth marking on time charts (id -> short label), when they happen in a run."""

FONT = {"title": 13, "label": 11, "tick": 10, "legend": 10, "note": 8.5}
_FALLBACK = ["#1b9e77", "#d95f02", "#e7298a", "#66a61e", "#a6761d", "#666666"]


def tick_decimals(values, most: int = 4) -> int:
    """The fewest decimals that show every value exactly (0.25 needs 2, 1.5 needs 1)."""
    v = [float(x) for x in values if np.isfinite(x)]
    for d in range(most + 1):
        if all(abs(round(x, d) - x) <= 1e-9 * max(1.0, abs(x)) for x in v):
            return d
    return most


def number_text(value: float, decimals: int, signed: bool = True) -> str:
    """A number with fixed decimals, a true minus, an explicit plus if `signed`, bare 0."""
    v = round(float(value), decimals) + 0.0
    if v == 0:
        return "0" if decimals == 0 else f"{0:.{decimals}f}"
    text = f"{v:+.{decimals}f}" if signed else f"{v:.{decimals}f}"
    return text.replace("-", "\u2212")


class TickFormatter(Formatter):
    """Tick labels with the decimals the ticks need (so no two read alike), true minus.

    Args:
        signed: Show an explicit plus on positive values (differences).
        scale: Multiply values by this before showing them (100: fractions as points).
        suffix: Text after the number (`%` for shares).
    """

    def __init__(self, signed: bool = True, scale: float = 1.0, suffix: str = ""):
        self.signed, self.scale, self.suffix, self.decimals = signed, scale, suffix, 0

    def set_locs(self, locs) -> None:
        """Choose the decimals from the tick locations about to be labelled."""
        super().set_locs(locs)
        self.decimals = tick_decimals([x * self.scale for x in locs])

    def __call__(self, x: float, pos: int | None = None) -> str:
        """The label of the tick at x."""
        return number_text(x * self.scale, self.decimals, self.signed) + self.suffix


def percent_ticks() -> TickFormatter:
    """Shares (fractions) as percent with the decimals the ticks need."""
    return TickFormatter(signed=False, scale=100.0, suffix="%")


def nice_limit(peak: float, floor: float = 0.01) -> float:
    """The smallest of 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten at or above `peak`."""
    peak = max(float(peak), floor)
    base = 10.0 ** np.floor(np.log10(peak))
    return next(m * base for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if m * base >= peak * 0.9999)


def power_colour(power: str) -> str:
    """Return the colour of a power (a fixed fallback for powers of other world files)."""
    if power in POWER_COLOURS:
        return POWER_COLOURS[power]
    return _FALLBACK[sum(map(ord, power)) % len(_FALLBACK)]


def power_label(power: str) -> str:
    """Return the display name of a power."""
    return POWER_LABELS.get(power, power.replace("_", " ").title())


def area_label(area: str) -> str:
    """Return the display name of a state or the region."""
    return AREA_LABELS.get(area, area.replace("_", " ").title())


def event_marks(events: pd.DataFrame, labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """Quarter -> label of the key events that started in a run (for `marks=`).

    Args:
        events: A run's event log (`quarter`, `event`).
        labels: Event id -> label; default `KEY_EVENTS`.
    """
    labels = KEY_EVENTS if labels is None else labels
    marks: dict[str, str] = {}
    for _, r in A.started_events(events, labels).iterrows():
        marks[r["quarter"]] = " / ".join(filter(None, [marks.get(r["quarter"]), labels[r["id"]]]))
    return marks


def _scenario_title(shares: pd.DataFrame) -> tuple[str, int]:
    """Return the scenario name and number of runs; refuse frames mixing scenarios."""
    names = list(dict.fromkeys(shares["scenario"]))
    if len(names) != 1:
        raise ValueError(f"expected the shares of one scenario, got {len(names)}: "
                         f"{', '.join(map(str, names))}")
    return str(names[0]), int(shares["replication"].nunique())


def _year_axis(ax: Axes, first: float, last: float, max_ticks: int = 12) -> None:
    """Decimal-year x axis with whole-year ticks, at most about `max_ticks` labels."""
    span = last - first
    step = next((k for k in (1, 2, 5, 10, 20, 50) if span / k <= max_ticks), 100)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_minor_locator(MultipleLocator(1 if step > 1 else 0.25))
    ax.xaxis.set_major_formatter(lambda x, _pos: f"{x:.0f}")
    ax.set_xlim(first, last)
    ax.tick_params(labelsize=FONT["tick"])


def _projection_start(projection_from: str | None, first: float, last: float) -> float | None:
    """Decimal year at which the projection starts (the end of `projection_from`), if shown."""
    if projection_from is None:
        return None
    x = quarter_year(projection_from) + 0.25
    return x if first < x < last else None


def _mark(ax: Axes, marks: Mapping[str, str] | None, projection_from: str | None,
          first: float, last: float, labels: bool = True) -> int:
    """Light dashed lines at key quarters, a dotted line where the projection starts.

    Returns:
        The number of label rows drawn above the axes (0, 1 or 2).
    """
    trans = ax.get_xaxis_transform()
    shown = sorted(((quarter_year(q), q, lab) for q, lab in (marks or {}).items()
                    if first < quarter_year(q) < last))
    for i, (x, q, label) in enumerate(shown):
        ax.axvline(x, color="black", lw=0.8, ls=(0, (4, 3)), alpha=0.55, zorder=3)
        if labels:
            row = i % 2 if len(shown) > 1 else 0
            ax.text(x, 1.012 + 0.05 * row, f"{label} ({q})", transform=trans, ha="center",
                    va="bottom", fontsize=FONT["note"], color="0.2")
    xp = _projection_start(projection_from, first, last)
    if xp is not None:
        ax.axvline(xp, color="0.15", lw=0.9, ls=":", zorder=3)
        if labels:  # the full chart: fade the projection a little and say so
            ax.axvspan(xp, last, color="white", alpha=0.15, lw=0, zorder=2.5)
            ax.text(xp + 0.15, 0.985, "projection →", transform=trans, ha="left", va="top",
                    fontsize=FONT["note"], color="0.15", zorder=4,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none",
                          "alpha": 0.75})
    return min(len(shown), 2) if labels else 0


def plot_regional_shares(shares: pd.DataFrame, ax: Axes | None = None, *,
                         area: str = REGION, marks: Mapping[str, str] | None = None,
                         projection_from: str | None = HISTORY_END) -> Axes:
    """Stacked area of the mean influence share of each power over time, with bands.

    The shaded strip around each boundary between two powers is the 5-95% range of that
    boundary across replications. Each power's share is the thickness of its layer.

    Args:
        shares: Tidy shares of one scenario (`sim.runs.runner`), any number of replications.
        ax: Axes to draw on; a new figure if None.
        area: `region` (GDP-weighted mean of the five states) or a state name.
        marks: Quarter -> label of events to mark with a dashed line (see `event_marks`).
        projection_from: Last quarter of history; later quarters are marked as projection
            (None for no mark).

    Returns:
        The Axes drawn on.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")
    s = shares[shares["area"] == area]
    title, n = _scenario_title(s)
    order = A.power_order(s)
    means = A.band(s, area).pivot(index="year", columns="power", values="mean")[order]
    bounds = A.stacked_band(s, order, area)
    x = means.index.to_numpy()
    stacks = ax.stackplot(x, means.T.to_numpy(), colors=[power_colour(p) for p in order],
                          labels=[power_label(p) for p in order], alpha=0.9,
                          edgecolor="white", linewidth=0.6)
    for p in order[:-1]:
        b = bounds[bounds["power"] == p]
        ax.fill_between(b["year"], b["p05"], b["p95"], color="black", alpha=0.35, lw=0,
                        zorder=2.6)
    rows = _mark(ax, marks, projection_from, float(x[0]), float(x[-1]))
    ax.set_title(f"{title}: share of influence in {area_label(area)}, mean of {n} run"
                 f"{'s' if n != 1 else ''}", fontsize=FONT["title"], loc="left",
                 pad=10 + 17 * rows)
    ax.set_ylabel("Share of influence (%)", fontsize=FONT["label"])
    ax.set_xlabel("Year", fontsize=FONT["label"])
    ax.yaxis.set_major_formatter(percent_ticks())
    ax.yaxis.set_major_locator(MultipleLocator(0.1))
    ax.set_ylim(0, 1)
    _year_axis(ax, float(x[0]), float(x[-1]))
    handles = list(stacks)[::-1] + [Patch(color="black", alpha=0.35,
                                          label=f"5–95% range over {n} runs")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize=FONT["legend"], frameon=False, title="Power (top to bottom)",
              title_fontsize=FONT["legend"], alignment="left")
    return ax


def plot_state_shares(shares: pd.DataFrame, fig: Figure | None = None, *,
                      marks: Mapping[str, str] | None = None,
                      projection_from: str | None = HISTORY_END) -> Figure:
    """Small multiples: one panel per state, a line per power with its 5-95% band.

    Panels share the y axis. With five states the sixth grid cell holds the legend.

    Args:
        shares: Tidy shares of one scenario.
        fig: Figure to draw on (it should be empty); a new one if None.
        marks: Quarter -> label of events to mark with a dashed line.
        projection_from: Last quarter of history (None for no mark).

    Returns:
        The Figure; its state panels are `fig.axes[:n_states]` in the world file's order.
    """
    title, n = _scenario_title(shares)
    states = A.area_order(shares)
    ncols = 3 if len(states) > 4 else max(1, len(states))
    nrows = int(np.ceil((len(states) + 1) / ncols)) if len(states) > 4 else 1
    if fig is None:
        fig = plt.figure(figsize=(4.2 * ncols, 3.3 * nrows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True)).ravel()
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set") and "wspace" in engine.get():
        engine.set(wspace=0.06)
    bands = A.state_bands(shares)
    order = A.power_order(shares)
    top = max(0.1, float(bands["p95"].max()))
    ymax = min(1.0, np.ceil(top * 10 + 0.5) / 10)
    first, last = float(bands["year"].min()), float(bands["year"].max())
    for ax, state in zip(axes, states, strict=False):
        b = bands[bands["area"] == state]
        for p in order:
            bp = b[b["power"] == p]
            c = power_colour(p)
            ax.fill_between(bp["year"], bp["p05"], bp["p95"], color=c, alpha=0.25, lw=0)
            ax.plot(bp["year"], bp["mean"], color=c, lw=1.8, label=power_label(p))
        ax.set_title(area_label(state), fontsize=FONT["label"] + 1)
        ax.grid(axis="y", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
        _year_axis(ax, first, last, max_ticks=5)
        ax.set_ylim(0, ymax)
        ax.yaxis.set_major_formatter(percent_ticks())
        _mark(ax, marks, projection_from, first, last, labels=False)
    for ax in axes[: len(states)]:
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("Share of influence (%)", fontsize=FONT["label"])
        ax.tick_params(labelbottom=True)
    spare = axes[len(states):]
    for ax in spare:
        ax.set_axis_off()
    handles = [Line2D([], [], color=power_colour(p), lw=2, label=power_label(p)) for p in order]
    handles.append(Patch(color="0.5", alpha=0.35, label=f"5–95% range over {n} runs"))
    shown = {q: lab for q, lab in (marks or {}).items() if first < quarter_year(q) < last}
    if shown:
        handles.append(Line2D([], [], color="black", lw=0.8, ls=(0, (4, 3)), alpha=0.6,
                              label="\n".join(f"{lab} ({q})" for q, lab in sorted(
                                  shown.items(), key=lambda kv: quarter_year(kv[0])))))
    if _projection_start(projection_from, first, last) is not None:
        handles.append(Line2D([], [], color="0.15", lw=0.9, ls=":",
                              label=f"projection from {next_quarter(projection_from)}"))
    fig.suptitle(f"{title}: share of influence by state, mean of {n} run{'s' if n != 1 else ''}",
                 fontsize=FONT["title"], x=0.01, ha="left")
    if len(spare):
        spare[0].legend(handles=handles, loc="center left", fontsize=FONT["legend"],
                        frameon=False, title="Power", title_fontsize=FONT["legend"],
                        alignment="left")
    else:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
                   fontsize=FONT["legend"], frameon=False)
    return fig


def plot_trade_fit(fit: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Model trade with China against China's customs (GACC) figures, one row per figure.

    Args:
        fit: `sim.analysis.validation.trade_fit` output (area, year, sourced, model, model_p05,
            model_p95, relative_error).
        ax: Axes to draw on; a new figure if None.

    Returns:
        The Axes drawn on.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.38 * max(len(fit), 4) + 1.6), layout="constrained")
    areas = list(dict.fromkeys([REGION, *fit["area"]]))
    f = fit.assign(_a=fit["area"].map({a: i for i, a in enumerate(areas)}))
    f = f.sort_values(["_a", "year"]).reset_index(drop=True)
    group = np.cumsum(f["area"].ne(f["area"].shift()).to_numpy()) - 1
    y = -(np.arange(len(f)) + 0.6 * group).astype(float)  # top to bottom, gaps between areas
    model_c, sourced_c = POWER_COLOURS["china"], "black"
    lo = (f["model"] - f["model_p05"]).clip(lower=0)
    hi = (f["model_p95"] - f["model"]).clip(lower=0)
    ax.errorbar(f["model"], y, xerr=[lo, hi], fmt="o", color=model_c, ms=6, capsize=3,
                lw=1.4, label="Model: mean and 5–95% range", zorder=3)
    ax.scatter(f["sourced"], y, marker="D", s=34, color=sourced_c, zorder=4,
               label="Sourced: China customs (GACC)")
    for yi, (_, r) in zip(y, f.iterrows(), strict=True):
        ax.hlines(yi, min(r["model"], r["sourced"]), max(r["model"], r["sourced"]),
                  color="0.6", lw=0.8, zorder=2)
    xmax = float(np.nanmax(np.r_[f["sourced"], f["model_p95"], f["model"]])) * 1.18
    for yi, (_, r) in zip(y, f.iterrows(), strict=True):
        err = round(float(r["relative_error"]), 2)
        ax.text(xmax * 0.995, yi, f"{err:+.0%}" if err else "0%", ha="right", va="center",
                fontsize=FONT["note"] + 0.5, color="0.3")
    ax.set_yticks(y, [f"{area_label(a)} {yr}" for a, yr in zip(f["area"], f["year"],
                                                                 strict=True)])
    ax.set_xlim(0, xmax)
    ax.set_ylim(y.min() - 0.8, y.max() + 0.8)
    ax.set_xlabel("Trade with China, USD bn a year (exports + imports)", fontsize=FONT["label"])
    ax.tick_params(labelsize=FONT["tick"])
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    ax.text(1.0, 1.01, "model error", transform=ax.transAxes, ha="right", va="bottom",
            fontsize=FONT["note"], color="0.3")
    mape = float(np.mean(np.abs(f["relative_error"]))) if len(f) else float("nan")
    ax.set_title(f"Trade with China: model vs China customs figures (MAPE {mape:.0%})",
                 fontsize=FONT["title"], loc="left", pad=14)
    ax.legend(loc="lower right", bbox_to_anchor=(0.92, 0.0), fontsize=FONT["legend"],
              frameon=True, framealpha=0.9)
    return ax


def plot_facts(facts: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Share of runs in which each stylized fact holds, green if it passes, red if not.

    Args:
        facts: `sim.analysis.validation.check_facts` output.
        ax: Axes to draw on; a new figure if None.

    Returns:
        The Axes drawn on.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.6 * len(facts) + 1.4), layout="constrained")
    y = np.arange(len(facts))[::-1]
    colours = ["#2e8b57" if ok else "#c0392b" for ok in facts["passed"]]
    ax.barh(y, facts["share_of_runs"], color=colours, height=0.6)
    labels = [textwrap.fill(f"{n}. {t}", 52, subsequent_indent="    ")
              for n, t in zip(facts["number"], facts["fact"], strict=True)]
    ax.set_yticks(y, labels, fontsize=FONT["tick"])
    for yi, v, ok in zip(y, facts["share_of_runs"], facts["passed"], strict=True):
        ax.text(min(v, 1.0) + 0.01, yi, f"{'PASS' if ok else 'FAIL'} {v:.0%}", va="center",
                fontsize=FONT["note"] + 0.5)
    ax.set_xlim(0, 1.22)
    ax.axvline(0.5, color="0.4", lw=0.8, ls=":")
    ax.xaxis.set_major_formatter(percent_ticks())
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_xlabel("Share of runs in which the fact holds (%); it passes above half (dotted line)",
                  fontsize=FONT["label"])
    ax.set_title("Stylized facts of the baseline", fontsize=FONT["title"], loc="left")
    return ax


# --------------------------------------------------------------------------- comparison charts
# Charts of `sim.analysis.paired` tables (issue 4): shares per scenario with intervals, paired
# differences over time, a heatmap of differences, leader maps and overtaking quarters.

SCENARIO_STYLES = ["#222222", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e"]
"""Colours of scenarios where a chart tells scenarios (not powers) apart."""


def _grid(fig: Figure | None, n: int, ncols: int, size: tuple[float, float],
          sharey: bool = True, sharex: bool = True) -> tuple[Figure, np.ndarray]:
    """A figure (new if None) with n panels on a grid of ncols columns; spare cells hidden."""
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    if fig is None:
        fig = plt.figure(figsize=(size[0] * ncols, size[1] * nrows + 1.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey,
                                      squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    engine = fig.get_layout_engine()
    if engine is not None and hasattr(engine, "set") and "wspace" in engine.get():
        engine.set(wspace=0.05)  # room between the year labels of neighbouring panels
    return fig, axes[:n]


def _n_runs(frame: pd.DataFrame) -> int:
    return int(frame["n"].max()) if len(frame) else 0


def _panel(ax: Axes, title: str, ylim: tuple[float, float], formatter, ylabel: str,
           years: tuple[float, float]) -> None:
    """Style one panel of a comparison grid: title, grid, y range and ticks, year axis."""
    ax.set_title(title, loc="left", fontsize=FONT["label"] + 1)
    ax.grid(axis="y", color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_ylim(*ylim)
    ax.yaxis.set_major_formatter(formatter)
    _year_axis(ax, *years, max_ticks=6)
    ax.tick_params(labelbottom=True)
    if ax.get_subplotspec().is_first_col():
        ax.set_ylabel(ylabel, fontsize=FONT["label"])


def _power_handles(powers: list[str], band_label: str) -> list:
    """Legend entries: a line per power, then the shaded band."""
    handles = [Line2D([], [], color=power_colour(p), lw=2, label=power_label(p)) for p in powers]
    handles.append(Patch(color="0.5", alpha=0.35, label=band_label))
    return handles


def plot_compare_shares(intervals: pd.DataFrame, fig: Figure | None = None, *,
                        area: str = REGION, reference: str | None = None,
                        confidence: float = 0.95, band: str | None = None) -> Figure:
    """Side by side, one panel per scenario: each power's mean share with its interval.

    In every panel but the reference's, the reference's means are drawn as thin dashed lines.

    Args:
        intervals: `sim.analysis.paired.share_intervals` output (fractions).
        fig: Figure to draw on (empty); a new one if None.
        area: `region` or a state.
        reference: The reference scenario (default: the first).
        confidence: Level of the intervals (for the legend).
        band: What the shaded band is, for the legend (default: the confidence interval
            of the mean; a report with posterior draws shows credible intervals).

    Returns:
        The Figure; its panels are `fig.axes[:n_scenarios]` in scenario order.
    """
    d = intervals[intervals["area"] == area]
    scenarios = list(dict.fromkeys(d["scenario"]))
    reference = reference or scenarios[0]
    powers = A.power_order(d)
    fig, axes = _grid(fig, len(scenarios), 2 if len(scenarios) == 4 else 3, (5.6, 3.6))
    first, last = float(d["year"].min()), float(d["year"].max())
    top = min(1.0, np.ceil((float(d["ci_high"].max()) + 0.04) * 10) / 10)
    ref = d[d["scenario"] == reference]
    for ax, name in zip(axes, scenarios, strict=True):
        s = d[d["scenario"] == name]
        for p in powers:
            c = power_colour(p)
            sp = s[s["power"] == p]
            if name != reference:
                rp = ref[ref["power"] == p]
                ax.plot(rp["year"], rp["mean"], color=c, lw=1.0, ls=(0, (3, 2)), alpha=0.8)
            ax.fill_between(sp["year"], sp["ci_low"], sp["ci_high"], color=c, alpha=0.3, lw=0)
            ax.plot(sp["year"], sp["mean"], color=c, lw=1.8)
        _panel(ax, name + (" (reference)" if name == reference else ""), (0, top),
               percent_ticks(), "Share of influence (%)", (first, last))
    n = _n_runs(d)
    handles = _power_handles(powers, band or f"{confidence:.0%} confidence interval of the mean")
    if len(scenarios) > 1:
        handles.append(Line2D([], [], color="0.3", lw=1.0, ls=(0, (3, 2)),
                              label=f"{reference} (reference)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
               fontsize=FONT["legend"], frameon=False)
    fig.suptitle(f"Share of influence in {area_label(area)}: mean of {n} runs per scenario",
                 fontsize=FONT["title"], x=0.01, ha="left")
    return fig


def plot_difference_lines(diffs: pd.DataFrame, fig: Figure | None = None, *,
                          area: str = REGION, confidence: float = 0.95,
                          band: str | None = None) -> Figure:
    """One panel per scenario: difference from the reference of each power's share over time.

    Args:
        diffs: `sim.analysis.paired.paired_differences` output (fractions).
        fig: Figure to draw on (empty); a new one if None.
        area: `region` or a state.
        confidence: Level of the intervals (for the legend).
        band: What the shaded band is, for the legend (default: the confidence interval).

    Returns:
        The Figure; its panels are `fig.axes[:n_scenarios]`.
    """
    d = diffs[diffs["area"] == area]
    scenarios = list(dict.fromkeys(d["scenario"]))
    reference = str(d["reference"].iloc[0]) if len(d) else ""
    powers = A.power_order(d)
    fig, axes = _grid(fig, max(1, len(scenarios)), 3, (5.0, 3.6))
    first, last = float(d["year"].min()), float(d["year"].max())
    peak = float(np.nanmax(np.abs(d[["ci_low", "ci_high", "mean"]].to_numpy()))) * 100 \
        if len(d) else 0.0
    lim = nice_limit(peak * 1.1) if peak > 0 else 1.0
    for ax, name in zip(axes, scenarios, strict=True):
        s = d[d["scenario"] == name]
        ax.axhline(0, color="0.25", lw=0.9)
        for p in powers:
            c = power_colour(p)
            sp = s[s["power"] == p]
            ax.fill_between(sp["year"], sp["ci_low"] * 100, sp["ci_high"] * 100, color=c,
                            alpha=0.3, lw=0)
            ax.plot(sp["year"], sp["mean"] * 100, color=c, lw=1.8)
        _panel(ax, f"{name} minus {reference}", (-lim, lim), TickFormatter(),
               "Difference (percentage points)", (first, last))
    n = _n_runs(d)
    handles = _power_handles(powers, f"{band or f'{confidence:.0%} confidence interval'} "
                                     f"({n} paired runs)")
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
               fontsize=FONT["legend"], frameon=False)
    fig.suptitle(f"Difference from {reference} in each power's share of influence in "
                 f"{area_label(area)}", fontsize=FONT["title"], x=0.01, ha="left")
    return fig


def plot_difference_heatmap(diffs: pd.DataFrame, quarters: list[str],
                            fig: Figure | None = None, *, confidence: float = 0.95) -> Figure:
    """Heatmaps of differences from the reference: rows states, columns powers.

    One panel per scenario (rows of the grid) and chosen quarter (columns). Cells show the
    mean difference in percentage points; grey text marks differences whose interval
    includes zero.

    Args:
        diffs: `sim.analysis.paired.paired_differences` output (fractions).
        quarters: The quarters to show (columns of the grid).
        fig: Figure to draw on (empty); a new one if None.
        confidence: Level of the intervals (for the title).

    Returns:
        The Figure.
    """
    d = diffs[diffs["quarter"].isin(quarters)]
    scenarios = list(dict.fromkeys(d["scenario"]))
    reference = str(d["reference"].iloc[0]) if len(d) else ""
    powers = A.power_order(d)
    areas = [REGION, *A.area_order(d)]
    nr, nc = max(1, len(scenarios)), max(1, len(quarters))
    if fig is None:
        fig = plt.figure(figsize=(3.5 * nc + 1.4, 2.7 * nr + 1.0), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nr, nc, squeeze=False))
    peak = float(np.nanmax(np.abs(d["mean"].to_numpy()))) * 100 if len(d) else 0.0
    lim = nice_limit(peak) if peak > 0 else 1.0
    shown = 1 if lim >= 1 else 2 if lim >= 0.1 else 3  # decimals of the cell numbers
    cmap = plt.get_cmap("BrBG")
    image = None
    for i, name in enumerate(scenarios):
        for j, q in enumerate(quarters):
            ax = axes[i, j]
            cell = d[(d["scenario"] == name) & (d["quarter"] == q)]
            grid = cell.pivot(index="area", columns="power", values="mean").reindex(
                index=areas, columns=powers) * 100
            sure = cell.pivot(index="area", columns="power", values="distinct").reindex(
                index=areas, columns=powers)
            image = ax.imshow(grid.to_numpy(), cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
            for (r, c), v in np.ndenumerate(grid.to_numpy()):
                if np.isnan(v):
                    continue
                strong = abs(v) > 0.6 * lim
                colour = ("white" if strong else "black") if sure.iat[r, c] else "0.55"
                ax.text(c, r, number_text(v, shown), ha="center", va="center",
                        fontsize=FONT["note"], color=colour)
            ax.set_xticks(range(len(powers)), [power_label(p) for p in powers],
                          fontsize=FONT["note"], rotation=30, ha="right")
            ax.set_yticks(range(len(areas)), [area_label(a) for a in areas] if j == 0 else [],
                          fontsize=FONT["note"] + 0.5)
            ax.tick_params(length=0)
            ax.axhline(0.5, color="white", lw=2)
            if i == 0:
                ax.set_title(q, fontsize=FONT["label"])
            if j == 0:
                ax.set_ylabel(f"{name}\nminus {reference}", fontsize=FONT["label"])
    if image is not None:
        bar = fig.colorbar(image, ax=axes, shrink=0.8, pad=0.02)
        bar.ax.yaxis.set_major_formatter(TickFormatter())
        bar.set_label("Difference in share of influence (percentage points)",
                      fontsize=FONT["label"] - 1)
    fig.suptitle(f"Difference from {reference} by state and power (percentage points; grey: "
                 f"the {confidence:.0%} interval includes zero)", fontsize=FONT["title"] - 1,
                 x=0.01, ha="left")
    return fig


_MAP_LABEL_SIDE = {"Uzbekistan": -1, "Turkmenistan": -1}
"""States whose map label goes left of the capital (Tashkent sits close to Dushanbe, and
Ashgabat's label below would leave the map)."""


def _declutter_map(ax: Axes) -> None:
    """Drop the coordinate axes of a small map and move crowded capital labels aside."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for t in ax.texts:
        side = _MAP_LABEL_SIDE.get(t.get_text().split("\n", 1)[0])
        if side is not None and hasattr(t, "xyann"):
            t.xyann = (18 * side, 0)
            t.set_horizontalalignment("right" if side < 0 else "left")
            t.set_verticalalignment("center")


def leader_map_groups(leaders: pd.DataFrame, quarter: str) -> tuple[list[str], list[str]]:
    """Which scenarios get a leader map, and which lead like the reference in every state.

    Args:
        leaders: `sim.analysis.paired.leaders` output (the first scenario is the reference).
        quarter: The quarter mapped.

    Returns:
        (scenarios mapped: the reference and those with some state led by another power,
        scenarios left out: every state has the reference's leader).
    """
    d = leaders[(leaders["quarter"] == quarter) & (leaders["area"] != REGION)]
    scenarios = list(dict.fromkeys(d["scenario"]))
    if not scenarios:
        return [], []
    ref = dict(zip(*(d.loc[d["scenario"] == scenarios[0], c] for c in ("area", "leader")),
                   strict=True))
    same = [s for s in scenarios[1:]
            if dict(zip(*(d.loc[d["scenario"] == s, c] for c in ("area", "leader")),
                        strict=True)) == ref]
    return [s for s in scenarios if s not in same], same


def plot_leader_maps(leaders: pd.DataFrame, quarter: str, fig: Figure | None = None) -> Figure:
    """One map per scenario: each state coloured by its leading power at `quarter`.

    Scenarios in which every state has the reference's leader get no map of their own: a
    line under the title names them once (`leader_map_groups`).

    Args:
        leaders: `sim.analysis.paired.leaders` output (fractions), including `quarter`.
        quarter: The quarter to map.
        fig: Figure to draw on (empty); a new one if None.

    Returns:
        The Figure; a state whose leader differs from the reference's is marked.
    """
    from sim.output.maps import CORRIDORS, plot_region_map

    d = leaders[(leaders["quarter"] == quarter) & (leaders["area"] != REGION)]
    scenarios, same = leader_map_groups(leaders, quarter)
    fig, axes = _grid(fig, max(1, len(scenarios)), 2, (6.0, 3.9), sharey=False, sharex=False)
    colours = {p: power_colour(p) for p in POWER_COLOURS} | {
        p: power_colour(p) for p in d["leader"].unique()}
    for ax, name in zip(axes, scenarios, strict=True):
        s = d[d["scenario"] == name]
        lead = dict(zip(s["area"], s["leader"], strict=True))
        diff = (dict(zip(s["area"], s["differs_from_reference"], strict=True))
                if "differs_from_reference" in s else {})
        labels = {a: f"{power_label(p)} {v:.0%}" + (" *" if diff.get(a) else "")
                  for a, p, v in zip(s["area"], s["leader"], s["leader_share"], strict=True)}
        plot_region_map(lead, colours, ax=ax, labels=labels)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        _declutter_map(ax)
        ax.set_title(name, loc="left", fontsize=FONT["label"] + 1)
    shown = [p for p in POWER_COLOURS if p in set(d["leader"])] + sorted(
        set(d["leader"]) - set(POWER_COLOURS))
    handles = [Patch(facecolor=colours[p], edgecolor="black", label=f"led by {power_label(p)}")
               for p in shown]
    handles += axes[0].get_legend_handles_labels()[0][:len(CORRIDORS)]
    fig.legend(handles=handles, loc="outside lower center", ncols=4 if len(scenarios) > 1 else 2,
               fontsize=FONT["note"] + 0.5, frameon=False)
    marked = "differs_from_reference" in d and bool(
        d.loc[d["scenario"].isin(scenarios), "differs_from_reference"].any())
    title = (f"Leading power of each state in {quarter} (highest mean share among the powers"
             + ("; * differs from the reference)" if marked else ")"))
    if same:
        names = same[0] if len(same) == 1 else ", ".join(same[:-1]) + " and " + same[-1]
        title += (f"\nUnder {names}, every state has the same leading power as under "
                  f"{scenarios[0]}: {'its map is' if len(same) == 1 else 'their maps are'} "
                  "not repeated.")
    width = int(fig.get_figwidth() * 10)  # characters that fit across the figure
    title = "\n".join(textwrap.fill(line, width) for line in title.split("\n"))
    fig.suptitle(title, fontsize=FONT["title"] - 1, x=0.01, ha="left")
    return fig


def plot_overtaking(overtake: pd.DataFrame, ax: Axes | None = None, *, power: str = "china",
                    rival: str = "russia", first: float | None = None,
                    last: float | None = None) -> Axes:
    """When `power` first overtakes `rival`: median quarter and range, per area and scenario.

    Only areas where it happens in some run of some scenario get rows; a note under the axes
    lists the others (never, or ahead from the start).

    Args:
        overtake: `sim.analysis.paired.overtaking` output.
        ax: Axes to draw on; a new figure if None.
        power: The power that overtakes.
        rival: The power overtaken.
        first: Left end of the year axis (default: from the data).
        last: Right end of the year axis (default: from the data).

    Returns:
        The Axes.
    """
    d = overtake[(overtake["power"] == power) & (overtake["rival"] == rival)]
    scenarios = list(dict.fromkeys(d["scenario"]))
    areas = list(dict.fromkeys(d["area"]))
    shown = [a for a in areas if (d.loc[d["area"] == a, "n_overtake"] > 0).any()]
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 0.3 * max(1, len(shown)) * max(2, len(scenarios))
                                      + 1.8), layout="constrained")
    colour = {n: SCENARIO_STYLES[i % len(SCENARIO_STYLES)] for i, n in enumerate(scenarios)}
    years = [quarter_year(q) for c in ("earliest", "latest") for q in d[c].dropna()]
    lo = first if first is not None else (min(years) - 1 if years else 2015)
    hi = last if last is not None else (max(years) + 1 if years else 2035)
    if years:
        lo = max(lo, np.floor(min(years)) - 3)
    y, ticks, labels = 0.0, [], []
    for area in shown:
        top = y
        for name in scenarios:
            r = d[(d["area"] == area) & (d["scenario"] == name)]
            if r.empty:
                continue
            r = r.iloc[0]
            c = colour[name]
            if r["n_overtake"] == 0:
                note = "ahead from the start" if r["ahead_at_start"] == r["n_runs"] else (
                    f"never in {r['n_runs']} runs")
                ax.text(lo + 0.2, y, f"{name}: {note}", va="center", fontsize=FONT["note"],
                        color=c)
            else:
                e, m, la = (quarter_year(r[k]) for k in ("earliest", "median", "latest"))
                ax.plot([e, la + 0.25], [y, y], color=c, lw=2.2, solid_capstyle="butt")
                ax.plot([m + 0.125], [y], marker="o", color=c, ms=7, mec="white", mew=0.8)
                ax.text(e - 0.2, y, f"{name}: {r['n_overtake']} of {r['n_runs']} runs",
                        va="center", ha="right", fontsize=FONT["note"], color=c)
            y += 1
        ticks.append((top + y - 1) / 2)
        labels.append(area_label(area))
        y += 0.8
    if shown:
        ax.set_yticks(ticks, labels, fontsize=FONT["tick"])
        ax.set_ylim(y - 0.5, -0.7)
    else:
        ax.set_yticks([])
        ax.text(0.5, 0.5, f"{power_label(power)} does not overtake {power_label(rival)} in any "
                "run", transform=ax.transAxes, ha="center", va="center",
                fontsize=FONT["label"])
    _year_axis(ax, lo, hi)
    ax.grid(axis="x", color="0.9", lw=0.6)
    ax.set_axisbelow(True)
    rest = []
    for area in areas:
        if area in shown:
            continue
        a = d[d["area"] == area]
        kind = "ahead from the start" if (a["ahead_at_start"] == a["n_runs"]).all() else "never"
        rest.append(f"{area_label(area)} ({kind})")
    xlabel = ("Quarter of first overtaking (dot: median of the runs in which it happens; "
              "bar: earliest to latest)")
    if rest and shown:
        xlabel += "\nIn no run of any scenario: " + ", ".join(rest)
    ax.set_xlabel(xlabel, fontsize=FONT["label"] - 1)
    ax.set_title(f"When {power_label(power)} first overtakes {power_label(rival)} in share "
                 "of influence", fontsize=FONT["title"], loc="left")
    return ax
