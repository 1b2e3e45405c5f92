"""The `greatgame discover` command: scenario discovery over a finished sweep.

Parses the options, reads the sweep's runs (`sim.runs.discovery`), parses the condition
(`sim.analysis.condition`), runs PRIM (`sim.analysis.discovery`), draws the charts
(`sim.output.discovery_plots`), writes the folder and prints the summary. No logic of its
own. Registered into the main parser by `sim.cli.main.build_parser`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from sim.cli.common import EXIT_FAIL, EXIT_OK, non_negative_int
from sim.errors import InputError

CONDITION_EXAMPLE = "china.region.2030Q4 > russia.region.2030Q4"


def _percent(text: str) -> float:
    """A density in percent, 0 to 100 (`80` or `80%`), returned as a fraction."""
    raw = text.strip().removesuffix("%")
    try:
        v = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage like 80, got {text!r}") from None
    if 0 < v < 1:
        raise argparse.ArgumentTypeError(f"is in percent (80 means 80%), got {v:g}; did you "
                                         f"mean {v * 100:g}?")
    if not 1 <= v <= 100:
        raise argparse.ArgumentTypeError(f"must be a percentage from 1 to 100, got {v:g}")
    return v / 100.0


def cmd_discover(args: argparse.Namespace) -> int:
    """Find the parameter ranges of a sweep where a condition holds (PRIM)."""
    t0 = time.perf_counter()
    started = datetime.now(UTC)
    from sim.analysis import condition as C
    from sim.runs import discovery as RD

    if args.box is not None and args.min_density is not None:
        raise InputError(None, "--box and --min-density both choose the box; give one of them",
                         field="--box")
    sweep = RD.open_sweep(args.sweep)
    cond = C.parse_condition(args.when, sweep.names)
    out = Path(args.out) if args.out else RD.default_out(sweep, cond.text)
    RD.check_out(out)
    note = C.shares_warning(cond)
    if note:
        _note(note)
    runs, notes = RD.read_runs(sweep, cond.terms)
    for n in notes:
        _note(n)
    holds = cond.evaluate({t: runs[str(t)].to_numpy() for t in cond.terms})
    words = cond.describe()

    from sim.analysis import discovery as D

    problem = D.outcome_problem(holds)
    if problem:
        print(textwrap.fill(f"{words[0].upper()}{words[1:]}: {problem}. Nothing was written.",
                            width=100))
        return EXIT_FAIL
    columns = list(sweep.parameters)
    if runs["scenario"].nunique() > 1:
        runs[D.SCENARIO_INPUT] = runs["scenario"]
        columns.append(D.SCENARIO_INPUT)
    inputs, dropped = D.prepare_inputs(runs[columns])
    for n in dropped:
        _note(n)
    if sweep.runs_failed:
        _note(f"{sweep.runs_failed:,} failed run(s) of the sweep are left out")
    if sweep.runs_planned and sweep.runs_ok + sweep.runs_failed < sweep.runs_planned:
        _note(f"the sweep is not finished: {sweep.runs_ok + sweep.runs_failed:,} of "
              f"{sweep.runs_planned:,} runs are done; discovering over those")
    found = D.discover(inputs, holds, box=args.box, min_density=args.min_density,
                       seed=args.seed)
    for n in found.notes:
        _note(n)
    effects = RD.effect_targets(sweep)
    labels = {c: D.parameter_label(c, effects) for c in inputs.columns}
    text = D.sentence(words, found, effects)

    from sim.output import discovery_plots as P

    final = None
    chosen_row = found.trajectory.loc[found.chosen]
    if found.n_in_box != chosen_row["n"] or found.n_holds_in_box != chosen_row["k"]:
        final = (found.coverage, found.density)
    figures = {
        "tradeoff": P.tradeoff_figure(found.trajectory, found.chosen, cond.text,
                                      threshold=None if args.box is not None
                                      else found.threshold, final=final),
        "feature_scores": P.plot_feature_scores(found.scores, labels, cond.text).figure,
    }
    if not found.limits.empty:
        figures["box"] = P.plot_box(
            found.limits, labels,
            f"Box {found.chosen} for: {cond.text} (density {D.percent(found.density)}, "
            f"coverage {D.percent(found.coverage)}, {D.percent(found.mass)} of runs)",
            fmt=lambda name, v: D.value_text(name, v, effects)).figure
    tables = _tables(found, runs, inputs, holds, labels, cond)
    record = {
        "command": getattr(args, "command_line", None) or shlex.join(["greatgame",
                                                                      *sys.argv[1:]]),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "sweep": {"folder": str(sweep.path.resolve()), "name": sweep.name,
                  "identity_hash": sweep.identity_hash, "runs_used": found.n_runs,
                  "runs_failed": sweep.runs_failed, "runs_planned": sweep.runs_planned},
        "condition": cond.text, "condition_in_words": words,
        "values_are": "percentage points (0-100) of a power's share of influence",
        "inputs": list(inputs.columns),
        "prim": {"peel_alpha": D.PEEL_ALPHA, "paste_alpha": D.PASTE_ALPHA,
                 "mass_min": D.MASS_MIN, "significance": D.SIGNIFICANCE},
        "feature_scores": {"method": "extra trees (ema_workbench.analysis.feature_scoring)",
                           "trees": D.TREES, "seed": args.seed},
        "summary": D.summary_row(cond.text, found), "sentence": text,
        "notes": [*notes, *dropped, *found.notes],
    }
    RD.write_discovery(out, tables=tables, texts={"sentence.txt": text}, figures=figures,
                       record=record)
    import matplotlib.pyplot as plt

    for fig in figures.values():
        plt.close(fig)
    _print(sweep, cond, found, labels, effects, text, out, time.perf_counter() - t0)
    return EXIT_OK


def _tables(found, runs, inputs, holds, labels, cond) -> dict:
    import pandas as pd

    from sim.analysis import discovery as D

    limits = found.limits.copy()
    limits.insert(1, "label", [labels.get(p, p) for p in limits["parameter"]])
    scores = found.scores.copy()
    scores.insert(1, "label", [labels.get(p, p) for p in scores["parameter"]])
    per_run = runs[["run_id", "scenario", "point", "replication", "seed",
                    *[c for c in inputs.columns if c != D.SCENARIO_INPUT],
                    *[str(t) for t in cond.terms]]].copy()
    for t in cond.terms:  # in the language's unit: percentage points
        per_run[str(t)] = per_run[str(t)] * 100.0
    per_run["holds"] = holds
    per_run["in_box"] = found.in_box
    return {"summary.csv": pd.DataFrame([D.summary_row(cond.text, found)]),
            "trajectory.csv": found.trajectory, "box.csv": limits,
            "feature_scores.csv": scores, "runs.csv": per_run}


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _p(p: float) -> str:
    import math

    if p is None or (isinstance(p, float) and math.isnan(p)):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _print(sweep, cond, found, labels, effects, text, out, seconds) -> None:
    from sim.analysis import discovery as D

    print(f"discover over sweep {sweep.name}: {found.n_runs:,} runs, "
          f"{len(found.scores)} parameter(s); condition: {cond.text}")
    print(f"it holds in {found.n_holds:,} runs ({D.percent(found.base_rate)}); PRIM visited "
          f"{len(found.trajectory)} boxes; chosen: box {found.chosen}, {found.rule}")
    if not found.limits.empty:
        rows = []
        for r in found.limits.to_dict("records"):
            if r["kind"] == "category":
                box, span = r["values"], ""
                p = _p(r["qp_lower"])
            else:
                fmt = lambda v, n=r["parameter"]: D.value_text(n, v, effects)  # noqa: E731
                span = f"{fmt(r['min'])} to {fmt(r['max'])}"
                box = f"{fmt(r['lower'])} to {fmt(r['upper'])}"
                p = " / ".join(x for x in (_p(r["qp_lower"]), _p(r["qp_upper"])) if x)
            rows.append([labels.get(r["parameter"], r["parameter"]), span, box, p,
                         "yes" if r["in_sentence"] else "no (not significant)"])
        head = ["parameter", "range in the sweep", f"box {found.chosen}", "quasi-p",
                "kept"]
        widths = [min(max(len(str(x[i])) for x in [head, *rows]), 60) for i in range(5)]
        for line in [head, ["-" * w for w in widths], *rows]:
            print("  " + "  ".join(str(c)[:60].ljust(w) for c, w in zip(line, widths,
                                                                        strict=True)).rstrip())
    top = ", ".join(f"{labels.get(r.parameter, r.parameter)} {r.score:.2f}"
                    for r in found.scores.head(5).itertuples())
    print(textwrap.fill(f"feature scores (extra trees, sum to 1): {top}", width=100,
                        break_on_hyphens=False, subsequent_indent="  "))
    print()
    print(textwrap.fill(text, width=100, break_on_hyphens=False))
    print()
    print(f"results: {out}")
    print(f"took {seconds:.1f} s")


def add_parsers(sub, common, fmt) -> None:
    """Register `discover` on the main parser's subparsers."""
    d = sub.add_parser(
        "discover", formatter_class=fmt, parents=[common],
        help="scenario discovery: which parameter ranges make a condition likely (PRIM)",
        description="Ask a yes-or-no question of every run of a finished sweep and find, "
                    "with PRIM, the ranges of the sweep's varied parameters where the answer "
                    "is mostly yes. Writes the peeling trajectory and coverage-density "
                    "chart, the box with its quasi-p-values, feature scores, CSV tables and "
                    "one sentence. See docs/discovery.md.")
    d.add_argument("sweep", metavar="SWEEP_FOLDER",
                   help="the folder of a finished `greatgame sweep` (e.g. "
                        "results/sweeps/discovery)")
    d.add_argument("--when", required=True, metavar="CONDITION",
                   help="the condition, over shares in percentage points, e.g. "
                        f"\"{CONDITION_EXAMPLE}\" or \"china.region.2035Q4 > 30\"; terms "
                        "POWER.AREA.YYYYQn, numbers, + - * /, > >= < <=, and, or, not, "
                        "parentheses")
    d.add_argument("--out", metavar="DIR", default=None,
                   help="result folder (default: SWEEP_FOLDER/discover/<condition>): new, "
                        "empty, or a previous result (replaced); other folders are refused")
    d.add_argument("--box", type=non_negative_int, default=None, metavar="N",
                   help="take box N of the peeling trajectory instead of the default rule "
                        "(0 is every run)")
    d.add_argument("--min-density", type=_percent, default=None, metavar="PCT",
                   help="the density, in percent, the chosen box must reach (default 80, or "
                        "halfway from the share of all runs where the condition holds to 100 "
                        "if that is higher)")
    d.add_argument("--seed", type=non_negative_int, default=0, metavar="S",
                   help="seed of the extra-trees forest behind the feature scores")
    d.set_defaults(func=cmd_discover)
