"""Run a sweep: chunks of runs on an executor, streamed to Parquet parts, resumable.

Each chunk of runs goes to a worker (`run_chunk`), comes back as a table, and is written
as `runs/part-*.parquet` (temporary file, then rename), whose metadata lists the runs it
holds, failed ones included. The parent never holds more than the chunks in flight. A
sweep started again with `resume=True` reads which runs are done from the parts and runs
only the rest. `load_sweep` reads the results back. Numbers depend only on each run's
scenario, parameters and seed, never on the worker or the order.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import time
import traceback
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

from sim.executors import ExecutorInfo, default_workers, make_executor
from sim.sweepspec import Outcomes, RunSpec, SweepPlan
from sim.vocabulary import CHANNELS

SPEC_FILE = "sweep.json"
STAT_COLUMNS = ["run_id", "point", "replication", "step"]
"""Columns whose min/max a part records (statistics on every column cost a third of the write)."""
DICT_COLUMNS = ["scenario", "quarter", "area", "power", "key"]
ROW_GROUP = 131_072
"""Rows per Parquet row group (about 50 runs): what a reader decodes at a time."""
META_KEY = b"greatgame.runs"


class SweepFolderError(ValueError):
    """The output folder holds something else (another sweep, or unrelated files)."""


# --------------------------------------------------------------------------- worker side

@dataclass(frozen=True)
class ChunkTask:
    """What a worker needs to run a chunk: everything picklable, no open files."""

    scenario_paths: dict[str, str]
    end: str | None
    parameters: tuple[str, ...]
    points: tuple[dict[str, float], ...]
    outcomes: Outcomes
    runs: tuple[RunSpec, ...]
    engine: str = "mesa"
    out: str | None = None  # if set, the worker writes the chunk's part into this folder


_SCENARIO_CACHE: dict[tuple[str, str | None], Any] = {}


def _scenario(path: str, end: str | None):
    key = (path, end)
    if key not in _SCENARIO_CACHE:
        from sim.scenario import load_scenario

        scn = load_scenario(path)
        _SCENARIO_CACHE[key] = scn.with_end(end) if end else scn
    return _SCENARIO_CACHE[key]


SHARE_ARRAYS = ("channel_shares", "state_influence", "region_channels", "region_influence")
ENGINES = ("mesa", "ensemble")
DEFAULT_CHUNK = {"mesa": 25, "ensemble": 500}
"""Most runs per task by engine: dozens for Mesa, a batch of hundreds for the ensemble."""


def default_chunk(engine: str, n_runs: int, workers: int) -> int:
    """Runs per task: the engine's default, but at least two tasks per worker to share out."""
    if engine == "mesa":
        return DEFAULT_CHUNK["mesa"]
    return max(1, min(DEFAULT_CHUNK["ensemble"], -(-n_runs // (2 * max(workers, 1)))))


def simulate(scenarios: list, seeds: list[int], engine: str,
             channels: bool = True) -> dict[str, Any]:
    """Run scenarios[b] with seeds[b]; return the share arrays stacked (B, T, ...).

    `mesa` steps one InfluenceModel per run; `ensemble` advances them as one batch. Both
    call the same rules, so the arrays agree to rounding. `channels=False` leaves out the
    per-channel shares.
    """
    names = SHARE_ARRAYS if channels else ("state_influence", "region_influence")
    if engine == "ensemble":
        from sim.ensemble import Ensemble

        ens = Ensemble(scenarios, seeds, record=("quarter", *names))
        ens.run()
        arrays = {name: ens.arrays(name) for name in names}
        quarters, world = ens.quarters(), ens.world
    elif engine == "mesa":
        from sim.model import InfluenceModel

        per_run = []
        for scn, seed in zip(scenarios, seeds, strict=True):
            model = InfluenceModel(scn, rng=seed)
            model.run()
            per_run.append({name: np.stack(model.datacollector.model_vars[name])
                            for name in names})
            quarters, world = list(model.datacollector.model_vars["quarter"]), model.world
            del model
        arrays = {name: np.stack([r[name] for r in per_run]) for name in names}
    else:
        raise ValueError(f"unknown engine {engine!r} (expected mesa or ensemble)")
    return {"arrays": arrays, "quarters": quarters, "partners": world.partners,
            "states": world.states}


def _dict_column(codes: np.ndarray, labels: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(labels))


def _rows(sim_out: dict, runs: list[RunSpec], task: ChunkTask) -> pa.Table:
    """Tidy outcome rows of simulated runs, with run and parameter columns.

    Text columns (scenario, quarter, area, power) are dictionary-encoded: cheap to build,
    small on disk, read back as pandas categoricals.
    """
    from sim.runner import shares_columns

    a = sim_out["arrays"]
    cols = shares_columns(sim_out["quarters"], sim_out["partners"], sim_out["states"],
                          a.get("channel_shares"), a["state_influence"],
                          a.get("region_channels"), a["region_influence"], encoded=True)
    labels = cols.pop("labels")
    per_run = len(cols["share"]) // len(runs)
    keep = np.ones(len(cols["share"]), dtype=bool)
    if task.outcomes.areas != "all":
        wanted = [labels["area"].index(x) for x in task.outcomes.areas]
        keep &= np.isin(cols["area"], wanted)
    if task.outcomes.quarters != "all":
        wanted = [i for i, q in enumerate(labels["quarter"]) if q in task.outcomes.quarters]
        keep &= np.isin(cols["quarter"], wanted)
    values = ["share", *CHANNELS] if task.outcomes.channels else ["share"]

    def per_row(vals, dtype):
        return np.repeat(np.asarray(vals, dtype=dtype), per_run)[keep]

    scen_names = list(dict.fromkeys(r.scenario for r in runs))
    out = {
        "run_id": pa.array(per_row([r.run_id for r in runs], np.int64)),
        "scenario": _dict_column(per_row([scen_names.index(r.scenario) for r in runs],
                                         np.int32), scen_names),
        "point": pa.array(per_row([r.point for r in runs], np.int32)),
        "replication": pa.array(per_row([r.replication for r in runs], np.int32)),
        "seed": pa.array(per_row([r.seed for r in runs], np.int64)),
        "quarter": _dict_column(cols["quarter"][keep], labels["quarter"]),
        "step": pa.array(cols["step"][keep].astype(np.int32)),
        "area": _dict_column(cols["area"][keep], labels["area"]),
        "power": _dict_column(cols["power"][keep], labels["power"]),
    }
    for name in values:
        out[name] = pa.array(cols[name][keep])
    for name in task.parameters:
        out[name] = pa.array(per_row([task.points[r.point][name] for r in runs], float))
    return pa.table(out)


def run_chunk(task: ChunkTask) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Run a chunk of runs; a run that raises is recorded, not fatal.

    With the ensemble engine the chunk's runs of each scenario form one batch; if the
    batch raises, its runs are retried one by one so only the faulty ones fail.

    Returns:
        The outcome rows of the successful runs, and one record per run (status, seconds,
        error).
    """
    frames, records = [], {}

    def record(spec, status, seconds, error=None):
        rec = {"run_id": spec.run_id, "scenario": spec.scenario, "point": spec.point,
               "replication": spec.replication, "seed": spec.seed,
               "params": task.points[spec.point], "status": status,
               "seconds": round(seconds, 4)}
        if error is not None:
            rec["error"] = f"{type(error).__name__}: {error}"
            rec["traceback"] = "".join(traceback.format_exception(error, limit=5))
        records[spec.run_id] = rec

    def attempt(specs, scns):
        t0 = time.perf_counter()
        out = simulate(scns, [r.seed for r in specs], task.engine, task.outcomes.channels)
        frames.append(_rows(out, specs, task))
        each = (time.perf_counter() - t0) / len(specs)
        for spec in specs:
            record(spec, "ok", each)

    groups: dict[str, list[tuple[RunSpec, Any]]] = {}
    for spec in task.runs:
        t0 = time.perf_counter()
        try:
            scn = _scenario(task.scenario_paths[spec.scenario], task.end)
            values = task.points[spec.point]
            groups.setdefault(spec.scenario, []).append(
                (spec, scn.with_overrides(values) if values else scn))
        except Exception as e:  # noqa: BLE001 - one bad run must not stop the sweep
            record(spec, "failed", time.perf_counter() - t0, e)
    for members in groups.values():
        batch = [members] if task.engine == "ensemble" else [[m] for m in members]
        for group in batch:
            specs, scns = [m[0] for m in group], [m[1] for m in group]
            try:
                attempt(specs, scns)
            except Exception as e:  # noqa: BLE001
                if len(group) == 1:
                    record(specs[0], "failed", 0.0, e)
                    continue
                for spec, scn in group:  # isolate the faulty runs
                    try:
                        attempt([spec], [scn])
                    except Exception as e1:  # noqa: BLE001
                        record(spec, "failed", 0.0, e1)
    table = pa.concat_tables(frames, promote_options="permissive") if frames else pa.table({})
    return table, [records[r.run_id] for r in task.runs]


# --------------------------------------------------------------------------- storage

def _part_records(path: Path) -> list[dict[str, Any]]:
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(META_KEY, b"[]"))


def done_records(out: Path) -> list[dict[str, Any]]:
    """Run records of every complete part in a sweep folder."""
    runs = out / "runs"
    if not runs.is_dir():
        return []
    recs = []
    for part in sorted(runs.glob("part-*.parquet")):
        recs.extend(_part_records(part))
    return recs


def store_chunk(task: ChunkTask) -> tuple[None, list[dict[str, Any]]]:
    """Run a chunk and write its part from the worker (`task.out`): only records go back.

    Used when the workers see the sweep folder (serial, process pool, LocalCluster), so
    the parent never receives, holds or encodes rows and the workers write in parallel.
    """
    table, records = run_chunk(task)
    write_part(Path(task.out), table, records)
    return None, records


def write_part(out: Path, table: pa.Table, records: list[dict[str, Any]]) -> Path:
    """Write one chunk atomically: a temporary file, then rename into runs/.

    The part's name comes from its runs, so a chunk written twice (run again after a
    worker died) replaces itself instead of doubling its rows.
    """
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    slim = [{k: v for k, v in r.items() if k != "traceback"} for r in records]
    meta = {META_KEY: json.dumps(slim).encode()}
    if table.num_columns == 0:
        table = pa.table({"run_id": pa.array([], pa.int64())})
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    ids = ",".join(str(r["run_id"]) for r in records)
    name = f"part-{hashlib.sha1(ids.encode()).hexdigest()[:16]}.parquet"
    tmp = runs / f".{name}.{os.getpid()}.tmp"
    pq.write_table(table, tmp, compression="zstd", write_statistics=STAT_COLUMNS,
                   row_group_size=ROW_GROUP,
                   use_dictionary=DICT_COLUMNS)
    os.replace(tmp, runs / name)
    return runs / name


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

    def codes(self, column: pd.Series) -> np.ndarray:
        """Codes of a categorical column's values, registering new labels."""
        cats, codes = column.cat.categories, column.cat.codes.to_numpy()
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
    for batch in _region_batches(parts, cols, quarters):
        df = batch.to_pandas()
        idx = {k: lab.codes(df[k]) for k, lab in labels.items()}
        for axis, key in ((0, "scenario"), (2, "quarter"), (3, "power")):
            cube = _grow(cube, axis, len(labels[key].names))
        cube[idx["scenario"], df["point"].to_numpy(), idx["quarter"], idx["power"],
             df["replication"].to_numpy()] = df["share"].to_numpy(np.float32)
        first = np.unique(idx["scenario"] * 100_000 + idx["quarter"], return_index=True)[1]
        for i in first:
            key = (labels["scenario"].names[idx["scenario"][i]],
                   labels["quarter"].names[idx["quarter"][i]])
            steps[key] = int(df["step"].iat[i])
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
