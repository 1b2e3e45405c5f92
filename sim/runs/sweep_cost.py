"""What a sweep would cost on this machine (memory, disk, time), judged before it runs.

`check_size` refuses a sweep that needs more memory or disk than there is, with one line
saying what it would cost; `estimate` gives the figures (the sweep header prints them).
The constants are measured (benchmarks/bench_sweep_checks.py, docs/sweeps.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError
from sim.scenario.sweepfile import SweepPlan

DEFAULT_CHUNK = {"mesa": 25, "ensemble": 1000}
"""Most runs per task by engine: dozens for Mesa, a batch of hundreds for the ensemble."""


def default_chunk(engine: str, n_runs: int, workers: int) -> int:
    """Runs per task: the engine's default, but at least two tasks per worker to share out."""
    if engine == "mesa":
        return DEFAULT_CHUNK["mesa"]
    return max(1, min(DEFAULT_CHUNK["ensemble"], -(-n_runs // (2 * max(workers, 1)))))


PARENT_BYTES_PER_RUN = 1_000
"""The parent's memory per run: its record read back from the parts (560-710 bytes
measured), its done flag, its final shares for the chart. The summary adds 4 bytes per
kept regional share."""
WORKER_BASE_BYTES = 200 * 2**20
"""A worker process with the model imported."""
ENSEMBLE_BYTES_PER_RUN_QUARTER = 1_000
"""An ensemble batch's arrays (about 800 bytes per run and quarter measured at 400 runs)."""
DISK_BYTES_PER_ROW = 8
"""A stored row (zstd, dictionary-encoded labels): 7.7 bytes measured."""
RUN_QUARTERS_PER_SECOND = {"ensemble": 25_000, "mesa": 840}
"""Per worker, roughly: 300 and 10 runs of 84 quarters a second, as measured with every
area and quarter kept on the shared 2-core development machine (idle, the ensemble
reaches 1,000 or more; docs/sweeps.md)."""


@dataclass
class SweepCost:
    """What a sweep would cost to run: memory, disk and time (rough estimates)."""

    runs: int
    workers: int
    chunk: int
    parent_bytes: int
    worker_bytes: int
    disk_bytes: int
    seconds: float

    def describe(self) -> str:
        """One line: memory, disk and time."""
        return (f"about {_size(self.parent_bytes)} of memory here, "
                f"{_size(self.worker_bytes)} per worker, {_size(self.disk_bytes)} of disk and "
                f"{_duration(self.seconds)} on {self.workers} worker(s)")


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.3g} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def _duration(sec: float) -> str:
    for unit, length in (("days", 86400), ("h", 3600), ("min", 60)):
        if sec >= 2 * length:
            return f"{sec / length:,.0f} {unit}"
    return f"{max(sec, 1):.0f} s"


def available_memory() -> int:
    """Memory available to start new work (MemAvailable), in bytes."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def free_disk(out: Path) -> int:
    """Free bytes on the disk that holds (or will hold) `out`."""
    here = Path(out).absolute()
    while not here.exists():
        here = here.parent
    st = os.statvfs(here)
    return st.f_bavail * st.f_frsize


def _shape(path: str, end: str | None) -> tuple[int, tuple[str, ...], int]:
    """A scenario's quarters, states and number of partners."""
    from sim.scenario.scenarios import load_cached

    scn = load_cached(path, end)
    return scn.n_quarters, tuple(scn.world.state_names), len(scn.world.partner_names)


def estimate(plan: SweepPlan, workers: int, engine: str = "ensemble",
             chunk: int | None = None) -> SweepCost:
    """What running every run of the plan would cost (see the constants above).

    Args:
        plan: The plan (its scenarios are loaded to count quarters and areas).
        workers: Worker processes.
        engine: `ensemble` or `mesa`.
        chunk: Runs per task (default: as `execute` would choose).
    """
    n = plan.n_runs
    chunk = chunk or plan.chunk_size or default_chunk(engine, n, workers)
    shapes = [_shape(path, plan.end) for path in plan.scenario_paths.values()]
    quarters = max(q for q, _, _ in shapes)
    kept_q = quarters if plan.outcomes.quarters == "all" else len(plan.outcomes.quarters)
    areas = (["region", *shapes[0][1]] if plan.outcomes.areas == "all"
             else list(plan.outcomes.areas))
    partners = shapes[0][2]
    rows = kept_q * len(areas) * partners
    if plan.outcomes.channels:
        rows_bytes = rows * DISK_BYTES_PER_ROW * 4  # six channel shares beside the total
    else:
        rows_bytes = rows * DISK_BYTES_PER_ROW
    cube = 4 * kept_q * partners if "region" in areas else 0
    per_task = min(chunk, max(n, 1))
    worker = WORKER_BASE_BYTES + (per_task * quarters * ENSEMBLE_BYTES_PER_RUN_QUARTER
                                  if engine == "ensemble" else 0)
    return SweepCost(runs=n, workers=workers, chunk=chunk,
                     parent_bytes=n * (PARENT_BYTES_PER_RUN + cube),
                     worker_bytes=worker, disk_bytes=n * rows_bytes,
                     seconds=n * quarters / (RUN_QUARTERS_PER_SECOND[engine] * workers))


def check_size(plan: SweepPlan, out: str | Path, workers: int, engine: str = "ensemble",
               chunk: int | None = None, executor: str = "processes") -> SweepCost:
    """Refuse a sweep this machine cannot hold, before anything runs or is written.

    Compares the estimate (`estimate`) with the memory available now and the free disk:
    the parent's bookkeeping and summary, the workers' batches (chunk size x quarters),
    and the rows. Time is reported, not refused.

    Raises:
        InputError: one line saying what it would cost and what there is.
    """
    cost = estimate(plan, workers, engine, chunk)
    mem, disk = available_memory(), free_disk(Path(out))
    # Local workers share this machine's memory with the parent.
    local = executor != "dask-remote"
    needed = cost.parent_bytes + (cost.workers * cost.worker_bytes if local else 0)
    problems = []
    if needed > mem:
        problems.append(f"about {_size(needed)} of memory ({_size(cost.parent_bytes)} here to "
                        f"track and summarise {cost.runs:,} runs, {_size(cost.worker_bytes)} "
                        f"for each of {cost.workers} worker(s) running {cost.chunk:,} runs at "
                        f"a time) where {_size(mem)} is available")
    if cost.disk_bytes > disk:
        problems.append(f"about {_size(cost.disk_bytes)} of disk for the rows where "
                        f"{_size(disk)} is free")
    if problems:
        raise InputError(None,
            f"sweep {plan.name} is too large for this machine: {plan.n_runs:,} runs would need "
            + " and ".join(problems) + f", and take {_duration(cost.seconds)} on "
            f"{cost.workers} worker(s); run fewer points, replications, quarters or areas "
            "(outcomes:), a smaller chunk_size, or split the sweep")
    return cost


