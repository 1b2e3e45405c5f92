"""The `greatgame sweep` and `greatgame sensitivity` commands (argument parsing and output).

Calls `sim.scenario.sweepfile`, `sim.runs.sweep`, `sim.analysis.sensitivity` and the sweep
charts; no modelling logic. Registered into the main parser by `sim.cli.main.build_parser`.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

from sim.cli.common import (
    add_uncertainty_options,
    err,
    positive_int,
    progress_callback,
    save_figure,
    seed,
    uncertainty_for,
)
from sim.errors import InputError
from sim.runs.executors import EXECUTORS


def _execute(plan, out: Path, args, desc: str):
    """Run a plan with a progress bar; Ctrl-C leaves finished chunks saved."""
    from sim.runs.sweep import execute

    update, close = progress_callback(desc)
    try:
        outcome = execute(plan, out, executor=args.executor, workers=args.workers,
                          scheduler=args.scheduler, resume=args.resume, progress=update,
                          engine=args.engine)
    except KeyboardInterrupt:
        close()
        from sim.runs.sweep import done_records

        n = len(done_records(out))
        err(f"interrupted: {n} of {plan.n_runs} runs are saved in {out}; "
             "run the same command with --resume to finish")
        raise
    finally:
        close()
    for note in outcome.notes:
        print(f"note: {note}", file=sys.stderr)
    return outcome



def _check_request(plan, out: Path, args):
    """Refuse what cannot run before anything is written: returns the cost estimate."""
    from sim.runs import sweep as S
    from sim.runs import sweep_cost as SC
    from sim.runs.executors import capped_workers, check_scheduler, default_workers

    if args.scheduler and args.executor != "dask":
        raise InputError(None, "--scheduler needs --executor dask (got --executor "
                         f"{args.executor})")
    if args.executor == "dask" and args.scheduler:
        check_scheduler(args.scheduler)  # an InputError: exit 2 at once
    workers = 1 if args.executor == "serial" else capped_workers(args.workers)
    if args.workers and args.workers > workers and args.executor != "serial" \
            and not args.scheduler:
        print(f"note: --workers {args.workers}: this machine has {default_workers()} "
              f"core(s); using {workers}", file=sys.stderr)
    S.check_folder(plan, out, args.resume)
    return SC.check_size(plan, out, workers, args.engine,
                        executor="dask-remote" if args.scheduler else args.executor)


@contextmanager
def _locked(out: Path):
    """Hold the sweep folder's lock for the whole command: runs, manifest and summary."""
    from sim.runs import sweep as S

    with S.folder_lock(out):  # an InputError naming the holder if another sweep runs there
        yield


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a sweep file."""
    from sim.runs.sweep import with_uncertainty
    from sim.scenario.sweepfile import load_sweep_file

    plan = load_sweep_file(args.sweep, replications=args.replications, seed=args.seed,
                           out=args.out)
    unc = uncertainty_for(args, [plan.scenario(n) for n in plan.scenario_paths])
    plan = with_uncertainty(plan, unc)
    out = Path(plan.out)
    started = time.time()
    cost = _check_request(plan, out, args)
    draws = (f"; {'each run its own' if plan.draws_by_run else 'replication r runs'} "
             f"posterior draw{'' if plan.draws_by_run else ' r'} from {unc.path} (a swept "
             "parameter wins over its draw)" if unc.drawn else "; no posterior draws")
    print(f"sweep {plan.name}: {len(plan.scenario_paths)} scenario(s) x {len(plan.points)} "
          f"point(s) x {plan.replications} replication(s) = {plan.n_runs} runs; "
          f"executor {args.executor}, engine {args.engine}{draws}; all runs need "
          f"{cost.describe()}", file=sys.stderr)
    if unc.drawn and not plan.draws_by_run and plan.replications < FEW_DRAWS:
        r = plan.replications
        sets = "one plausible parameter set" if r == 1 else f"{r} plausible parameter sets"
        same = "posterior draw" if r == 1 else f"{r} posterior draws"
        print(textwrap.fill(
            f"note: with {r} replication{'s' if r != 1 else ''} per point every point runs "
            f"the same {same} (replication r takes draw r at every point), so the sweep "
            f"shows {sets}, not the posterior's spread: use more replications or "
            "posterior_draws: by_run for that, or --uncertainty none for the calibrated "
            "point values", width=100), file=sys.stderr)
    with _locked(out):
        return _sweep_locked(plan, out, args, started)


FEW_DRAWS = 10
"""Below this many replications, a sweep with posterior draws says it covers only that many
parameter sets."""

MAX_POINT_LINES = 8
"""Up to this many parameter points, the sweep chart draws one line per point; beyond, it
pools them (a line per point would be unreadable)."""


def _sweep_locked(plan, out: Path, args, started: float) -> int:
    from sim.output.sweep_plots import plot_outcome_vs_parameters, plot_sweep_bands
    from sim.runs import sweep as S
    from sim.runs import sweep_summary as SS

    outcome = _execute(plan, out, args, plan.name)
    SS.write_manifest(plan, out, outcome, started, command=sys.argv)

    cube = SS.region_cube(out)
    band = SS.band_table(cube, by_point=True)
    summary = SS.summary_table(band, plan)
    tmp = out / ".summary.csv.tmp"
    summary.to_csv(tmp, index=False)
    os.replace(tmp, out / "summary.csv")
    pooled = SS.band_table(cube, by_point=False)
    del cube
    if plan.parameters and 1 < band["point"].nunique() <= MAX_POINT_LINES:
        points = summary[["point", *plan.parameters]].drop_duplicates("point")
        save_figure(plot_sweep_bands(band, plan.name, points), out / "regional_shares.png")
    elif not pooled.empty:
        save_figure(plot_sweep_bands(pooled, plan.name), out / "regional_shares.png")
    if plan.parameters:
        final = SS.final_outcomes(out, plan)
        if not final.empty:
            save_figure(plot_outcome_vs_parameters(final, list(plan.parameters)),
                  out / "outcome_vs_parameters.png")

    done = outcome.done_before + outcome.ran
    rate = outcome.ran / outcome.seconds if outcome.seconds > 0 else float("nan")
    print(f"{done} of {plan.n_runs} runs done ({outcome.ran} now, {outcome.done_before} "
          f"before) in {outcome.seconds:.1f} s, {rate:.1f} runs/s")
    failed = [r for r in S.done_records(out) if r.get("status") != "ok"]
    if failed:
        print(f"{len(failed)} run(s) failed (listed in manifest.json):")
        for r in failed[:10]:
            print(f"  run {r['run_id']} {r['scenario']} point {r['point']} seed {r['seed']} "
                  f"{r['params']}: {r['error']}")
    _print_summary(summary, list(plan.parameters))
    print(f"bands (5-95% over replications): {plan.uncertainty.get('interval')}")
    print(f"results: {out}  (read with sim.load_sweep({str(out)!r}))")
    return 1 if failed else 0


def _print_summary(summary, parameters: list[str]) -> None:
    if summary.empty:
        return
    last = summary.quarter.max()
    s = summary[summary.quarter == last]
    piv = s.pivot_table(index=["scenario", "point"], columns="power", values="mean")
    powers = [p for p in ("china", "russia", "eu", "us", "other") if p in piv.columns]
    values = s.drop_duplicates(["scenario", "point"]).set_index(["scenario", "point"])
    short = [p.split(".")[-1] if not p.startswith("events.") else p.split(".")[1][:12] + "."
             + p.split(".")[-2] for p in parameters]
    print(f"mean regional share at {last}, by scenario and parameter point:")
    print("  ".join([f"{'scenario':16s}", *[f"{h:>14s}" for h in short],
                     *[f"{p:>7s}" for p in powers]]))
    for (scen, point), row in piv.head(40).iterrows():
        pv = [f"{values.loc[(scen, point), name]:14.4g}" for name in parameters]
        print("  ".join([f"{scen:16s}", *pv, *[f"{row[p]:7.1%}" for p in powers]]))
    if len(piv) > 40:
        print(f"... {len(piv) - 40} more rows in summary.csv")


def cmd_sensitivity(args: argparse.Namespace) -> int:
    """Sobol or Morris indices of one outcome over a sweep file's parameter ranges."""
    from sim.analysis import sensitivity as SA
    from sim.output.sweep_plots import plot_sensitivity
    from sim.runs.sweep import load_sweep
    from sim.scenario.scenarios import load_scenario
    from sim.scenario.sweepfile import load_sweep_file

    plan = load_sweep_file(args.sweep, seed=args.seed)
    first = load_scenario(next(iter(plan.scenario_paths.values())))
    try:
        outcome = SA.parse_outcome(args.outcome, first.world.power_names,
                                   ["region", *first.world.state_names])
        prob = SA.problem(plan)
    except ValueError as e:
        raise InputError(None, str(e)) from None
    n = args.samples or (16 if args.method == "sobol" else 10)
    x = SA.sample(prob, args.method, n, plan.root_seed)
    reps = args.replications or plan.replications
    out = Path(args.out or f"{plan.out}-{args.method}")
    eval_plan = SA.evaluation_plan(plan, x, args.method, outcome, reps, str(out))
    print(f"sensitivity ({args.method}) of {outcome} over {prob['num_vars']} parameters: "
          f"{len(x)} sample points x {reps} replication(s) = {eval_plan.n_runs} runs",
          file=sys.stderr)
    started = time.time()
    res = _execute(eval_plan, out, args, f"{plan.name} {args.method}")
    from sim.runs.sweep_summary import write_manifest

    write_manifest(eval_plan, out, res, started, command=sys.argv)
    y = SA.outcome_values(load_sweep(out), outcome, len(x))
    table = SA.analyse(prob, args.method, x, y, plan.root_seed)
    shown = SA.display_indices(table, args.method)  # one unit: printed, saved and charted
    decimals = 2 if args.method == "morris" else 3
    tmp = out / ".indices.csv.tmp"
    shown.to_csv(tmp, index=False)
    os.replace(tmp, out / "indices.csv")
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(9, 0.5 * len(table) + 2))
    plot_sensitivity(table, args.method, str(outcome), ax=ax)
    save_figure(ax.figure, out / "sensitivity.png")
    unit = ("in percentage points of the share: how far it moves across each parameter's "
            "range" if args.method == "morris" else "as shares of its variance, 0 to 1")
    print(f"{args.method} indices for {outcome}, {unit} (over the sample the share has mean "
          f"{y.mean():.1%} and sd {y.std() * 100:.1f} points):")
    print(shown.drop(columns="unit").to_string(
        index=False, float_format=lambda v: f"{v:.{decimals}f}"))
    print(f"results: {out}  (indices.csv in the same unit)")
    return 0


def add_parsers(sub, common, fmt) -> None:
    """Register `sweep` and `sensitivity` on the main parser's subparsers."""

    def executor_args(p):
        p.add_argument("--executor", choices=EXECUTORS, default="processes",
                       help="where runs execute: in this process, a local process pool, "
                            "or Dask distributed")
        p.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="worker processes (default: all cores; ignored with --scheduler)")
        p.add_argument("--scheduler", metavar="ADDR", default=None,
                       help="address of an existing Dask scheduler, tcp://HOST:PORT "
                            "(with --executor dask; default: start a LocalCluster)")
        p.add_argument("--engine", choices=("ensemble", "mesa"), default="ensemble",
                       help="ensemble: each chunk of runs advances as one vectorised batch; "
                            "mesa: one Mesa model per run (same numbers, much slower)")
        p.add_argument("--resume", action="store_true",
                       help="finish an interrupted sweep in the same folder: only missing "
                            "runs are run")

    s = sub.add_parser("sweep", formatter_class=fmt, parents=[common],
                       help="run a sweep of scenarios x parameters x replications",
                       description="Run every run of a sweep file in chunks, streaming "
                                   "results to Parquet parts; resumable. Options override "
                                   "the file.")
    s.add_argument("sweep", metavar="SWEEP.yaml",
                   help="a sweep file, or the name of one in scenarios/sweeps/")
    s.add_argument("--out", metavar="DIR", default=None,
                   help="result folder (default: the file's `out`, else "
                        "results/sweeps/<name>)")
    s.add_argument("-n", "--replications", type=positive_int, default=None, metavar="N",
                   help="replications per scenario and point (default: the file's)")
    s.add_argument("--seed", type=seed, default=None, metavar="S",
                   help="root seed (default: the file's)")
    executor_args(s)
    add_uncertainty_options(s)
    s.set_defaults(func=cmd_sweep)

    a = sub.add_parser("sensitivity", formatter_class=fmt, parents=[common],
                       help="Sobol or Morris sensitivity indices (SALib)",
                       description="Sample the sweep file's parameter ranges with SALib, run "
                                   "the first scenario at every sample point and report "
                                   "Sobol (S1, ST) or Morris (mu*, sigma) indices of one "
                                   "outcome, with a chart. Morris effects are in percentage "
                                   "points of the share, Sobol indices are shares of its "
                                   "variance (0 to 1), in the terminal, indices.csv and the "
                                   "chart alike.")
    a.add_argument("sweep", metavar="SWEEP.yaml",
                   help="a sweep file with parameter ranges ({min, max})")
    a.add_argument("--method", choices=("sobol", "morris"), default="morris",
                   help="Sobol (variance-based; N x (D + 2) runs) or Morris (elementary "
                        "effects; N x (D + 1) runs)")
    a.add_argument("--outcome", default="china.region.2035Q4", metavar="POWER.AREA.QUARTER",
                   help="the outcome analysed: a power's share in region-or-state at a "
                        "quarter")
    a.add_argument("--samples", type=positive_int, default=None, metavar="N",
                   help="SALib base sample size: Sobol N (a power of 2; default 16) or "
                        "Morris trajectories (default 10)")
    a.add_argument("-n", "--replications", type=positive_int, default=None, metavar="N",
                   help="replications per sample point, averaged (default: the file's)")
    a.add_argument("--seed", type=seed, default=None, metavar="S",
                   help="root seed for sampling and runs (default: the file's)")
    a.add_argument("--out", metavar="DIR", default=None,
                   help="result folder (default: the sweep's out folder + -<method>)")
    executor_args(a)
    a.set_defaults(func=cmd_sensitivity)
