"""The `greatgame calibrate` command (argument parsing, output files, printing).

Calls `sim.calibration.search` (the search and its log) and `sim.calibration.report` (tables,
charts, the calibrated layer); no modelling logic. Registered into the main parser by
`sim.cli.main.build_parser`. Also writes and prints the history fit that `greatgame validate`
adds (`sim.analysis.validation.history_fit`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from sim.cli.common import (
    err,
    non_negative_int,
    positive_int,
    run_with_progress,
    save_figure,
    seed,
    write_csv,
    write_text,
    year,
)
from sim.errors import InputError
from sim.runs.executors import EXECUTORS
from sim.world.vocabulary import ROOT_SEED

DEFAULT_BUDGET = 500
DEFAULT_REPLICATIONS = 4
CHART_REPLICATIONS = 10


_write_text = write_text
_write_csv = write_csv


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit, write the report and the calibrated layer, print the summary."""
    from sim.calibration import report as R
    from sim.calibration import search as C
    from sim.scenario import history as H
    from sim.scenario.scenarios import load_scenario, scenarios_dir

    if args.install and args.train_until != H.FIT_END:
        raise InputError(None, "--install installs a fit to all the history; a backtest "
                          f"(--train-until {args.train_until}) is not installed")
    default_out = "results/calibration" + ("" if args.train_until == H.FIT_END
                                           else f"-until-{args.train_until}")
    if args.replications is None:
        from sim.calibration.abc import AbcSettings

        args.replications = (AbcSettings.replications if args.method == "abc"
                             else DEFAULT_REPLICATIONS)
    if args.method == "abc":
        from sim.cli.calibrate_abc import cmd_abc

        return cmd_abc(args, Path(args.out or default_out))
    scenario = load_scenario(args.scenario)
    free = C.parse_free(args.params, scenario)
    settings = C.Settings(scenario=args.scenario, free=free, budget=args.budget,
                          replications=args.replications, seed=args.seed,
                          train_until=args.train_until, executor=args.executor,
                          workers=args.workers, scheduler=args.scheduler, starts=args.starts,
                          profile_points=args.profile_points,
                          facts_replications=args.facts_replications)
    out = Path(args.out or default_out)
    counts = C.plan_counts(settings)
    print(f"calibrate {args.scenario}: {len(free)} free parameters, budget {args.budget} "
          f"(start {counts['start']}, Latin hypercube {counts['lhs']}, local "
          f"{counts['local']}, slices {counts['profile']}) x {args.replications} "
          f"replications; training years {H.FIT_START}-{args.train_until}; executor "
          f"{args.executor}", file=sys.stderr)
    def interrupted() -> str:
        from sim.runs.sweep import done_records

        return (f"interrupted: {len(done_records(out))} evaluations are saved in {out}; run "
                "the same command with --resume to continue")

    outcome = run_with_progress(
        "calibrate", "point",
        lambda update, note: C.calibrate(settings, out, resume=args.resume, progress=update,
                                         note=note),
        interrupted)

    date = dt.date.today().isoformat()
    command = args.command_line
    history = H.load_history()
    fit = C.fit_table(outcome)
    slices = R.slice_table(outcome)
    params = R.parameter_table(outcome, slices)
    names = outcome.names
    points = {"before": [outcome.start.values[n] for n in names],
              "after": [outcome.best.values[n] for n in names]}
    traj = R.trajectories(outcome, points, CHART_REPLICATIONS)
    bt = None
    if args.train_until < H.FIT_END:
        ex = R.trajectories(outcome, {"ex_ante": points["after"]}, CHART_REPLICATIONS,
                            drop_after=f"{args.train_until}Q4")
        import pandas as pd

        traj = pd.concat([traj, ex], ignore_index=True)
        bt = R.backtest_table(outcome, traj)
        _write_csv(out / "backtest.csv", bt)
        save_figure(R.plot_backtest(traj, bt, history, args.train_until), out / "backtest.png")
    _write_csv(out / "fitted.csv", params)
    _write_csv(out / "fit.csv", fit)
    _write_csv(out / "evaluations.csv", outcome.log.table())
    _write_csv(out / "slices.csv", slices)
    _write_csv(out / "trajectories.csv", traj)
    if outcome.facts is not None:
        _write_csv(out / "facts.csv", outcome.facts)
    save_figure(R.plot_model_vs_history(traj, R.chart_history(history), args.train_until),
          out / "model_vs_history.png")
    save_figure(R.plot_residuals(fit), out / "residuals.png")
    save_figure(R.plot_identification(outcome, slices), out / "identification.png")
    world = outcome.scenario.world.name
    installed = R.layer_path(scenarios_dir(), world)
    text = R.layer_text(outcome, date, command, R.read_layer_entries(installed))
    _write_text(out / f"{world}.yaml", text)
    summary = R.summary_markdown(outcome, params, fit, bt, date, command)
    worse = (f"the installed calibration fits better than this one (loss "
             f"{outcome.installed.loss:.4f} < {outcome.best.loss:.4f}); it stays installed "
             "(--install refuses this fit): try a larger --budget, more --replications or "
             "wider --params ranges" if outcome.worse_than_installed else None)
    if worse:
        summary = summary.rstrip("\n") + f"\n\n**Warning:** {worse}.\n"
    _write_text(out / "summary.md", summary)

    inst = outcome.installed
    print(f"loss: {outcome.start.loss:.4f} uncalibrated -> {outcome.best.loss:.4f} calibrated"
          + (f" (installed before: {inst.loss:.4f})" if inst else "")
          + f"; {len(outcome.log.evals)} points, "
          f"{outcome.fresh} evaluated now, {outcome.seconds:.0f} s")
    if worse:
        print(f"warning: {worse}", file=sys.stderr)
    print(R._md_table(params[["parameter", "before", "fitted", "fit_min", "fit_max",
                              "identification"]], ".4g"))
    if outcome.facts is not None:
        failed = ", ".join(str(n) for n in outcome.facts.number[~outcome.facts.passed])
        print(f"stylized facts with the calibrated values: {int(outcome.facts.passed.sum())}/"
              f"{len(outcome.facts)} pass ({args.facts_replications} runs)"
              + (f"; fails {failed}" if failed else "")
              + ("" if not failed else " (reported only: a backtest does not choose by the "
                 "facts, which speak of the test years)" if args.train_until < H.FIT_END
                 else ": no good fit passes all nine"))
    if bt is not None and not bt.empty:
        print()
        print(f"Backtest: fitted on {H.FIT_START}-{args.train_until}, errors on "
              f"{args.train_until + 1}-{H.FIT_END} (value, and in brackets the absolute error: "
              "percentage points for shares, percent for trade)")
        print(R._md_table(R.backtest_display(bt)))
        print(f"lowest mean error on China's trade share: {R.backtest_winner(bt)}")
    if args.install and outcome.worse_than_installed:
        err(f"not installed: the installed calibration fits better ({inst.loss:.4f} < "
             f"{outcome.best.loss:.4f}); try a larger --budget or more --replications")
        print(f"report: {out / 'summary.md'}")
        return 1
    if args.install and not outcome.facts_pass:
        err("not installed: the fitted values fail stylized facts (see facts.csv)")
        print(f"report: {out / 'summary.md'}")
        return 1
    if args.install:
        installed.parent.mkdir(parents=True, exist_ok=True)
        _write_text(installed, text)
        print(f"installed: {installed}")
        base = (scenarios_dir() / f"{args.scenario}.yaml")
        rel = f"{R.LAYER_DIR}/{world}.yaml"
        if base.is_file() and rel not in base.read_text(encoding="utf-8"):
            print(f"note: {base.name} does not extend {rel}; add `extends: {rel}` to use it")
    print(f"report: {out / 'summary.md'}")
    return 0 if outcome.facts_pass or args.train_until < H.FIT_END else 1


def add_parsers(sub, common, fmt) -> None:
    """Register `calibrate` on the main parser's subcommands."""
    from sim.scenario import history as H

    c = sub.add_parser(
        "calibrate", formatter_class=fmt, parents=[common],
        help="fit free parameters to the sourced history 2015-2024",
        description="Fit free parameters (default: growth of China's engagement, the "
                    "allocation temperature, size and trade elasticities, depreciation, the "
                    "rest of the world's debt elasticity, the level of trade with China in "
                    "four states) to the sourced history by a Latin "
                    "hypercube then Nelder-Mead, over replications with common seeds; write "
                    "a report and the calibrated scenario layer. --method abc samples their "
                    "posterior by ABC-SMC instead (ELFI). --train-until 2021 "
                    "backtests against naive forecasts. See docs/calibration.md.")
    c.add_argument("--method", choices=("optimise", "abc"), default="optimise",
                   help="optimise: the point search; abc: approximate Bayesian computation "
                        "(ABC-SMC), weighted posterior draws")
    c.add_argument("--params", nargs="+", metavar="PATH[=LO:HI]", default=None,
                   help="free parameters as set: paths, e.g. params.trade_gdp_elasticity=0.2:2 "
                        "powers.china.capacity_growth (default: the documented default set)")
    c.add_argument("--budget", type=positive_int, default=DEFAULT_BUDGET, metavar="N",
                   help="optimise: points to evaluate in the search (30%% Latin hypercube, the "
                        "rest local searches; the slices come on top)")
    c.add_argument("--replications", type=positive_int, default=None, metavar="R",
                   help=f"runs per point: optimise, the same seeds at every point (default "
                        f"{DEFAULT_REPLICATIONS}); abc, each particle on its own seeds (default "
                        "2)")
    c.add_argument("--seed", type=seed, default=ROOT_SEED, metavar="S",
                   help="root seed of the replications and the Latin hypercube")
    c.add_argument("--train-until", type=year, default=H.FIT_END, metavar="YEAR",
                   help="last year fitted; later years are the backtest's test years")
    c.add_argument("--scenario", default="baseline", metavar="SCENARIO",
                   help="scenario to calibrate (its current values are the start point)")
    c.add_argument("--executor", choices=EXECUTORS, default="processes",
                   help="where evaluations run")
    c.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker processes (default: all cores)")
    c.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="address of an existing Dask scheduler (with --executor dask)")
    c.add_argument("--starts", type=positive_int, default=3, metavar="K",
                   help="local searches, started from the best distinct points")
    c.add_argument("--profile-points", type=non_negative_int, default=9, metavar="K",
                   help="points per parameter on the identification slices (0: none)")
    c.add_argument("--facts-replications", type=non_negative_int, default=20,
                   metavar="N", help="runs checking the nine stylized facts on the best "
                                     "points (0: no check)")
    c.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default results/calibration, or "
                        "results/calibration-until-YEAR for a backtest)")
    c.add_argument("--resume", action="store_true",
                   help="continue an interrupted calibration in --out, skipping logged points")
    c.add_argument("--install", action="store_true",
                   help="write the fitted values to scenarios/calibration/<world>.yaml, the "
                        "layer the baseline extends (abc: the posterior mean, and the "
                        "posterior to <world>_posterior.csv beside it)")
    from sim.cli.calibrate_abc import add_arguments

    add_arguments(c)
    c.set_defaults(func=cmd_calibrate)


# --------------------------------------------------------------------------- validate

def write_validation_fit(fit: dict, out: Path) -> None:
    """Write `history_fit.csv` and `model_vs_history.png` into a validate folder."""
    from sim.calibration import report as R
    from sim.scenario import history as H

    _write_csv(out / "history_fit.csv", fit["table"])
    fig = R.plot_model_vs_history(fit["paths"], R.chart_history(H.load_history()))
    fig.suptitle("Baseline against sourced history (lines: mean of replications, bands "
                 "5-95%)", fontsize=12)
    save_figure(fig, out / "model_vs_history.png")


def print_validation_fit(fit: dict) -> None:
    """The history fit as `validate` prints it: loss per group and the worst figures."""
    comps = ", ".join(f"{g} {v:.4f}" for g, v in fit["components"].items())
    print(f"Fit to sourced history 2015-2024 ({fit['n']} figures, docs/calibration.md): "
          f"loss {fit['loss']:.4f} ({comps})")
    t = fit["table"]
    worst = t.reindex(t.log_error.abs().sort_values(ascending=False).index).head(5)
    for r in worst.itertuples(index=False):
        print(f"  off most: {r.series} {r.area} {r.partner} {r.year}: sourced {r.value:.3g}, "
              f"model {r.model:.3g} ({r.log_error:+.2f} log)")
