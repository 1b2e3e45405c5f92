"""The one door to run models: `simulate(scenarios, seeds, engine, record)` -> arrays.

Every command runs its models through `simulate`: `run`, `compare` and `explain` (the Mesa
engine, one model per run), sweeps (either engine) and calibration (the ensemble, a whole
population of runs in one batch). `sim.runs.tables` turns the arrays into tidy tables;
`run_one` and `run_batch` do both for the common case. Seeds come from `derive_seeds`.

numpy only at import time: sweep workers import this module without pandas or Mesa.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sim.engine.model import InfluenceModel
    from sim.runs.tables import RunResult
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
              replications: Sequence[int] | None = None) -> RunResult:
    """Run one scenario once per seed on the Mesa engine; replication i uses seeds[i].

    Args:
        scenario: A validated scenario.
        seeds: One seed per replication.
        progress: Called with 1 after each finished run (e.g. a progress bar's update).
        replications: Replication index of each seed (default 0, 1, ...).
    """
    from sim.runs.tables import run_result

    sim_out = simulate([scenario] * len(seeds), seeds, engine="mesa",
                       record=("shares", "channels", "metrics"), progress=progress)
    return run_result(sim_out, replications)


def run_traced(scenario: Scenario, runs: Sequence[tuple[int, int]], label: str | None = None,
               until: str | None = None) -> tuple[RunResult, Any]:
    """Run (replication, seed) pairs on the Mesa engine, recording alignment terms as well.

    Args:
        scenario: A validated scenario.
        runs: (replication index, seed) pairs.
        label: Written in the `scenario` column (default: the scenario's name).
        until: Last quarter to simulate (default: the end of the period).

    Returns:
        The runs' tidy results (as `run_batch`'s) and their trace
        (`sim.runs.tables.alignment_frame`), in the order of `runs`.
    """
    from dataclasses import replace

    from sim.runs.tables import alignment_frame, run_result

    reps = [r for r, _ in runs]
    sim_out = simulate([scenario] * len(runs), [s for _, s in runs], engine="mesa",
                       record=("shares", "channels", "metrics", "alignment"), until=until)
    if label is not None:
        sim_out = replace(sim_out, names=[label] * sim_out.size)
    return run_result(sim_out, reps), alignment_frame(sim_out, reps)
