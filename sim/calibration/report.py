"""What a calibration found, as tables, charts and the calibrated scenario layer.

Pure functions of a `sim.calibration.search.Outcome` (plus a few extra runs for trajectories):
the model against history per state and partner, residuals, how well each parameter is
identified (one-at-a-time slices and the spread of good fits), the backtest against two
naive forecasts, the markdown summary, and the text of `scenarios/calibration/<world>.yaml`.
Charts are returned as matplotlib Figures; writing files is the CLI's job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.calibration import search as C
from sim.scenario import history as H
from sim.world.vocabulary import REGION, STATES

AREAS = (REGION, *STATES)
CHART_SERIES = {
    "china_trade": "Trade with China, USD bn/yr (GACC basis)",
    "china_trade_share": "China's share of trade (national basis)",
    "china_investment_stock": "Chinese investment stock, USD bn",
    "china_debt_share": "China's share of external debt",
    "partner_trade": "Trade with Russia, EU, US, USD bn/yr",
}
PARTNER_COLOURS = {"russia": "#2f5fa8", "eu": "#e3b505", "us": "#7a4fa3"}
"""The powers' chart colours (sim.output.plots.POWER_COLOURS)."""
LABEL_STYLE = {
    "before": {"color": "#7f7f7f", "ls": "--", "label": "before calibration"},
    "after": {"color": "#d1352b", "ls": "-", "label": "calibrated"},
    "ex_ante": {"color": "#2f5fa8", "ls": ":", "label": "calibrated, no events after training"},
}
GOOD_FIT = C.GOOD_FIT


def _area_label(area: str) -> str:
    return "Central Asia (5)" if area == "region" else area.capitalize()


# --------------------------------------------------------------------------- trajectories

def trajectories(outcome: C.Outcome, points: dict[str, Sequence[float]],
                 replications: int | None = None, drop_after: str | None = None,
                 end: str = "2025Q4") -> pd.DataFrame:
    """Yearly model paths of the charted series for labelled points (mean, 5-95% band).

    Flows (trade, shares) are yearly means at x = year + 0.5; stocks (investment, debt
    share) are every quarter's end at x = year + quarter / 4.

    Returns:
        Columns label, series, area, partner, year, quarter, x, mean, p05, p95.
    """
    from sim.runs.runner import derive_seeds

    scn = C._base_scenario(outcome.scenario.path, end, drop_after,
                           tuple(sorted(outcome.base_overrides.items())))
    seeds = derive_seeds(outcome.settings.seed, replications or outcome.settings.replications)
    ratios = H.mirror_ratios()
    rows = []
    for label, vals in points.items():
        out = C.simulate_points(scn, outcome.names, [vals], seeds)
        a, quarters, partners, states = (out.arrays["pair_metrics"], out.quarters,
                                         out.partners, out.states)
        targets, meta = C.path_targets(AREAS, quarters)
        obs = C.observe(a, quarters, partners, states, targets, ratios)
        mean, lo, hi = obs.mean(0), np.quantile(obs, 0.05, 0), np.quantile(obs, 0.95, 0)
        for (s, area, partner, y, q, x), m, p5, p95 in zip(meta, mean, lo, hi, strict=True):
            if math.isfinite(m):
                rows.append((label, s, area, partner, y, q, x, m, p5, p95))
    return pd.DataFrame(rows, columns=["label", "series", "area", "partner", "year",
                                       "quarter", "x", "mean", "p05", "p95"])


def chart_history(history: pd.DataFrame) -> pd.DataFrame:
    """The sourced figures the model-vs-history chart shows (on the model's units)."""
    h = history[history.series.isin(list(CHART_SERIES)) & history.value.notna()
                & history.unit.isin(["USD bn", "fraction"])
                & ((history.series != "partner_trade") | history.in_loss)]
    return h[(h.series != "china_trade") | (h.basis == H.GACC)]


def _x_of(row) -> float:
    if row.quarter:
        return int(row.quarter[:4]) + int(row.quarter[-1]) / 4
    return int(row.year) + 0.5


# --------------------------------------------------------------------------- tables

def _slice_interval(sl: pd.DataFrame, threshold: float) -> tuple[float, float]:
    """Where a slice's loss stays under `threshold` around its minimum (interpolated)."""
    v, f = sl.value.to_numpy(float), sl.loss.to_numpy(float)
    if not len(v) or not np.isfinite(f).any():
        return float("nan"), float("nan")
    k = int(np.nanargmin(f))
    if f[k] > threshold:
        return float("nan"), float("nan")
    lo = hi = v[k]
    i = k
    while i > 0 and f[i - 1] <= threshold:
        i -= 1
    lo = v[i] if i == 0 or not np.isfinite(f[i - 1]) else (
        v[i - 1] + (threshold - f[i - 1]) * (v[i] - v[i - 1]) / (f[i] - f[i - 1]))
    i = k
    while i < len(v) - 1 and f[i + 1] <= threshold:
        i += 1
    hi = v[i] if i == len(v) - 1 or not np.isfinite(f[i + 1]) else (
        v[i] + (threshold - f[i]) * (v[i + 1] - v[i]) / (f[i + 1] - f[i]))
    return float(lo), float(hi)


def parameter_table(outcome: C.Outcome, slices: pd.DataFrame) -> pd.DataFrame:
    """Per free parameter: before (uncalibrated), installed, fitted, range, identification.

    `slice_min`/`slice_max` bound the values where the loss along the parameter's slice
    (all others at the slice centre) stays within `GOOD_FIT` of the slice's lowest loss
    (interpolated between slice points); `good_min`/`good_max` are the range of the
    parameter over every evaluated point within that threshold, whatever the others
    were; `starts_min`/`starts_max` the range over the local searches that ended within
    that threshold (distinct optima about as good as the best: trade-offs between
    parameters show here and not in a slice). The verdict takes the wider of the slice
    and the starts' spread, as a share of the fit range: under 0.3 well identified,
    under 0.7 weakly, else not identified.
    """
    evals = outcome.log.table()
    threshold = outcome.best.loss * GOOD_FIT
    good = evals[evals.loss <= threshold]
    # Where each local search ended; those about as good as the best are alternatives.
    ends = [min(g, key=lambda e: e.loss) for g in _by_stage(outcome, "local").values()]
    near = [e for e in ends if e.loss <= threshold]
    alts = [*near, outcome.best]
    rows = []
    for f in outcome.settings.free:
        sl = slices[slices.parameter == f.path]
        lo, hi = _slice_interval(sl, GOOD_FIT * sl.loss.min()) if len(sl) else (np.nan,) * 2
        width = (hi - lo) / (f.hi - f.lo)
        spread = (good[f.path].max() - good[f.path].min()) / (f.hi - f.lo)
        alt = [e.values[f.path] for e in alts]
        alt_spread = (max(alt) - min(alt)) / (f.hi - f.lo)
        worst = np.nanmax([width, alt_spread])
        verdict = ("no slice" if math.isnan(width) else "well identified" if worst < 0.3
                   else "weakly identified" if worst < 0.7 else "not identified")
        rows.append({
            "parameter": f.path, "before": outcome.start.values[f.path],
            "installed": (outcome.installed.values[f.path] if outcome.installed
                          else outcome.start.values[f.path]),
            "fitted": outcome.best.values[f.path],
            "lowest_loss": (outcome.unconstrained or outcome.best).values[f.path],
            "fit_min": f.lo, "fit_max": f.hi,
            "slice_min": lo, "slice_max": hi, "slice_width": width,
            "good_fits": int(len(good)), "good_min": good[f.path].min(),
            "good_max": good[f.path].max(), "good_spread": spread,
            "starts_within": len(near), "starts_min": min(alt), "starts_max": max(alt),
            "starts_spread": alt_spread, "identification": verdict, "why_free": f.why})
    return pd.DataFrame(rows)


def _by_stage(outcome: C.Outcome, prefix: str) -> dict[str, list[C.Evaluation]]:
    out: dict[str, list[C.Evaluation]] = {}
    for e in outcome.log.evals.values():
        if e.stage.startswith(prefix):
            out.setdefault(e.stage, []).append(e)
    return out


def slice_table(outcome: C.Outcome) -> pd.DataFrame:
    """Loss along each parameter's slice through the slice centre (stage `profile`).

    The centre (the best point when the slices were drawn) is on every slice.
    """
    ev = [e for e in outcome.log.evals.values() if e.stage == "profile"]
    names = outcome.names
    if not ev:
        return pd.DataFrame(columns=["parameter", "value", "loss"])
    # The centre is the point every slice shares: the most common value per parameter.
    centre = {n: pd.Series([e.values[n] for e in ev]).mode().iloc[0] for n in names}
    rows = []
    centre_ev = outcome.log.get([centre[n] for n in names])
    if centre_ev is not None:
        ev.append(centre_ev)
    for e in ev:
        off = [n for n in names if not math.isclose(e.values[n], centre[n], rel_tol=1e-9,
                                                    abs_tol=1e-12)]
        for n in (off or names):
            rows.append({"parameter": n, "value": e.values[n], "loss": e.loss})
    return (pd.DataFrame(rows).drop_duplicates().sort_values(["parameter", "value"])
            .reset_index(drop=True))


def backtest_table(outcome: C.Outcome, traj: pd.DataFrame) -> pd.DataFrame:
    """Test-year errors of the model and of two naive forecasts, per state and year.

    The model is the point fitted on years up to `train_until`; `ex_ante` is the same
    point with every event after the training years removed (what a modeller then could
    have run). The naive forecasts start from the fitted model's own value in the last
    training year (history has no per-state figure then): `frozen` keeps it flat, `trend`
    extends a straight line fitted to the model's training years. `last_sourced` is the
    latest sourced figure of the same series in the training years, where one exists.

    Returns:
        One row per sourced test figure of China's trade share and trade (GACC), with
        each method's value and absolute error (percentage points for shares, percent for
        trade), then `mean` rows per series.
    """
    T = outcome.settings.train_until
    hist = H.fit_targets(until=H.FIT_END)
    test = hist[(hist.year.astype(int) > T)
                & hist.series.isin(["china_trade_share", "china_trade"])]
    after = traj[traj.label == "after"]
    ex = traj[traj.label == "ex_ante"]
    rows = []
    for r in test.itertuples(index=False):
        y = int(r.year)

        def val(frame, year, s=r.series, a=r.area):
            m = frame[(frame.series == s) & (frame.area == a) & (frame.year == year)
                      & (frame.quarter == "")]
            return float(m["mean"].iloc[0]) if len(m) else float("nan")

        years = np.arange(H.FIT_START, T + 1)
        path = np.array([val(after, yy) for yy in years])
        ok = np.isfinite(path)
        trend = (np.polyval(np.polyfit(years[ok], path[ok], 1), y) if ok.sum() >= 2
                 else float("nan"))
        prior = hist[(hist.series == r.series) & (hist.area == r.area)
                     & (hist.year.astype(int) <= T)]
        last = float(prior.sort_values("year").value.iloc[-1]) if len(prior) else float("nan")
        rows.append({"series": r.series, "area": r.area, "year": y, "sourced": r.value,
                     "weight": r.weight, "model": val(after, y), "ex_ante": val(ex, y),
                     "frozen": val(after, T), "trend": trend, "last_sourced": last})
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    methods = ["model", "ex_ante", "frozen", "trend", "last_sourced"]
    for m in methods:
        share = df.series == "china_trade_share"
        err = np.where(share, (df[m] - df.sourced).abs() * 100,
                       (df[m] / df.sourced - 1).abs() * 100)
        df[f"err_{m}"] = err
    means = []
    for s, g in df.groupby("series", sort=False):
        row = {"series": s, "area": "mean", "year": np.nan, "sourced": np.nan}
        for m in methods:
            row[f"err_{m}"] = g[f"err_{m}"].mean() if g[f"err_{m}"].notna().all() else np.nan
        means.append(row)
    return pd.concat([df, pd.DataFrame(means)], ignore_index=True)


def backtest_winner(bt: pd.DataFrame, series: str = "china_trade_share") -> str:
    """Which method has the lowest mean error on a series (model, frozen or trend)."""
    row = bt[(bt.series == series) & (bt.area == "mean")]
    if row.empty:
        return "none"
    errs = {m: float(row[f"err_{m}"].iloc[0]) for m in ("model", "ex_ante", "frozen", "trend")}
    return min(errs, key=lambda m: errs[m])


# --------------------------------------------------------------------------- charts

def plot_model_vs_history(traj: pd.DataFrame, history: pd.DataFrame,
                          train_until: int | None = None, fig: Figure | None = None) -> Figure:
    """Small multiples: series (rows) x areas (columns), model lines with bands, sources."""
    fig = fig or Figure(figsize=(19, 14), layout="constrained")
    axes = fig.subplots(len(CHART_SERIES), len(AREAS), squeeze=False)
    for i, (series, title) in enumerate(CHART_SERIES.items()):
        for j, area in enumerate(AREAS):
            ax = axes[i][j]
            drawn = False
            for label, style in LABEL_STYLE.items():
                t = traj[(traj.label == label) & (traj.series == series) & (traj.area == area)]
                for partner, tp in t.groupby("partner", sort=False):
                    colour = PARTNER_COLOURS.get(partner, style["color"])
                    if series == "partner_trade" and label != "after":
                        ax.plot(tp.x, tp["mean"], color=colour, ls=":", lw=1)
                        continue
                    ax.plot(tp.x, tp["mean"], color=colour, ls=style["ls"], lw=1.5,
                            label=style["label"] if series != "partner_trade" else None)
                    ax.fill_between(tp.x, tp.p05, tp.p95, color=colour, alpha=0.15, lw=0)
                    drawn = True
            h = history[(history.series == series) & (history.area == area)]
            if not drawn and h.empty:
                ax.text(0.5, 0.5, "no regional figure", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8, color="#777777")
                ax.set_xticks([])
                ax.set_yticks([])
            for r in h.itertuples(index=False):
                x = _x_of(r)
                marker = "^" if r.bound == "lower" else ("v" if r.bound == "upper" else "o")
                colour = PARTNER_COLOURS.get(r.partner, "black")
                ax.plot([x], [r.value], marker=marker, color=colour, ms=5.5,
                        mfc=colour if r.weight >= 1 else "white", ls="none")
            if train_until is not None and train_until < H.FIT_END:
                ax.axvline(train_until + 1, color="#555555", lw=0.8, ls="-.")
            ax.set_xlim(2015, 2026)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3, lw=0.5)
            if i == 0:
                ax.set_title(_area_label(area), fontsize=10)
            if j == 0:
                ax.set_ylabel(title, fontsize=8)
            if "share" in series:
                ax.set_ylim(bottom=0)
    handles, labels = axes[0][0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles += [Line2D([], [], marker="o", color="black", ls="none", label="sourced"),
                Line2D([], [], marker="o", color="black", mfc="white", ls="none",
                       label="sourced, approximate or derived (weight 0.5)"),
                Line2D([], [], marker="^", color="black", ls="none", label="lower bound"),
                *(Line2D([], [], color=c, label=f"trade with {name} (dotted: before)")
                  for name, c in zip(("Russia", "EU", "US"), PARTNER_COLOURS.values(),
                                     strict=True))]
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=9, frameon=False)
    fig.suptitle("Model against sourced history (lines: mean of replications, bands 5-95%)",
                 fontsize=12)
    return fig


def plot_residuals(fit: pd.DataFrame, fig: Figure | None = None) -> Figure:
    """Log error of each fitted figure, before and after calibration."""
    fit = fit.reset_index(drop=True)
    n = len(fit)
    fig = fig or Figure(figsize=(9, 0.2 * n + 1.8), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    labels = [f"{r.series} {r.area} {r.partner} {r.year}"
              + ("" if r.train else " (test)") for r in fit.itertuples(index=False)]
    ax.axvline(0, color="black", lw=0.8)
    ax.scatter(fit.log_error_before, y, color="#7f7f7f", s=14, marker="x",
               label="before calibration")
    ax.scatter(fit.log_error_after, y, color="#d1352b", s=18, label="calibrated")
    ax.set_yticks(y, labels, fontsize=6.5)
    ax.set_xlabel("log error, ln(model / sourced)  (0.1 is about 10%)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Residuals per sourced figure")
    return fig


def plot_identification(outcome: C.Outcome, slices: pd.DataFrame,
                        fig: Figure | None = None) -> Figure:
    """Per parameter: every evaluation's loss (grey), the slice through the best (blue)."""
    free = outcome.settings.free
    ncols = min(4, len(free))
    nrows = math.ceil(len(free) / ncols)
    fig = fig or Figure(figsize=(4.2 * ncols, 3.2 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    evals = outcome.log.table()
    best = outcome.best.loss
    top = min(np.nanquantile(evals.loss[np.isfinite(evals.loss)], 0.9), best * 4)
    for k, f in enumerate(free):
        ax = axes[k // ncols][k % ncols]
        ax.scatter(evals[f.path], evals.loss.clip(upper=top), s=6, color="#bbbbbb",
                   label="all evaluations (worse ones on the top edge)")
        sl = slices[slices.parameter == f.path]
        if len(sl):
            ax.plot(sl.value, sl.loss, color="#2f5fa8", marker=".", label="slice through best")
        ax.axhline(best * GOOD_FIT, color="#2f5fa8", lw=0.6, ls=":")
        ax.set_ylim(best * 0.9, top * 1.02)
        ax.plot([outcome.best.values[f.path]], [best], marker="*", ms=12, color="#d1352b",
                ls="none", label="fitted")
        ax.axvline(outcome.start.values[f.path], color="black", lw=0.8, ls="--",
                   label="before")
        ax.set_title(f.path.split(".")[-1] if f.path.startswith("params.") else f.path,
                     fontsize=9)
        ax.set_xlim(f.lo, f.hi)
        ax.tick_params(labelsize=7)
        ax.set_ylabel("loss", fontsize=8)
    for k in range(len(free), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Identification: loss against each parameter (dotted: {GOOD_FIT:.2f} x "
                 "best, the good-fit threshold)", fontsize=11)
    return fig


def plot_backtest(traj: pd.DataFrame, bt: pd.DataFrame, history: pd.DataFrame,
                  train_until: int, fig: Figure | None = None) -> Figure:
    """China's trade share per area: model, ex-ante model, naive forecasts, sources."""
    fig = fig or Figure(figsize=(18, 3.6), layout="constrained")
    axes = fig.subplots(1, len(AREAS), squeeze=False)[0]
    for ax, area in zip(axes, AREAS, strict=True):
        for label in ("after", "ex_ante"):
            t = traj[(traj.label == label) & (traj.series == "china_trade_share")
                     & (traj.area == area)]
            st = LABEL_STYLE[label]
            ax.plot(t.x, t["mean"], color=st["color"], ls=st["ls"], label=st["label"])
        fit = traj[(traj.label == "after") & (traj.series == "china_trade_share")
                   & (traj.area == area)]
        base = fit[fit.year == train_until]["mean"]
        if len(base):
            years = np.arange(train_until, H.FIT_END + 1) + 0.5
            ax.plot(years, [float(base.iloc[0])] * len(years), color="#2ca02c", lw=1,
                    label="naive: frozen at training end")
            tr = fit[fit.year <= train_until]
            if len(tr) >= 2:
                c = np.polyfit(tr.year, tr["mean"], 1)
                ax.plot(years, np.polyval(c, years - 0.5), color="#9467bd", lw=1,
                        label="naive: linear trend")
        h = history[(history.series == "china_trade_share") & (history.area == area)]
        for r in h.itertuples(index=False):
            ax.plot([_x_of(r)], [r.value], "o", color="black",
                    mfc="black" if r.weight >= 1 else "white")
        ax.axvline(train_until + 1, color="#555555", lw=0.8, ls="-.")
        ax.set_title(_area_label(area), fontsize=10)
        ax.set_xlim(2015, 2025.2)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("China's share of trade", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"Backtest: fitted on 2015-{train_until}, judged on {train_until + 1}-"
                 f"{H.FIT_END}", fontsize=11)
    return fig


# --------------------------------------------------------------------------- the layer file

LAYER_DIR = C.LAYER_DIR
layer_path = C.layer_path
read_layer_entries = C.read_layer_entries


def layer_text(outcome: C.Outcome, date: str, command: str,
               previous: dict[str, tuple[float, str]]) -> str:
    """The calibrated scenario layer: fitted values with where they come from.

    World files hold world attributes only, so the fitted values (model parameters and
    world attributes alike) are `set:` entries of a scenario layer that the baseline
    extends; each carries its provenance as a comment. Entries of an earlier calibration
    that this one did not refit are kept.
    """
    before, after = outcome.start.loss, outcome.best.loss
    tag = f"calibrated: greatgame calibrate {date}, loss {after:.4f} (was {before:.4f})"
    entries = dict(previous)
    for f in outcome.settings.free:
        v = outcome.best.values[f.path]
        entries[f.path] = (v, f"{tag}; before {outcome.start.values[f.path]:.6g}; fit range "
                              f"{f.lo:g}-{f.hi:g}")
    world = outcome.scenario.world.name
    return write_layer_lines(world, "--install", command, tag, entries, [
        f"# Loss (weighted mean squared log error against sourced history 2015-"
        f"{outcome.settings.train_until}): {after:.4f}, was {before:.4f} with the "
        "uncalibrated values (world file, vocabulary defaults).",
        f"# {outcome.settings.replications} replications per point (root seed "
        f"{outcome.settings.seed}), {len(outcome.log.evals)} points evaluated."])


def write_layer_lines(world: str, options: str, command: str, tag: str,
                      entries: dict[str, tuple[float, str]], header: list[str]) -> str:
    """The text of a calibrated layer: the shared header, `header` lines, then the entries.

    Both calibration methods write their layer with it (`options`: the install options
    named in the first line; `tag`: the layer's description).
    """
    lines = [
        f"# Calibrated values for the {world} world, written by `greatgame calibrate "
        f"{options}`.",
        "# Do not edit by hand: rerun the calibration (docs/calibration.md). The baseline",
        "# extends this file, so every scenario that extends the baseline uses these values.",
        f"# Command: {command}",
        *header,
        f"name: {world}_calibration",
        "description: >-",
        f"  {tag}. Values fitted to the sourced history in sim/data (sim/scenario/history.py) by "
        "greatgame calibrate; extended by the baseline.",
        f"world: {world}",
        "set:",
    ]
    for path, (v, comment) in entries.items():
        lines.append(f"  {path}: {v:.10g}  # {comment}" if comment else f"  {path}: {v:.10g}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- summary

def _md_table(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.itertuples(index=False):
        cells = []
        for v in r:
            if isinstance(v, float):
                cells.append("" if math.isnan(v) else format(v, floatfmt))
            else:
                cells.append(str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def backtest_display(bt: pd.DataFrame) -> pd.DataFrame:
    """The backtest as printed: values in % (shares) or USD bn, errors beside them."""
    rows = []
    for r in bt.itertuples(index=False):
        share = r.series == "china_trade_share"
        unit = "pp" if share else "%"

        def v(x, share=share):
            if x is None or (isinstance(x, float) and math.isnan(x)):
                return ""
            return f"{x * 100:.1f}%" if share else f"{x:.1f}"

        def e(x):
            return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"

        if r.area == "mean":
            rows.append({"series": r.series, "area": f"mean abs error ({unit})", "year": "",
                         "sourced": "", "model": e(r.err_model), "ex-ante model":
                         e(r.err_ex_ante), "naive frozen": e(r.err_frozen),
                         "naive trend": e(r.err_trend), "last sourced": e(r.err_last_sourced)})
        else:
            rows.append({"series": r.series, "area": _area_label(r.area), "year": int(r.year),
                         "sourced": v(r.sourced),
                         "model": f"{v(r.model)} ({e(r.err_model)})",
                         "ex-ante model": f"{v(r.ex_ante)} ({e(r.err_ex_ante)})",
                         "naive frozen": f"{v(r.frozen)} ({e(r.err_frozen)})",
                         "naive trend": f"{v(r.trend)} ({e(r.err_trend)})",
                         "last sourced": (f"{v(r.last_sourced)} ({e(r.err_last_sourced)})"
                                          if not math.isnan(r.last_sourced) else "")})
    return pd.DataFrame(rows)


def summary_markdown(outcome: C.Outcome, params: pd.DataFrame, fit: pd.DataFrame,
                     bt: pd.DataFrame | None, date: str, command: str) -> str:
    """A short markdown report of the calibration."""
    s = outcome.settings
    inst = outcome.installed
    comps = pd.DataFrame([{"group": g,
                           "uncalibrated": outcome.start.components.get(g, np.nan),
                           **({"installed": inst.components.get(g, np.nan)} if inst else {}),
                           "calibrated": outcome.best.components.get(g, np.nan),
                           "figures": int(fit[fit.train & fit.series.isin(ss)].shape[0])}
                          for g, ss in C.GROUPS.items()])
    ptab = params[["parameter", "before", "fitted", "fit_min", "fit_max", "slice_min",
                   "slice_max", "starts_min", "starts_max", "identification"]]
    train = fit[fit.train]
    worst = train.reindex(train.log_error_after.abs().sort_values(ascending=False).index)
    worst = worst.head(8)[["series", "area", "partner", "year", "value", "model_after",
                           "log_error_after"]]
    lines = [
        f"# Calibration of `{s.scenario}` ({date})",
        "",
        f"Command: `{command}`  ",
        f"Training years: {H.FIT_START}-{s.train_until}; {int(outcome.train.sum())} sourced "
        f"figures fitted ({len(outcome.targets) - int(outcome.train.sum())} held out).  ",
        f"Evaluations: {len(outcome.log.evals)} points x {s.replications} replications "
        f"(common seeds, root {s.seed}); {outcome.fresh} run now, the rest read from the log."
        f"  ",
        f"Executor: {outcome.executor.kind if outcome.executor else '?'} "
        f"({outcome.executor.workers if outcome.executor else '?'} workers); wall time "
        f"{outcome.seconds:.0f} s.",
        "",
        "## Loss",
        "",
        "Weighted mean squared log error per group, averaged over the groups "
        "(docs/calibration.md); its square root is roughly the typical relative error.",
        "",
        f"- uncalibrated (world file, vocabulary defaults; the start point): "
        f"**{outcome.start.loss:.4f}**"
        + (" (a backtest also undoes every installed calibrated value: they were fitted to "
           "the test years)" if outcome.base_overrides else ""),
        *([f"- installed before this run (scenarios/calibration/): **{inst.loss:.4f}**"]
          if inst else []),
        *([f"- lowest loss found: **{low.loss:.4f}** (stage `{low.stage}`), but it fails a "
           "stylized fact on validate's seeds; the calibrated point below is the best good fit "
           f"(within {int((GOOD_FIT - 1) * 100)}% of it) that passes all nine"]
          if (low := outcome.unconstrained) is not None and low.key != outcome.best.key
          else []),
        f"- calibrated: **{outcome.best.loss:.4f}** (stage `{outcome.best.stage}`)",
        "",
        _md_table(comps, ".4f"),
        "",
        "## Fitted values",
        "",
        "`slice` is the range over which the loss stays within "
        f"{int((GOOD_FIT - 1) * 100)}% of the slice's best when only this parameter moves; "
        f"`starts` the range over the {s.starts} local searches that ended within "
        f"{int((GOOD_FIT - 1) * 100)}% of the best loss (distinct, equally good fits).",
        "",
        _md_table(ptab, ".4g"),
        "",
        "## Largest residuals after calibration (training figures)",
        "",
        _md_table(worst, ".3g"),
        "",
    ]
    if outcome.facts is not None:
        ok = int(outcome.facts.passed.sum())
        lines += ["## Stylized facts", "",
                  f"{ok}/{len(outcome.facts)} pass with the calibrated values "
                  f"({s.facts_replications} runs, validate's seeds; candidate "
                  f"{outcome.facts_checked} by loss).", ""]
    if not outcome.train.all():
        test = ~outcome.train
        lines += ["## Held-out years", "",
                  f"Loss on the {int(test.sum())} figures after {s.train_until} (not fitted): "
                  f"before {C.loss(outcome.start.mean[test], outcome.targets[test])[0]:.4f}, "
                  f"calibrated {C.loss(outcome.best.mean[test], outcome.targets[test])[0]:.4f}.",
                  ""]
    if bt is not None and not bt.empty:
        win = backtest_winner(bt)
        lines += ["## Backtest", "",
                  f"Fitted on {H.FIT_START}-{s.train_until}; errors on {s.train_until + 1}-"
                  f"{H.FIT_END} (shares: absolute error in percentage points; trade: "
                  "absolute percentage error). Naive forecasts start from the fitted model's "
                  f"{s.train_until} value: history has no per-state share before 2022.", "",
                  _md_table(backtest_display(bt)), "",
                  f"Lowest mean error on China's trade share: **{win}**.", ""]
    lines += ["## Files", "",
              "`fitted.csv`, `fit.csv` (every figure, model before/after with bands), "
              "`evaluations.csv`, `slices.csv`, `trajectories.csv`, `backtest.csv` (backtests), "
              "`model_vs_history.png`, `residuals.png`, `identification.png`, "
              f"`backtest.png` (backtests), `{outcome.scenario.world.name}.yaml` (the layer "
              "`--install` puts in scenarios/calibration/), `runs/` (the evaluation log).", ""]
    return "\n".join(lines)
