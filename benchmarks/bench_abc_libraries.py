"""Measure pyabc and ELFI on the calibration problem: the same ABC-SMC budget, wall time.

The measurement behind the choice of ELFI (docs/calibration.md, section 11). Run it in a
fresh environment with the project and the library to measure:

    python -m venv /tmp/m && /tmp/m/bin/pip install -e . pyabc    # or elfi
    /tmp/m/bin/python benchmarks/bench_abc_libraries.py pyabc-serial   # or pyabc-futures,
                                                      # elfi-serial, elfi-futures

Population 100, 4 generations (threshold: the previous population's median distance),
2 replications per point with common seeds, the default free set, uniform priors on the
fit ranges, the calibration loss as the distance. `-futures` runs on the sweep's process
pool (2 workers): pyabc's ConcurrentFutureSampler (batch_size 10, each particle its own
model call), ELFI through a client over the executor (each batch of 50 particles one
ensemble batch). Prints wall time, points simulated, time per point, the thresholds and
the final effective sample size. Plain ELFI here: `sim.calibration.abc` also replaces
ELFI's prior density, which made ELFI's own proposals cost most of its time.
"""

import sys
import time

import numpy as np

from sim.analysis.fit import loss, observe, target_tuples
from sim.calibration.evaluate import DEFAULT_FREE, _base_scenario, simulate_points
from sim.runs.executors import make_executor
from sim.runs.runner import derive_seeds
from sim.scenario import history as H

POP, GENS, REPS, WORKERS = 100, 4, 2, 2
FREE = list(DEFAULT_FREE)
NAMES = [f.path for f in FREE]
TARGETS = H.fit_targets()
TUPLES = target_tuples(TARGETS)
RATIOS = H.mirror_ratios()
SEEDS = derive_seeds(20240601, REPS)
COUNT = {"sims": 0}


def figures(points):
    """Replication-mean model value of each figure, (n_points, n_figures)."""
    scn = _base_scenario("baseline", "2024Q4", None)
    out = simulate_points(scn, NAMES, points, SEEDS)
    obs = observe(out.arrays["pair_metrics"], out.quarters, out.partners, out.states, TUPLES,
                  RATIOS)
    return obs.reshape(len(points), REPS, -1).mean(axis=1)


def dist(row):
    return loss(row, TARGETS)[0]


# ------------------------------------------------------------------ pyabc

def pyabc_model(pars):
    return {"y": figures([[pars[n] for n in NAMES]])[0]}


def pyabc_distance(x, x0):
    return dist(x["y"])


def run_pyabc(kind):
    import os
    import tempfile

    import pyabc

    prior = pyabc.Distribution(**{n: pyabc.RV("uniform", f.lo, f.hi - f.lo)
                                  for n, f in zip(NAMES, FREE, strict=True)})
    db = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "abc.db")
    np.random.seed(1)
    if kind == "serial":
        ctx = None
        sampler = pyabc.SingleCoreSampler()
    else:
        ctx = make_executor("processes", WORKERS)
        ex, _ = ctx.__enter__()
        sampler = pyabc.ConcurrentFutureSampler(ex, client_max_jobs=2 * WORKERS, batch_size=10)
    abc = pyabc.ABCSMC(pyabc_model, prior, pyabc_distance, population_size=POP,
                       sampler=sampler, eps=pyabc.QuantileEpsilon(alpha=0.5))
    abc.new(db, {"y": TARGETS.value.to_numpy()})
    t0 = time.perf_counter()
    h = abc.run(max_nr_populations=GENS)
    secs = time.perf_counter() - t0
    if ctx:
        ctx.__exit__(None, None, None)
    pops = h.get_all_populations()
    df, w = h.get_distribution()
    ess = 1 / np.sum(w ** 2)
    return secs, int(pops.samples.sum()), list(pops.epsilon), ess


# ------------------------------------------------------------------ ELFI

def elfi_simulator(*params, batch_size=1, random_state=None):
    pts = np.column_stack([np.broadcast_to(np.asarray(p, float), (batch_size,)) for p in params])
    return figures(pts)


def elfi_discrepancy(*sims, observed=None):
    return np.array([dist(r) for r in sims[0]])


def _futures_client(executor, cores):
    import itertools

    import elfi.client

    class FuturesClient(elfi.client.ClientBase):
        def __init__(self):
            self.tasks, self.ids = {}, itertools.count()

        def apply(self, kallable, *args, **kwargs):
            i = next(self.ids)
            self.tasks[i] = executor.submit(kallable, *args, **kwargs)
            return i

        def apply_sync(self, kallable, *args, **kwargs):
            return kallable(*args, **kwargs)

        def get_result(self, task_id):
            return self.tasks.pop(task_id).result()

        def is_ready(self, task_id):
            return self.tasks[task_id].done()

        def remove_task(self, task_id):
            self.tasks.pop(task_id).cancel()

        def reset(self):
            self.tasks.clear()

        @property
        def num_cores(self):
            return cores

    return FuturesClient()


def run_elfi(kind, batch=50):
    import elfi

    m = elfi.ElfiModel()
    priors = [elfi.Prior("uniform", f.lo, f.hi - f.lo, model=m, name=f"p{i}")
              for i, f in enumerate(FREE)]
    sim = elfi.Simulator(elfi_simulator, *priors, observed=TARGETS.value.to_numpy()[None, :],
                         name="sim")
    d = elfi.Discrepancy(elfi_discrepancy, sim, name="d")
    ctx = None
    if kind == "serial":
        elfi.set_client("native")
    else:
        ctx = make_executor("processes", WORKERS)
        ex, _ = ctx.__enter__()
        elfi.set_client(_futures_client(ex, WORKERS))
    smc = elfi.SMC(d, batch_size=batch, seed=1)
    t0 = time.perf_counter()
    res = smc.sample(POP, quantiles=[0.5] * GENS, bar=False)
    secs = time.perf_counter() - t0
    if ctx:
        ctx.__exit__(None, None, None)
    eps = [p.threshold for p in res.populations]
    n_sim = sum(p.n_sim for p in res.populations)
    w = res.weights / res.weights.sum()
    return secs, int(n_sim), eps, 1 / np.sum(w ** 2)


if __name__ == "__main__":
    what = sys.argv[1]
    lib, kind = what.split("-")
    t0 = time.perf_counter()
    secs, n_sim, eps, ess = (run_pyabc if lib == "pyabc" else run_elfi)(kind)
    print(f"{what}: {secs:.1f} s, {n_sim} simulated points ({secs / n_sim * 1000:.0f} ms a "
          f"point), epsilons {[round(float(e), 4) for e in eps]}, ESS {ess:.0f}")
