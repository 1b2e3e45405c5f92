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
readers keep one copy of each run whatever parts lie in the folder (`catalogue`). A sweep
too large for this machine is refused before it writes anything
(`sim.runs.sweep_cost.check_size`); summaries are `sim.runs.sweep_summary`'s.
"""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import json
import os
import socket
import threading
import time
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
from sim.runs.runner import ENGINES, Uncertainty, replicate, skipped_keys
from sim.runs.sweep_cost import check_size, default_chunk
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


def catalogue(out: Path) -> _Catalogue:
    """The folder's parts and the runs they hold, each run counted once (the first part wins)."""
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
    return catalogue(Path(out)).records


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
    parts = catalogue(Path(path)).parts
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
def folder_lock(out: str | Path, what: str = "sweep") -> Iterator[None]:
    """Hold a result folder's lock, creating the folder if needed; re-entrant in a thread.

    Sweeps and calibrations (`what` names the kind in the refusal) take it for as long as
    they write into their folder.

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
            raise InputError(None, f"{out}: another {what} in this process is running in this "
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
        raise InputError(None, f"{out}: another {what} is running in this folder "
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


# --------------------------------------------------------------------------- posterior draws

DRAWS_LISTED = 1000
"""Sweeps with at most this many replications list each one's parameter set in the manifest."""


def with_uncertainty(plan: SweepPlan, uncertainty: Uncertainty) -> SweepPlan:
    """The plan with posterior draws (or without), checked against every scenario.

    Replication r runs row r of `Posterior.sample(replications, root_seed)` at every point
    and in every scenario (with `draws_by_run`, run (p, r) row p x replications + r of
    `Posterior.sample(points x replications, root_seed)`), with the seed it has without
    draws; a swept parameter wins over
    the draw for the same attribute (it is applied after it); keys naming an event a
    scenario lacks are skipped for that scenario. The mode and the posterior's hash are
    part of the sweep's identity, so a sweep folder never mixes runs with and without
    draws (or from two posteriors).

    Raises:
        InputError: a drawn key or value does not fit a scenario (before anything runs).
    """
    from dataclasses import replace

    if not uncertainty.drawn:
        return replace(plan, uncertainty={"mode": "none", "interval": uncertainty.label},
                       draw_names=(), draw_values=None)
    post = uncertainty.posterior
    values = post.sample(plan.n_draws, plan.root_seed)
    unique = [dict(zip(post.names, map(float, row), strict=True))
              for row in np.unique(values, axis=0)]
    skipped = {}
    for name in plan.scenario_paths:
        scn = plan.scenario(name)
        replicate(scn, unique, source=post.path)  # every draw fits, before anything runs
        skipped[name] = skipped_keys(scn, post.names)
    swept = sorted(set(plan.parameters) & set(post.names))
    record = uncertainty.record() | {
        "skipped": skipped, "swept_over_drawn": swept,
        "combination": ("run (point p, replication r) runs posterior draw p x replications "
                        "+ r (posterior_draws: by_run), the same in every scenario"
                        if plan.draws_by_run else
                        "replication r runs posterior draw r at every point and in every "
                        "scenario") + "; the point's own parameter values are applied after "
                       "the draw, so a swept parameter wins over the draw for the same key"}
    return replace(plan, uncertainty=record, draw_names=tuple(post.names), draw_values=values)


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
            drawn = {"mode": "none"} | old.get("identity", {}).get("uncertainty", {})
            now = {"mode": "none"} | plan.identity().get("uncertainty", {})
            why = ("runs with posterior draws" if drawn["mode"] == "posterior" else
                   "runs without posterior draws")
            if drawn != now:
                hint = (f"; it holds {why}: pass --uncertainty {drawn['mode']}"
                        + (" with the same --posterior file" if drawn["mode"] == "posterior"
                           else ""))
            else:
                hint = ""
            raise InputError(None,
                f"{out}: holds a different sweep ({old.get('name')!r}, another design, "
                f"seeds, scenario files or posterior draws){hint}; choose another --out or "
                "delete it")
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
    cat = catalogue(out)
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
        draws = ({(s.point, s.replication): plan.draw(s.replication, s.point) for s in chunk}
                 if plan.draw_values is not None else None)
        return ChunkTask(plan.scenario_paths, plan.end, plan.parameters, points,
                         plan.outcomes, chunk, engine, str(out.resolve()) if local else None,
                         draws)

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


