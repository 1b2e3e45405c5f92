"""The one door to run models: `simulate(scenarios, seeds, engine, record)` -> arrays.

Every command runs its models through `simulate`: `run`, `compare` and `explain` (the Mesa
engine, one model per run), sweeps (either engine) and calibration (the ensemble, a whole
population of runs in one batch). `sim.runs.tables` turns the arrays into tidy tables;
`run_one` and `run_batch` do both for the common case. Seeds come from `derive_seeds`.

Parameter uncertainty enters here too, in one place: `Uncertainty` says whether replication i
runs with parameter set i of a posterior (`sim.scenario.posterior`), and `replicate` turns a
scenario and those sets into one scenario per run (keys a scenario cannot take skipped).
Every command that runs replications (`run`, `compare`, `demo`, `explain`, sweeps, the
classroom band) gets its parameter sets through these two, with the same seeds as without.

numpy only at import time: sweep workers import this module without pandas or Mesa.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import InputError

if TYPE_CHECKING:
    from sim.engine.model import InfluenceModel
    from sim.runs.tables import RunResult
    from sim.scenario.posterior import Posterior
    from sim.world.values import Scenario

ENGINES = ("mesa", "ensemble")
"""`mesa`: one Mesa model per run. `ensemble`: all runs advanced as one batch through the
same step rules (equal to the Mesa runs to 1e-12, about 100 times faster)."""

RECORDS: dict[str, tuple[str, ...]] = {
    "shares": ("state_influence", "region_influence"),
    "channels": ("channel_shares", "region_channels"),
    "metrics": ("pair_metrics", "state_metrics", "power_metrics"),
    "alignment": ("alignment",),
}
"""What a caller can ask `simulate` to record, and the reporters (`sim.engine.reporters`)
each kind needs: influence shares, their split by channel, the quantities checked against
published figures, and each state's alignment terms (for `explain`)."""


def derive_seeds(root: int, n: int) -> list[int]:
    """Replication seeds from one root seed via `SeedSequence(root).spawn(n)`.

    Replication i gets the same seed in every scenario (common random numbers), and each
    seed is a plain integer that reruns its replication alone.
    """
    children = np.random.SeedSequence(root).spawn(n)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


# --------------------------------------------------------------------------- parameter uncertainty

UNCERTAINTY_MODES = ("posterior", "none")
"""`posterior`: replication i runs parameter set i drawn from a posterior; `none`: every
replication runs the scenario's own values (the intervals then cover model randomness only)."""

INTERVAL_LABELS = {
    "none": "model randomness only",
    "posterior": "model randomness and parameter uncertainty (posterior draws)",
}
"""What the intervals of results run in each mode cover, as reports say it."""

_EVENT_KEY = re.compile(r"events\.([a-z][a-z0-9_]*)\.effects\[(\d+)\]\.value")


@dataclass(frozen=True)
class Uncertainty:
    """Whether replications draw their parameters from a posterior, and from which.

    Attributes:
        mode: `posterior` or `none` (see `UNCERTAINTY_MODES`).
        posterior: The posterior drawn from in mode `posterior`; in mode `none`, a
            posterior known for the world (installed or named) or None. It shapes the runs
            only in mode `posterior`.
        sha256: SHA-256 of the posterior file's bytes (None without a posterior).
    """

    mode: str = "none"
    posterior: Posterior | None = field(default=None, compare=False)
    sha256: str | None = None

    def __post_init__(self):
        if self.mode not in UNCERTAINTY_MODES:
            raise ValueError(f"unknown uncertainty {self.mode!r} (expected posterior or none)")
        if self.mode == "posterior" and self.posterior is None:
            raise ValueError("uncertainty posterior needs a posterior")

    @property
    def drawn(self) -> bool:
        """Whether replications run posterior draws."""
        return self.mode == "posterior"

    @property
    def label(self) -> str:
        """What the intervals cover (`INTERVAL_LABELS`)."""
        return INTERVAL_LABELS[self.mode]

    @property
    def path(self) -> str | None:
        """The posterior file (None without one)."""
        return self.posterior.path if self.posterior is not None else None

    def parameter_sets(self, n: int, root_seed: int | None) -> list[dict[str, float]]:
        """One parameter set per replication: `Posterior.overrides(n, root_seed)`, or empty.

        Replication i's set depends only on the file, n and the root seed: the same in
        every scenario of a comparison.

        Raises:
            ValueError: posterior draws without a root seed.
        """
        if not self.drawn:
            return [{} for _ in range(n)]
        if root_seed is None:
            raise ValueError("posterior draws need the root seed they are sampled with")
        return self.posterior.overrides(n, int(root_seed))

    def other(self) -> Uncertainty | None:
        """The other mode with the same posterior (None when no posterior is known)."""
        if self.posterior is None:
            return None
        return Uncertainty("none" if self.drawn else "posterior", self.posterior, self.sha256)

    def record(self) -> dict[str, Any]:
        """What a manifest records: the mode, what intervals cover, the posterior drawn from."""
        post = None
        if self.drawn:
            p = self.posterior
            post = {"path": str(Path(p.path).resolve()) if p.path else "",
                    "sha256": self.sha256, "parameters": list(p.names), "draws": p.size,
                    "effective_size": round(p.effective_size(), 3), "meta": dict(p.meta)}
        return {"mode": self.mode, "interval": self.label, "posterior": post,
                "rule": ("replication i runs row i of Posterior.sample(n, root_seed) in "
                         "every scenario, with the seed it has without draws; keys naming an "
                         "event a scenario lacks are skipped for that scenario"
                         if self.drawn else "every replication runs the scenario's values")}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def installed_for(world: str) -> Posterior | None:
    """The posterior installed for a world (`sim.scenario.posterior.posterior_path`), or None.

    The one place commands and the classroom look for it (tests replace it to run as if
    none, or a file of theirs, were installed).
    """
    from sim.scenario.posterior import posterior_path
    from sim.scenario.scenarios import scenarios_dir

    path = posterior_path(scenarios_dir(), world)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _read_posterior(str(path), stamp)


@functools.lru_cache(maxsize=8)
def _read_posterior(path: str, stamp: int) -> Posterior:
    """A posterior file read once while it is unchanged (the classroom asks on every render)."""
    from sim.scenario.posterior import load_posterior

    return load_posterior(Path(path))


def choose_uncertainty(mode: str | None, posterior_file: str | Path | None,
                       worlds: Iterable[str]) -> Uncertainty:
    """The uncertainty a command runs with, from its options and the scenarios' world.

    Args:
        mode: `posterior`, `none`, or None for the default: `posterior` when a posterior
            file is named or installed for the world (`posterior_path`), else `none`.
        posterior_file: A posterior file named explicitly (`--posterior FILE`).
        worlds: The world names of the scenarios to run.

    Returns:
        The choice; in mode `none` it still carries the installed posterior, if any, so a
        report can say how much wider the intervals would be with posterior draws.

    Raises:
        InputError: mode `posterior` with no posterior to draw from, `--posterior` with
            mode `none`, or a posterior file that is missing or malformed.
    """
    from sim.scenario.posterior import load_posterior, posterior_path
    from sim.scenario.scenarios import scenarios_dir

    if mode is not None and mode not in UNCERTAINTY_MODES:
        raise InputError(None, f"--uncertainty {mode}: expected posterior or none")
    if posterior_file is not None:
        if mode == "none":
            raise InputError(None, f"--posterior {posterior_file} asks for posterior draws but "
                                   "--uncertainty none for none; drop one of them")
        post = load_posterior(Path(posterior_file))
        return Uncertainty("posterior", post, file_sha256(posterior_file))
    names = sorted(set(worlds))
    post = installed_for(names[0]) if len(names) == 1 else None
    if post is None:
        if mode == "posterior":
            where = (f"no posterior is installed for world {names[0]} "
                     f"({posterior_path(scenarios_dir(), names[0])})" if len(names) == 1 else
                     f"the scenarios belong to several worlds ({', '.join(names)})")
            raise InputError(None, f"--uncertainty posterior: {where}; install one with "
                                   "greatgame calibrate --method abc, or name a file with "
                                   "--posterior FILE")
        return Uncertainty("none")
    sha = file_sha256(post.path)
    return Uncertainty("none" if mode == "none" else "posterior", post, sha)


def check_draws(scenarios: Iterable[Scenario], uncertainty: Uncertainty, n: int,
                root_seed: int | None) -> list[dict[str, float]]:
    """Replications' parameter sets, checked against every scenario before anything runs.

    Returns:
        `uncertainty.parameter_sets(n, root_seed)`.

    Raises:
        InputError: a key or value of a drawn set does not fit a scenario (naming the file).
    """
    sets = uncertainty.parameter_sets(n, root_seed)
    if uncertainty.drawn:
        for scenario in scenarios:
            replicate(scenario, sets, source=uncertainty.path)
    return sets


def skipped_keys(scenario: Scenario, keys: Iterable[str]) -> list[str]:
    """Posterior keys a scenario cannot take: effect values of events it does not have.

    Only these are skipped (for this scenario); any other key that does not fit the
    scenario is an error when the parameter set is applied.
    """
    have = {e.id for e in scenario.events}
    out = []
    for key in keys:
        m = _EVENT_KEY.fullmatch(key)
        if m is not None and m.group(1) not in have:
            out.append(key)
    return out


def value_of(scenario: Scenario, key: str) -> tuple[float, ...] | None:
    """The values a posterior key names in a scenario before any draw (None: it lacks them).

    One value per concrete attribute (a wildcard names several) or the event effect's value.
    """
    from sim.world.values import expand_target

    m = _EVENT_KEY.fullmatch(key)
    if m is not None:
        ev = next((e for e in scenario.events if e.id == m.group(1)), None)
        i = int(m.group(2))
        return (ev.effects[i].value,) if ev is not None and i < len(ev.effects) else None
    w = scenario.world
    try:
        paths = expand_target(w, key)
    except ValueError:
        return None
    out = []
    for path in paths:
        if path[0] == "params":
            out.append(getattr(scenario.params, path[1]))
        elif path[0] == "powers":
            out.append(getattr(w.powers[path[1]], path[2]))
        elif path[0] == "states":
            out.append(getattr(w.states[path[1]], path[2]))
        else:
            out.append(getattr(w.pairs[(path[1], path[2])], path[3]))
    return tuple(float(v) for v in out)


def masked_changes(scenario: Scenario, reference: Scenario, keys: Iterable[str]) -> list[str]:
    """Posterior keys on which a what-if differs from its reference before the draws.

    Draws replace both values, so a comparison with posterior draws cannot show that
    change: a report says so. (A what-if about a calibrated parameter is better compared
    with `--uncertainty none`, or with a posterior that leaves that parameter out.)
    """
    out = []
    for key in keys:
        mine, theirs = value_of(scenario, key), value_of(reference, key)
        if mine is not None and theirs is not None and mine != theirs:
            out.append(key)
    return out


def applicable(scenario: Scenario, parameters: Mapping[str, float]) -> dict[str, float]:
    """The part of a parameter set a scenario takes (`skipped_keys` left out)."""
    skip = set(skipped_keys(scenario, parameters))
    return {k: float(v) for k, v in parameters.items() if k not in skip}


def replicate(scenario: Scenario, parameters: Sequence[Mapping[str, float]] | None,
              fixed: Mapping[str, Any] | None = None, *,
              source: str | None = None) -> list[Scenario]:
    """One scenario per replication: `scenario` with replication i's parameter set applied.

    The one rule by which a run gets its posterior draw: keys the scenario cannot take
    (`skipped_keys`) are left out, then `fixed` values (a sweep's own parameter point)
    are applied after the draw, so they win over it for the same attribute. Equal sets
    share one scenario object (the ensemble then builds their world once).

    Args:
        scenario: A validated scenario.
        parameters: One override mapping per replication (`Uncertainty.parameter_sets`);
            None or empty mappings leave the scenario as it is.
        fixed: Overrides applied to every replication after its draw.
        source: The posterior file the sets come from, named in errors.

    Raises:
        InputError: a key names nothing in the scenario's world, or a value is out of its
            range (naming the posterior file when the set came from one).
    """
    sets = list(parameters) if parameters is not None else [{}]
    cache: dict[tuple, Scenario] = {}
    out = []
    for params in sets:
        merged = applicable(scenario, params) | dict(fixed or {})
        key = tuple(merged.items())
        if key not in cache:
            try:
                cache[key] = scenario.with_overrides(merged) if merged else scenario
            except InputError as e:
                if source is None:
                    raise
                raise InputError(source, f"{e.message} (in scenario {scenario.name})",
                                 field=e.field) from None
        out.append(cache[key])
    return out


@dataclass
class Simulated:
    """What `simulate` returns: B runs' recorded arrays, run axis first.

    Attributes:
        names: Each run's scenario name.
        seeds: Each run's seed.
        quarters: Labels of the T recorded quarters.
        partners: The J partners (the acting powers, then `other`).
        states: The S states.
        arrays: Per reporter name, an array (B, T, ...) or, for reporters that return
            several quantities (`pair_metrics`, `alignment`, ...), a dict of such arrays.
        events: Each run's event log: (quarter, text) pairs in the order they fired.
    """

    names: list[str]
    seeds: list[int]
    quarters: list[str]
    partners: list[str]
    states: list[str]
    arrays: dict[str, Any]
    events: list[list[tuple[str, str]]]

    @property
    def size(self) -> int:
        """Number of runs."""
        return len(self.seeds)


def reporters_for(record: Sequence[str]) -> tuple[str, ...]:
    """The reporter names behind the kinds of record asked for (see `RECORDS`).

    Raises:
        ValueError: an unknown kind.
    """
    names = ["quarter"]
    for kind in record:
        if kind not in RECORDS:
            raise ValueError(f"unknown record {kind!r} (expected one of {', '.join(RECORDS)})")
        names += RECORDS[kind]
    return tuple(dict.fromkeys(names))


def _stack(per_quarter: list, axis: int) -> Any:
    """Stack a reporter's per-quarter values along `axis` (dicts key by key)."""
    if per_quarter and isinstance(per_quarter[0], dict):
        return {k: np.stack([d[k] for d in per_quarter], axis=axis) for k in per_quarter[0]}
    return np.stack(per_quarter, axis=axis)


def _join(runs: list[Any]) -> Any:
    """Concatenate one-run arrays (1, T, ...) (or dicts of them) along the run axis."""
    if isinstance(runs[0], dict):
        return {k: np.concatenate([r[k] for r in runs]) for k in runs[0]}
    return np.concatenate(runs)


def _one_run(x: Any) -> Any:
    """Give one run's arrays (or a dict of them) a run axis of length 1."""
    return {k: v[None] for k, v in x.items()} if isinstance(x, dict) else x[None]


def from_model(model: InfluenceModel, seed: int) -> Simulated:
    """What a Mesa model (stepped by its owner) has recorded so far, as a one-run `Simulated`."""
    rec = model.datacollector.model_vars
    arrays = {name: _one_run(_stack(values, axis=0)) for name, values in rec.items()
              if name != "quarter"}
    w = model.world
    return Simulated([model.scenario.name], [int(seed)], list(rec["quarter"]), list(w.partners),
                     list(w.states), arrays, [list(model.event_log)])


def _stop(scenario: Scenario, until: str | None) -> int:
    from sim.world.quarters import parse_quarter

    return scenario.end if until is None else min(parse_quarter(until), scenario.end)


def _mesa(scenarios: Sequence[Scenario], seeds: Sequence[int], names: tuple[str, ...],
          until: str | None, progress: Callable[[int], None] | None) -> Simulated:
    from sim.engine.model import InfluenceModel

    runs = []
    for scn, seed in zip(scenarios, seeds, strict=True):
        model = InfluenceModel(scn, rng=seed, record=names)
        stop = _stop(scn, until)
        while model.quarter < stop:
            model.step()
        runs.append(from_model(model, seed))
        del model
        if progress is not None:
            progress(1)
    first = runs[0]
    arrays = {name: _join([r.arrays[name] for r in runs]) for name in first.arrays}
    return Simulated([r.names[0] for r in runs], [r.seeds[0] for r in runs], first.quarters,
                     first.partners, first.states, arrays, [r.events[0] for r in runs])


def _ensemble(scenarios: Sequence[Scenario], seeds: Sequence[int], names: tuple[str, ...],
              until: str | None, progress: Callable[[int], None] | None) -> Simulated:
    from sim.engine.ensemble import Ensemble

    ens = Ensemble(scenarios, seeds, record=names)
    stop = _stop(scenarios[0], until)
    while ens.quarter < stop:
        ens.step()
    arrays = {name: _stack(ens.records[name], axis=1) for name in names if name != "quarter"}
    out = Simulated([s.name for s in scenarios], list(ens.seeds), ens.quarters(),
                    list(ens.world.partners), list(ens.world.states), arrays, ens.event_log)
    if progress is not None:
        progress(len(seeds))
    return out


def simulate(scenarios: Sequence[Scenario], seeds: Sequence[int], *, engine: str = "ensemble",
             record: Sequence[str] = ("shares",), until: str | None = None,
             progress: Callable[[int], None] | None = None) -> Simulated:
    """Run `scenarios[b]` with `seeds[b]` for every b and return what was recorded.

    Each run's numbers depend only on its scenario and seed: the same whatever the engine
    (to 1e-12), the batch it shares or the process it runs in.

    Args:
        scenarios: One validated scenario per run (with any overrides applied). The ensemble
            needs runs with the same actors, period and regional weighting.
        seeds: One seed per run (the Mesa model's `rng`).
        engine: `mesa` or `ensemble` (see `ENGINES`).
        record: Kinds of record to keep, from `RECORDS`; leaving out `channels` also skips
            computing the per-channel shares.
        until: Last quarter to simulate (default: the end of the period).
        progress: Called with the number of runs just finished.

    Returns:
        The recorded arrays, run axis first.

    Raises:
        ValueError: an unknown engine or record, or runs that cannot share a batch.
    """
    if len(scenarios) != len(seeds) or not seeds:
        raise ValueError("simulate needs one seed per scenario, and at least one run")
    names = reporters_for(record)
    if engine == "ensemble":
        return _ensemble(scenarios, seeds, names, until, progress)
    if engine == "mesa":
        return _mesa(scenarios, seeds, names, until, progress)
    raise ValueError(f"unknown engine {engine!r} (expected one of {', '.join(ENGINES)})")


def run_one(scenario: Scenario, seed: int, replication: int = 0) -> RunResult:
    """Run one scenario with one seed on the Mesa engine, to the end of its period.

    Args:
        scenario: A validated scenario.
        seed: The run's seed (passed to the model as `rng`).
        replication: Index recorded with the rows.

    Returns:
        Tidy shares, metrics and event-log frames (`sim.runs.tables.RunResult`).
    """
    return run_batch(scenario, [seed], replications=[replication])


def run_batch(scenario: Scenario, seeds: Sequence[int],
              progress: Callable[[int], None] | None = None, *,
              replications: Sequence[int] | None = None,
              parameters: Sequence[Mapping[str, float]] | None = None) -> RunResult:
    """Run one scenario once per seed on the Mesa engine; replication i uses seeds[i].

    Args:
        scenario: A validated scenario.
        seeds: One seed per replication.
        progress: Called with 1 after each finished run (e.g. a progress bar's update).
        replications: Replication index of each seed (default 0, 1, ...).
        parameters: One parameter set per seed (posterior draws), applied by `replicate`.
    """
    from sim.runs.tables import run_result

    scns = replicate(scenario, parameters) if parameters else [scenario] * len(seeds)
    sim_out = simulate(scns, seeds, engine="mesa",
                       record=("shares", "channels", "metrics"), progress=progress)
    return run_result(sim_out, replications)


def run_traced(scenario: Scenario, runs: Sequence[tuple[int, int]], label: str | None = None,
               until: str | None = None,
               parameters: Sequence[Mapping[str, float]] | None = None
               ) -> tuple[RunResult, Any]:
    """Run (replication, seed) pairs on the Mesa engine, recording alignment terms as well.

    Args:
        scenario: A validated scenario.
        runs: (replication index, seed) pairs.
        label: Written in the `scenario` column (default: the scenario's name).
        until: Last quarter to simulate (default: the end of the period).
        parameters: One parameter set per run (posterior draws), applied by `replicate`.

    Returns:
        The runs' tidy results (as `run_batch`'s) and their trace
        (`sim.runs.tables.alignment_frame`), in the order of `runs`.
    """
    from dataclasses import replace

    from sim.runs.tables import alignment_frame, run_result

    reps = [r for r, _ in runs]
    scns = replicate(scenario, parameters) if parameters else [scenario] * len(runs)
    sim_out = simulate(scns, [s for _, s in runs], engine="mesa",
                       record=("shares", "channels", "metrics", "alignment"), until=until)
    if label is not None:
        sim_out = replace(sim_out, names=[label] * sim_out.size)
    return run_result(sim_out, reps), alignment_frame(sim_out, reps)
