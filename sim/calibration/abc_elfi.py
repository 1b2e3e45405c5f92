"""ELFI's side of the ABC calibration: the model graph, the batch log, the client.

`build_model` gives ELFI uniform priors on the fit ranges, a simulator node that runs a
whole batch of particles as one ensemble batch (`simulate_particles`, each particle on
its own seeds drawn from the batch's random state) and the calibration loss as the
distance node. `UniformBox` is the priors' joint density, computed directly. `client_class`
is ELFI's client interface over a sweep executor (`concurrent.futures`), answering a
batch from `BatchLog` when the batch was finished before (`batch_key` says what a batch
computes). The run itself is `sim.calibration.abc`.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import itertools
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.analysis.fit import losses, observe
from sim.calibration.evaluate import FreeParam, _base_scenario
from sim.runs.sweep_worker import part_records, write_part


def import_elfi():
    """ELFI, imported without the FutureWarning its arviz dependency prints on import."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import elfi
    return elfi


# --------------------------------------------------------------------------- the simulator

@dataclass(frozen=True)
class AbcTask:
    """What a batch needs on a worker: all picklable, no open files."""

    scenario_path: str
    end: str
    names: tuple[str, ...]
    replications: int
    targets: tuple[tuple, ...]
    ratios: tuple[tuple[str, float], ...]
    drop_after: str | None = None
    overrides: tuple[tuple[str, float], ...] = ()


def run_seeds(random_state: np.random.RandomState, n: int, replications: int) -> np.ndarray:
    """Each particle's replication seeds, (n, R), from the batch's random state."""
    return random_state.randint(0, 2 ** 62, size=(n, replications), dtype=np.int64)


def simulate_particles(task: AbcTask, points: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Run each point with its own seeds as one ensemble batch; replication-mean figures.

    Args:
        task: The scenario and figures.
        points: (n, d) parameter values, in `task.names` order.
        seeds: (n, R) run seeds.

    Returns:
        (n, figures): the mean over each point's runs of the model's value of each figure.
    """
    from sim.runs.runner import simulate

    base = _base_scenario(task.scenario_path, task.end, task.drop_after, task.overrides)
    scns, flat = [], []
    for pt, ss in zip(points, seeds, strict=True):
        scn = base.with_overrides(dict(zip(task.names, map(float, pt), strict=True))) \
            if task.names else base
        scns += [scn] * len(ss)
        flat += [int(s) for s in ss]
    out = simulate(scns, flat, engine="ensemble", record=("metrics",))
    obs = observe(out.arrays["pair_metrics"], out.quarters, out.partners, out.states,
                  task.targets, dict(task.ratios))
    return obs.reshape(len(points), seeds.shape[1], -1).mean(axis=1)


def elfi_simulator(*params, batch_size: int = 1, random_state=None, task: AbcTask):
    """ELFI's simulator node: a batch of particles -> their replication-mean figures."""
    points = np.column_stack([np.broadcast_to(np.asarray(p, dtype=float), (batch_size,))
                              for p in params])
    return simulate_particles(task, points, run_seeds(random_state, batch_size,
                                                      task.replications))


def elfi_distance(*simulated, observed=None, targets: pd.DataFrame, train: np.ndarray):
    """ELFI's discrepancy node: the calibration loss of each particle on the fitted figures."""
    return losses(np.asarray(simulated[0])[:, train], targets[train])


def node_name(i: int) -> str:
    """ELFI's node name of free parameter i (zero-padded: ELFI sorts names)."""
    return f"p{i:03d}"


def build_model(free: Sequence[FreeParam], task: AbcTask, targets: pd.DataFrame,
                train: np.ndarray):
    """The ELFI model: uniform priors on the fit ranges, the simulator, the distance node."""
    elfi = import_elfi()

    m = elfi.ElfiModel(name="greatgame")
    priors = [elfi.Prior("uniform", f.lo, f.hi - f.lo, model=m, name=node_name(i))
              for i, f in enumerate(free)]
    sim = elfi.Simulator(functools.partial(elfi_simulator, task=task), *priors,
                         observed=targets["value"].to_numpy(float)[None, :], name="figures")
    return elfi.Discrepancy(functools.partial(elfi_distance, targets=targets, train=train),
                            sim, name="distance")


class UniformBox:
    """The joint uniform prior's log density, computed directly.

    ELFI's `ModelPrior.logpdf` runs the model's graph on every call, and its SMC proposal
    calls it in a rejection loop (proposals outside the fit ranges are drawn again),
    hundreds of times per batch with a dozen parameters: measured, 70% of a run's time.
    This is the same density (the product of the priors' uniform densities, 0 outside
    the box), for the same calls.
    """

    def __init__(self, free: Sequence[FreeParam]):
        self.lo = np.array([f.lo for f in free], dtype=float)
        self.hi = np.array([f.hi for f in free], dtype=float)
        self.dim = len(free)
        self.log_density = -float(np.sum(np.log(self.hi - self.lo)))

    def logpdf(self, x):
        """Log density at x, (n, d) or (d,)."""
        x = np.asarray(x, dtype=float)
        flat = x.reshape(-1, self.dim)
        inside = np.all((flat >= self.lo) & (flat <= self.hi), axis=1)
        out = np.where(inside, self.log_density, -np.inf)
        return out.reshape(x.shape[:-1]) if x.ndim > 1 else float(out[0])

    def pdf(self, x):
        """Density at x."""
        return np.exp(self.logpdf(x))


# --------------------------------------------------------------------------- the log

def batch_key(loaded_net) -> str:
    """What an ELFI batch computes, as a key: its random state and every given value.

    A batch's random state is ELFI's seed for (generation, batch index); from the second
    generation on, its proposed parameters are given values of the graph too. ELFI names
    the constant nodes of the priors' bounds with random suffixes (`_p000_92a8`), so
    those count by value, not by name.
    """
    items = []
    for name in loaded_net.nodes:
        attr = loaded_net.nodes[name]
        if "output" not in attr:
            continue
        v = attr["output"]
        label = "" if re.fullmatch(r"_.+_[0-9a-f]{4}", name) else name
        if isinstance(v, np.random.RandomState):
            kind, keys, pos, *_ = v.get_state()
            data = f"{kind}:{pos}:".encode() + np.asarray(keys).tobytes()
        else:
            data = np.ascontiguousarray(np.asarray(v, dtype=float)).tobytes()
        items.append((label.encode(), data))
    h = hashlib.sha256()
    for label, data in sorted(items):
        h.update(label + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:32]


class BatchLog:
    """Finished ELFI batches, each an atomic Parquet part under `OUT/runs/`.

    A part holds a batch's output columns (the distance and the proposed parameters, one
    row per particle); its metadata the batch's key. Reading the parts back gives every
    finished batch, so a resumed run reads them instead of simulating them again.
    """

    def __init__(self, out: Path):
        self.out = out
        self.lock = threading.Lock()
        self.batches: dict[str, dict[str, np.ndarray]] = {}
        self.fresh = 0
        self.cached = 0
        runs = out / "runs"
        for part in sorted(runs.glob("part-*.parquet")) if runs.is_dir() else []:
            import pyarrow.parquet as pq

            recs = part_records(part)
            if len(recs) != 1:
                continue
            table = pq.read_table(part)
            self.batches[recs[0]["key"]] = {c: table[c].to_numpy() for c in table.column_names}

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """A finished batch's outputs, if logged."""
        return self.batches.get(key)

    def add(self, key: str, outputs: dict[str, Any], seconds: float) -> None:
        """Record a finished batch (written to disk before it counts)."""
        cols = {k: np.asarray(v, dtype=float).ravel() for k, v in outputs.items()}
        table = pa.table({k: pa.array(v) for k, v in cols.items()})
        rec = {"run_id": key, "key": key, "status": "ok", "points": int(len(next(iter(
            cols.values())))), "seconds": round(seconds, 4)}
        with self.lock:
            write_part(self.out, table, [rec])
            self.batches[key] = cols
            self.fresh += 1


def client_class():
    """The `ExecutorClient` class (defined on first use: it subclasses ELFI's, imported late)."""
    elfi = import_elfi()
    from elfi.executor import Executor

    class ExecutorClient(elfi.client.ClientBase):
        """ELFI's client interface over a `concurrent.futures` executor, with the batch log.

        ELFI submits each batch's graph with `submit`; a batch found in the log is
        answered at once from it, any other runs on the executor and is logged when ELFI
        collects it.
        """

        def __init__(self, executor: cf.Executor, cores: int, log: BatchLog,
                     on_batch: Callable[[int, bool], None]):
            self.executor, self.cores, self.log, self.on_batch = executor, cores, log, on_batch
            self.tasks: dict[int, tuple[str | None, cf.Future, bool, float]] = {}
            self.ids = itertools.count()

        def submit(self, loaded_net):
            key = batch_key(loaded_net)
            tid = next(self.ids)
            hit = self.log.get(key)
            if hit is not None:
                fut: cf.Future = cf.Future()
                fut.set_result(dict(hit))
                self.tasks[tid] = (key, fut, True, time.perf_counter())
            else:
                self.tasks[tid] = (key, self.executor.submit(Executor.execute, loaded_net),
                                   False, time.perf_counter())
            return tid

        def apply(self, kallable, *args, **kwargs):
            tid = next(self.ids)
            self.tasks[tid] = (None, self.executor.submit(kallable, *args, **kwargs), True,
                               time.perf_counter())
            return tid

        def apply_sync(self, kallable, *args, **kwargs):
            return kallable(*args, **kwargs)

        def get_result(self, task_id):
            key, fut, cached, t0 = self.tasks.pop(task_id)
            res = fut.result()
            if key is not None and not cached:
                self.log.add(key, res, time.perf_counter() - t0)
            elif key is not None:
                self.log.cached += 1
            if key is not None:
                self.on_batch(len(np.atleast_1d(next(iter(res.values())))), cached)
            return res

        def is_ready(self, task_id):
            return self.tasks[task_id][1].done()

        def remove_task(self, task_id):
            self.tasks.pop(task_id)[1].cancel()

        def reset(self):
            for _, fut, _, _ in self.tasks.values():
                fut.cancel()
            self.tasks.clear()

        @property
        def num_cores(self):
            return self.cores

    return ExecutorClient
