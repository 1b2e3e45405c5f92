"""Approximate Bayesian computation over the free parameters: ABC-SMC with ELFI.

`run_abc` samples the posterior of the free parameters (uniform priors on their fit
ranges, `sim.calibration.evaluate.DEFAULT_FREE` unless told otherwise) given the sourced
history, with ELFI's ABC-SMC (`elfi.SMC`: each generation a rejection sampler whose
proposal is the previous generation's weighted particles, perturbed; threshold = a
quantile of the previous generation's distances). The distance is the calibration loss
(`sim.analysis.fit.loss`) of a particle's replication mean, each particle run with its
own seeds (docs/calibration.md, section 11).

ELFI hands the simulator whole batches of particles; a batch is one ensemble batch of
points x replications, computed on a sweep executor (serial, processes, Dask) through
`ExecutorClient`, ELFI's client interface over a `concurrent.futures` executor. Every
finished batch is written to `OUT/runs/` as an atomic Parquet part (the sweep's writer),
keyed by what the batch computes (its random state and proposed parameters). ELFI is
deterministic given its seed, so a resumed run replays the same batches: those in the log
are read back, not simulated, and the run continues where it stopped.

ELFI's model graph, the batch log and the client are in `sim.calibration.abc_elfi`;
reports, charts and the installed layer in `sim.calibration.abc_report`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis.fit import LOSS_VERSION, target_tuples
from sim.calibration.abc_elfi import (
    AbcTask,
    BatchLog,
    UniformBox,
    build_model,
    client_class,
    import_elfi,
    node_name,
)
from sim.calibration.evaluate import (
    DEFAULT_FREE,
    EvalTask,
    FreeParam,
    current_value,
    point_key,
    run_task,
    usable_free,
)
from sim.errors import InputError
from sim.runs.executors import ExecutorInfo, make_executor
from sim.runs.sweep import folder_lock
from sim.scenario import history as H
from sim.world.values import Scenario
from sim.world.vocabulary import ROOT_SEED

DISTANCE_VERSION = f"{LOSS_VERSION}/own-seeds-1"
"""The ABC distance: the loss of a particle's replication mean, its runs on its own seeds."""

ABC_STREAM = 0xABC5
"""Mixed into the root seed to give ELFI its seed (never shared with a run's draws)."""

CHECK_REPLICATIONS = 8
"""Runs (common seeds) scoring the point summaries, as the optimiser scores its points."""

LIBRARY = "ELFI"

GENERATIONS_FILE = "generations.json"
"""Each finished generation's threshold, simulations and sampling time (for resumes)."""


@dataclass
class AbcSettings:
    """What an ABC calibration does (the CLI's options)."""

    scenario: str = "baseline"
    free: list[FreeParam] = field(default_factory=lambda: list(DEFAULT_FREE))
    population: int = 500
    generations: int = 10
    replications: int = 2
    quantile: float = 0.5
    min_epsilon: float = 0.0
    min_acceptance: float = 0.02
    time_limit: float | None = 720.0
    batch: int = 100
    seed: int = ROOT_SEED
    train_until: int = H.FIT_END
    executor: str = "processes"
    workers: int | None = None
    scheduler: str | None = None
    facts_replications: int = 20

    def check(self) -> None:
        """Refuse settings no run can use.

        Raises:
            InputError: a count below 1, a quantile outside (0, 1), a negative epsilon or
                acceptance rate, or a time limit that is not positive.
        """
        for name in ("population", "generations", "replications", "batch"):
            if getattr(self, name) < 1:
                raise InputError(None, f"--{name} must be at least 1")
        if not 0 < self.quantile < 1:
            raise InputError(None, "--quantile must lie strictly between 0 and 1")
        if self.min_epsilon < 0 or not 0 <= self.min_acceptance < 1:
            raise InputError(None, "--min-epsilon must be >= 0 and --min-acceptance in [0, 1)")
        if self.time_limit is not None and not self.time_limit > 0:
            raise InputError(None, "--time-limit must be positive")


@dataclass
class Generation:
    """One ABC-SMC generation: its threshold, cost and the weighted particles it kept."""

    number: int
    epsilon: float
    simulations: int
    acceptance_rate: float
    ess: float
    seconds: float
    values: np.ndarray
    weights: np.ndarray
    distances: np.ndarray


@dataclass
class AbcOutcome:
    """What an ABC calibration found (the last generation is the posterior)."""

    settings: AbcSettings
    scenario: Scenario
    targets: pd.DataFrame
    train: np.ndarray
    generations: list[Generation]
    stopped: str
    seconds: float
    executor: ExecutorInfo | None
    fresh: int
    cached: int
    base_overrides: dict[str, float] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Free parameter paths."""
        return [f.path for f in self.settings.free]

    @property
    def posterior(self) -> Generation:
        """The last generation."""
        return self.generations[-1]

    def mean(self) -> dict[str, float]:
        """Weighted posterior mean of each parameter."""
        p = self.posterior
        return dict(zip(self.names, map(float, p.weights @ p.values), strict=True))

    def best_draw(self) -> dict[str, float]:
        """The accepted particle with the smallest distance."""
        p = self.posterior
        return dict(zip(self.names, map(float, p.values[int(np.argmin(p.distances))]),
                        strict=True))


# --------------------------------------------------------------------------- the run

def elfi_seed(seed: int) -> int:
    """ELFI's seed (32 bits) from the root seed."""
    return int(np.random.SeedSequence([int(seed) & (2 ** 63 - 1), ABC_STREAM])
               .generate_state(1)[0])


def identity(settings: AbcSettings, scenario: Scenario, targets: pd.DataFrame
             ) -> dict[str, Any]:
    """What must match for a log to be resumed.

    Everything that decides the batches: scenario, free set, priors, population, batch
    size, quantile, replications, seed, figures, distance and ELFI's version. The number
    of generations and the stopping rules may change: a resumed run may go further.
    """
    elfi = import_elfi()

    from sim.calibration.search import scenario_digest

    tgt = targets[["series", "area", "partner", "year", "quarter", "value", "bound",
                   "weight"]].astype(str).to_csv(index=False)
    return {
        "method": "abc",
        "library": f"elfi {elfi.__version__}",
        "scenario": settings.scenario,
        "scenario_digest": scenario_digest(scenario),
        "free": [asdict(f) for f in settings.free],
        "population": settings.population,
        "batch": settings.batch,
        "quantile": settings.quantile,
        "replications": settings.replications,
        "seed": settings.seed,
        "train_until": settings.train_until,
        "figures_sha256": hashlib.sha256(tgt.encode()).hexdigest(),
        "distance": DISTANCE_VERSION,
    }


def prepare(settings: AbcSettings, targets: pd.DataFrame | None = None
            ) -> tuple[Scenario, Scenario, pd.DataFrame, np.ndarray, dict[str, float],
                       AbcSettings, list[str]]:
    """Load the scenario and figures, drop unfittable parameters, undo a backtest's layer.

    Returns:
        (the scenario with its installed layer, the scenario run, the figures, the
        training mask, the backtest's reset values, the settings with the parameters
        kept, one line per parameter dropped).
    """
    from dataclasses import replace

    from sim.calibration.search import backtest_reset
    from sim.scenario.scenarios import load_scenario

    settings.check()
    if not H.FIT_START < settings.train_until <= H.FIT_END:
        raise InputError(None, f"--train-until must be in {H.FIT_START + 1}-{H.FIT_END}")
    layered = load_scenario(settings.scenario)
    backtest = settings.train_until < H.FIT_END
    reset = backtest_reset(layered) if backtest else {}
    scenario = layered.with_overrides(reset) if reset else layered
    if targets is None:
        targets = H.fit_targets(H.load_history())
    train = (targets.year.astype(int) <= settings.train_until).to_numpy()
    if not train.any():
        raise InputError(None, "no sourced figure in the training years")
    kept, dropped = usable_free(settings.free, targets[train], scenario.world.state_names)
    if not kept:
        raise InputError(None, "no free parameter has a figure to fit in the training years")
    return layered, scenario, targets, train, reset, replace(settings, free=kept), dropped


def run_abc(settings: AbcSettings, out: str | Path, *, resume: bool = False,
            progress: Callable[[int, int], None] | None = None,
            note: Callable[[str], None] | None = None,
            targets: pd.DataFrame | None = None) -> AbcOutcome:
    """Sample the posterior of the free parameters by ABC-SMC; every batch logged in `out`.

    Generation 0 draws `population / quantile` particles from the prior and keeps the
    `population` closest; generation t proposes from generation t-1 (ELFI's Gaussian
    mixture with twice the weighted variance) and accepts particles within the
    `quantile` of generation t-1's distances, until `population` are accepted. It stops
    after `generations`, when the threshold reaches `min_epsilon`, when a generation
    accepts less than `min_acceptance` of its proposals, or before a generation expected
    to end after `time_limit` seconds of sampling (the generations' own times; one a
    resumed run replays counts the time it first took, from `OUT/generations.json`).
    Same seed, same posterior, whatever the executor.
    `targets` replaces the sourced figures (rows as `sim.scenario.history.fit_targets`
    gives them: synthetic figures, to check that a known parameter is recovered).

    Raises:
        InputError: bad settings or output folder.
        KeyboardInterrupt: after finished batches are saved.
    """
    elfi = import_elfi()

    from sim.calibration.search import check_folder, prepare_folder

    t0 = time.perf_counter()
    note = note or (lambda _msg: None)
    out = Path(out)
    layered, scenario, targets, train, reset, settings, dropped = prepare(settings, targets)
    for line in dropped:
        note(line)
    free, names = settings.free, [f.path for f in settings.free]
    ident = identity(settings, scenario, targets)
    check_folder(out, ident, resume)
    task = AbcTask(str(scenario.path), f"{H.FIT_END}Q4", tuple(names), settings.replications,
                   target_tuples(targets), tuple(sorted(H.mirror_ratios().items())),
                   overrides=tuple(sorted(reset.items())))
    gens: list[Generation] = []
    stopped = f"{settings.generations} generations done"
    with folder_lock(out, "calibration"):
        prepare_folder(out, ident, resume)
        log = BatchLog(out)
        recorded = _recorded_seconds(out) if resume else {}
        with make_executor(settings.executor, settings.workers, settings.scheduler) as (ex,
                                                                                       info):
            counter = {"points": 0, "round_points": 0}
            state: dict[str, Any] = {"smc": None, "t": 0, "last": None}

            def on_batch(n: int, cached: bool) -> None:
                counter["points"] += n
                counter["round_points"] += n
                if progress:
                    progress(counter["points"], _planned(state, counter, settings))

            client = client_class()(ex, max(1, info.workers), log, on_batch)
            previous = elfi.client._client  # ELFI keeps its client in a module global
            elfi.client.set_client(client)
            quiet = logging.getLogger("elfi.methods.utils")
            level = quiet.level
            quiet.setLevel(logging.ERROR)  # "difficult to find valid proposals": counted below
            try:
                smc = elfi.SMC(build_model(free, task, targets, train),
                               batch_size=settings.batch, seed=elfi_seed(settings.seed),
                               max_parallel_batches=2 * max(1, info.workers))
                smc._prior = UniformBox(free)  # ELFI's own runs its graph per call: slow
                state["smc"] = smc
                for t in range(settings.generations):
                    expected = _next_seconds(gens)
                    if t and settings.time_limit and sum(g.seconds for g in gens) + \
                            expected > settings.time_limit:
                        stopped = (f"time limit: generation {t} would end after "
                                   f"{settings.time_limit:.0f} s (expected to take "
                                   f"{expected:.0f} s more)")
                        break
                    state["t"], counter["round_points"] = t, 0
                    g0 = time.perf_counter()
                    res = smc.sample(settings.population, quantiles=[settings.quantile],
                                     bar=False)
                    gen = _generation(res.populations[-1], t, free, recorded.get(
                        t, time.perf_counter() - g0))  # replayed: the time it first took
                    gens.append(gen)
                    _record_generations(out, gens)
                    state["last"] = gen.simulations
                    note(f"generation {t}: epsilon {gen.epsilon:.4f}, {gen.simulations} "
                         f"simulated, acceptance {gen.acceptance_rate:.1%}, effective sample "
                         f"size {gen.ess:.0f}, {gen.seconds:.0f} s")
                    if gen.epsilon <= settings.min_epsilon:
                        stopped = f"epsilon {gen.epsilon:.4f} reached --min-epsilon"
                        break
                    if t + 1 < settings.generations and \
                            gen.acceptance_rate < settings.min_acceptance:
                        stopped = (f"acceptance rate {gen.acceptance_rate:.2%} fell below "
                                   f"--min-acceptance {settings.min_acceptance:.2%}")
                        break
            finally:
                quiet.setLevel(level)
                client.reset()
                elfi.client.set_client(previous)
    return AbcOutcome(settings, scenario, targets, train, gens, stopped,
                      time.perf_counter() - t0, info, log.fresh, log.cached, reset, dropped)


def _next_seconds(gens: Sequence[Generation]) -> float:
    """How long the next generation is expected to take, in seconds of sampling.

    The last generation's simulations, grown as they grew from the one before (acceptance
    falls as epsilon does), at the seconds per simulated point of the generations so far.
    """
    if not gens:
        return 0.0
    last = gens[-1]
    growth = last.simulations / gens[-2].simulations if len(gens) > 1 else 1.5
    per_point = sum(g.seconds for g in gens) / max(1, sum(g.simulations for g in gens))
    return last.simulations * max(1.0, growth) * per_point


def _recorded_seconds(out: Path) -> dict[int, float]:
    """Each finished generation's sampling time, as the run that sampled it recorded it."""
    path = out / GENERATIONS_FILE
    if not path.is_file():
        return {}
    try:
        return {int(g["generation"]): float(g["seconds"]) for g in json.loads(path.read_text())}
    except (ValueError, KeyError, TypeError):
        return {}


def _record_generations(out: Path, gens: Sequence[Generation]) -> None:
    """Record the generations' thresholds, counts and times (atomically).

    Generations recorded before and not reached now (a resumed run that stopped earlier)
    keep their entries.
    """
    path = out / GENERATIONS_FILE
    try:
        old = {int(g["generation"]): g for g in json.loads(path.read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        old = {}
    old.update({g.number: {"generation": g.number, "epsilon": g.epsilon,
                           "simulations": g.simulations, "seconds": round(g.seconds, 3)}
                for g in gens})
    tmp = out / f".{GENERATIONS_FILE}.tmp"
    tmp.write_text(json.dumps([old[k] for k in sorted(old)], indent=1))
    os.replace(tmp, path)


def _planned(state: dict[str, Any], counter: dict[str, int], settings: AbcSettings) -> int:
    """Points expected in all: done, the current generation's rest, later generations."""
    smc, t = state["smc"], state["t"]
    left = 0
    if smc is not None and smc._rejection is not None:
        rej = smc._rejection
        left = max(0, (rej.objective.get("n_batches", 0) - rej.state.get("n_batches", 0))
                   * settings.batch)
    per_gen = state["last"] or math.ceil(settings.population / settings.quantile)
    return counter["points"] + left + max(0, settings.generations - t - 1) * per_gen


def _generation(pop, t: int, free: Sequence[FreeParam], seconds: float) -> Generation:
    """A generation from ELFI's population sample (values in the free set's order)."""
    values = np.column_stack([np.asarray(pop.outputs[node_name(i)], dtype=float)
                              for i in range(len(free))])
    w = np.asarray(pop.weights, dtype=float)
    w = w / w.sum()
    return Generation(t, float(pop.threshold), int(pop.n_sim),
                      len(w) / max(1, int(pop.n_sim)), float(1.0 / np.sum(w ** 2)), seconds,
                      values, w, np.asarray(pop.discrepancies, dtype=float))


# --------------------------------------------------------------------------- point scores

def score_points(outcome: AbcOutcome, points: dict[str, dict[str, float]],
                 replications: int = CHECK_REPLICATIONS) -> dict[str, dict[str, Any]]:
    """Score labelled points as the optimiser does: common seeds, replication means, loss.

    Returns:
        Per label: `loss` and `components` on the fitted figures, `mean`/`p05`/`p95` per
        figure, `values`.
    """
    from sim.analysis.fit import loss
    from sim.runs.runner import derive_seeds

    names = outcome.names
    seeds = derive_seeds(outcome.settings.seed, replications)
    task = EvalTask(str(outcome.scenario.path), f"{H.FIT_END}Q4", tuple(names),
                    tuple(tuple(float(v[n]) for n in names) for v in points.values()),
                    tuple(seeds), target_tuples(outcome.targets),
                    tuple(sorted(H.mirror_ratios().items())),
                    overrides=tuple(sorted(outcome.base_overrides.items())))
    res = run_task(task)
    out = {}
    train = outcome.train
    for (label, vals), r in zip(points.items(), res, strict=True):
        total, comps = loss(r["mean"][train], outcome.targets[train])
        out[label] = {"loss": total, "components": comps, "mean": r["mean"], "p05": r["p05"],
                      "p95": r["p95"], "values": dict(vals), "key": point_key(
                          [vals[n] for n in names])}
    return out


def reference_points(outcome: AbcOutcome, layered: Scenario) -> dict[str, dict[str, float]]:
    """The points a report compares: uncalibrated, installed (if any), posterior mean, best.

    Installed values are left out in a backtest (they were fitted to the test years) and
    when they equal the uncalibrated ones.
    """
    from sim.calibration.search import uncalibrated_values

    names = outcome.names
    start = dict(zip(names, (float(np.clip(v, f.lo, f.hi)) for f, v in zip(
        outcome.settings.free, uncalibrated_values(outcome.scenario, names), strict=True)),
        strict=True))
    pts = {"uncalibrated": start}
    inst = {n: current_value(layered, n) for n in names}
    if not outcome.base_overrides and point_key(list(inst.values())) != point_key(
            list(start.values())):
        pts["installed"] = inst
    pts["posterior_mean"] = outcome.mean()
    pts["best_draw"] = outcome.best_draw()
    return pts
