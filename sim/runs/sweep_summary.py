"""A finished sweep's summaries: regional bands in one dense pass, final outcomes, manifest.

`region_cube` reads the regional shares of every stored run, one part at a time, into a
dense float32 array; `band_table` turns it into means and 5-95% bands (per parameter point
or pooled); `summary_table` and `final_outcomes` are the tables the command prints and
charts; `write_manifest` records what ran.
"""

from __future__ import annotations

import functools
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sim.runs.sweep import DRAWS_LISTED, SweepOutcome, catalogue, done_records, load_sweep
from sim.scenario.sweepfile import SweepPlan


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
    cat = catalogue(Path(out))
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
    if not catalogue(Path(out)).parts:
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
        "uncertainty": plan.uncertainty,
        "draws": (([{"point": p, "replication": r, "parameters": plan.draw(r, p)}
                    for p in range(len(plan.points)) for r in range(plan.replications)]
                   if plan.draws_by_run else
                   [{"replication": r, "parameters": plan.draw(r)}
                    for r in range(plan.replications)])
                  if plan.draw_values is not None and plan.n_draws <= DRAWS_LISTED
                  else None),
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
