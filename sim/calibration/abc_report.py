"""What an ABC calibration found, as tables, charts, the markdown report and the layer.

Pure functions of a `sim.calibration.abc.AbcOutcome` (and the point scores the CLI asks
for): each parameter's prior and posterior (mean, 5/50/95% quantiles, how far the 90%
interval narrowed), the acceptance history (threshold and acceptance rate per
generation), the corner plot of the weighted draws, the report section and the text of
`scenarios/calibration/<world>.yaml` with the posterior mean. Charts are returned as
matplotlib Figures; writing files is the CLI's job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.calibration.abc import CHECK_REPLICATIONS, DISTANCE_VERSION, LIBRARY, AbcOutcome
from sim.calibration.report import _md_table, write_layer_lines
from sim.scenario import history as H
from sim.scenario.posterior import Posterior

QUANTILES = (0.05, 0.5, 0.95)
POSTERIOR_COLOUR = "#d1352b"
PRIOR_COLOUR = "#9a9a9a"


def posterior_of(outcome: AbcOutcome) -> Posterior:
    """The last generation as a `Posterior` (the draws `write_posterior` stores)."""
    p = outcome.posterior
    return Posterior(tuple(outcome.names), p.values, p.weights)


def short_name(path: str) -> str:
    """A parameter's label on charts: its attribute, and the state or power it belongs to."""
    parts = path.split(".")
    if parts[0] == "params":
        return parts[-1]
    who = parts[3] if len(parts) > 4 and parts[2] == "toward" else parts[1]
    return f"{parts[-1]} ({who})"


# --------------------------------------------------------------------------- tables

def posterior_table(outcome: AbcOutcome) -> pd.DataFrame:
    """Per free parameter: the uniform prior, the posterior's summary and its narrowing.

    `narrowing` is 1 - (width of the posterior's 5-95% interval) / (width of the prior's),
    the prior's being 90% of the fit range: 0 when the data say nothing, near 1 when they
    pin the parameter down.
    """
    post = posterior_of(outcome)
    mean = post.mean()
    qs = post.quantiles(QUANTILES)
    rows = []
    for j, f in enumerate(outcome.settings.free):
        w, v = post.weights, post.values[:, j]
        sd = float(np.sqrt(w @ (v - mean[f.path]) ** 2))
        q05, q50, q95 = qs[f.path]
        width = (q95 - q05) / (0.9 * (f.hi - f.lo))
        rows.append({"parameter": f.path, "prior_min": f.lo, "prior_max": f.hi,
                     "prior_mean": (f.lo + f.hi) / 2, "prior_sd": (f.hi - f.lo) / math.sqrt(12),
                     "mean": mean[f.path], "sd": sd, "q05": q05, "q50": q50, "q95": q95,
                     "interval_ratio": width, "narrowing": 1 - width})
    return pd.DataFrame(rows)


def acceptance_table(outcome: AbcOutcome) -> pd.DataFrame:
    """Per generation: threshold (epsilon), simulations, acceptance rate, ESS, seconds."""
    return pd.DataFrame([{"generation": g.number, "epsilon": g.epsilon,
                          "simulations": g.simulations, "acceptance_rate": g.acceptance_rate,
                          "effective_sample_size": g.ess, "seconds": g.seconds}
                         for g in outcome.generations])


def draws_table(outcome: AbcOutcome) -> pd.DataFrame:
    """The last generation's particles: weight, distance and values."""
    p = outcome.posterior
    df = pd.DataFrame(p.values, columns=outcome.names)
    df.insert(0, "distance", p.distances)
    df.insert(0, "weight", p.weights)
    return df


def scores_table(scores: dict[str, dict]) -> pd.DataFrame:
    """The scored points (uncalibrated, installed, posterior mean, best draw): loss by group."""
    return pd.DataFrame([{"point": label, "loss": s["loss"],
                          **{f"loss_{g}": v for g, v in s["components"].items()},
                          **s["values"]} for label, s in scores.items()])


# --------------------------------------------------------------------------- charts

def _weighted_hist(ax, x, w, lo, hi, bins):
    ax.hist(x, bins=bins, range=(lo, hi), weights=w, density=True, color=POSTERIOR_COLOUR,
            alpha=0.75, edgecolor="white", linewidth=0.4)
    ax.axhline(1 / (hi - lo), color=PRIOR_COLOUR, ls="--", lw=1)


def plot_corner(outcome: AbcOutcome, bins: int = 20, fig: Figure | None = None) -> Figure:
    """The corner plot of the weighted posterior draws.

    Diagonal: each parameter's weighted histogram (the posterior marginal) over its fit
    range, the uniform prior's density dashed. Below the diagonal: weighted 2-D histograms
    of each pair, darker where more posterior mass lies; ridges and tilted blobs are
    trade-offs between parameters. Axes span the fit ranges (the priors' supports).
    """
    post = posterior_of(outcome)
    free = outcome.settings.free
    d = len(free)
    size = max(6.0, 1.45 * d)
    fig = fig or Figure(figsize=(size, size))
    axes = fig.subplots(d, d, squeeze=False)
    mean = post.mean()
    for i in range(d):
        for j in range(d):
            ax = axes[i][j]
            fi, fj = free[i], free[j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                _weighted_hist(ax, post.values[:, i], post.weights, fi.lo, fi.hi, bins)
                ax.axvline(mean[fi.path], color="black", lw=1)
                ax.set_yticks([])
                ax.set_xlim(fi.lo, fi.hi)
            else:
                ax.hist2d(post.values[:, j], post.values[:, i], bins=bins,
                          range=[[fj.lo, fj.hi], [fi.lo, fi.hi]], weights=post.weights,
                          cmap="Reds", cmin=1e-12)
                ax.plot(mean[fj.path], mean[fi.path], "k+", ms=6)
                ax.set_xlim(fj.lo, fj.hi)
                ax.set_ylim(fi.lo, fi.hi)
            ax.tick_params(labelsize=6)
            if i == d - 1:
                ax.set_xlabel(short_name(fj.path), fontsize=7, rotation=30, ha="right")
                ax.tick_params(axis="x", labelrotation=45)
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(short_name(fi.path), fontsize=7, rotation=60, ha="right")
            elif j > 0:
                ax.set_yticklabels([])
    fig.suptitle(f"ABC posterior, generation {outcome.posterior.number} (epsilon "
                 f"{outcome.posterior.epsilon:.4f}, {post.size} draws, effective sample size "
                 f"{post.effective_size():.0f}); dashed: prior, +: posterior mean", fontsize=10)
    fig.subplots_adjust(wspace=0.08, hspace=0.08, top=1 - 0.45 / size, left=0.1, bottom=0.1)
    return fig


def plot_prior_posterior(outcome: AbcOutcome, table: pd.DataFrame,
                         fig: Figure | None = None) -> Figure:
    """Each parameter's prior and posterior on its fit range, one row each.

    Grey: the prior (uniform on the fit range, drawn as the whole row); red bar: the
    posterior's 5-95% interval; tick: its median; dot: its mean. Positions are shares of
    the fit range so every parameter shares one axis; the range is written at the ends.
    """
    d = len(table)
    fig = fig or Figure(figsize=(9, 0.45 * d + 1.2))
    ax = fig.add_subplot()
    for k, r in enumerate(table.itertuples(index=False)):
        y = d - 1 - k
        span = r.prior_max - r.prior_min

        def u(v, r=r, span=span):
            return (v - r.prior_min) / span

        ax.barh(y, 1.0, left=0.0, height=0.7, color=PRIOR_COLOUR, alpha=0.25)
        ax.barh(y, u(r.q95) - u(r.q05), left=u(r.q05), height=0.45, color=POSTERIOR_COLOUR,
                alpha=0.85)
        ax.plot([u(r.q50)] * 2, [y - 0.3, y + 0.3], color="black", lw=1.5)
        ax.plot(u(r.mean), y, "o", color="white", mec="black", ms=4)
        ax.text(-0.02, y, f"{r.prior_min:g}", ha="right", va="center", fontsize=7)
        ax.text(1.02, y, f"{r.prior_max:g}  (narrowed {r.narrowing:.0%})", ha="left",
                va="center", fontsize=7)
    ax.set_yticks(range(d))
    ax.set_yticklabels([short_name(p) for p in table.parameter[::-1]], fontsize=8)
    ax.set_xlim(-0.12, 1.35)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax.set_xlabel("position in the fit range (grey: uniform prior; red: posterior 5-95%, "
                  "tick median, dot mean)", fontsize=8)
    ax.set_title("Prior and posterior of each free parameter", fontsize=11)
    return fig


def plot_acceptance(table: pd.DataFrame, fig: Figure | None = None) -> Figure:
    """Threshold (epsilon, log scale) and acceptance rate per generation."""
    fig = fig or Figure(figsize=(9, 3.4))
    a, b = fig.subplots(1, 2)
    a.plot(table.generation, table.epsilon, "o-", color=POSTERIOR_COLOUR)
    a.set_yscale("log")
    a.set_xlabel("generation")
    a.set_ylabel("epsilon (loss threshold)")
    a.set_title("Threshold", fontsize=10)
    b.plot(table.generation, 100 * table.acceptance_rate, "o-", color="#2f5fa8")
    b.set_xlabel("generation")
    b.set_ylabel("accepted, % of simulated")
    b.set_ylim(0, None)
    b.set_title("Acceptance rate", fontsize=10)
    for ax in (a, b):
        ax.set_xticks(list(table.generation))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the layer

def layer_text(outcome: AbcOutcome, values: dict[str, float], loss_after: float,
               loss_before: float, date: str, command: str,
               previous: dict[str, tuple[float, str]], posterior_file: str) -> str:
    """The calibrated scenario layer with the posterior mean (as the optimiser writes it)."""
    tag = (f"calibrated: greatgame calibrate --method abc {date}, posterior mean, loss "
           f"{loss_after:.4f} (was {loss_before:.4f})")
    entries = dict(previous)
    for f in outcome.settings.free:
        entries[f.path] = (values[f.path], f"{tag}; prior {f.lo:g}-{f.hi:g}")
    world = outcome.scenario.world.name
    s = outcome.settings
    return write_layer_lines(world, "--method abc --install", command, tag, entries, [
        f"# The weighted mean of the ABC posterior in {posterior_file} (its draws carry the",
        "# parameter uncertainty). Loss (weighted mean squared log error against sourced",
        f"# history 2015-{s.train_until}, {CHECK_REPLICATIONS} runs with common seeds): "
        f"{loss_after:.4f}, was {loss_before:.4f} uncalibrated."])


# --------------------------------------------------------------------------- summary

def summary_markdown(outcome: AbcOutcome, post: pd.DataFrame, acc: pd.DataFrame,
                     scores: dict[str, dict], facts: pd.DataFrame | None, date: str,
                     command: str, files: Sequence[str]) -> str:
    """The calibration report of an ABC run (summary.md)."""
    s = outcome.settings
    p = outcome.posterior
    ex = outcome.executor
    comps = pd.DataFrame([{"point": k, "loss": v["loss"], **v["components"]}
                          for k, v in scores.items()])
    ptab = post[["parameter", "prior_min", "prior_max", "mean", "q05", "q50", "q95",
                 "narrowing"]]
    lines = [
        f"# ABC calibration of `{s.scenario}` ({date})",
        "",
        f"Command: `{command}`  ",
        f"Method: ABC-SMC ({LIBRARY}), uniform priors on the fit ranges, distance "
        f"`{DISTANCE_VERSION}` (the calibration loss of each particle's mean over "
        f"{s.replications} runs on its own seeds).  ",
        f"Training years: {H.FIT_START}-{s.train_until}; {int(outcome.train.sum())} sourced "
        f"figures fitted ({len(outcome.targets) - int(outcome.train.sum())} held out).  ",
        f"Population {s.population}, batches of {s.batch}, threshold: the {s.quantile:g} "
        f"quantile of the previous generation's distances; stopped: {outcome.stopped}.  ",
        f"Executor: {ex.kind if ex else '?'} ({ex.workers if ex else '?'} workers); "
        f"{outcome.fresh} batches simulated now, {outcome.cached} read from the log; wall "
        f"time {outcome.seconds:.0f} s.",
        "",
        "## Posterior",
        "",
        f"{len(p.weights)} weighted draws (generation {p.number}, epsilon {p.epsilon:.4f}); "
        f"effective sample size **{p.ess:.0f}**. `narrowing`: how much shorter the "
        "posterior's 5-95% interval is than the prior's (0: the data say nothing).",
        "",
        _md_table(ptab, ".4g"),
        "",
        "## Acceptance history",
        "",
        _md_table(acc, ".4g"),
        "",
        "## Point summaries",
        "",
        "Each scored as the optimiser scores a point (8 runs, common seeds; the loss on the "
        "fitted figures). The posterior mean is what `--install` writes into the layer.",
        "",
        _md_table(comps, ".4f"),
        "",
    ]
    if facts is not None:
        ok = int(facts.passed.sum())
        lines += ["## Stylized facts", "",
                  f"{ok}/{len(facts)} pass at the posterior mean ({s.facts_replications} runs, "
                  "validate's seeds).", ""]
    if not outcome.train.all():
        test = ~outcome.train
        from sim.analysis.fit import loss

        mean = scores["posterior_mean"]["mean"]
        start = scores["uncalibrated"]["mean"]
        lines += ["## Held-out years", "",
                  f"Loss on the {int(test.sum())} figures after {s.train_until} (not fitted): "
                  f"uncalibrated {loss(start[test], outcome.targets[test])[0]:.4f}, posterior "
                  f"mean {loss(mean[test], outcome.targets[test])[0]:.4f}. "
                  "`greatgame validate --backtest-posterior` checks the posterior's "
                  "predictive band on them.", ""]
    lines += ["## Files", "", ", ".join(f"`{f}`" for f in files) + ".", ""]
    return "\n".join(lines)
