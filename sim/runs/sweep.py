"""Run a sweep: chunks of runs on an executor, streamed to Parquet parts, resumable.

Each chunk of runs goes to a worker (`sim.runs.sweep_worker`), which writes it as
`runs/part-*.parquet` (temporary file, then rename) when it sees the folder; a remote
worker sends the rows back and the parent writes them. A part's metadata lists the runs
it holds, failed ones included. The parent never holds more than the chunks in flight. A
sweep started again with `resume=True` reads which runs are done from the parts and runs
only the rest. `load_sweep` reads the results back. Numbers depend only on each run's
scenario, parameters and seed, never on the worker or the order.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import json
import os
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sim.runs.executors import ExecutorInfo, default_workers, make_executor
from sim.runs.runner import ENGINES
from sim.runs.sweep_worker import (
    ChunkTask,
    part_records,
    run_chunk,
    store_chunk,
    write_part,
)
from sim.scenario.sweepfile import RunSpec, SweepPlan

SPEC_FILE = "sweep.json"


class SweepFolderError(ValueError):
    """The output folder holds something else (another sweep, or unrelated files)."""


DEFAULT_CHUNK = {"mesa": 25, "ensemble": 1000}
"""Most runs per task by engine: dozens for Mesa, a batch of hundreds for the ensemble."""


def default_chunk(engine: str, n_runs: int, workers: int) -> int:
    """Runs per task: the engine's default, but at least two tasks per worker to share out."""
    if engine == "mesa":
        return DEFAULT_CHUNK["mesa"]
    return max(1, min(DEFAULT_CHUNK["ensemble"], -(-n_runs // (2 * max(workers, 1)))))


# --------------------------------------------------------------------------- storage

def done_records(out: Path) -> list[dict[str, Any]]:
    """Run records of every complete part in a sweep folder."""
    runs = out / "runs"
    if not runs.is_dir():
        return []
    recs = []
    for part in sorted(runs.glob("part-*.parquet")):
        recs.extend(part_records(part))
    return recs


def load_sweep(path: str | Path, as_dataset: bool = False) -> pd.DataFrame | ds.Dataset:
    """Read a sweep's results: one tidy DataFrame (or a pyarrow dataset for large sweeps).

    Rows are sorted by run_id, step, area and power. Columns: run_id, scenario, point,
    replication, seed, quarter, step, area, power, share (and channel shares if kept),
    then one column per varied parameter.
    """
    parts = _parts(Path(path))
    if as_dataset:
        return ds.dataset([str(p) for p in parts], format="parquet")
    if not parts:
        return pd.DataFrame()
    df = pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)
    return df.sort_values(["run_id", "step", "area", "power"], kind="stable").reset_index(
        drop=True)


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


def prepare_folder(plan: SweepPlan, out: Path, resume: bool) -> None:
    """Check the output folder and record the sweep's identity in it.

    Raises:
        SweepFolderError: the folder holds another sweep, unrelated files, or (without
            resume) this sweep's earlier results.
    """
    spec_path = out / SPEC_FILE
    if out.exists() and not out.is_dir():
        raise SweepFolderError(f"{out}: is a file, expected a folder for sweep results")
    if spec_path.exists():
        old = json.loads(spec_path.read_text())
        if old.get("identity_hash") != plan.identity_hash():
            raise SweepFolderError(
                f"{out}: holds a different sweep ({old.get('name')!r}, another design, "
                "seeds or scenario files); choose another --out or delete it")
        if not resume and done_records(out):
            raise SweepFolderError(
                f"{out}: already holds results of this sweep; add --resume to finish it, "
                "or choose another --out")
    elif out.exists() and any(out.iterdir()):
        raise SweepFolderError(f"{out}: exists and is not a sweep folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    body = {"name": plan.name, "identity_hash": plan.identity_hash(),
            "identity": plan.identity(), "sweep_file": plan.path}
    tmp = out / f".{SPEC_FILE}.tmp"
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, spec_path)


def _chunks(runs: list[RunSpec], size: int) -> list[tuple[RunSpec, ...]]:
    return [tuple(runs[i:i + size]) for i in range(0, len(runs), size)]


def execute(plan: SweepPlan, out: str | Path, *, executor: str = "processes",
            workers: int | None = None, scheduler: str | None = None, resume: bool = False,
            engine: str = "ensemble", progress: Callable[[int, int], None] | None = None,
            max_pool_restarts: int = 3) -> SweepOutcome:
    """Run every missing run of the plan, streaming finished chunks to Parquet parts.

    Args:
        plan: A validated sweep plan.
        out: Output folder.
        executor: `serial`, `processes` or `dask`.
        workers: Worker processes (default all cores).
        scheduler: Address of an existing Dask scheduler.
        resume: Finish a sweep already started in `out`.
        engine: Which model engine runs the runs.
        progress: Called as progress(done, total) after each chunk.
        max_pool_restarts: How often a broken process pool (a worker died) is replaced.

    Raises:
        SweepFolderError: see `prepare_folder`.
        KeyboardInterrupt: after finished chunks are safely written.
    """
    out = Path(out)
    prepare_folder(plan, out, resume)
    for tmp in (out / "runs").glob(".part-*.tmp") if (out / "runs").is_dir() else []:
        tmp.unlink()  # leftovers of a killed sweep: never renamed, so never counted
    done = {r["run_id"] for r in done_records(out)}
    all_runs = plan.runs()
    todo = [r for r in all_runs if r.run_id not in done]
    outcome = SweepOutcome(total=len(all_runs), done_before=len(done), ran=0)
    if progress:
        progress(len(done), len(all_runs))
    t0 = time.perf_counter()

    def task(chunk, local: bool):
        return ChunkTask(plan.scenario_paths, plan.end, plan.parameters, plan.points,
                         plan.outcomes, chunk, engine, str(out.resolve()) if local else None)

    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (expected mesa or ensemble)")
    n_workers = 1 if executor == "serial" else (workers or default_workers())
    size = plan.chunk_size or default_chunk(engine, len(todo), n_workers)
    queue = deque(_chunks(todo, size))
    restarts = 0
    while queue:
        with make_executor(executor, workers, scheduler) as (ex, info):
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
                while queue and len(inflight) < window and not broken:
                    c = queue.popleft()
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
                            progress(len(done), len(all_runs))
                    fill()
            except KeyboardInterrupt:
                for f in inflight:
                    f.cancel()
                outcome.interrupted = True
                outcome.seconds = time.perf_counter() - t0
                raise
        if broken:
            queue.extendleft(reversed(broken))
            restarts += 1
            if restarts > max_pool_restarts:
                raise RuntimeError(f"worker processes died {restarts} times; {len(done)} of "
                                   f"{len(all_runs)} runs are saved, rerun with --resume")
    outcome.seconds = time.perf_counter() - t0
    return outcome


def _failed(plan: SweepPlan, chunk, error: Exception) -> list[dict[str, Any]]:
    return [{"run_id": r.run_id, "scenario": r.scenario, "point": r.point,
             "replication": r.replication, "seed": r.seed, "params": plan.points[r.point],
             "status": "failed", "seconds": 0.0, "error": f"{type(error).__name__}: {error}"}
            for r in chunk]


def _store(out: Path, table: pa.Table | None, records: list[dict[str, Any]], done: set[int],
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


def _parts(out: Path) -> list[Path]:
    """The sweep's complete, non-empty parts."""
    runs = out / "runs"
    parts = sorted(runs.glob("part-*.parquet")) if runs.is_dir() else []
    return [p for p in parts if pq.read_metadata(p).num_rows > 0]


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


def _region_batches(parts: list[Path], columns: list[str], quarters: list[str] | None):
    """Region rows of each part, a batch at a time (one file open, no read-ahead)."""
    _lean_arrow_pool()
    for part in parts:
        for batch in pq.ParquetFile(part).iter_batches(batch_size=100_000,
                                                       columns=[*columns, "area"]):
            keep = pc.equal(batch.column("area"), "region")
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
    recs = [r for r in done_records(Path(out)) if r.get("status") == "ok"]
    parts = _parts(Path(out))
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
    dset = load_sweep(out, as_dataset=True)
    if not dset.files:
        return pd.DataFrame()
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
