"""`greatgame calibrate --method abc`: run ABC-SMC, write its report, install the posterior.

Calls `sim.calibration.abc` (the sampler and its log), `sim.calibration.abc_report`
(tables, charts, the layer) and `sim.scenario.posterior` (the posterior file); no
modelling logic. `sim.cli.calibrate` parses the arguments and sends `--method abc` here;
`validate`'s posterior predictive check is `print_predictive`/`write_predictive` below.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import textwrap
from pathlib import Path

from sim.cli.common import err, run_with_progress, save_figure
from sim.cli.common import write_csv as _write_csv
from sim.cli.common import write_text as _write_text

CHART_REPLICATIONS = 10


def settings_from(args: argparse.Namespace, free):
    """The ABC settings of the command line."""
    from sim.calibration import abc as A

    return A.AbcSettings(scenario=args.scenario, free=free, population=args.population,
                         generations=args.generations, replications=args.replications,
                         quantile=args.quantile, min_epsilon=args.min_epsilon,
                         min_acceptance=args.min_acceptance,
                         time_limit=args.time_limit or None, batch=args.batch, seed=args.seed,
                         train_until=args.train_until, executor=args.executor,
                         workers=args.workers, scheduler=args.scheduler,
                         facts_replications=args.facts_replications)


def cmd_abc(args: argparse.Namespace, out: Path) -> int:
    """Sample the posterior, write the report and files, install if asked; print the summary."""
    from sim.calibration import abc as A
    from sim.calibration import abc_report as AR
    from sim.calibration import report as R
    from sim.calibration.evaluate import parse_free
    from sim.scenario import history as H
    from sim.scenario.posterior import posterior_path, write_posterior
    from sim.scenario.scenarios import load_scenario, scenarios_dir
    from sim.world.vocabulary import ROOT_SEED

    layered = load_scenario(args.scenario)
    settings = settings_from(args, parse_free(args.params, layered))
    settings.check()
    backtest = args.train_until < H.FIT_END
    limit = f", time limit {settings.time_limit:.0f} s" if settings.time_limit else ""
    print(f"calibrate {args.scenario} by ABC-SMC ({A.LIBRARY}): {len(settings.free)} free "
          f"parameters, population {settings.population}, up to {settings.generations} "
          f"generations (threshold: the {settings.quantile:g} quantile of the last), "
          f"{settings.replications} runs per particle{limit}; training years "
          f"{H.FIT_START}-{args.train_until}; executor {args.executor}", file=sys.stderr)
    outcome = run_with_progress(
        "abc", "point",
        lambda update, note: A.run_abc(settings, out, resume=args.resume, progress=update,
                                       note=note),
        lambda: (f"interrupted: finished batches are saved in {out}; run the same command "
                 "with --resume to continue"))

    date = dt.date.today().isoformat()
    command = args.command_line
    names = outcome.names
    points = A.reference_points(outcome, layered)
    scores = A.score_points(outcome, points)
    mean = scores["posterior_mean"]
    facts = None
    if settings.facts_replications:
        from sim.calibration.facts import facts_pass

        facts = facts_pass(outcome.scenario if backtest else layered, names,
                           [mean["values"][n] for n in names], settings.facts_replications,
                           ROOT_SEED)
    post = AR.posterior_table(outcome)
    acc = AR.acceptance_table(outcome)
    world = outcome.scenario.world.name
    p = outcome.posterior
    meta = {"method": f"abc-smc ({A.LIBRARY})", "date": date, "command": command,
            "scenario": settings.scenario, "train_until": str(settings.train_until),
            "population": str(settings.population), "generations": str(len(outcome.generations)),
            "epsilon": f"{p.epsilon:.6g}", "effective_sample_size": f"{p.ess:.1f}",
            "replications": str(settings.replications), "seed": str(settings.seed),
            "distance": A.DISTANCE_VERSION}
    write_posterior(out / "posterior.csv", names, p.values, p.weights, meta)
    _write_csv(out / "posterior_summary.csv", post)
    _write_csv(out / "acceptance.csv", acc)
    _write_csv(out / "particles.csv", AR.draws_table(outcome))
    _write_csv(out / "points.csv", AR.scores_table(scores))
    fit = outcome.targets.copy()
    fit["train"] = outcome.train
    for label in ("uncalibrated", "posterior_mean"):
        fit[f"model_{label}"] = scores[label]["mean"]
        fit[f"p05_{label}"], fit[f"p95_{label}"] = scores[label]["p05"], scores[label]["p95"]
    _write_csv(out / "fit.csv", fit)
    if facts is not None:
        _write_csv(out / "facts.csv", facts)
    traj = R.trajectories(outcome, {"before": list(points["uncalibrated"].values()),
                                    "after": [mean["values"][n] for n in names]},
                          CHART_REPLICATIONS)
    _write_csv(out / "trajectories.csv", traj)
    save_figure(R.plot_model_vs_history(traj, R.chart_history(H.load_history()),
                                        args.train_until), out / "model_vs_history.png")
    save_figure(AR.plot_corner(outcome), out / "corner.png", dpi=110)
    save_figure(AR.plot_prior_posterior(outcome, post), out / "prior_posterior.png")
    save_figure(AR.plot_acceptance(acc), out / "acceptance.png")
    installed_layer = R.layer_path(scenarios_dir(), world)
    target_post = posterior_path(scenarios_dir(), world)
    text = AR.layer_text(outcome, mean["values"], mean["loss"], scores["uncalibrated"]["loss"],
                         date, command, R.read_layer_entries(installed_layer),
                         f"calibration/{target_post.name}")
    _write_text(out / f"{world}.yaml", text)
    files = ["posterior.csv", "posterior_summary.csv", "acceptance.csv", "particles.csv",
             "points.csv", "fit.csv", *(["facts.csv"] if facts is not None else []),
             "trajectories.csv", "corner.png", "prior_posterior.png", "acceptance.png",
             "model_vs_history.png", f"{world}.yaml", "runs/", "calibration.json",
             "generations.json"]
    inst = scores.get("installed")
    worse = (inst is not None and inst["loss"] < mean["loss"])
    summary = AR.summary_markdown(outcome, post, acc, scores, facts, date, command, files)
    if worse:
        summary = summary.rstrip("\n") + (
            f"\n\n**Note:** the installed point calibration fits better than this "
            f"posterior's mean (loss {inst['loss']:.4f} < {mean['loss']:.4f}); --install "
            f"installs the posterior's draws but keeps the installed point values.\n")
    _write_text(out / "summary.md", summary)

    print(f"posterior: {len(p.weights)} draws, effective sample size {p.ess:.0f}, epsilon "
          f"{p.epsilon:.4f} after {len(outcome.generations)} generations ({outcome.stopped}); "
          f"{outcome.fresh} batches simulated now, {outcome.cached} read from the log, "
          f"{outcome.seconds:.0f} s")
    print(f"loss: {scores['uncalibrated']['loss']:.4f} uncalibrated -> {mean['loss']:.4f} at "
          f"the posterior mean (best draw {scores['best_draw']['loss']:.4f}"
          + (f", installed {inst['loss']:.4f}" if inst else "") + ")")
    print(R._md_table(post[["parameter", "prior_min", "prior_max", "mean", "q05", "q50", "q95",
                            "narrowing"]], ".4g"))
    ok = facts is None or bool(facts.passed.all())
    if facts is not None:
        failed = ", ".join(str(n) for n in facts.number[~facts.passed])
        print(f"stylized facts at the posterior mean: {int(facts.passed.sum())}/{len(facts)} "
              f"pass ({settings.facts_replications} runs)" + (f"; fails {failed}" if failed
                                                              else ""))
    if args.install:
        if not ok:
            err("not installed: the posterior mean fails stylized facts (see facts.csv)")
            print(f"report: {out / 'summary.md'}")
            return 1
        installed_layer.parent.mkdir(parents=True, exist_ok=True)
        write_posterior(target_post, names, p.values, p.weights, meta)
        if worse:
            # The point calibration stays the central estimate (`--uncertainty none`); the
            # draws carry the parameter uncertainty every what-if samples from.
            print(f"installed: {target_post}; the point values in {installed_layer} stay "
                  f"(they fit better than the posterior mean: {inst['loss']:.4f} < "
                  f"{mean['loss']:.4f})")
        else:
            _write_text(installed_layer, text)
            print(f"installed: {target_post} and the posterior mean in {installed_layer}")
    print(f"report: {out / 'summary.md'}")
    return 0 if ok or backtest else 1


def add_arguments(c) -> None:
    """The `--method abc` options of `calibrate`."""
    from sim.calibration.abc import AbcSettings
    from sim.cli.common import fraction, non_negative_float, positive_int

    d = AbcSettings()
    g = c.add_argument_group("ABC (--method abc)")
    g.add_argument("--population", type=positive_int, default=d.population, metavar="N",
                   help="accepted particles per generation (the posterior's draws)")
    g.add_argument("--generations", type=positive_int, default=d.generations, metavar="G",
                   help="most generations (each tightens the threshold)")
    g.add_argument("--quantile", type=fraction, default=d.quantile, metavar="Q",
                   help="threshold of generation t: this quantile of generation t-1's "
                        "distances (generation 0 keeps this share of its prior draws)")
    g.add_argument("--min-epsilon", type=non_negative_float, default=d.min_epsilon,
                   metavar="E", help="stop once the threshold is at most E")
    g.add_argument("--min-acceptance", type=fraction, default=d.min_acceptance, metavar="A",
                   help="stop after a generation that accepts less than this share")
    g.add_argument("--time-limit", type=non_negative_float, default=d.time_limit,
                   metavar="SECONDS", help="start no generation expected to end after this many "
                        "seconds of sampling (its time extrapolated from the last two; a "
                        "resume counts what replayed generations first took; 0: no limit); the "
                        "report takes about a minute more")
    g.add_argument("--batch", type=positive_int, default=d.batch, metavar="B",
                   help="particles per batch (one ensemble batch on a worker)")


# --------------------------------------------------------------------------- validate

def predictive_checks(args: argparse.Namespace, world: str) -> list[tuple[str, dict | str]]:
    """The posterior predictive checks `validate` runs: (label, result or why skipped)."""
    from sim.calibration.predictive import posterior_check
    from sim.scenario.posterior import load_posterior, posterior_path
    from sim.scenario.scenarios import scenarios_dir

    out: list[tuple[str, dict | str]] = []
    path = Path(args.posterior) if args.posterior else posterior_path(scenarios_dir(), world)
    if args.posterior or path.is_file():
        post = load_posterior(path)
        out.append(("ppc", posterior_check(post, args.ppc_replications, args.seed) | {
            "path": str(path)}))
    else:
        out.append(("ppc", f"no posterior installed ({path.parent.name}/{path.name}; "
                           "greatgame calibrate --method abc --install writes one) and no "
                           "--posterior given"))
    if args.backtest_posterior:
        path = Path(args.backtest_posterior)
        if path.is_dir():
            path = path / "posterior.csv"
        post = load_posterior(path)
        out.append(("backtest_ppc", posterior_check(post, args.ppc_replications, args.seed,
                                                    backtest=True) | {"path": str(path)}))
    else:
        out.append(("backtest_ppc", "no --backtest-posterior given (greatgame calibrate "
                                    "--method abc --train-until 2021 writes "
                                    "results/calibration-until-2021/posterior.csv)"))
    return out


def write_predictive(checks: list[tuple[str, dict | str]], folder: Path) -> None:
    """Per-figure and per-series coverage tables into a validate folder."""
    from sim.calibration.predictive import coverage_frame

    for label, res in checks:
        if isinstance(res, dict):
            coverage_frame(res).to_csv(folder / f"{label}.csv", index=False, float_format="%.6g")
            res["series"].to_csv(folder / f"{label}_series.csv", index=False,
                                 float_format="%.4g")


def predictive_manifest(checks: list[tuple[str, dict | str]]) -> dict:
    """What the manifest records of each check."""
    def one(res: dict) -> dict:
        d = res["discrepancy"]
        return {"share_inside": res["share"], "runs": res["n"], "posterior": res["path"],
                "figures": int(len(res["table"])), "skipped_keys": res["skipped"],
                "with_discrepancy": {"share_inside": d["share"], "sigma": d["sigma"],
                                     "estimated_on_figures": d["figures"],
                                     "estimated_on_years": list(d["years"]),
                                     "in_sample": d["in_sample"]}}

    return {label: one(res) if isinstance(res, dict) else {"skipped": res}
            for label, res in checks}


def print_predictive(checks: list[tuple[str, dict | str]]) -> None:
    """The checks as `validate` prints them: share inside the 90% band, per series."""
    from sim.analysis.predictive import TARGET
    from sim.calibration.report import _md_table

    for label, res in checks:
        what = ("Posterior predictive check" if label == "ppc" else
                "Backtest posterior predictive check")
        if isinstance(res, str):
            print(f"{what} skipped: {res}.")
            continue
        t = res["table"]
        first, last = res["years"]
        verdict = "meets" if res["share"] >= TARGET else "misses"
        print(f"{what} ({res['n']} runs, run i with draw i of {res['path']}): "
              f"{int(t.inside.sum())} of {len(t)} sourced figures of {first}-{last} "
              f"({res['share']:.0%}) inside the model's 90% band (5-95%); {verdict} the "
              f"target of {TARGET:.0%}")
        for line in res["skipped"]:
            print(f"  {line}")
        d = res["discrepancy"]
        a, b = d["years"]
        where = ("estimated on the same figures, in sample: near 90% by construction when "
                 "errors are normal, so the line above is the check" if d["in_sample"] else
                 f"estimated on the {d['figures']} figures of {a}-{b} before the held-out "
                 f"years, so this stays out of sample")
        print(textwrap.fill(
            f"With model discrepancy (each run's value times exp(N(0, s^2)), s = "
            f"{d['sigma']:.3f}, the RMS log error of the model's median; {where}): "
            f"{int(round(d['share'] * len(t)))} of {len(t)} ({d['share']:.0%}) inside",
            width=100, initial_indent="  ", subsequent_indent="    "))
        print(_md_table(res["series"].drop(columns="inside_disc").rename(
            columns={"share_disc": "share with discrepancy"}), ".2f"))
