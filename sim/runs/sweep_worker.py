"""The worker's side of a sweep: run a chunk of runs, turn them into rows, write a part.

Kept apart from `sim.runs.sweep` (the parent's side) so that a worker process imports only
numpy, pyarrow and the model: no pandas, no dataset scanner. A worker started by a
process pool is ready about 0.15 s sooner. Numbers depend only on each run's scenario,
parameters and seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.runs.executors import parent_alive
from sim.runs.runner import Simulated, replicate, simulate
from sim.scenario.sweepfile import Outcomes, RunSpec
from sim.world.vocabulary import CHANNELS

STAT_COLUMNS = ["run_id", "point", "replication", "step"]
"""Columns whose min/max a part records (statistics on every column cost a third of the
write). Columns other than floats are dictionary-encoded: runs of equal values cost little."""
ROW_GROUP = 131_072
"""Rows per Parquet row group (about 50 runs): what a reader decodes at a time."""
META_KEY = b"greatgame.runs"
RUNS_PER_BATCH = 50
"""Runs per record batch a worker builds and writes at a time (one row group)."""


@dataclass(frozen=True)
class ChunkTask:
    """What a worker needs to run a chunk: everything picklable, no open files."""

    scenario_paths: dict[str, str]
    end: str | None
    parameters: tuple[str, ...]
    points: Mapping[int, dict[str, float]] | Sequence[dict[str, float]]
    """The values of (at least) the points the chunk's runs use, by point index."""
    outcomes: Outcomes
    runs: tuple[RunSpec, ...]
    engine: str = "mesa"
    out: str | None = None  # if set, the worker writes the chunk's part into this folder
    draws: Mapping[tuple[int, int], dict[str, float]] | None = None
    """Posterior parameter sets by (point, replication) (None: no draws); the point's own
    values are applied after the draw, so a swept parameter wins
    (`sim.runs.runner.replicate`)."""




def _simulate(scenarios: list, seeds: list[int], engine: str, channels: bool) -> Simulated:
    """The chunk's runs through the one door, recording shares (and channels if kept)."""
    return simulate(scenarios, seeds, engine=engine,
                    record=("shares", "channels") if channels else ("shares",))


def _dict_column(codes: np.ndarray, labels: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32, copy=False)),
                                          pa.array(labels))


def _row_batches(sim_out: Simulated, runs: list[RunSpec], task: ChunkTask):
    """Tidy outcome rows of simulated runs, with run and parameter columns, in batches.

    Yields a record batch per `RUNS_PER_BATCH` runs, so a worker never holds a whole
    chunk's rows. Text columns (scenario, quarter, area, power) are dictionary-encoded:
    cheap to build, small on disk, read back as pandas categoricals.
    """
    labels, rows = _kept_rows(sim_out, task.outcomes)
    for i in range(0, len(runs), RUNS_PER_BATCH):
        part = {k: v[i:i + RUNS_PER_BATCH] for k, v in sim_out.arrays.items()}
        yield _rows(replace(sim_out, arrays=part), runs[i:i + RUNS_PER_BATCH], task, labels,
                    rows)


def _kept_rows(sim_out: Simulated, outcomes: Outcomes) -> tuple[dict[str, list[str]],
                                                            np.ndarray | None]:
    """The table's labels, and a mask over one run's rows when the sweep keeps only some."""
    from sim.runs.tables import shares_template

    template, labels = shares_template(sim_out.quarters, sim_out.partners, sim_out.states)
    if outcomes.areas == "all" and outcomes.quarters == "all":
        return labels, None
    rows = np.ones(len(template["area"]), dtype=bool)
    if outcomes.areas != "all":
        wanted = [labels["area"].index(x) for x in outcomes.areas]
        rows &= np.isin(template["area"], wanted)
    if outcomes.quarters != "all":
        wanted = [i for i, q in enumerate(labels["quarter"]) if q in outcomes.quarters]
        rows &= np.isin(template["quarter"], wanted)
    return labels, rows


def _rows(sim_out: Simulated, runs: list[RunSpec], task: ChunkTask, labels: dict[str, list[str]],
          rows: np.ndarray | None) -> pa.RecordBatch:
    """The rows of `runs` (see `_row_batches`); `rows` masks each run's rows."""
    from sim.runs.tables import shares_columns

    a = sim_out.arrays
    cols = shares_columns(sim_out.quarters, sim_out.partners, sim_out.states,
                          a.get("channel_shares"), a["state_influence"],
                          a.get("region_channels"), a["region_influence"], encoded=True,
                          rows=rows)
    per_run = len(cols["share"]) // len(runs)
    values = ["share", *CHANNELS] if task.outcomes.channels else ["share"]

    def per_row(vals, dtype):
        return np.repeat(np.asarray(vals, dtype=dtype), per_run)

    scen_names = list(dict.fromkeys(r.scenario for r in runs))
    out = {
        "run_id": pa.array(per_row([r.run_id for r in runs], np.int64)),
        "scenario": _dict_column(per_row([scen_names.index(r.scenario) for r in runs],
                                         np.int32), scen_names),
        "point": pa.array(per_row([r.point for r in runs], np.int32)),
        "replication": pa.array(per_row([r.replication for r in runs], np.int32)),
        "seed": pa.array(per_row([r.seed for r in runs], np.int64)),
        "quarter": _dict_column(cols["quarter"], labels["quarter"]),
        "step": pa.array(cols["step"].astype(np.int32)),
        "area": _dict_column(cols["area"], labels["area"]),
        "power": _dict_column(cols["power"], labels["power"]),
    }
    for name in values:
        out[name] = pa.array(cols[name])
    for name in task.parameters:
        out[name] = pa.array(per_row([task.points[r.point][name] for r in runs], float))
    return pa.record_batch(out)


def run_chunk(task: ChunkTask, sink: Callable[[pa.RecordBatch], None] | None = None,
              ) -> tuple[pa.Table | None, list[dict[str, Any]]]:
    """Run a chunk of runs; a run that raises is recorded, not fatal.

    With the ensemble engine the chunk's runs of each scenario form one batch; if the
    batch raises, its runs are retried one by one so only the faulty ones fail.

    Args:
        task: The chunk.
        sink: Receives the rows batch by batch as runs finish (e.g. a Parquet writer);
            without it the rows are returned as one table.

    Returns:
        The outcome rows of the successful runs (None with a sink), and one record per
        run (status, seconds, error).
    """
    from sim.scenario.scenarios import load_cached  # YAML and pydantic: only when a chunk runs

    batches: list[pa.RecordBatch] = []
    emit = sink or batches.append
    records: dict[int, dict[str, Any]] = {}

    def record(spec, status, seconds, error=None):
        rec = {"run_id": spec.run_id, "scenario": spec.scenario, "point": spec.point,
               "replication": spec.replication, "seed": spec.seed,
               "params": task.points[spec.point], "status": status,
               "seconds": round(seconds, 4)}
        if error is not None:
            rec["error"] = f"{type(error).__name__}: {error}"
            rec["traceback"] = "".join(traceback.format_exception(error, limit=5))
        records[spec.run_id] = rec

    def finish(specs, out, t0):
        # Outside the try blocks: a failing sink (a full disk) fails the chunk, it is not
        # mistaken for a failing run whose rows would then be written twice.
        for batch in _row_batches(out, specs, task):
            emit(batch)
        each = (time.perf_counter() - t0) / len(specs)
        for spec in specs:
            record(spec, "ok", each)

    groups: dict[str, list[tuple[RunSpec, Any]]] = {}
    variants: dict[tuple[str, int, int], Any] = {}  # without draws, a point's replications
    for spec in task.runs:                          # share a scenario
        t0 = time.perf_counter()
        try:
            draw = task.draws[(spec.point, spec.replication)] if task.draws is not None else {}
            key = (spec.scenario, spec.point, spec.replication if draw else -1)
            if key not in variants:
                scn = load_cached(task.scenario_paths[spec.scenario], task.end)
                variants[key] = replicate(scn, [draw], fixed=task.points[spec.point])[0]
            groups.setdefault(spec.scenario, []).append((spec, variants[key]))
        except Exception as e:  # noqa: BLE001 - one bad run must not stop the sweep
            record(spec, "failed", time.perf_counter() - t0, e)
    for members in groups.values():
        batch = [members] if task.engine == "ensemble" else [[m] for m in members]
        for group in batch:
            specs, scns = [m[0] for m in group], [m[1] for m in group]
            t0 = time.perf_counter()
            try:
                out = _simulate(scns, [r.seed for r in specs], task.engine,
                                task.outcomes.channels)
            except Exception as e:  # noqa: BLE001
                if len(group) == 1:
                    record(specs[0], "failed", 0.0, e)
                    continue
                for spec, scn in group:  # isolate the faulty runs
                    t1 = time.perf_counter()
                    try:
                        one = _simulate([scn], [spec.seed], task.engine, task.outcomes.channels)
                    except Exception as e1:  # noqa: BLE001
                        record(spec, "failed", 0.0, e1)
                        continue
                    finish([spec], one, t1)
                continue
            finish(specs, out, t0)
    table = None
    if sink is None:
        table = pa.Table.from_batches(batches) if batches else pa.table({})
    return table, [records[r.run_id] for r in task.runs]


def store_chunk(task: ChunkTask) -> tuple[None, list[dict[str, Any]]]:
    """Run a chunk and write its part from the worker (`task.out`): only records go back.

    Used when the workers see the sweep folder (serial, process pool, LocalCluster), so
    the parent never receives, holds or encodes rows and the workers write in parallel.
    Rows go to the file as they are made, a batch of runs at a time.
    """
    path = _part_path(Path(task.out), [r.run_id for r in task.runs])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    writer = None

    def sink(batch: pa.RecordBatch) -> None:
        nonlocal writer
        if writer is None:
            writer = pq.ParquetWriter(tmp, batch.schema, **_parquet_options(batch.schema))
        writer.write_batch(batch, row_group_size=ROW_GROUP)

    try:
        _, records = run_chunk(task, sink)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if writer is None:  # no run succeeded: an empty part still records the failures
        write_part(Path(task.out), pa.table({}), records)
    else:
        writer.add_key_value_metadata(_records_meta(records))
        writer.close()
        _publish(tmp, path)
    return None, records


def _publish(tmp: Path, path: Path) -> None:
    """Move a finished part into place: on disk first, then renamed, then the rename on disk.

    Without the first fsync a power cut can leave a renamed part with no data; without
    the last, a part may vanish again. A pool worker whose sweep has died writes nothing:
    a `--resume` may be running these runs again.
    """
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if not parent_alive():
        tmp.unlink(missing_ok=True)
        os._exit(1)
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _part_path(out: Path, run_ids: list) -> Path:
    """Where a chunk's part goes, named from its runs.

    A chunk written twice (run again after a worker died) replaces itself instead of
    doubling its rows.
    """
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    ids = ",".join(str(i) for i in run_ids)
    return runs / f"part-{hashlib.sha1(ids.encode()).hexdigest()[:16]}.parquet"


def _records_meta(records: list[dict[str, Any]]) -> dict[bytes, bytes]:
    slim = [{k: v for k, v in r.items() if k != "traceback"} for r in records]
    return {META_KEY: json.dumps(slim).encode()}


def _parquet_options(schema: pa.Schema) -> dict[str, Any]:
    return {"compression": "zstd", "write_statistics": STAT_COLUMNS,
            "use_dictionary": [f.name for f in schema if not pa.types.is_floating(f.type)]}


def part_records(path: Path) -> list[dict[str, Any]]:
    """The run records a part's file metadata holds."""
    meta = pq.read_metadata(path).metadata or {}
    return json.loads(meta.get(META_KEY, b"[]"))


def write_part(out: Path, table: pa.Table, records: list[dict[str, Any]]) -> Path:
    """Write one chunk's table atomically: a temporary file, then rename into runs/."""
    path = _part_path(out, [r["run_id"] for r in records])
    if table.num_columns == 0:
        table = pa.table({"run_id": pa.array([], pa.int64())})
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           **_records_meta(records)})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP, **_parquet_options(table.schema))
    _publish(tmp, path)
    return path
