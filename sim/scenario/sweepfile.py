"""Sweep files: YAML in, a validated `SweepPlan` (every run with its seed) out.

A sweep names scenarios, replications, a root seed, the parameters to vary (a grid of
values, or ranges sampled by Latin hypercube or Sobol with `scipy.stats.qmc`), the
outcomes to keep and where results go. Errors are one line naming the file, the line and
the field (`InputError`). No running, no result files.

Plans are lazy: a plan's points (`Points`) and runs (`RunList`) are sequences made on
demand, so loading a sweep of a billion runs costs no more than loading one of ten; what
such a sweep would cost to run is judged before it runs (`sim.runs.sweep_cost.check_size`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sim.errors import InputError
from sim.scenario.scenarios import load_scenario, scenarios_dir
from sim.scenario.yamlsafe import line_of, load_yaml
from sim.world.quarters import parse_quarter
from sim.world.values import Scenario
from sim.world.vocabulary import ROOT_SEED


def sweeps_dir() -> Path:
    """Folder of shipped sweep files."""
    return scenarios_dir() / "sweeps"


class Range(BaseModel):
    """A continuous range for Latin hypercube or Sobol sampling."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min: float
    max: float


class Outcomes(BaseModel):
    """Which results to keep for every run."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    areas: Literal["all"] | list[str] = Field(
        "all", description="`all` (region and every state) or a list of `region` and states.")
    quarters: Literal["all"] | list[str] = Field(
        "all", description="`all` or a list of quarters YYYYQn.")
    channels: bool = Field(False, description="Also keep each channel's share.")

    @field_validator("quarters")
    @classmethod
    def _quarters(cls, v):
        if isinstance(v, list):
            for q in v:
                parse_quarter(q)
        return v


class SweepFile(BaseModel):
    """The fields a sweep YAML file may hold (see docs/sweeps.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    description: str = Field(min_length=1)
    scenarios: list[str] = Field(min_length=1)
    replications: int = Field(10, ge=1, le=100_000)
    seed: int = Field(ROOT_SEED, ge=0, lt=2**63)
    design: Literal["grid", "lhs", "sobol"] = "grid"
    samples: int | None = Field(None, ge=1, le=1_000_000)
    parameters: dict[str, list[float] | Range] = Field(default_factory=dict)
    outcomes: Outcomes = Field(default_factory=Outcomes)
    end: str | None = None
    out: str | None = None
    chunk_size: int | None = Field(None, ge=1, le=100_000)
    posterior_draws: Literal["by_replication", "by_run"] = "by_replication"
    """With posterior draws: `by_replication`, replication r runs draw r at every point (the
    points stay paired); `by_run`, every point and replication its own draw (the same in
    every scenario), so a one-run-per-point sweep spreads over the posterior."""

    @field_validator("end")
    @classmethod
    def _end(cls, v):
        if v is not None:
            parse_quarter(v)
        return v


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep."""

    run_id: int
    scenario: str
    point: int
    replication: int
    seed: int


class RunList(Sequence):
    """Every run of a plan in a fixed order (scenario, point, replication), made on demand.

    Run ids are positions. Behaves like a list of `RunSpec` (length, index, slice,
    iteration) without holding one: a plan of a billion runs is a few integers.
    """

    def __init__(self, scenarios: Sequence[str], n_points: int, replications: int,
                 root_seed: int, seed_by_point: bool = True):
        self.scenarios = tuple(scenarios)
        self.n_points, self.replications = n_points, replications
        self.root_seed, self.seed_by_point = root_seed, seed_by_point

    def __len__(self) -> int:
        return len(self.scenarios) * self.n_points * self.replications

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"run {i} of {n}")
        rest, r = divmod(i, self.replications)
        s, p = divmod(rest, self.n_points)
        sp = p if self.seed_by_point else 0
        return RunSpec(i, self.scenarios[s], p, r, run_seed(self.root_seed, sp, r))

    def __iter__(self) -> Iterator[RunSpec]:
        return (self[i] for i in range(len(self)))


POINTS_LISTED = 10_000
"""Plans with at most this many points list them in their identity (`sweep.json`); larger
ones record their count and a hash (a million listed points made an 85 MB file)."""


class Points(Sequence):
    """A plan's parameter points, each a dict {parameter: value}, made on demand.

    A grid's point i is found from its index (the last parameter varies fastest, as in
    `itertools.product`), so a grid of any size costs nothing until a point is used; a
    sampled design draws its (samples x parameters) array once, when first needed.
    """

    def __init__(self, names: Sequence[str], n: int, *,
                 grid: Sequence[Sequence[float]] | None = None,
                 draw: Callable[[], np.ndarray] | None = None,
                 listed: Sequence[dict[str, float]] | None = None):
        self.names, self.n = tuple(names), n
        self._grid = [list(map(float, v)) for v in grid] if grid is not None else None
        self._draw, self._array = draw, None
        self._listed = tuple(dict(p) for p in listed) if listed is not None else None

    @classmethod
    def of(cls, points: Sequence[dict[str, float]]) -> Points:
        """Points given one by one (e.g. a SALib sample)."""
        points = list(points)
        return cls(list(points[0]) if points else [], len(points), listed=points)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"point {i} of {self.n}")
        if self._listed is not None:
            return dict(self._listed[i])
        if self._grid is not None:
            values = []
            for vals in reversed(self._grid):
                i, k = divmod(i, len(vals))
                values.append(vals[k])
            return dict(zip(self.names, reversed(values), strict=True))
        return dict(zip(self.names, map(float, self.array()[i]), strict=True))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        if len(other) != self.n:
            return False
        if isinstance(other, Points) and self.n > POINTS_LISTED:
            return self.digest() == other.digest()
        return list(self) == list(other)

    __hash__ = None

    def array(self) -> np.ndarray:
        """All points as an (n, parameters) float array."""
        if self._array is None:
            if self._draw is not None:
                self._array = np.asarray(self._draw(), dtype=float).reshape(self.n, -1)
            elif self._grid is not None:
                idx = np.arange(self.n, dtype=np.int64)
                cols = []
                for vals in reversed(self._grid):
                    idx, k = np.divmod(idx, len(vals))
                    cols.append(np.asarray(vals, dtype=float)[k])
                self._array = np.column_stack(cols[::-1]) if cols else np.zeros((self.n, 0))
            else:
                self._array = np.array([[p[k] for k in self.names] for p in self._listed],
                                       dtype=float).reshape(self.n, len(self.names))
        return self._array

    def digest(self) -> str:
        """SHA-256 of the names and every point's values."""
        h = hashlib.sha256(json.dumps(self.names).encode())
        h.update(np.ascontiguousarray(self.array(), dtype="<f8").tobytes())
        return h.hexdigest()

    def identity(self) -> list[dict[str, float]] | dict[str, Any]:
        """The points as listed in a plan's identity, or their count and hash when many."""
        if self.n <= POINTS_LISTED:
            return [dict(p) for p in self]
        return {"count": self.n, "sha256": self.digest()}


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: scenarios, parameter points, runs and where results go."""

    name: str
    description: str
    path: str
    scenario_paths: dict[str, str]
    scenario_hashes: dict[str, dict[str, str]]
    design: str
    parameters: tuple[str, ...]
    points: Sequence[dict[str, float]]
    """The parameter points: a lazy `Points` sequence (or any sequence of dicts)."""
    replications: int
    root_seed: int
    outcomes: Outcomes
    end: str | None
    out: str
    chunk_size: int | None
    file_hash: str
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    seed_by_point: bool = True
    """False: every point uses the same seeds (common random numbers across points)."""
    uncertainty: dict[str, Any] = field(default_factory=lambda: {"mode": "none"})
    """Posterior draws or not (`sim.runs.runner.Uncertainty.record()`); set by
    `sim.runs.sweep.with_uncertainty`, never by the sweep file."""
    draw_names: tuple[str, ...] = ()
    draw_values: Any = field(default=None, compare=False)
    """With posterior draws, an (n_draws, len(draw_names)) array: row r is replication r's
    parameter set at every point and in every scenario, or with `draws_by_run` row
    point x replications + r is that run's (`draw_index`)."""
    draws_by_run: bool = False
    """The sweep file's `posterior_draws: by_run`: each point and replication its own draw."""

    @property
    def n_draws(self) -> int:
        """Parameter sets a sweep with posterior draws needs."""
        return self.replications * (len(self.points) if self.draws_by_run else 1)

    def draw_index(self, replication: int, point: int = 0) -> int:
        """Which row of `draw_values` a run takes."""
        return point * self.replications + replication if self.draws_by_run else replication

    def draw(self, replication: int, point: int = 0) -> dict[str, float]:
        """A run's posterior parameter set (empty without posterior draws)."""
        if self.draw_values is None:
            return {}
        row = self.draw_values[self.draw_index(replication, point)]
        return dict(zip(self.draw_names, map(float, row), strict=True))

    @property
    def n_runs(self) -> int:
        """Total runs: scenarios x points x replications."""
        return len(self.scenario_paths) * len(self.points) * self.replications

    def runs(self) -> RunList:
        """Every run in a fixed order (scenario, point, replication); ids are positions.

        A lazy sequence of `RunSpec` (see `RunList`): index, slice or iterate it.
        """
        return RunList(list(self.scenario_paths), len(self.points), self.replications,
                       self.root_seed, self.seed_by_point)

    def identity(self) -> dict[str, Any]:
        """What makes two sweeps the same (results depend on exactly these)."""
        return {
            "name": self.name,
            "scenarios": self.scenario_hashes,
            "design": self.design,
            "parameters": list(self.parameters),
            "points": (self.points.identity() if isinstance(self.points, Points)
                       else Points.of(self.points).identity()),
            "replications": self.replications,
            "root_seed": self.root_seed,
            "outcomes": self.outcomes.model_dump(),
            "end": self.end,
            "seed_by_point": self.seed_by_point,
        } | ({"uncertainty": {"mode": "posterior",
                              "posterior_sha256": self.uncertainty["posterior"]["sha256"]}
              | ({"posterior_draws": "by_run"} if self.draws_by_run else {})}
             if self.uncertainty.get("mode") == "posterior" else {})

    def identity_hash(self) -> str:
        """SHA-256 of the identity."""
        blob = json.dumps(self.identity(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def scenario(self, name: str) -> Scenario:
        """Load one of the sweep's scenarios (with its end quarter applied)."""
        scn = load_scenario(self.scenario_paths[name])
        return scn.with_end(self.end) if self.end else scn


def run_seed(root: int, point: int, replication: int) -> int:
    """Seed of one run, from (root seed, parameter point, replication) via SeedSequence.

    The scenario is not an input, so replication r at point p uses the same seed in every
    scenario (common random numbers for paired comparisons).
    """
    ss = np.random.SeedSequence(root, spawn_key=(point, replication))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _design_points(spec: SweepFile) -> tuple[Points, dict[str, tuple]]:
    """The design's points, lazily: nothing is drawn or listed until a point is used."""
    names = list(spec.parameters)
    if not names:
        return Points.of([{}]), {}
    if spec.design == "grid":
        lists = [spec.parameters[n] for n in names]
        return Points(names, int(np.prod([len(v) for v in lists], dtype=object)),
                      grid=lists), {}
    ranges = {n: (spec.parameters[n].min, spec.parameters[n].max) for n in names}

    def draw(n=spec.samples, design=spec.design, seed=spec.seed):
        from scipy.stats import qmc

        if design == "lhs":
            unit = qmc.LatinHypercube(d=len(names), seed=seed).random(n)
        else:
            unit = qmc.Sobol(d=len(names), scramble=True, seed=seed).random(n)
        lo = np.array([ranges[k][0] for k in names])
        hi = np.array([ranges[k][1] for k in names])
        return qmc.scale(unit, lo, hi) if np.all(hi > lo) else lo + unit * (hi - lo)

    return Points(names, spec.samples, draw=draw), ranges


def load_sweep_file(path: str | Path, *, replications: int | None = None,
                    seed: int | None = None, out: str | None = None) -> SweepPlan:
    """Load and validate a sweep file; command-line options override the file.

    Raises:
        InputError: on any problem, one line naming the file, line and field.
    """
    text = str(path)
    p = Path(text)
    if not p.exists() and "/" not in text and not text.endswith((".yaml", ".yml")):
        p = sweeps_dir() / f"{text}.yaml"
    raw = load_yaml(p)
    try:
        spec = SweepFile.model_validate(dict(raw))
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x in (
            "list[float]", "Range", "literal['all']", "list[str]")))
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise InputError(p, msg, line=line_of(raw, loc),
                         field=".".join(map(str, loc)) or None) from None
    spec = spec.model_copy(update={k: v for k, v in (("replications", replications),
                                                       ("seed", seed)) if v is not None})

    def fail(msg, loc):
        return InputError(p, msg, line=line_of(raw, loc), field=".".join(map(str, loc)))

    if spec.design == "grid":
        for k, v in spec.parameters.items():
            if not isinstance(v, list) or not v:
                raise fail("a grid needs a non-empty list of values", ("parameters", k))
    else:
        if spec.samples is None:
            raise fail(f"design {spec.design} needs samples: N", ("design",))
        if spec.design == "sobol" and spec.samples & (spec.samples - 1):
            raise fail("Sobol samples must be a power of 2 (e.g. 64, 128)", ("samples",))
        for k, v in spec.parameters.items():
            if not isinstance(v, Range):
                raise fail(f"design {spec.design} needs a range {{min: .., max: ..}}",
                           ("parameters", k))
            if v.max < v.min:
                raise fail("max is below min", ("parameters", k))

    scenario_paths: dict[str, str] = {}
    hashes: dict[str, dict[str, str]] = {}
    for i, name in enumerate(spec.scenarios):
        target = name if Path(name).is_absolute() or "/" not in name else str(p.parent / name)
        try:
            scn = load_scenario(target)
        except InputError as e:
            raise fail(f"scenario {name!r}: {e}", ("scenarios", i)) from None
        if scn.name in scenario_paths:
            raise fail(f"scenario {scn.name!r} is listed twice", ("scenarios", i))
        scenario_paths[scn.name] = scn.path
        hashes[scn.name] = scn.file_hashes
        if spec.end:
            try:
                scn = scn.with_end(spec.end)
            except InputError as e:
                raise fail(e.message, ("end",)) from None
        for k, v in spec.parameters.items():
            probe = v[0] if isinstance(v, list) else v.min
            try:
                scn.with_overrides({k: probe})
                if isinstance(v, Range):
                    scn.with_overrides({k: v.max})
                else:
                    for value in v:
                        scn.with_overrides({k: value})
            except InputError as e:
                raise fail(f"{e.message} (in scenario {scn.name})", ("parameters", k)) from None
    if isinstance(spec.outcomes.areas, list):
        known = {"region", *load_scenario(next(iter(scenario_paths.values()))).world.states}
        for i, a in enumerate(spec.outcomes.areas):
            if a not in known:
                raise fail(f"unknown area {a!r} (expected region or a state)",
                           ("outcomes", "areas", i))

    points, ranges = _design_points(spec)
    out = out or spec.out or f"results/sweeps/{spec.name}"
    return SweepPlan(
        name=spec.name,
        description=spec.description.strip(),
        path=str(p),
        scenario_paths=scenario_paths,
        scenario_hashes=hashes,
        design=spec.design,
        parameters=tuple(spec.parameters),
        points=points,
        replications=spec.replications,
        root_seed=spec.seed,
        outcomes=spec.outcomes,
        end=spec.end,
        out=out,
        chunk_size=spec.chunk_size,
        file_hash=hashlib.sha256(p.read_bytes()).hexdigest(),
        ranges=ranges,
        draws_by_run=spec.posterior_draws == "by_run",
    )


def with_points(plan: SweepPlan, points: list[dict[str, float]], *, name_suffix: str,
                outcomes: Outcomes | None = None, replications: int | None = None,
                out: str | None = None) -> SweepPlan:
    """A plan with explicit parameter points (e.g. a SALib sample), otherwise the same."""
    from dataclasses import replace

    return replace(plan, name=f"{plan.name}-{name_suffix}", design=name_suffix,
                   points=Points.of(points), outcomes=outcomes or plan.outcomes,
                   replications=replications or plan.replications, out=out or plan.out)
