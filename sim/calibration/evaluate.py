"""Evaluate calibration points: free parameters, the model's value of each figure, the loss.

A *point* gives a value to each free parameter (a `set:` path such as
`params.trade_gdp_elasticity` or `powers.china.capacity_growth`). `run_task` runs a chunk of
points for R replications each (the same seeds at every point: common random numbers) as
one ensemble batch, `observe` turns the runs into the model's value of each sourced
figure, and `loss` scores the replication means (a weighted mean squared log error, by
group; docs/calibration.md). `EvalLog` keeps every evaluated point as an atomic Parquet
part (the sweep's writer), so a calibration resumes without repeating a point. The search
itself is `sim.calibration.search`.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sim.analysis.fit import GROUPS, loss, observe
from sim.errors import InputError
from sim.runs.runner import Simulated
from sim.runs.sweep_worker import part_records, write_part
from sim.world.quarters import parse_quarter
from sim.world.values import Scenario, expand_target
from sim.world.vocabulary import PairAttrs, Params, PowerAttrs, StateAttrs, field_table

GOOD_FIT = 1.10
"""Points within 10% of the best loss count as good fits (selection, identification)."""



# --------------------------------------------------------------------------- free parameters

@dataclass(frozen=True)
class FreeParam:
    """A parameter to fit: a `set:` path and its fit range."""

    path: str
    lo: float
    hi: float
    why: str = ""

    def to_unit(self, v: float) -> float:
        """Value -> position in [0, 1] of the fit range."""
        return (v - self.lo) / (self.hi - self.lo)

    def from_unit(self, u: float) -> float:
        """Position in [0, 1] -> value."""
        return self.lo + float(np.clip(u, 0.0, 1.0)) * (self.hi - self.lo)


DEFAULT_FREE: tuple[FreeParam, ...] = (
    FreeParam("powers.china.capacity_growth", 0.0, 0.15,
              "growth of China's fiscal capacity for the region, 0-15% a year (vocabulary "
              "-50% to 50%): "
              "sets how fast Chinese investment and the trade it brings grow"),
    FreeParam("params.allocation_temperature", 0.3, 3.0,
              "decision temperature of the powers' allocation (vocabulary 0.05-10): how far "
              "Chinese investment concentrates on the most valuable states"),
    FreeParam("params.size_elasticity", 0.0, 1.5,
              "weight of a state's GDP in project value (vocabulary 0-2): Kazakhstan's pull"),
    FreeParam("params.trade_gdp_elasticity", 0.2, 2.0,
              "trade's elasticity to nominal GDP (vocabulary 0-3; gravity models ~0.7-1.2)"),
    FreeParam("params.trade_investment_elasticity", 0.0, 1.5,
              "trade's elasticity to the partner's investment stock (vocabulary 0-5)"),
    FreeParam("params.trade_connectivity_elasticity", 0.0, 3.0,
              "trade's elasticity to connectivity, times corridor_trade (vocabulary 0-5)"),
    FreeParam("params.investment_depreciation", 0.0, 0.15,
              "yearly depreciation of investment stocks, 0-15% (vocabulary 0-100%)"),
    FreeParam("params.other_debt_gdp_elasticity", 0.0, 1.5,
              "elasticity of debt to the rest of the world to GDP (vocabulary 0-2): the "
              "denominator of China's debt share"),
    *(FreeParam(f"powers.china.toward.{s}.trade_affinity", 0.5, 2.0,
                f"level of trade with China in {s} (vocabulary 0-10): the world file's 2015 "
                "level is an assumption, no figure on the GACC basis exists before 2018-21")
      for s in ("kazakhstan", "kyrgyzstan", "turkmenistan", "uzbekistan")),
)
"""The default free set (docs/calibration.md says why each is in and others are out)."""


def _vocab_range(name: str) -> tuple[float | None, float | None]:
    for model in (Params, PowerAttrs, StateAttrs, PairAttrs):
        for row in field_table(model):
            if row["name"] == name:
                return row["min"], row["max"]
    return None, None


def parse_free(specs: Sequence[str] | None, scenario: Scenario) -> list[FreeParam]:
    """Free parameters from `PATH` or `PATH=LO:HI` strings (default: `DEFAULT_FREE`).

    A path without a range takes the default set's range for it, else the vocabulary's.

    Raises:
        InputError: unknown path, a range outside the vocabulary's, or lo >= hi.
    """
    if not specs:
        return list(DEFAULT_FREE)
    known = {f.path: f for f in DEFAULT_FREE}
    out: list[FreeParam] = []
    for spec in specs:
        path, _, rng = spec.partition("=")
        path = path.strip()
        try:
            resolved = expand_target(scenario.world, path)
        except ValueError as e:
            raise InputError(None, f"--params {path}: {e}") from None
        attr = resolved[0][-1]
        if attr == "regional_weighting":
            raise InputError(None, f"--params {path}: not a number")
        vlo, vhi = _vocab_range(attr)
        if rng:
            try:
                lo, hi = (float(x) for x in rng.split(":"))
            except ValueError:
                raise InputError(None, f"--params {spec}: expected PATH=LO:HI") from None
            why = "range given on the command line"
        elif path in known:
            lo, hi, why = known[path].lo, known[path].hi, known[path].why
        else:
            if vlo is None or vhi is None:
                raise InputError(None, f"--params {path}: no upper bound in the vocabulary; "
                                       "give a range as PATH=LO:HI")
            lo, hi, why = float(vlo), float(vhi), "the vocabulary's range"
        if not lo < hi:
            raise InputError(None, f"--params {spec}: the range needs LO < HI")
        for v in (lo, hi):
            try:
                scenario.with_overrides({path: v})
            except InputError as e:
                raise InputError(None, f"--params {spec}: {e.args[0] if e.args else e}") from None
        if any(f.path == path for f in out):
            raise InputError(None, f"--params {path}: given twice")
        out.append(FreeParam(path, lo, hi, why))
    return out


TRADE_ATTRS = ("trade_affinity", "exports", "imports")
"""Pair attributes that act on trade: fitted only where the state has a trade figure."""


def usable_free(free: Sequence[FreeParam], targets: pd.DataFrame, states: Sequence[str]
                ) -> tuple[list[FreeParam], list[str]]:
    """Drop the free parameters of a state that has no figure of its own to fit.

    A parameter whose path names one state (`powers.china.toward.uzbekistan.trade_affinity`,
    `states.kyrgyzstan.hedging`) is only fitted when the fitted figures include one for
    that state (a trade figure, for `TRADE_ATTRS`); otherwise it would be set by regional
    totals alone (in a backtest to 2021, Kyrgyzstan's and Uzbekistan's trade levels would
    be fitted to one regional share).

    Returns:
        The parameters kept, and one line per parameter dropped saying why.
    """
    trade = targets.series.isin(GROUPS["trade_levels"] + GROUPS["trade_shares"])
    kept, dropped = [], []
    for f in free:
        named = [s for s in states if f".{s}." in f".{f.path}."]
        attr = f.path.rsplit(".", 1)[-1]
        rows = targets[trade] if attr in TRADE_ATTRS else targets
        if named and not set(named) & set(rows.area):
            dropped.append(f"{f.path}: not fitted, no {named[0]} figure in the fitted "
                           "years (kept at the scenario's value)")
        else:
            kept.append(f)
    return kept, dropped


def current_value(scenario: Scenario, path: str) -> float:
    """The scenario's value at a `set:` path (the mean over a wildcard's targets)."""
    vals = []
    for p in expand_target(scenario.world, path):
        if p[0] == "params":
            vals.append(getattr(scenario.params, p[1]))
        elif p[0] == "powers":
            vals.append(getattr(scenario.world.powers[p[1]], p[2]))
        elif p[0] == "states":
            vals.append(getattr(scenario.world.states[p[1]], p[2]))
        else:
            vals.append(getattr(scenario.world.pairs[(p[1], p[2])], p[3]))
    return float(np.mean(vals))


def point_key(values: Sequence[float]) -> str:
    """A point's identity in the log: its values to 12 significant digits."""
    return json.dumps([float(f"{float(v):.12g}") for v in values])


# --------------------------------------------------------------------------- simulation

def _base_scenario(path: str, end: str, drop_after: str | None,
                   overrides: tuple[tuple[str, float], ...] = ()) -> Scenario:
    """The scenario a task runs: to `end`, with `overrides`, without events after `drop_after`.

    The file is read once per process (`sim.scenario.scenarios.load_cached`).
    """
    from sim.scenario.scenarios import load_cached

    scn = load_cached(path, end)
    if overrides:
        scn = scn.with_overrides(dict(overrides))
    if drop_after:
        last = parse_quarter(drop_after)
        late = [e.id for e in scn.events if e.quarter > last]
        if late:
            scn = scn.without_events(*late)
    return scn


def simulate_points(scenario: Scenario, names: Sequence[str],
                    points: Sequence[Sequence[float]], seeds: Sequence[int]) -> Simulated:
    """Run every point with every seed as one ensemble batch (points x seeds runs).

    Returns:
        The runs' metrics (`arrays["pair_metrics"]`, each (n_points * R, T, J, S)), run
        p*R + r being point p with seed r.
    """
    from sim.runs.runner import simulate

    scns, run_seeds = [], []
    for pt in points:
        scn = scenario.with_overrides(dict(zip(names, map(float, pt), strict=True))) \
            if names else scenario
        scns += [scn] * len(seeds)
        run_seeds += list(seeds)
    return simulate(scns, run_seeds, engine="ensemble", record=("metrics",))


@dataclass(frozen=True)
class EvalTask:
    """A chunk of points to evaluate on a worker: all picklable, no open files."""

    scenario_path: str
    end: str
    names: tuple[str, ...]
    points: tuple[tuple[float, ...], ...]
    seeds: tuple[int, ...]
    targets: tuple[tuple, ...]
    ratios: tuple[tuple[str, float], ...]
    drop_after: str | None = None
    overrides: tuple[tuple[str, float], ...] = ()


def run_task(task: EvalTask) -> list[dict[str, Any]]:
    """Evaluate a chunk of points: per point, the model's mean and 5-95% band per figure."""
    t0 = time.perf_counter()
    scn = _base_scenario(task.scenario_path, task.end, task.drop_after, task.overrides)
    sim_out = simulate_points(scn, task.names, task.points, task.seeds)
    obs = observe(sim_out.arrays["pair_metrics"], sim_out.quarters, sim_out.partners,
                  sim_out.states, task.targets, dict(task.ratios))
    R = len(task.seeds)
    each = (time.perf_counter() - t0) / len(task.points)
    out = []
    for p in range(len(task.points)):
        block = obs[p * R:(p + 1) * R]
        out.append({"mean": block.mean(axis=0), "p05": np.quantile(block, 0.05, axis=0),
                    "p95": np.quantile(block, 0.95, axis=0), "seconds": each})
    return out


# --------------------------------------------------------------------------- the log

@dataclass
class Evaluation:
    """One evaluated point."""

    key: str
    stage: str
    values: dict[str, float]
    loss: float
    components: dict[str, float]
    mean: np.ndarray
    p05: np.ndarray
    p95: np.ndarray
    seconds: float = 0.0


class EvalLog:
    """Evaluations of one calibration: kept in memory, each written as an atomic part.

    Parts are `runs/part-*.parquet` (the sweep's writer: temporary name, then rename),
    one row per figure with the model's mean and band; the part's metadata records the
    point (key, stage, values, loss). Reading the parts back gives every finished point,
    so a killed calibration resumes where it stopped.
    """

    def __init__(self, out: Path, names: Sequence[str], targets: pd.DataFrame,
                 train: np.ndarray):
        self.out, self.names, self.targets, self.train = out, list(names), targets, train
        self.lock = threading.Lock()
        self.evals: dict[str, Evaluation] = {}
        self.fresh = 0
        for part in sorted((out / "runs").glob("part-*.parquet")) if (out / "runs").is_dir() \
                else []:
            import pyarrow.parquet as pq

            recs = part_records(part)
            table = pq.read_table(part).to_pandas()
            for rec in recs:
                rows = table[table.key == rec["key"]].sort_values("figure")
                if len(rows) != len(targets):
                    continue
                ev = self._make(rec["key"], rec["stage"], rec["values"],
                                rows["mean"].to_numpy(), rows["p05"].to_numpy(),
                                rows["p95"].to_numpy(), rec.get("seconds", 0.0))
                self.evals[ev.key] = ev

    def _make(self, key, stage, values, mean, p05, p95, seconds) -> Evaluation:
        sel = self.train
        total, comps = loss(mean[sel], self.targets[sel])
        return Evaluation(key, stage, dict(values), total, comps, np.asarray(mean, float),
                          np.asarray(p05, float), np.asarray(p95, float), seconds)

    def add(self, stage: str, values: Sequence[float], result: dict[str, Any]) -> Evaluation:
        """Record a finished evaluation (written to disk before it counts)."""
        key = point_key(values)
        vals = dict(zip(self.names, map(float, values), strict=True))
        ev = self._make(key, stage, vals, result["mean"], result["p05"], result["p95"],
                        result["seconds"])
        n = len(ev.mean)
        table = pa.table({"key": pa.array([key] * n), "figure": pa.array(np.arange(n)),
                          "mean": pa.array(ev.mean), "p05": pa.array(ev.p05),
                          "p95": pa.array(ev.p95)})
        rec = {"run_id": key, "key": key, "stage": stage, "values": vals,
               "loss": ev.loss if math.isfinite(ev.loss) else None, "status": "ok",
               "seconds": round(ev.seconds, 4)}
        with self.lock:
            write_part(self.out, table, [rec])
            self.evals[key] = ev
            self.fresh += 1
        return ev

    def get(self, values: Sequence[float]) -> Evaluation | None:
        """The evaluation of a point, if done."""
        return self.evals.get(point_key(values))

    def table(self) -> pd.DataFrame:
        """Every evaluation: key, stage, loss, components, values."""
        rows = [{"key": e.key, "stage": e.stage, "loss": e.loss,
                 **{f"loss_{g}": v for g, v in e.components.items()}, **e.values}
                for e in self.evals.values()]
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the layer

LAYER_DIR = "calibration"


def layer_path(scenarios_dir: Path, world: str) -> Path:
    """Where the calibrated layer of a world lives: scenarios/calibration/<world>.yaml."""
    return scenarios_dir / LAYER_DIR / f"{world}.yaml"


def read_layer_entries(path: Path) -> dict[str, tuple[float, str]]:
    """The `set:` entries of an existing layer with their trailing comments."""
    out: dict[str, tuple[float, str]] = {}
    if not path.is_file():
        return out
    inside = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("set:"):
            inside = True
            continue
        if inside:
            m = re.match(r"^  ([\w.*]+):\s*([-+0-9.eE]+)\s*(?:#\s*(.*))?$", line)
            if m:
                out[m.group(1)] = (float(m.group(2)), m.group(3) or "")
            elif line and not line.startswith(" "):
                inside = False
    return out
