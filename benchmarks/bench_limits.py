"""Figures behind the input limits (issue 12): memory per run and quarter, refusal times.

Prints what one run's results take per simulated quarter (in the frames, and as the peak
growth of the process while a batch is run and written), against
`sim.runs.store.RESULT_BYTES_PER_RUN_QUARTER`, and how long `greatgame` takes to refuse
impossible requests. Usage: `python benchmarks/bench_limits.py [RUNS]` (default 20).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from sim.runs import store  # noqa: E402
from sim.runs.runner import derive_seeds, run_batch  # noqa: E402
from sim.scenario.scenarios import load_scenario  # noqa: E402


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def main(runs: int = 20) -> None:
    """Print the figures."""
    scenario = load_scenario("baseline")
    run_batch(scenario.with_end("2015Q2"), derive_seeds(1, 1))  # imports and warm-up
    before = _rss()
    result = run_batch(scenario, derive_seeds(1, runs))
    frames = sum(int(f.memory_usage(deep=True).sum())
                 for f in (result.shares, result.metrics, result.events))
    with tempfile.TemporaryDirectory() as d:
        now = datetime.now(UTC)
        store.write_run(Path(d) / "out", scenario, result, derive_seeds(1, runs), now, now)
    peak = _rss() - before
    rq = runs * scenario.n_quarters
    print(f"{runs} baseline runs x {scenario.n_quarters} quarters:")
    print(f"  result frames      {frames / rq / 1000:6.1f} kB per run-quarter")
    print(f"  peak RSS growth    {peak / rq / 1000:6.1f} kB per run-quarter (run and write)")
    print(f"  limit's estimate   {store.RESULT_BYTES_PER_RUN_QUARTER / 1000:6.1f} kB per "
          f"run-quarter; memory allowed {store.memory_limit() / 1e9:.1f} GB")
    for argv in (["run", "baseline", "-n", "1000000000000"],
                 ["run", "baseline", "--end", "9999Q4"],
                 ["check", "/dev/zero"]):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "sim", *argv], capture_output=True,
                              text=True, timeout=120)
        print(f"  greatgame {' '.join(argv)}: exit {proc.returncode} in "
              f"{time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
