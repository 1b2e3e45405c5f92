"""The `greatgame` command: `run`, `check`, `scenarios` and `validate`.

`main(argv)` parses arguments and calls the runner, `sim.runs.store`, `sim.analysis.bands` and
`sim.analysis.validation`; it holds no modelling logic. Exit codes: 0 success, 1 a failed
validation or an unexpected error, 2 bad input (a bad scenario file or bad usage).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shlex
import shutil
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import sim
from sim.cli.common import (
    EXIT_FAIL,
    EXIT_INPUT,
    EXIT_OK,
    add_uncertainty_options,
    err,
    positive_int,
    progress,
    quarter,
    seed,
    uncertainty_args,
    uncertainty_for,
    year,
)
from sim.errors import InputError
from sim.world.vocabulary import DEFAULT_REPLICATIONS, ROOT_SEED

# --------------------------------------------------------------------------- output helpers

def _table(headers: Sequence[str], rows: Sequence[Sequence[object]],
           right: Sequence[bool] | None = None) -> str:
    """Rows as an aligned text table with a header rule."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    right = right or [False] * len(headers)

    def line(r):
        return "  ".join(c.rjust(w) if a else c.ljust(w)
                         for c, w, a in zip(r, widths, right, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:])])


def _first_sentence(text: str, limit: int = 100) -> str:
    """Return the first sentence of a description on one line, cut within `limit`."""
    flat = " ".join(text.split())
    m = re.match(r"(.+?[.?!])(\s|$)", flat)
    first = m.group(1) if m else flat
    if len(first) <= limit:
        return first
    cut = first[: limit - 1]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(",;:") + "…"


def _facts_table(facts) -> str:
    """Facts as a table: number, result, fact, with expected and observed wrapped below."""
    results = [f"{'PASS' if r.passed else 'FAIL'} ({r.share_of_runs:.0%} of runs)"
               for r in facts.itertuples()]
    w_num = max(1, *(len(str(n)) for n in facts["number"]))
    w_res = max(len("result"), *(len(t) for t in results))
    indent = " " * (w_num + w_res + 4)
    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    lines = [f"{'#'.rjust(w_num)}  {'result'.ljust(w_res)}  fact",
             f"{'-' * w_num}  {'-' * w_res}  {'-' * (width - len(indent))}"]
    for r, res in zip(facts.itertuples(), results, strict=True):
        lines.append(f"{str(r.number).rjust(w_num)}  {res.ljust(w_res)}  {r.fact}")
        for label, text in (("expected", r.expected), ("observed", r.observed)):
            lines.append(textwrap.fill(f"{label}: {text}", width, initial_indent=indent,
                                       subsequent_indent=indent + "          "))
    return "\n".join(lines)


def _pct_band(mean: float, lo: float, hi: float) -> str:
    return f"{mean * 100:5.1f}%  [{lo * 100:4.1f}–{hi * 100:4.1f}]"


def _now() -> datetime:
    return datetime.now(UTC)


def _command(argv: Sequence[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["greatgame", *args])


def _load(name_or_path: str, end: str | None = None):
    from sim.scenario.scenarios import load_scenario

    scenario = load_scenario(name_or_path)
    return scenario.with_end(end) if end else scenario


def _check_out(out: Path) -> None:
    """Refuse an --out folder that holds anything but a previous result (before any run)."""
    from sim.runs import store

    store.check_output_dir(out)


def _check_size(runs: int, quarters: int, what: str = "-n") -> None:
    """Refuse a batch whose results would not fit in memory (before seeds are derived)."""
    from sim.runs import store

    store.check_result_size(runs, quarters, what)


def _run(scenario, replications: int, seed: int, uncertainty=None):
    from sim.runs.runner import Uncertainty, check_draws, derive_seeds, run_batch

    unc = uncertainty or Uncertainty()
    seeds = derive_seeds(seed, replications)
    sets = check_draws([scenario], unc, replications, seed)  # before anything runs
    started = _now()
    with progress(replications, scenario.name) as bar:
        result = run_batch(scenario, seeds, progress=bar.update,
                           parameters=sets if unc.drawn else None)
    return result, seeds, started, _now()


# --------------------------------------------------------------------------- commands

def cmd_run(args: argparse.Namespace) -> int:
    """`greatgame run`: run a scenario, write results, print the summary."""
    from sim.analysis import bands as analysis
    from sim.runs import store as io
    from sim.runs.runner import applicable, skipped_keys

    scenario = _load(args.scenario, args.end)
    unc = uncertainty_for(args, [scenario])
    out = Path(args.out) if args.out else Path("results") / scenario.name
    _check_out(out)
    _check_size(args.replications, scenario.n_quarters)
    result, seeds, started, finished = _run(scenario, args.replications, args.seed, unc)
    from sim.output.figures import run_figures

    summary = analysis.summarise(result.shares)
    applied = ([applicable(scenario, p) for p in unc.parameter_sets(len(seeds), args.seed)]
               if unc.drawn else None)
    skipped = skipped_keys(scenario, unc.posterior.names) if unc.drawn else []
    io.write_run(out, scenario, result, seeds, started, finished, summary=summary,
                 figures=run_figures(result.shares, result.events), root_seed=args.seed,
                 command=args.command_line,
                 uncertainty=unc.record() | {"skipped": skipped}, parameters=applied)
    wide = analysis.wide_summary(summary)
    quarters = list(dict.fromkeys(c.rsplit("_", 1)[0] for c in wide.columns[2:]))
    headers = ["power"] + [f"{q}  mean [5–95%]" for q in quarters]
    from sim.output.plots import power_label

    rows = [[power_label(r["power"])] + [_pct_band(r[f"{q}_mean"], r[f"{q}_p05"], r[f"{q}_p95"])
                                         for q in quarters] for _, r in wide.iterrows()]
    n = args.replications
    print(f"{scenario.name}: share of regional influence, {n} run{'s' if n != 1 else ''}, "
          f"seed {args.seed}, {scenario.quarters()[0]}–{scenario.quarters()[-1]}")
    print(_table(headers, rows, right=[False] + [True] * len(quarters)))
    print(_interval_line(unc, "bands"))
    if skipped:
        print(f"posterior keys {scenario.name} cannot take, skipped: {', '.join(skipped)}")
    print(f"results: {out}")
    return EXIT_OK


def _interval_line(unc, what: str) -> str:
    """Which kind of interval a command's output shows, in one line."""
    if unc.drawn:
        return (f"{what}: {unc.label}, from {unc.path} "
                f"({unc.posterior.size} weighted draws)")
    note = (" (a posterior is installed: --uncertainty posterior adds parameter uncertainty)"
            if unc.posterior is not None else "")
    return f"{what}: {unc.label}{note}"


def cmd_check(args: argparse.Namespace) -> int:
    """`greatgame check`: validate scenario files."""
    from sim.errors import InputError
    from sim.scenario.scenarios import load_scenario

    failed = 0
    for f in args.files:
        try:
            s = load_scenario(f)
        except InputError as e:
            failed += 1
            for one in getattr(e, "errors", [e]):  # every problem found, one line each
                err(str(one))
            continue
        print(f"OK  {f}  ({s.name}: {_first_sentence(s.description)})")
    return EXIT_INPUT if failed else EXIT_OK


def cmd_scenarios(args: argparse.Namespace) -> int:
    """`greatgame scenarios`: list the shipped scenarios."""
    from sim.scenario.scenarios import list_scenarios

    items = list_scenarios()
    width = max((len(n) for n, _ in items), default=0)
    for name, desc in items:
        print(f"{name.ljust(width)}  {_first_sentence(desc)}".rstrip())
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    """`greatgame validate`: stylized facts and fit to sourced trade figures."""
    from sim.analysis.validation import check_facts, fit_summary, trade_fit
    from sim.output.figures import validation_figures
    from sim.runs import store as io
    from sim.scenario.history import trade_figures

    scenario = _load("baseline")
    out = Path(args.out)
    _check_out(out)
    _check_size(args.replications, scenario.n_quarters)
    from sim.cli import calibrate_abc as abc  # posterior predictive checks (a bad file: exit 2)

    checks = abc.predictive_checks(args, scenario.world.name)
    result, seeds, started, finished = _run(scenario, args.replications, args.seed)
    facts = check_facts(result.shares, result.metrics)
    fit = trade_fit(result.metrics, trade_figures())
    summary = fit_summary(fit)
    from sim.analysis.validation import history_fit as fit_history
    from sim.cli import calibrate as cal  # fit to all sourced history (docs/calibration.md)

    history_fit = fit_history(result.metrics)

    def more(folder: Path) -> None:
        cal.write_validation_fit(history_fit, folder)
        abc.write_predictive(checks, folder)

    io.write_validation(out, scenario, facts, fit, seeds, started, finished,
                        figures=validation_figures(facts, fit),
                        root_seed=args.seed, command=args.command_line,
                        extra={"trade_fit": summary,
                               "history_fit": {k: history_fit[k] for k in
                                               ("loss", "components", "n")},
                               "facts_passed": int(facts["passed"].sum()),
                               "facts_total": int(len(facts)),
                               "predictive_checks": abc.predictive_manifest(checks)},
                        more=more)
    n = args.replications
    print(f"Stylized facts of the baseline ({n} run{'s' if n != 1 else ''}, seed {args.seed}):")
    print(_facts_table(facts))
    print()
    print("Trade with China, USD bn a year: model vs China customs (GACC) figures")
    from sim.output.plots import area_label

    rows = [[area_label(r.area), r.year, f"{r.sourced:.1f}",
             f"{r.model:.1f} [{r.model_p05:.1f}–{r.model_p95:.1f}]",
             f"{r.relative_error:+.1%}"]
            for r in fit.sort_values("area", key=lambda a: a != "region", kind="stable")
            .itertuples()] if len(fit) else []
    print(_table(["area", "year", "sourced", "model mean [5–95%]", "error"], rows,
                 right=[False, False, True, True, True]))
    if summary["n"]:
        print(f"MAPE {summary['mape']:.1%} over {summary['n']} figures "
              "(source basis: China's General Administration of Customs, GACC)")
    else:
        print("no sourced figure falls in the simulated years")
    print()
    cal.print_validation_fit(history_fit)
    print()
    abc.print_predictive(checks)
    passed = int(facts["passed"].sum())
    print(f"{passed}/{len(facts)} facts pass; results: {out}")
    return EXIT_OK if passed == len(facts) else EXIT_FAIL


def cmd_app(args: argparse.Namespace) -> int:
    """`greatgame app`: serve the classroom page (sim/app/page.py) with `solara run`."""
    import importlib.util
    import signal
    import subprocess

    if importlib.util.find_spec("solara") is None or importlib.util.find_spec("altair") is None:
        raise InputError(None, 'the classroom page needs the app extra: pip install -e ".[app]"')
    app_file = Path(sim.__file__).parent / "app" / "page.py"
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Great Game classroom page: http://{host}:{args.port}/  (Ctrl-C to stop)", flush=True)
    env = dict(os.environ)  # quiet Solara's note on cookies over plain http (harmless here)
    env["PYTHONWARNINGS"] = ",".join(filter(None, [
        env.get("PYTHONWARNINGS"), "ignore:Cookies with samesite=none:UserWarning"]))
    proc = subprocess.Popen([sys.executable, "-m", "solara", "run", str(app_file), "--host",
                             args.host, "--port", str(args.port), "--production", "--no-open"],
                            env=env)
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait(timeout=15)
        return EXIT_OK


def _port(text: str) -> int:
    v = positive_int(text)
    if v > 65535:
        raise argparse.ArgumentTypeError(f"must be at most 65535, got {v}")
    return v


# --------------------------------------------------------------------------- compare, explain, demo

PPC_REPLICATIONS = 200
"""Runs of validate's posterior predictive checks: enough for a 5-95% band per figure."""
DEMO_SCENARIOS = ("baseline", "no_treaty", "no_ukraine_war", "us_stays")
DEMO_REPLICATIONS = 30
DEFAULT_WORKERS = max(1, min(os.cpu_count() or 1, 4))
MAX_WORKERS = 4 * (os.cpu_count() or 1)
"""Most --workers processes: more than the cores is no faster, and each takes ~150 MB."""


def _compare_job(args: argparse.Namespace, names: Sequence[str], out: Path) -> int:
    """Load, run or reuse, analyse, write the report, print the summary (compare and demo)."""
    import time

    from sim.output import report
    from sim.runs import gather
    from sim.runs.runner import check_draws, derive_seeds

    t0 = time.perf_counter()
    scenarios = [_load(n, args.end) for n in names]
    unc = uncertainty_for(args, scenarios)
    _check_out(out)
    _check_size(args.replications * len(scenarios), max(s.n_quarters for s in scenarios))
    pairs = args.overtake or [("china", "russia")]
    try:
        report.check_options(scenarios, args.years, args.map_quarter, pairs)
    except ValueError as e:
        raise InputError(None, str(e)) from None
    seeds = derive_seeds(args.seed, args.replications)
    check_draws(scenarios, unc, len(seeds), args.seed)  # every draw fits, before anything runs
    started = _now()
    with progress(len(scenarios) * len(seeds), "runs") as bar:
        gathered = gather.gather(scenarios, seeds,
                                 results_root=None if args.no_reuse else args.results,
                                 workers=args.workers, progress=bar.update, root_seed=args.seed,
                                 uncertainty=unc, counterpart=True)
    comparison = report.analyse(gathered, args.years, args.map_quarter, pairs,
                                explain=functools.partial(gather.explain_shifts, gathered),
                                rerun_options=uncertainty_args(unc))
    path = report.write_report(out, comparison, command=args.command_line, started=started)
    n = len(seeds)
    print(f"{report.title_of(comparison)} ({n} run{'s' if n != 1 else ''} each, seed "
          f"{args.seed}, common random numbers"
          f"{', posterior draws' if unc.drawn else ''})")
    for src in gathered.sources:
        print(f"  {src.describe()}")
    print("Summary:")
    for s in comparison.sentences:
        print(textwrap.fill(report.sentence_text(s), width=100, initial_indent="  - ",
                            subsequent_indent="    "))
    print(textwrap.fill(report.widths_text(comparison), width=100, initial_indent="Intervals: ",
                        subsequent_indent="  "))
    print(f"report: {path}")
    print(f"took {time.perf_counter() - t0:.1f} s")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    """`greatgame compare`: what-if report of scenarios against the first one."""
    names = args.scenarios
    if len(names) < 2:
        raise InputError(None, "compare needs at least two scenarios: the reference, then one or "
                          "more to compare with it (the same one twice compares it with itself)")
    out = Path(args.out) if args.out else Path("results") / "compare" / "_vs_".join(
        Path(n).stem for n in names)
    return _compare_job(args, names, out)


def cmd_demo(args: argparse.Namespace) -> int:
    """`greatgame demo`: the baseline and three counterfactuals, compared."""
    return _compare_job(args, DEMO_SCENARIOS, Path(args.out))


def cmd_explain(args: argparse.Namespace) -> int:
    """`greatgame explain`: why a state's tilt moved, term by term."""
    from sim.analysis import explain
    from sim.runs.gather import explain as explain_runs
    from sim.runs.runner import check_draws, derive_seeds

    scenario = _load(args.scenario)
    unc = uncertainty_for(args, [scenario])
    _check_size(args.replications, scenario.n_quarters)
    sets = check_draws([scenario], unc, args.replications, args.seed)  # before anything runs
    table = explain_runs(scenario, args.state, args.quarter,
                         derive_seeds(args.seed, args.replications),
                         before=args.before, lag_quarters=args.lag,
                         parameters=sets if unc.drawn else None)
    why = explain.reason(table, args.power)
    print(explain.describe(table))
    print()
    print(textwrap.fill(why, width=100))
    if unc.drawn:
        print(_interval_line(unc, "runs"))
    return EXIT_OK


def _pair(text: str) -> tuple[str, str]:
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected POWER:RIVAL like china:russia, got {text!r}")
    return parts[0].strip().lower(), parts[1].strip().lower()


def _report_options(p: argparse.ArgumentParser, replications: int, out_help: str,
                    out_default: str | None) -> None:
    """Options shared by `compare` and `demo`."""
    p.add_argument("-n", "--replications", type=positive_int, default=replications,
                   metavar="N", help="replications per scenario (replication i uses the same "
                                     "seed in every scenario)")
    p.add_argument("--seed", type=seed, default=ROOT_SEED, metavar="S",
                   help="root seed; replication seeds are derived from it")
    p.add_argument("--out", metavar="DIR", default=out_default, help=out_help)
    p.add_argument("--years", type=year, nargs="+", metavar="YEAR", default=None,
                   help="years to tabulate, each as its fourth quarter (default: 2025 2030 "
                        "2035, those simulated)")
    p.add_argument("--map-quarter", metavar="YYYYQn", default=None,
                   help="quarter of the leader maps (default: the last year's Q4, the "
                        "quarter the summary speaks of)")
    p.add_argument("--overtake", type=_pair, action="append", metavar="POWER:RIVAL",
                   default=None, help="pair for the overtaking table, repeatable "
                                      "(default: china:russia)")
    p.add_argument("--workers", type=_workers, default=DEFAULT_WORKERS, metavar="W",
                   help="processes to run on (results are identical to one process)")
    p.add_argument("--results", metavar="DIR", default="results",
                   help="where to look for stored runs (DIR/<scenario>/ from `greatgame run` "
                        "with the same files, seeds, period and version are read, not rerun)")
    p.add_argument("--no-reuse", action="store_true", help="rerun everything")
    add_uncertainty_options(p)
    p.set_defaults(end=None)


def _add_demo_parser(sub, common, fmt) -> None:
    d = sub.add_parser("demo", formatter_class=fmt, parents=[common],
                       help="the headline job: baseline and three what-ifs, compared",
                       description="Run baseline, no_treaty, no_ukraine_war and us_stays with "
                                   "common random numbers, write the comparison report "
                                   "(HTML, charts, CSV tables) and print its summary.")
    _report_options(d, DEMO_REPLICATIONS, "report folder: new, empty, or a previous report "
                    "(replaced); other folders are refused", "results/demo")
    d.set_defaults(func=cmd_demo, overtake=None)


def _add_compare_parsers(sub, common, fmt) -> None:
    c = sub.add_parser("compare", formatter_class=fmt, parents=[common],
                       help="what-if report: scenarios against a reference",
                       description="Run scenarios with common random numbers (the first is "
                                   "the reference) and write a report: shares with 95% "
                                   "intervals, paired differences, overtaking quarters, "
                                   "leaders, the largest tilt shifts explained; HTML, PNG/SVG, "
                                   "CSV.")
    c.add_argument("scenarios", nargs="+", metavar="SCENARIO",
                   help="shipped names or YAML paths; the first is the reference")
    _report_options(c, DEMO_REPLICATIONS,
                    "report folder (default: results/compare/<A>_vs_<B>...): new, empty, or a "
                    "previous report (replaced); other folders are refused", None)
    c.add_argument("--end", metavar="YYYYQn", default=None, type=quarter,
                   help="last quarter to simulate (default: each scenario's period end)")
    c.set_defaults(func=cmd_compare)

    e = sub.add_parser("explain", formatter_class=fmt, parents=[common],
                       help="why a state's tilt moved: each partner's score term by term",
                       description="Run a scenario to QUARTER and show, for each partner, the "
                                   "terms of the state's alignment score (economic benefit, "
                                   "security, sentiment, dependence cost, hedging) before and "
                                   "after, and the tilt change.")
    e.add_argument("scenario", metavar="SCENARIO", help="a shipped scenario name or a YAML path")
    e.add_argument("state", metavar="STATE", help="e.g. kyrgyzstan")
    e.add_argument("quarter", metavar="QUARTER", help="the quarter after the move, e.g. 2027Q2")
    e.add_argument("--before", metavar="YYYYQn", default=None,
                   help="the quarter before the move (default: --lag quarters earlier)")
    e.add_argument("--lag", type=positive_int, default=4, metavar="Q",
                   help="quarters between before and after when --before is not given")
    e.add_argument("-n", "--replications", type=positive_int, default=DEFAULT_REPLICATIONS,
                   metavar="N", help="runs to average (seeds derived as in `greatgame run`)")
    e.add_argument("--seed", type=seed, default=ROOT_SEED, metavar="S", help="root seed")
    e.add_argument("--power", metavar="POWER", default=None,
                   help="partner whose move the last line explains (default: the largest)")
    add_uncertainty_options(e)
    e.set_defaults(func=cmd_explain)


# --------------------------------------------------------------------------- parser

def _workers(text: str) -> int:
    v = positive_int(text)
    if v > MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"{v:,} processes on {os.cpu_count()} cores would be no faster than {os.cpu_count()}"
            f" and need about {v * 0.15:,.1f} GB of memory (150 MB each); at most {MAX_WORKERS}")
    return v


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` for options that have a default, and nothing for None."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of `greatgame` (every option documented, defaults shown)."""
    fmt = _HelpFormatter
    p = argparse.ArgumentParser(
        prog="greatgame", formatter_class=fmt,
        description="Great Game: agent-based simulation of great-power influence in "
                    "Central Asia.")
    p.add_argument("--version", action="version", version=f"%(prog)s {sim.__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of unexpected errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of unexpected errors")

    _add_demo_parser(sub, common, fmt)
    r = sub.add_parser("run", formatter_class=fmt, parents=[common],
                       help="run one scenario with replications",
                       description="Run one scenario N times (seeded), print each power's "
                                   "regional share and write results and charts.")
    r.add_argument("scenario", metavar="SCENARIO",
                   help="a shipped scenario name (see `greatgame scenarios`) or a YAML path")
    r.add_argument("-n", "--replications", type=positive_int, default=DEFAULT_REPLICATIONS,
                   metavar="N", help="number of replications (runs with derived seeds)")
    r.add_argument("--seed", type=seed, default=ROOT_SEED, metavar="S",
                   help="root seed; replication seeds are derived from it")
    r.add_argument("--out", metavar="DIR", default=None,
                   help="result folder (default: results/<scenario>/): new, empty, or a "
                        "previous result (replaced); other folders are refused")
    r.add_argument("--end", metavar="YYYYQn", default=None, type=quarter,
                   help="last quarter to simulate (default: the scenario's period end)")
    add_uncertainty_options(r)
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check", formatter_class=fmt, parents=[common],
                       help="validate scenario files",
                       description="Load and validate scenario files without running them.")
    c.add_argument("files", nargs="+", metavar="FILE", help="scenario YAML files (or names)")
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("scenarios", formatter_class=fmt, parents=[common],
                       help="list the shipped scenarios",
                       description="List the shipped scenarios with one-line descriptions.")
    s.set_defaults(func=cmd_scenarios)

    v = sub.add_parser("validate", formatter_class=fmt, parents=[common],
                       help="check the baseline against stylized facts and trade history",
                       description="Run the baseline, check the stylized facts and compare "
                                   "trade with China against China customs (GACC) figures. "
                                   "Exits 1 if any fact fails.")
    v.add_argument("-n", "--replications", type=positive_int, default=DEFAULT_REPLICATIONS,
                   metavar="N", help="number of replications")
    v.add_argument("--seed", type=seed, default=ROOT_SEED, metavar="S", help="root seed")
    v.add_argument("--out", metavar="DIR", default="results/validate",
                   help="result folder: new, empty, or a previous result (replaced); other "
                        "folders are refused")
    v.add_argument("--posterior", metavar="FILE", default=None,
                   help="posterior for the predictive check (default: the installed "
                        "scenarios/calibration/<world>_posterior.csv, if any)")
    v.add_argument("--backtest-posterior", metavar="FILE", default=None,
                   help="posterior of a --train-until calibration (its posterior.csv or its "
                        "folder): predictive check on the held-out years")
    v.add_argument("--ppc-replications", type=positive_int, default=PPC_REPLICATIONS,
                   metavar="N", help="runs of the predictive checks (run i on posterior draw "
                                     "i; the ensemble engine)")
    v.set_defaults(func=cmd_validate)
    _add_compare_parsers(sub, common, fmt)

    a = sub.add_parser("app", formatter_class=fmt, parents=[common],
                       help="serve the classroom web page (Solara, on this machine only)",
                       description="Serve the classroom page: pick a scenario, switch events, "
                                   "move sliders, play and watch the charts and the map. "
                                   "Needs the app extra (pip install -e \".[app]\").")
    a.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (only this machine unless you change it)")
    a.add_argument("--port", type=_port, default=8765, metavar="P", help="port to listen on")
    a.set_defaults(func=cmd_app)

    from sim.cli.sweep import add_parsers as add_sweep_parsers

    add_sweep_parsers(sub, common, fmt)
    from sim.cli.calibrate import add_parsers as add_calibrate_parsers

    add_calibrate_parsers(sub, common, fmt)
    from sim.cli.discover import add_parsers as add_discover_parsers

    add_discover_parsers(sub, common, fmt)
    return p


def _stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so pools shut down and finished work stays saved."""
    import signal
    import threading

    def handler(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `greatgame` command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _stop_on_sigterm()
    args.command_line = _command(argv)
    try:
        return args.func(args)
    except InputError as e:  # bad input, wherever it was found: one line, exit 2
        more = len(getattr(e, "errors", [e])) - 1
        note = (f" (and {more} more problem{'s' if more > 1 else ''}: `greatgame check` "
                "lists them all)") if more else ""
        err(str(e) + note)
        return EXIT_INPUT
    except BrokenPipeError:  # e.g. `greatgame scenarios | head`: stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_FAIL
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 - the one place unexpected errors are reported
        if args.debug:
            raise
        msg = " ".join(str(e).split()) or "no message"
        err(f"{type(e).__name__}: {msg} (run with --debug for the traceback)")
        return EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
