"""Run a sweep: chunks of runs on an executor, streamed to Parquet parts, resumable.

Each chunk of runs goes to a worker (`sim.runs.sweep_worker`), which writes it as
`runs/part-*.parquet` (temporary file, then rename) when it sees the folder; a remote
worker sends the rows back and the parent writes them. A part's metadata lists the runs
it holds, failed ones included. The parent never holds more than the chunks in flight. A
sweep started again with `resume=True` reads which runs are done from the parts and runs
only the rest. `load_sweep` reads the results back. Numbers depend only on each run's
scenario, parameters and seed, never on the worker or the order.

A run is never counted twice: while a sweep runs it holds a lock on its folder
(`folder_lock`; a second sweep there is refused), its pool workers die with it, and
readers keep one copy of each run whatever parts lie in the folder (`_catalogue`). A sweep
too large for this machine is refused before it writes anything (`check_size`).
"""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import functools
import json
import os
import socket
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sim.errors import InputError
from sim.runs.executors import (
    ExecutorInfo,
    capped_workers,
    check_scheduler,
    make_executor,
)
from sim.runs.runner import ENGINES
from sim.runs.sweep_worker import (
    META_KEY,
    ChunkTask,
    run_chunk,
    store_chunk,
    write_part,
)
from sim.scenario.sweepfile import RunSpec, SweepPlan

SPEC_FILE = "sweep.json"
LOCK_FILE = ".sweep.lock"
"""Held (`fcntl.flock`) by the process running a sweep in the folder; holds its pid."""





DEFAULT_CHUNK = {"mesa": 25, "ensemble": 1000}
"""Most runs per task by engine: dozens for Mesa, a batch of hundreds for the ensemble."""


def default_chunk(engine: str, n_runs: int, workers: int) -> int:
    """Runs per task: the engine's default, but at least two tasks per worker to share out."""
    if engine == "mesa":
        return DEFAULT_CHUNK["mesa"]
    return max(1, min(DEFAULT_CHUNK["ensemble"], -(-n_runs // (2 * max(workers, 1)))))


# --------------------------------------------------------------------------- storage

@dataclass
class _Catalogue:
    """What a sweep folder holds, each run once.

    `records` has one record per run id: the first part (by name) that ran it wins, and a
    part where it succeeded beats one where it failed. `parts` lists the parts with rows
    to read, each with the run ids whose rows to keep from it (None: all of its rows).
    Two parts hold the same run when chunks were cut differently, e.g. by workers that
    outlived a killed sweep while a resume ran; their rows are identical, so which copy
    is kept does not matter, only that one is.
    """

    records: list[dict[str, Any]]
    parts: list[tuple[Path, set[int] | None]]
    unreadable: list[Path]


def _catalogue(out: Path) -> _Catalogue:
    runs = out / "runs"
    if not runs.is_dir():
        return _Catalogue([], [], [])
    owner: dict[int, tuple[int, dict[str, Any]]] = {}
    seen: list[tuple[Path, int, list[dict[str, Any]]]] = []
    unreadable = []
    for part in sorted(runs.glob("part-*.parquet")):
        try:
            meta = pq.read_metadata(part)
        except (OSError, pa.ArrowException):  # truncated by a crash before parts were synced
            unreadable.append(part)
            continue
        recs = json.loads((meta.metadata or {}).get(META_KEY, b"[]"))
        i = len(seen)
        seen.append((part, meta.num_rows, recs))
        for r in recs:
            prev = owner.get(r["run_id"])
            if prev is None or (prev[1].get("status") != "ok" and r.get("status") == "ok"):
                owner[r["run_id"]] = (i, r)
    parts = []
    for i, (part, n_rows, recs) in enumerate(seen):
        ok = {r["run_id"] for r in recs if r.get("status") == "ok"}
        mine = {k for k in ok if owner[k][0] == i}
        if n_rows and mine:
            parts.append((part, None if mine == ok else mine))
    return _Catalogue([owner[k][1] for k in sorted(owner)], parts, unreadable)


def done_records(out: Path) -> list[dict[str, Any]]:
    """Run records of a sweep folder, one per run (by run id), whatever parts lie there."""
    return _catalogue(Path(out)).records


def _read_part(part: Path, keep: set[int] | None, columns: list[str] | None = None) -> pa.Table:
    table = pq.read_table(part, columns=columns)
    if keep is not None:
        ids = table["run_id"] if "run_id" in table.column_names else pq.read_table(
            part, columns=["run_id"])["run_id"]
        table = table.filter(pc.is_in(ids, value_set=pa.array(sorted(keep), pa.int64())))
    return table


def load_sweep(path: str | Path, as_dataset: bool = False) -> pd.DataFrame | ds.Dataset:
    """Read a sweep's results: one tidy DataFrame (or a pyarrow dataset for large sweeps).

    Rows are sorted by run_id, step, area and power. Columns: run_id, scenario, point,
    replication, seed, quarter, step, area, power, share (and channel shares if kept),
    then one column per varied parameter. Each run's rows appear once, even where two
    parts hold the run.
    """
    parts = _catalogue(Path(path)).parts
    if as_dataset:
        whole = ds.dataset([str(p) for p, keep in parts if keep is None], format="parquet")
        partial = [_read_part(p, keep) for p, keep in parts if keep is not None]
        if not partial:
            return whole
        # Only parts cut across another's runs (rare) are read into memory, filtered.
        rest = ds.dataset(pa.concat_tables(partial, promote_options="default"))
        return ds.dataset([whole, rest]) if whole.files else rest
    if not parts:
        return pd.DataFrame()
    df = pd.concat([_read_part(p, keep).to_pandas() for p, keep in parts], ignore_index=True)
    return df.sort_values(["run_id", "step", "area", "power"], kind="stable").reset_index(
        drop=True)


# --------------------------------------------------------------------------- the lock

_held: dict[str, list] = {}  # folder -> [fd, depth, thread id]
_held_guard = threading.Lock()


@contextmanager
def folder_lock(out: str | Path) -> Iterator[None]:
    """Hold a sweep folder's lock, creating the folder if needed; re-entrant in a thread.

    The lock is `fcntl.flock` on `LOCK_FILE`, which then names this process. The system
    releases it when the process ends, however it ends, so a sweep killed with SIGKILL
    leaves no stale lock. (flock may not be shared between machines on network disks.)

    Raises:
        InputError: another process (or thread) holds it; the message says which.
    """
    out = Path(out)
    key = str(out.resolve())
    with _held_guard:
        held = _held.get(key)
        if held is not None and held[2] == threading.get_ident():
            held[1] += 1
        elif held is not None:
            raise InputError(None, f"{out}: another sweep in this process is running in this "
                                 "folder; wait for it to finish or choose another --out")
    if held is not None:
        try:
            yield
        finally:
            held[1] -= 1
        return
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 500, 0).decode(errors="replace").strip()
        os.close(fd)
        raise InputError(None, f"{out}: another sweep is running in this folder "
                             f"({holder or 'a process that has not yet said its pid'}); "
                             "wait for it to finish, or choose another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, since "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
    with _held_guard:
        _held[key] = [fd, 1, threading.get_ident()]
    try:
        yield
    finally:
        with _held_guard:
            del _held[key]
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# --------------------------------------------------------------------------- parent side

@dataclass
class SweepOutcome:
    """What happened: counts, timings, failures."""

    total: int
    done_before: int
    ran: int
    failed: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    executor: ExecutorInfo | None = None
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    """Things the user should know (workers capped, unreadable parts set aside)."""


# --------------------------------------------------------------------------- size

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


# --------------------------------------------------------------------------- running

def check_folder(plan: SweepPlan, out: Path, resume: bool) -> None:
    """Check, without writing anything, that the sweep may run in `out`.

    Raises:
        InputError: see `prepare_folder`.
    """
    spec_path = out / SPEC_FILE
    if out.exists() and not out.is_dir():
        raise InputError(None, f"{out}: is a file, expected a folder for sweep results")
    _check_not_busy(out)
    if spec_path.exists():
        old = json.loads(spec_path.read_text())
        if old.get("identity_hash") != plan.identity_hash():
            raise InputError(None,
                f"{out}: holds a different sweep ({old.get('name')!r}, another design, "
                "seeds or scenario files); choose another --out or delete it")
        if not resume and done_records(out):
            raise InputError(None,
                f"{out}: already holds results of this sweep; add --resume to finish it, "
                "or choose another --out")
    elif out.exists() and any(p.name != LOCK_FILE for p in out.iterdir()):
        raise InputError(None, f"{out}: exists and is not a sweep folder; choose another --out")


def _check_not_busy(out: Path) -> None:
    """Raise InputError if another process holds the folder's lock (takes nothing)."""
    path = out / LOCK_FILE
    with _held_guard:
        mine = _held.get(str(out.resolve()))
    if mine is not None and mine[2] == threading.get_ident() or not path.is_file():
        return
    with folder_lock(out):  # acquired and released at once, or InputError
        pass


def prepare_folder(plan: SweepPlan, out: Path, resume: bool) -> None:
    """Check the output folder and record the sweep's identity in it.

    Raises:
        InputError: the folder holds another sweep, unrelated files, or (without
            resume) this sweep's earlier results.
    """
    check_folder(plan, out, resume)
    spec_path = out / SPEC_FILE
    out.mkdir(parents=True, exist_ok=True)
    body = {"name": plan.name, "identity_hash": plan.identity_hash(),
            "identity": plan.identity(), "sweep_file": plan.path}
    tmp = out / f".{SPEC_FILE}.tmp"
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, spec_path)


class _Done:
    """Which run ids are done: one byte per run of the plan, not a set of Python ints."""

    def __init__(self, n: int, ids=()):
        self.flags = np.zeros(n, bool)
        self.update(ids)

    def __contains__(self, run_id: int) -> bool:
        return bool(self.flags[run_id])

    def __len__(self) -> int:
        return int(self.flags.sum())

    def update(self, ids) -> None:
        """Mark run ids done (ids outside the plan are ignored)."""
        ids = np.fromiter(ids, np.int64)
        self.flags[ids[(ids >= 0) & (ids < len(self.flags))]] = True


def _todo_chunks(plan: SweepPlan, done: _Done, size: int) -> Iterator[tuple[RunSpec, ...]]:
    """The runs not yet done, a chunk at a time, made as they are needed."""
    runs, chunk = plan.runs(), []
    for i in np.flatnonzero(~done.flags):
        chunk.append(runs[int(i)])
        if len(chunk) == size:
            yield tuple(chunk)
            chunk = []
    if chunk:
        yield tuple(chunk)


def _set_aside(out: Path, parts: list[Path]) -> list[str]:
    """Rename unreadable parts so they are no longer read; their runs run again."""
    notes = []
    for part in parts:
        part.rename(part.with_name(f"unreadable-{part.name}"))
        notes.append(f"{part}: unreadable (cut short by a crash?); renamed unreadable-"
                     f"{part.name}, its runs run again")
    return notes


def execute(plan: SweepPlan, out: str | Path, *, executor: str = "processes",
            workers: int | None = None, scheduler: str | None = None, resume: bool = False,
            engine: str = "ensemble", progress: Callable[[int, int], None] | None = None,
            max_pool_restarts: int = 3) -> SweepOutcome:
    """Run every missing run of the plan, streaming finished chunks to Parquet parts.

    Nothing is written before the checks pass: the scheduler answers, the sweep fits this
    machine (`check_size`), the folder is free for it (`check_folder`). The folder is then
    locked (`folder_lock`) until the runs are done.

    Args:
        plan: A validated sweep plan.
        out: Output folder.
        executor: `serial`, `processes` or `dask`.
        workers: Worker processes (default all cores; never more than the cores, nor
            than the chunks to run).
        scheduler: Address of an existing Dask scheduler.
        resume: Finish a sweep already started in `out`.
        engine: Which model engine runs the runs.
        progress: Called as progress(done, total) after each chunk.
        max_pool_restarts: How often a broken process pool (a worker died) is replaced.

    Raises:
        InputError: see `prepare_folder`; `InputError` if another sweep runs
            in the folder.
        InputError: the sweep needs more memory or disk than this machine has.
        InputError: an unreachable Dask scheduler.
        KeyboardInterrupt: after finished chunks are safely written.
    """
    out = Path(out)
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (expected mesa or ensemble)")
    if executor == "dask" and scheduler:
        check_scheduler(scheduler)
    n_workers = 1 if executor == "serial" else capped_workers(workers)
    asked = (workers if workers and workers > n_workers and executor != "serial"
             and not scheduler else None)
    check_size(plan, out, n_workers, engine,
               executor="dask-remote" if executor == "dask" and scheduler else executor)
    check_folder(plan, out, resume)
    with folder_lock(out):
        return _execute_locked(plan, out, executor, n_workers, asked, scheduler, resume,
                               engine, progress, max_pool_restarts)


def _execute_locked(plan, out, executor, n_workers, asked, scheduler, resume, engine,
                    progress, max_pool_restarts) -> SweepOutcome:
    prepare_folder(plan, out, resume)
    for tmp in (out / "runs").glob(".part-*.tmp") if (out / "runs").is_dir() else []:
        tmp.unlink()  # leftovers of a killed sweep: never renamed, so never counted
    cat = _catalogue(out)
    notes = _set_aside(out, cat.unreadable)
    done = _Done(plan.n_runs, (r["run_id"] for r in cat.records))
    total = plan.n_runs
    n_before = len(done)
    outcome = SweepOutcome(total=total, done_before=n_before, ran=0, notes=notes)
    if progress:
        progress(n_before, total)
    t0 = time.perf_counter()

    def task(chunk, local: bool):
        points = {p: plan.points[p] for p in sorted({r.point for r in chunk})}
        return ChunkTask(plan.scenario_paths, plan.end, plan.parameters, points,
                         plan.outcomes, chunk, engine, str(out.resolve()) if local else None)

    size = plan.chunk_size or default_chunk(engine, total - n_before, n_workers)
    n_chunks = -(-(total - n_before) // size)
    if executor != "serial" and not scheduler and 0 < n_chunks < n_workers:
        n_workers = n_chunks  # no process without a chunk to run
    if n_chunks == 0:
        return outcome
    fresh = _todo_chunks(plan, done, size)
    queue: deque[tuple[RunSpec, ...]] = deque()  # chunks to run again after a pool broke

    def next_chunk():
        return queue.popleft() if queue else next(fresh, None)

    restarts = 0
    while True:
        with make_executor(executor, n_workers, scheduler) as (ex, info):
            if asked and info.local:
                info.requested = asked
            outcome.executor = info
            # A bounded window of chunks in flight: workers stay busy, the parent holds
            # at most `window` chunks of results, and serial runs write as they go.
            window = 1 if info.kind == "serial" else 2 * max(info.workers, 1)
            inflight: dict[cf.Future, tuple[RunSpec, ...]] = {}
            broken: list[tuple[RunSpec, ...]] = []

            # Workers that see this folder write their own parts; remote ones send rows.
            fn = store_chunk if info.local else run_chunk

            def fill(ex=ex, inflight=inflight, window=window, broken=broken, fn=fn,
                     local=info.local):
                while len(inflight) < window and not broken:
                    c = next_chunk()
                    if c is None:
                        return
                    inflight[ex.submit(fn, task(c, local))] = c

            try:
                fill()
                while inflight:
                    finished, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
                    for fut in finished:
                        chunk = inflight.pop(fut)
                        try:
                            table, records = fut.result()
                        except cf.process.BrokenProcessPool:
                            broken.append(chunk)  # a worker died: run the chunk again
                            continue
                        except Exception as e:  # noqa: BLE001 - e.g. Dask gave up on a task
                            table, records = pa.table({}), _failed(plan, chunk, e)
                        _store(out, table, records, done, outcome)
                        if progress:
                            progress(len(done), total)
                    fill()
            except KeyboardInterrupt:
                for f in inflight:
                    f.cancel()
                outcome.interrupted = True
                outcome.seconds = time.perf_counter() - t0
                raise
        if not broken:
            break
        queue.extendleft(reversed(broken))
        restarts += 1
        if restarts > max_pool_restarts:
            raise RuntimeError(f"worker processes died {restarts} times; {len(done)} of "
                               f"{total} runs are saved, rerun with --resume")
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _failed(plan: SweepPlan, chunk, error: Exception) -> list[dict[str, Any]]:
    return [{"run_id": r.run_id, "scenario": r.scenario, "point": r.point,
             "replication": r.replication, "seed": r.seed, "params": plan.points[r.point],
             "status": "failed", "seconds": 0.0, "error": f"{type(error).__name__}: {error}"}
            for r in chunk]


def _store(out: Path, table: pa.Table | None, records: list[dict[str, Any]], done: _Done,
           outcome: SweepOutcome) -> None:
    """Write a finished chunk (unless its worker did: `table` None), never a run twice."""
    fresh = [r for r in records if r["run_id"] not in done]
    if table is not None and len(fresh) != len(records) and table.num_columns:
        keep = pa.array([r["run_id"] for r in fresh], pa.int64())
        table = table.filter(pc.is_in(table["run_id"], value_set=keep))
    if not fresh:
        return
    if table is not None:
        write_part(out, table, fresh)
    done.update(r["run_id"] for r in fresh)
    outcome.ran += len(fresh)
    outcome.failed += [r for r in fresh if r["status"] != "ok"]


# --------------------------------------------------------------------------- summaries

class _Labels:
    """Stable integer codes for labels met while streaming (quarters, powers, scenarios)."""

    def __init__(self):
        self.names: list[str] = []
        self._code: dict[str, int] = {}

    def codes(self, column: pa.Array) -> np.ndarray:
        """Codes of a text column's values (dictionary-encoded or not), registering new labels."""
        if not pa.types.is_dictionary(column.type):
            column = pc.dictionary_encode(column)
        cats = column.dictionary.to_pylist()
        codes = column.indices.to_numpy(zero_copy_only=False)
        mapping = np.zeros(len(cats), np.int64)
        for u in np.unique(codes):  # only labels that occur (filtered rows keep the dictionary)
            mapping[u] = self._code.setdefault(cats[u], len(self._code))
        self.names = list(self._code)
        return mapping[codes]


def _grow(arr: np.ndarray, axis: int, size: int) -> np.ndarray:
    if arr.shape[axis] >= size:
        return arr
    pad = list(arr.shape)
    pad[axis] = size - arr.shape[axis]
    return np.concatenate([arr, np.full(pad, np.nan, np.float32)], axis=axis)


@functools.cache  # a setting of the process: once is enough
def _lean_arrow_pool() -> None:
    """Read with jemalloc (or the system allocator) instead of Arrow's default mimalloc.

    Reading many parts in the parent, mimalloc's per-thread heaps kept the freed buffers:
    the parent grew by ~100 MB from 1,000 to 10,000 runs; with jemalloc it stays flat.
    """
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow build without jemalloc
        pool = pa.system_memory_pool()
    pa.set_memory_pool(pool)


def _region_batches(parts: list[tuple[Path, set[int] | None]], columns: list[str],
                    quarters: list[str] | None):
    """Region rows of each part (of its own runs), a batch at a time (no read-ahead)."""
    _lean_arrow_pool()
    for part, runs in parts:
        extra = ["area"] if runs is None else ["area", "run_id"]
        for batch in pq.ParquetFile(part).iter_batches(batch_size=100_000,
                                                       columns=[*columns, *extra]):
            keep = pc.equal(batch.column("area"), "region")
            if runs is not None:
                keep = pc.and_(keep, pc.is_in(batch.column("run_id"),
                                              value_set=pa.array(sorted(runs), pa.int64())))
            if quarters:
                keep = pc.and_(keep, pc.is_in(batch.column("quarter"),
                                              value_set=pa.array(quarters)))
            batch = batch.filter(keep).select(columns)
            if batch.num_rows:
                yield batch


def region_cube(out: str | Path, quarters: list[str] | None = None) -> dict[str, Any] | None:
    """Every kept regional share of a sweep as one dense float32 array.

    Streams the region rows batch by batch into an array (scenario, point, quarter, power,
    replication), NaN where a run failed: 4 bytes per kept value, never whole rows.

    Returns:
        None for an empty sweep, else {"values", "scenarios", "quarters", "powers",
        "steps"} with steps[(scenario, quarter)] the step number.
    """
    cat = _catalogue(Path(out))
    recs = [r for r in cat.records if r.get("status") == "ok"]
    parts = cat.parts
    if not parts or not recs:
        return None
    n_points = max(r["point"] for r in recs) + 1
    n_reps = max(r["replication"] for r in recs) + 1
    labels = {k: _Labels() for k in ("scenario", "quarter", "power")}
    cube = np.full((0, n_points, 0, 0, n_reps), np.nan, np.float32)
    steps: dict[tuple[str, str], int] = {}
    cols = ["scenario", "point", "replication", "step", "quarter", "power", "share"]
    for batch in _region_batches(parts, cols, quarters):  # Arrow to numpy, no pandas
        idx = {k: lab.codes(batch.column(k)) for k, lab in labels.items()}
        num = {k: batch.column(k).to_numpy(zero_copy_only=False)
               for k in ("point", "replication", "step", "share")}
        for axis, key in ((0, "scenario"), (2, "quarter"), (3, "power")):
            cube = _grow(cube, axis, len(labels[key].names))
        cube[idx["scenario"], num["point"], idx["quarter"], idx["power"],
             num["replication"]] = num["share"].astype(np.float32)
        first = np.unique(idx["scenario"] * 100_000 + idx["quarter"], return_index=True)[1]
        for i in first:
            key = (labels["scenario"].names[idx["scenario"][i]],
                   labels["quarter"].names[idx["quarter"][i]])
            steps[key] = int(num["step"][i])
    return {"values": cube, "scenarios": labels["scenario"].names,
            "quarters": labels["quarter"].names, "powers": labels["power"].names,
            "steps": steps}


def band_table(cube: dict[str, Any] | None, by_point: bool = True) -> pd.DataFrame:
    """Mean and 5-95% band of each power's regional share per scenario (and point) and quarter.

    Bands pool replications (and, with `by_point=False`, every parameter point).
    """
    if cube is None:
        return pd.DataFrame()
    v = cube["values"]  # (scenario, point, quarter, power, replication)
    S, P, Q, J, R = v.shape
    if not by_point:
        v = v.transpose(0, 2, 3, 1, 4).reshape(S, 1, Q, J, P * R)
    frames = []
    for q, quarter in enumerate(cube["quarters"]):
        x = v[:, :, q].astype(float)  # (scenario, point, power, runs)
        n = (~np.isnan(x)).sum(axis=-1)
        with warnings.catch_warnings():  # groups with no finished run: NaN, dropped below
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = (np.quantile(x, [0.05, 0.95], axis=-1) if n.min() == x.shape[-1]
                      else np.nanquantile(x, [0.05, 0.95], axis=-1))
            mean = np.nanmean(x, axis=-1)
        si, pi, ji = np.indices(n.shape).reshape(3, -1)
        frame = pd.DataFrame({"scenario": np.asarray(cube["scenarios"], object)[si],
                              "point": pi, "quarter": quarter,
                              "power": np.asarray(cube["powers"], object)[ji],
                              "mean": mean.ravel(), "p05": lo.ravel(), "p95": hi.ravel(),
                              "n": n.ravel()})
        frame = frame[frame.n > 0]
        frame.insert(2, "step", [cube["steps"].get((sc, quarter), -1)
                                 for sc in frame.scenario])
        frames.append(frame)
    res = pd.concat(frames, ignore_index=True)
    keys = ["scenario", "point", "step"] if by_point else ["scenario", "step"]
    if not by_point:
        res = res.drop(columns="point")
    return res.sort_values([*keys, "power"]).reset_index(drop=True)


def region_band(out: str | Path, quarters: list[str] | None = None,
                by_point: bool = True) -> pd.DataFrame:
    """Mean and 5-95% band of each power's regional share (see `region_cube`, `band_table`).

    Columns: scenario, (point,) step, quarter, power, mean, p05, p95, n.
    """
    return band_table(region_cube(out, quarters), by_point)


def final_outcomes(out: str | Path, plan: SweepPlan) -> pd.DataFrame:
    """Per run: each power's regional share at the last kept quarter, with parameter values."""
    if not _catalogue(Path(out)).parts:
        return pd.DataFrame()
    dset = load_sweep(out, as_dataset=True)
    quarters = dset.to_table(columns=["step", "quarter"]).to_pandas()
    last_q = quarters.loc[quarters.step.idxmax(), "quarter"]
    cols = ["run_id", "scenario", "point", "replication", "power", "share", *plan.parameters]
    flt = (ds.field("area") == "region") & (ds.field("quarter") == last_q)
    t = dset.to_table(columns=cols, filter=flt).to_pandas()
    t["quarter"] = last_q
    return t.sort_values(["run_id", "power"]).reset_index(drop=True)


def write_manifest(plan: SweepPlan, out: Path, outcome: SweepOutcome, started: float,
                   command: list[str] | None = None) -> Path:
    """Write manifest.json (version, hashes, seeds, executor, timings, failed runs)."""
    import platform
    from importlib.metadata import version

    import sim

    recs = done_records(out)
    failed = [r for r in recs if r.get("status") != "ok"]
    body = {
        "package_version": sim.__version__,
        "python": platform.python_version(),
        "mesa": version("mesa"),  # from the metadata: importing Mesa takes half a second
        "numpy": np.__version__,
        "sweep": plan.name,
        "description": plan.description,
        "sweep_file": plan.path,
        "sweep_file_sha256": plan.file_hash,
        "identity_hash": plan.identity_hash(),
        "scenario_files": plan.scenario_hashes,
        "design": plan.design,
        "parameters": list(plan.parameters),
        "points": len(plan.points),
        "replications": plan.replications,
        "root_seed": plan.root_seed,
        "seed_rule": "SeedSequence(root_seed, spawn_key=(point, replication)); the same "
                     "seed for a replication in every scenario",
        "runs_total": plan.n_runs,
        "runs_done": len(recs),
        "runs_failed": len(failed),
        "failed_runs": failed,
        "complete": len(recs) == plan.n_runs,
        "executor": vars(outcome.executor) if outcome.executor else None,
        "this_invocation": {"ran": outcome.ran, "done_before": outcome.done_before,
                            "seconds": round(outcome.seconds, 3),
                            "interrupted": outcome.interrupted},
        "run_seconds_total": round(sum(r.get("seconds", 0) for r in recs), 3),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
    }
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(body, indent=1, default=str))
    os.replace(tmp, out / "manifest.json")
    return out / "manifest.json"


def summary_table(band: pd.DataFrame, plan: SweepPlan) -> pd.DataFrame:
    """Regional share per scenario, point and power at 2025Q4 and the last quarter."""
    if band.empty:
        return band
    last = band.loc[band.step.idxmax(), "quarter"]
    keep = [q for q in dict.fromkeys(["2025Q4", last]) if q in set(band.quarter)]
    sel = band[band.quarter.isin(keep)].copy()
    for name in plan.parameters:
        sel[name] = sel.point.map(lambda p, n=name: plan.points[p][n])
    return sel.drop(columns=["step"])
