"""Benchmark one baseline run (84 quarters) with the Mesa model.

Prints seconds per run, microseconds per agent-step (9 agents: 4 powers, 5 states), the
split between stepping the model and turning its records into tidy frames, and peak memory
(Python allocations via tracemalloc, and the process's maximum resident set).

    python benchmarks/bench_run.py [--runs 20]
"""

import argparse
import resource
import time
import tracemalloc

import numpy as np

from sim.engine.model import InfluenceModel
from sim.runs.runner import derive_seeds, from_model
from sim.runs.tables import run_result
from sim.scenario.scenarios import load_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="runs to time (default 20)")
    args = ap.parse_args()
    scn = load_scenario("baseline")
    seeds = derive_seeds(1, args.runs + 1)
    model = InfluenceModel(scn, rng=seeds[-1])  # warm-up: imports, caches
    model.run()
    run_result(from_model(model, seeds[-1]))

    step_t, collect_t = [], []
    for s in seeds[:-1]:
        t0 = time.perf_counter()
        model = InfluenceModel(scn, rng=s)
        model.run()
        t1 = time.perf_counter()
        run_result(from_model(model, s))
        t2 = time.perf_counter()
        step_t.append(t1 - t0)
        collect_t.append(t2 - t1)
    n_agents = len(model.world.powers) + len(model.world.states)
    agent_steps = scn.n_quarters * n_agents

    tracemalloc.start()
    model = InfluenceModel(scn, rng=seeds[0])
    model.run()
    run_result(from_model(model, seeds[0]))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    total = np.array(step_t) + np.array(collect_t)
    print(f"baseline run: {scn.n_quarters} quarters, {n_agents} agents, {args.runs} runs")
    print(f"seconds per run (model + tidy frames): median {np.median(total):.4f}, "
          f"min {total.min():.4f}, max {total.max():.4f}")
    print(f"  of which stepping the model:         median {np.median(step_t):.4f}")
    print(f"  of which building tidy frames:       median {np.median(collect_t):.4f}")
    print(f"microseconds per agent-step (model only): "
          f"{np.median(step_t) / agent_steps * 1e6:.1f}")
    print(f"peak Python allocations for one run: {peak / 1e6:.1f} MB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max resident set: {rss:.0f} MB")


if __name__ == "__main__":
    main()
