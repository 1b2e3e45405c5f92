"""Run scenarios: `run_one(scenario, seed)` and `run_batch(...)`, and seed derivation.

Returns tidy DataFrames; saving is `sim.runs.store`'s job. No argument parsing, no plotting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sim.runs.tidy import shares_columns

if TYPE_CHECKING:  # importing Mesa takes half a second: only the Mesa runs need it
    from sim.engine.model import InfluenceModel
    from sim.world.values import Scenario



def derive_seeds(root: int, n: int) -> list[int]:
    """Replication seeds from one root seed via `SeedSequence(root).spawn(n)`.

    Replication i gets the same seed in every scenario (common random numbers), and each
    seed is a plain integer that reruns its replication alone.
    """
    children = np.random.SeedSequence(root).spawn(n)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


@dataclass
class RunResult:
    """Tidy results of one or more runs."""

    shares: pd.DataFrame
    metrics: pd.DataFrame
    events: pd.DataFrame

    @staticmethod
    def concat(results: list[RunResult]) -> RunResult:
        """Stack several results."""
        return RunResult(
            shares=pd.concat([r.shares for r in results], ignore_index=True),
            metrics=pd.concat([r.metrics for r in results], ignore_index=True),
            events=pd.concat([r.events for r in results], ignore_index=True),
        )


def collect(model: InfluenceModel, replication: int, seed: int) -> RunResult:
    """Turn a finished model's DataCollector records into tidy frames."""
    w = model.world
    rec = model.datacollector.model_vars
    quarters = list(rec["quarter"])
    T, J, S = len(quarters), w.n_partners, w.n_states
    partners, states = w.partners, w.states
    steps = np.arange(1, T + 1)

    # shares: per state and for the region, channel columns and the total.
    shares = pd.DataFrame(shares_columns(
        quarters, partners, states, np.stack(rec["channel_shares"])[None],
        np.stack(rec["state_influence"])[None], np.stack(rec["region_channels"])[None],
        np.stack(rec["region_influence"])[None]))
    steps = np.arange(1, T + 1)

    # metrics: per state and partner, with state- and power-level columns alongside.
    pm = {k: np.stack([d[k] for d in rec["pair_metrics"]]) for k in rec["pair_metrics"][0]}
    sm = {k: np.stack([d[k] for d in rec["state_metrics"]]) for k in rec["state_metrics"][0]}
    wm = {k: np.stack([d[k] for d in rec["power_metrics"]]) for k in rec["power_metrics"][0]}
    metrics = {
        "quarter": np.repeat(quarters, J * S),
        "step": np.repeat(steps, J * S),
        "state": np.tile(np.tile(states, J), T),
        "power": np.tile(np.repeat(partners, S), T),
    }
    for k, v in pm.items():
        metrics[k] = v.ravel()
    metrics["trade"] = metrics["exports"] + metrics["imports"]
    metrics["trade_balance"] = metrics["exports"] - metrics["imports"]
    debt_tot = pm["debt"].sum(axis=1, keepdims=True)
    metrics["debt_share"] = np.divide(pm["debt"], debt_tot, out=np.zeros_like(pm["debt"]),
                                      where=debt_tot > 0).ravel()
    for k, v in sm.items():
        metrics[k] = np.broadcast_to(v[:, None, :], (T, J, S)).ravel()
    for k, v in wm.items():
        full = np.concatenate([v, np.full((T, 1), np.nan)], axis=1)  # other has no budget
        metrics[k] = np.broadcast_to(full[:, :, None], (T, J, S)).ravel()
    metrics["engagement"] = metrics["engagement"] * 4.0  # to USD bn/yr
    metrics = pd.DataFrame(metrics)

    events = pd.DataFrame(model.event_log, columns=["quarter", "event"])
    for frame in (shares, metrics, events):
        frame.insert(0, "seed", np.int64(seed) if len(frame) else pd.Series(dtype="int64"))
        frame.insert(0, "replication", replication)
        frame.insert(0, "scenario", model.scenario.name)
    return RunResult(shares, metrics, events)


def run_one(scenario: Scenario, seed: int, replication: int = 0) -> RunResult:
    """Run one scenario with one seed to the end of its period.

    Args:
        scenario: A validated scenario.
        seed: The run's seed (passed to the model as `rng`).
        replication: Index recorded with the rows.

    Returns:
        Tidy shares, metrics and event-log frames.
    """
    from sim.engine.model import InfluenceModel

    model = InfluenceModel(scenario, rng=seed)
    model.run()
    return collect(model, replication, seed)


def run_batch(scenario: Scenario, seeds: list[int],
              progress: Callable[[int], None] | None = None) -> RunResult:
    """Run one scenario once per seed, serially; replication i uses seeds[i].

    Args:
        scenario: A validated scenario.
        seeds: One seed per replication.
        progress: Called with 1 after each finished run (e.g. a progress bar's update).
    """
    results = []
    for i, seed in enumerate(seeds):
        results.append(run_one(scenario, seed, replication=i))
        if progress is not None:
            progress(1)
    return RunResult.concat(results)
