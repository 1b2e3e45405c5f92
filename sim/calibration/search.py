"""Fit free parameters to the sourced history: the search, resumable on any executor.

The search (`calibrate`) evaluates the uncalibrated values (its start), a Latin hypercube
over the fit ranges, bounded Nelder-Mead from the best distinct points (side by side),
and one-at-a-time slices through the best point; every evaluation runs on a sweep
executor (serial, a process pool or Dask) and is logged as an atomic Parquet part, so an
interrupted calibration resumes without repeating a point. Points, observations and the
loss are in `sim.calibration.evaluate`; reports and the calibrated scenario layer in
`sim.calibration.report`.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.fit import (
    GROUPS,
    LOSS_VERSION,
    METRIC_ARRAYS,
    log_errors,
    loss,
    observe,
    path_targets,
    target_tuples,
)
from sim.calibration.evaluate import (
    DEFAULT_FREE,
    GOOD_FIT,
    LAYER_DIR,
    EvalLog,
    EvalTask,
    Evaluation,
    FreeParam,
    current_value,
    layer_path,
    parse_free,
    point_key,
    read_layer_entries,
    run_task,
    simulate_points,
    usable_free,
)
from sim.calibration.evaluate import _base_scenario as _base_scenario
from sim.errors import InputError
from sim.runs.executors import ExecutorInfo, make_executor
from sim.runs.sweep import LOCK_FILE, done_records, folder_lock
from sim.scenario import history as H
from sim.world.values import Scenario
from sim.world.vocabulary import ROOT_SEED, Params

__all__ = ["DEFAULT_FREE", "GOOD_FIT", "GROUPS", "LAYER_DIR", "LOSS_VERSION", "METRIC_ARRAYS",
           "EvalLog", "EvalTask", "Evaluation", "FreeParam", "Outcome",
           "Settings", "calibrate", "current_value", "fit_table", "layer_path", "log_errors",
           "loss", "observe", "parse_free", "path_targets", "point_key", "read_layer_entries",
           "run_task", "simulate_points", "target_tuples", "usable_free"]

SPEC_FILE = "calibration.json"


# --------------------------------------------------------------------------- the search

@dataclass
class Settings:
    """What a calibration does (the CLI's options)."""

    scenario: str = "baseline"
    free: list[FreeParam] = field(default_factory=lambda: list(DEFAULT_FREE))
    budget: int = 500
    replications: int = 4
    seed: int = ROOT_SEED
    train_until: int = H.FIT_END
    executor: str = "processes"
    workers: int | None = None
    scheduler: str | None = None
    starts: int = 3
    lhs_fraction: float = 0.3
    profile_points: int = 7
    facts_replications: int = 20


@dataclass
class Outcome:
    """What a calibration found."""

    settings: Settings
    scenario: Scenario
    targets: pd.DataFrame
    train: np.ndarray
    seeds: list[int]
    log: EvalLog
    start: Evaluation
    best: Evaluation
    facts: pd.DataFrame | None
    facts_checked: int
    seconds: float
    executor: ExecutorInfo | None
    fresh: int
    base_overrides: dict[str, float] = field(default_factory=dict)
    installed: Evaluation | None = None
    unconstrained: Evaluation | None = None

    @property
    def names(self) -> list[str]:
        """Free parameter paths."""
        return [f.path for f in self.settings.free]

    @property
    def worse_than_installed(self) -> bool:
        """True when the installed calibration's values fit better than the fitted point."""
        inst = self.installed
        return inst is not None and math.isfinite(inst.loss) and inst.loss < self.best.loss

    @property
    def facts_pass(self) -> bool:
        """True when the fitted point passes every stylized fact (or none was checked)."""
        return self.facts is None or bool(self.facts.passed.all())


def identity(settings: Settings, scenario: Scenario, targets: pd.DataFrame,
             seeds: Sequence[int]) -> dict[str, Any]:
    """What must match for a log to be resumed: scenario, free set, seeds, figures, loss."""
    tgt = targets[["series", "area", "partner", "year", "quarter", "value", "bound",
                   "weight"]].astype(str).to_csv(index=False)
    return {
        "scenario": settings.scenario,
        "scenario_digest": scenario_digest(scenario),
        "free": [asdict(f) for f in settings.free],
        "replications": settings.replications,
        "seeds": list(seeds),
        "train_until": settings.train_until,
        "figures_sha256": hashlib.sha256(tgt.encode()).hexdigest(),
        "loss": LOSS_VERSION,
    }


def scenario_digest(scenario: Scenario) -> str:
    """A hash of what a scenario runs: period, parameters, world values and events.

    Unlike file hashes it ignores where values come from, so installing a calibration
    (which changes the files, not the uncalibrated start) keeps a log resumable.
    """
    body = {
        "period": [scenario.start, scenario.end],
        "params": scenario.params.model_dump(),
        "powers": {k: v.model_dump() for k, v in scenario.world.powers.items()},
        "states": {k: v.model_dump() for k, v in scenario.world.states.items()},
        "pairs": {f"{j}|{s}": v.model_dump() for (j, s), v in scenario.world.pairs.items()},
        "events": [[e.id, e.quarter, e.duration, [[f.target, f.op, f.value] for f in e.effects]]
                   for e in scenario.events],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def prepare_folder(out: Path, ident: dict[str, Any], resume: bool) -> None:
    """Check the output folder and record the calibration's identity in it.

    Raises:
        InputError: the folder holds another calibration or other files, or this
            calibration's log without `resume`.
    """
    digest = check_folder(out, ident, resume)
    out.mkdir(parents=True, exist_ok=True)
    for tmp in (out / "runs").glob(".part-*.tmp") if (out / "runs").is_dir() else []:
        tmp.unlink()  # a killed writer's leftovers: never renamed, never counted
    tmp = out / f".{SPEC_FILE}.tmp"
    tmp.write_text(json.dumps({"identity_hash": digest, "identity": ident}, indent=1))
    os.replace(tmp, out / SPEC_FILE)


def check_folder(out: Path, ident: dict[str, Any], resume: bool) -> str:
    """Check, writing nothing, that the calibration may write into `out`.

    Returns:
        The calibration's identity hash.

    Raises:
        InputError: as for `prepare_folder`.
    """
    spec = out / SPEC_FILE
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
    if out.exists() and not out.is_dir():
        raise InputError(None, f"{out}: is a file, expected a folder")
    if spec.exists():
        old = json.loads(spec.read_text())
        if old.get("identity_hash") != digest:
            raise InputError(None,
                f"{out}: holds a different calibration (other free parameters, ranges, seeds, "
                "replications, training years, history or scenario files); choose another "
                "--out or delete it")
        if not resume and done_records(out):
            raise InputError(None, f"{out}: already holds evaluations of this calibration; "
                                   "add --resume to continue it, or choose another --out")
    elif out.exists() and any(p.name not in ("runs", LOCK_FILE) for p in out.iterdir()):
        raise InputError(None, f"{out}: exists and is not a calibration folder; choose "
                               "another --out")
    return digest


class _Stop(Exception):
    """Raised inside a local search when the calibration is being interrupted."""


class Evaluator:
    """Submits points to an executor, skipping any the log already holds."""

    def __init__(self, log: EvalLog, ex: cf.Executor, base: EvalTask, chunk: int,
                 window: int, progress: Callable[[int], None] | None):
        self.log, self.ex, self.base, self.chunk, self.window = log, ex, base, chunk, window
        self.progress = progress
        self.stop = threading.Event()

    def batch(self, stage: str, points: Sequence[Sequence[float]]) -> list[Evaluation]:
        """Evaluate many points (in chunks, a bounded window in flight); all results."""
        todo, seen = [], set()
        for p in points:
            k = point_key(p)
            if self.log.get(p) is None and k not in seen:
                todo.append(tuple(map(float, p)))
                seen.add(k)
        chunks = [todo[i:i + self.chunk] for i in range(0, len(todo), self.chunk)]
        inflight: dict[cf.Future, list] = {}
        try:
            while chunks or inflight:
                while chunks and len(inflight) < self.window:
                    c = chunks.pop(0)
                    task = EvalTask(**{**asdict_shallow(self.base), "points": tuple(c)})
                    inflight[self.ex.submit(run_task, task)] = c
                done, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    c = inflight.pop(fut)
                    for p, res in zip(c, fut.result(), strict=True):
                        self.log.add(stage, p, res)
                        if self.progress:
                            self.progress(1)
        except BaseException:
            for f in inflight:
                f.cancel()
            raise
        return [self.log.get(p) for p in points]

    def one(self, stage: str, point: Sequence[float]) -> Evaluation:
        """Evaluate one point (from a local-search thread)."""
        if self.stop.is_set():
            raise _Stop
        ev = self.log.get(point)
        if ev is not None:
            return ev
        task = EvalTask(**{**asdict_shallow(self.base), "points": (tuple(map(float, point)),)})
        res = self.ex.submit(run_task, task).result()[0]
        ev = self.log.add(stage, point, res)
        if self.progress:
            self.progress(1)
        return ev


def asdict_shallow(obj) -> dict[str, Any]:
    """A dataclass's fields as a dict, without copying nested values."""
    return {f: getattr(obj, f) for f in obj.__dataclass_fields__}


def _nelder_mead(ev: Evaluator, free: list[FreeParam], x0: np.ndarray, maxfev: int,
                 stage: str) -> None:
    """Bounded Nelder-Mead in the unit cube from x0, restarted until `maxfev` calls.

    Uses scipy's adaptive coefficients (better in many dimensions). Each restart begins
    from the best point so far with a smaller simplex (0.15, then 0.08, 0.04 of each
    range); it stops early when a restart no longer improves. Deterministic, so a resumed
    calibration replays the same points from its log.
    """
    from scipy.optimize import minimize

    d = len(free)
    calls = [0]

    def f(u):
        calls[0] += 1
        vals = [fp.from_unit(ui) for fp, ui in zip(free, u, strict=True)]
        return ev.one(stage, vals).loss

    x, fx = np.asarray(x0, float), None
    try:
        for step in (0.15, 0.08, 0.04, 0.04):
            left = maxfev - calls[0]
            if left < d + 2:
                break
            simplex = [x]
            for i in range(d):
                y = x.copy()
                y[i] = y[i] + step if y[i] + step <= 1 else y[i] - step
                simplex.append(y)
            res = minimize(f, x, method="Nelder-Mead", bounds=[(0.0, 1.0)] * d,
                           options={"maxfev": left, "initial_simplex": np.array(simplex),
                                    "xatol": 1e-3, "fatol": 1e-6, "adaptive": True})
            if fx is not None and res.fun > fx - 1e-5:
                break
            x, fx = np.clip(res.x, 0.0, 1.0), res.fun
    except _Stop:
        pass


def _distinct_best(evals: list[Evaluation], free: list[FreeParam], k: int,
                   min_dist: float = 0.2) -> list[Evaluation]:
    """The k lowest-loss points at least `min_dist` apart in the unit cube."""
    chosen: list[Evaluation] = []
    for e in sorted(evals, key=lambda e: e.loss):
        if not math.isfinite(e.loss):
            continue
        u = np.array([f.to_unit(e.values[f.path]) for f in free])
        if all(np.linalg.norm(u - np.array([f.to_unit(c.values[f.path]) for f in free]))
               >= min_dist for c in chosen):
            chosen.append(e)
        if len(chosen) == k:
            break
    return chosen


def plan_counts(settings: Settings) -> dict[str, int]:
    """How the budget splits: start points, Latin hypercube, local search, slices."""
    d = len(settings.free)
    lhs = max(d + 1, int(round(settings.budget * settings.lhs_fraction)))
    local = max(0, settings.budget - lhs - 2)
    if local:  # each local search gets at least d + 2 evaluations
        local = max(d + 2, local // settings.starts) * settings.starts
    return {"start": 2, "lhs": lhs, "local": local,
            "profile": settings.profile_points * d if settings.profile_points else 0}


def uncalibrated_values(scenario: Scenario, paths: Sequence[str]) -> list[float]:
    """Values before any calibration: the vocabulary's defaults and the world file's values."""
    from sim.scenario.scenarios import load_world, scenarios_dir

    world, _ = load_world(scenarios_dir() / "world" / f"{scenario.world.name}.yaml")
    plain = Scenario(scenario.name, scenario.description, scenario.path, world, Params(),
                     scenario.start, scenario.end, scenario.events, {})
    return [current_value(plain, p) for p in paths]


def backtest_reset(scenario: Scenario) -> dict[str, float]:
    """Every value the installed calibration layer sets, at its uncalibrated value.

    A backtest must not start from values fitted to the years it is judged on, so it runs
    the scenario with the layer undone (world file values and vocabulary defaults).
    """
    from sim.scenario.scenarios import scenarios_dir

    paths = [p for p in read_layer_entries(layer_path(scenarios_dir(), scenario.world.name))
             if p in scenario.overrides]
    return dict(zip(paths, uncalibrated_values(scenario, paths), strict=True))


MAX_CANDIDATES = 25
"""Candidates checked against the facts per round (each takes about 0.3 s)."""


def _select(ev: Evaluator, free: list[FreeParam], full: Scenario, settings: Settings,
            note: Callable[[str], None]) -> tuple[Evaluation, pd.DataFrame, int]:
    """The lowest-loss good fit that passes the nine facts, repairing if none does.

    Candidates are the evaluated points within `GOOD_FIT` of the best loss (at least 0.02
    apart in the unit cube, at most `MAX_CANDIDATES`), by loss. If none passes, the best
    point's neighbours (steps of 1/32, 1/16 and 1/8 of each range, one parameter at a
    time) are evaluated (stage `repair`) and those within `GOOD_FIT` of that best loss
    checked, by loss. If still none passes, the best point is returned with the facts it
    fails. Repair points never redefine the best or the band, so a resumed calibration
    selects what an uninterrupted one would.
    """
    from sim.calibration.facts import facts_pass

    names = [f.path for f in free]
    log, tried, first = ev.log, set(), []
    checked = 0

    def band() -> tuple[Evaluation, list[Evaluation]]:
        # Repair points never move the band: a resumed run checks what the first did.
        evs = [e for e in log.evals.values() if math.isfinite(e.loss)
               and e.stage not in ("installed", "repair")]
        top = min(evs, key=lambda e: e.loss)
        good = [e for e in evs if e.loss <= top.loss * GOOD_FIT]
        return top, _distinct_best(good, free, MAX_CANDIDATES, min_dist=0.02)

    def check(cands, what):
        nonlocal checked
        fails: dict[int, int] = {}
        n = 0
        for c in cands:
            if c.key in tried:
                continue
            tried.add(c.key)
            checked += 1
            n += 1
            res = facts_pass(full, names, [c.values[n] for n in names],
                             settings.facts_replications, ROOT_SEED)
            first.append((c, res))
            if res.passed.all():
                note(f"{what}: {n} checked against the facts; the first passing has loss "
                     f"{c.loss:.4f} (stage {c.stage})")
                return c, res
            for k in res.number[~res.passed]:
                fails[int(k)] = fails.get(int(k), 0) + 1
        note(f"{what}: none of {n} passes every fact ("
             + ", ".join(f"fact {k} fails in {v}" for k, v in sorted(fails.items())) + ")")
        return None

    top, cands = band()
    found = check(cands, "good fits")
    if found is None:
        pts = []
        for i, f in enumerate(free):
            for step in (1 / 32, 1 / 16, 1 / 8, -1 / 32, -1 / 16, -1 / 8):
                u = f.to_unit(top.values[f.path]) + step
                if 0.0 <= u <= 1.0:
                    pt = [top.values[n] for n in names]
                    pt[i] = f.from_unit(u)
                    pts.append(pt)
        repaired = ev.batch("repair", pts)
        found = check(sorted((e for e in repaired if e.loss <= top.loss * GOOD_FIT),
                             key=lambda e: e.loss), "the best point's neighbours")
    if found is None:  # keep the lowest loss and say what fails (the CLI will not install it)
        return (*first[0], checked)
    return (*found, checked)


def calibrate(settings: Settings, out: str | Path, *, resume: bool = False,
              progress: Callable[[int, int], None] | None = None,
              note: Callable[[str], None] | None = None) -> Outcome:
    """Fit the free parameters; every evaluation logged in `out/runs/` (resumable).

    Stages: the uncalibrated values (world file, vocabulary defaults: the start point,
    whatever calibration is installed, so the same command gives the same fit); a Latin
    hypercube (scipy.stats.qmc, seeded) over the fit ranges; bounded Nelder-Mead from the
    `starts` best distinct points, run side by side; one-at-a-time slices through the
    best point (identification). The installed calibration's values are evaluated for
    the report only. A backtest (`train_until` before the last history year) also undoes
    every other installed calibrated value, which was fitted to the test years. The
    fitted point is the lowest-loss good fit whose full scenario passes the nine stylized
    facts on the validate command's seeds (`_select`; `facts_replications` 0 skips the
    check). When none passes, the lowest-loss point is kept and `Outcome.facts` shows what
    fails. A backtest takes the lowest-loss point and only reports the facts: they speak
    of the test years.

    Raises:
        InputError: bad settings or output folder.
        KeyboardInterrupt: after finished evaluations are saved.
    """
    from scipy.stats import qmc

    from sim.runs.runner import derive_seeds
    from sim.scenario.scenarios import load_scenario

    t0 = time.perf_counter()
    note = note or (lambda _msg: None)
    out = Path(out)
    if not H.FIT_START < settings.train_until <= H.FIT_END:
        raise InputError(None, f"--train-until must be in {H.FIT_START + 1}-{H.FIT_END}")
    layered = load_scenario(settings.scenario)
    backtest = settings.train_until < H.FIT_END
    reset = backtest_reset(layered) if backtest else {}
    scenario = layered.with_overrides(reset) if reset else layered
    history = H.load_history()
    targets = H.fit_targets(history)
    train = (targets.year.astype(int) <= settings.train_until).to_numpy()
    if not train.any():
        raise InputError(None, "no sourced figure in the training years")
    kept, dropped = usable_free(settings.free, targets[train], scenario.world.state_names)
    if not kept:
        raise InputError(None, "no free parameter has a figure to fit in the training years")
    for line in dropped:
        note(line)
    settings = replace(settings, free=kept)
    free, names = settings.free, [f.path for f in settings.free]
    start_vals = [float(np.clip(v, f.lo, f.hi))
                  for f, v in zip(free, uncalibrated_values(scenario, names), strict=True)]
    # The installed values are evaluated even outside the fit ranges (a fit with narrower
    # --params ranges): whether this fit is better than the one in use decides --install.
    installed_vals = [current_value(layered, n) for n in names]
    if backtest or point_key(installed_vals) == point_key(start_vals):
        installed_vals = None
    seeds = derive_seeds(settings.seed, settings.replications)
    ident = identity(settings, scenario.with_overrides(dict(zip(names, start_vals,
                                                                strict=True))), targets, seeds)
    check_folder(out, ident, resume)  # before the lock, which creates the folder
    with folder_lock(out, "calibration"):  # one calibration writes into a folder at a time
        prepare_folder(out, ident, resume)
        log = EvalLog(out, names, targets, train)
        end = f"{H.FIT_END}Q4"
        base = EvalTask(str(scenario.path), end, tuple(names), (), tuple(seeds),
                        target_tuples(targets), tuple(sorted(H.mirror_ratios(history).items())),
                        overrides=tuple(sorted(reset.items())))
        counts = plan_counts(settings)
        total = sum(counts.values())
        done_count = [min(len(log.evals), total)]  # a resumed run starts where it stopped

        def tick(n):
            done_count[0] += n
            if progress:
                progress(min(done_count[0], total), total)

        d = len(free)
        lhs_unit = qmc.LatinHypercube(d=d, seed=np.random.default_rng(settings.seed)).random(
            counts["lhs"])
        lhs_pts = [[f.from_unit(u) for f, u in zip(free, row, strict=True)] for row in lhs_unit]

        with make_executor(settings.executor, settings.workers, settings.scheduler) as (ex, info):
            workers = max(1, info.workers)
            chunk = max(1, min(32, math.ceil(counts["lhs"] / (4 * workers))))
            window = 1 if info.kind == "serial" else 2 * workers
            ev = Evaluator(log, ex, base, chunk, window, tick)
            tick(0)
            note(f"evaluating {len(log.evals)} logged point(s) skipped" if log.evals else
                 "evaluating the start point")
            start = ev.batch("start", [start_vals])[0]
            installed = ev.batch("installed", [installed_vals])[0] if installed_vals else None
            ev.batch("lhs", lhs_pts)
            pool = [e for e in log.evals.values() if e.stage in ("start", "lhs")]
            seeds_pts = _distinct_best(pool, free, settings.starts)
            if counts["local"] and seeds_pts:
                per = counts["local"] // settings.starts
                threads = cf.ThreadPoolExecutor(max_workers=len(seeds_pts))
                try:
                    futs = [threads.submit(
                        _nelder_mead, ev, free,
                        np.array([f.to_unit(s.values[f.path]) for f in free]), per, f"local{i}")
                        for i, s in enumerate(seeds_pts)]
                    for fut in futs:
                        fut.result()
                except BaseException:
                    ev.stop.set()
                    threads.shutdown(wait=True, cancel_futures=True)
                    raise
                threads.shutdown(wait=True)
                tick(max(0, counts["local"] - sum(e.stage.startswith("local")
                                                  for e in log.evals.values())))
            best = min((e for e in log.evals.values()
                        if e.stage not in ("profile", "installed", "repair")), key=lambda e: e.loss)
            if settings.profile_points:
                grid = np.linspace(0.0, 1.0, settings.profile_points)
                pts = []
                for i, f in enumerate(free):
                    for u in grid:
                        p = [best.values[n] for n in names]
                        p[i] = f.from_unit(u)
                        pts.append(p)
                ev.batch("profile", pts)
            # A slice may pass below the point it goes through: rank every evaluation.
            unconstrained = min((e for e in log.evals.values() if math.isfinite(e.loss)
                                 and e.stage not in ("installed", "repair")), key=lambda e: e.loss)
            best, facts, checked = unconstrained, None, 0
            if settings.facts_replications and backtest:
                # The facts speak of 2021-2025: in a backtest they are reported, never used to
                # choose the point (that would let the test years in).
                from sim.calibration.facts import facts_pass

                facts = facts_pass(scenario, names, [best.values[n] for n in names],
                                   settings.facts_replications, ROOT_SEED)
                checked = 1
            elif settings.facts_replications:
                best, facts, checked = _select(ev, free, layered, settings, note)
        return Outcome(settings, scenario, targets, train, seeds, log, start, best, facts,
                       checked, time.perf_counter() - t0, info, log.fresh, reset, installed,
                       unconstrained)


def fit_table(outcome: Outcome) -> pd.DataFrame:
    """Per fitted figure: sourced value, model before and after (mean, band), log errors."""
    t = outcome.targets.copy()
    t["train"] = outcome.train
    for label, e in (("before", outcome.start), ("after", outcome.best)):
        t[f"model_{label}"] = e.mean
        t[f"p05_{label}"] = e.p05
        t[f"p95_{label}"] = e.p95
        t[f"log_error_{label}"] = log_errors(e.mean, outcome.targets)
    group = {s: g for g, ss in GROUPS.items() for s in ss}
    t.insert(0, "group", t.series.map(group))
    return t
