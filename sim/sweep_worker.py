"""The worker's side of a sweep: run a chunk of runs, turn them into rows, write a part.

Kept apart from `sim.sweep` (the parent's side) so that a worker process imports only
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.sweepspec import Outcomes, RunSpec
from sim.vocabulary import CHANNELS

STAT_COLUMNS = ["run_id", "point", "replication", "step"]
"""Columns whose min/max a part records (statistics on every column cost a third of the
write). Columns other than floats are dictionary-encoded: runs of equal values cost little."""
ROW_GROUP = 131_072
"""Rows per Parquet row group (about 50 runs): what a reader decodes at a time."""
META_KEY = b"greatgame.runs"


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
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32, copy=False)),
                                          pa.array(labels))


def _rows(sim_out: dict, runs: list[RunSpec], task: ChunkTask) -> pa.Table:
    """Tidy outcome rows of simulated runs, with run and parameter columns.

    Text columns (scenario, quarter, area, power) are dictionary-encoded: cheap to build,
    small on disk, read back as pandas categoricals.
    """
    from sim.tidy import shares_columns, shares_template

    a = sim_out["arrays"]
    template, labels = shares_template(sim_out["quarters"], sim_out["partners"],
                                       sim_out["states"])
    rows = None  # a mask over each run's rows, when the sweep keeps only some
    if task.outcomes.areas != "all" or task.outcomes.quarters != "all":
        rows = np.ones(len(template["area"]), dtype=bool)
        if task.outcomes.areas != "all":
            wanted = [labels["area"].index(x) for x in task.outcomes.areas]
            rows &= np.isin(template["area"], wanted)
        if task.outcomes.quarters != "all":
            wanted = [i for i, q in enumerate(labels["quarter"])
                      if q in task.outcomes.quarters]
            rows &= np.isin(template["quarter"], wanted)
    cols = shares_columns(sim_out["quarters"], sim_out["partners"], sim_out["states"],
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
                   use_dictionary=[f.name for f in table.schema
                                   if not pa.types.is_floating(f.type)])
    os.replace(tmp, runs / name)
    return runs / name
