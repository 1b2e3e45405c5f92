"""Posterior draws of calibrated parameters: the file `calibrate --method abc` installs.

A world's posterior lives next to its calibrated values, in
`scenarios/calibration/<world>_posterior.csv`: a few `# key: value` header lines (method,
date, command, budget), then one row per weighted draw, the column `weight` first and one
column per `set:` path (`params.tilt_speed`, `powers.china.capacity_growth`, ...).

Replication i of any command that asks for parameter uncertainty runs with draw i of
`Posterior.sample(n, seed)`: a fixed function of the file and the root seed, the same in
every scenario, so comparisons stay paired run by run. Reads and writes files; runs nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sim.errors import InputError

POSTERIOR_DIR = "calibration"
POSTERIOR_SUFFIX = "_posterior.csv"
SAMPLE_STREAM = 0x9057E7
"""Mixed into the root seed so posterior sampling never shares a stream with a run's draws."""


def posterior_path(scenarios_dir: Path, world: str) -> Path:
    """Where a world's posterior lives: scenarios/calibration/<world>_posterior.csv."""
    return Path(scenarios_dir) / POSTERIOR_DIR / f"{world}{POSTERIOR_SUFFIX}"


@dataclass(frozen=True)
class Posterior:
    """Weighted parameter draws.

    Attributes:
        names: The `set:` paths, one per column of `values`.
        values: (n, d) draws.
        weights: (n,) importance weights, normalised to sum to 1.
        meta: The file's header entries (method, date, command, ...).
        path: The file read, or "" when built in memory.
    """

    names: tuple[str, ...]
    values: np.ndarray
    weights: np.ndarray
    meta: dict[str, str] = field(default_factory=dict)
    path: str = ""

    def __post_init__(self):
        v = np.asarray(self.values, dtype=float)
        w = np.asarray(self.weights, dtype=float)
        if v.ndim != 2 or v.shape[1] != len(self.names) or w.shape != (v.shape[0],):
            raise ValueError("a posterior needs (n, d) values, d names and n weights")
        if v.shape[0] == 0 or not np.isfinite(v).all() or not np.isfinite(w).all() \
                or (w < 0).any() or w.sum() <= 0:
            raise ValueError("a posterior needs at least one draw, finite values and "
                             "non-negative weights with a positive sum")
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "weights", w / w.sum())

    @property
    def size(self) -> int:
        """Number of weighted draws in the file."""
        return int(self.values.shape[0])

    def effective_size(self) -> float:
        """Kish's effective sample size of the weights, 1 / sum(w^2)."""
        return float(1.0 / np.sum(self.weights ** 2))

    def mean(self) -> dict[str, float]:
        """Weighted posterior mean of each parameter."""
        return dict(zip(self.names, map(float, self.weights @ self.values), strict=True))

    def quantiles(self, q: Sequence[float]) -> dict[str, list[float]]:
        """Weighted quantiles of each parameter (inverse of the weighted empirical CDF)."""
        out = {}
        for j, name in enumerate(self.names):
            order = np.argsort(self.values[:, j], kind="stable")
            cdf = np.cumsum(self.weights[order])
            idx = np.minimum(np.searchsorted(cdf, np.asarray(q, dtype=float)), self.size - 1)
            out[name] = [float(x) for x in self.values[order, j][idx]]
        return out

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Draw n parameter sets by weight, (n, d): row i is replication i's parameter set.

        Systematic resampling on a generator seeded from (`seed`, SAMPLE_STREAM), then
        shuffled by the same generator: the rows depend only on the file, n and the seed.
        """
        rng = np.random.default_rng([int(seed) & (2 ** 63 - 1), SAMPLE_STREAM])
        positions = (rng.random() + np.arange(n)) / n
        idx = np.minimum(np.searchsorted(np.cumsum(self.weights), positions), self.size - 1)
        return self.values[rng.permutation(idx)]

    def overrides(self, n: int, seed: int) -> list[dict[str, float]]:
        """`sample` as one `Scenario.with_overrides` mapping per replication."""
        return [dict(zip(self.names, map(float, row), strict=True))
                for row in self.sample(n, seed)]


def write_posterior(path: Path, names: Sequence[str], values: np.ndarray, weights: np.ndarray,
                    meta: Mapping[str, str] | None = None) -> Path:
    """Write a posterior file atomically (temporary file, then rename).

    Raises:
        ValueError: the draws are not a valid posterior (see `Posterior`).
    """
    post = Posterior(tuple(names), values, weights)  # validates
    path = Path(path)
    lines = [f"# {k}: {' '.join(str(v).split())}" for k, v in (meta or {}).items()]
    lines.append(",".join(["weight", *post.names]))
    for w, row in zip(post.weights, post.values, strict=True):
        lines.append(",".join(repr(float(x)) for x in (w, *row)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def load_posterior(path: Path) -> Posterior:
    """Read a posterior file.

    Raises:
        InputError: the file is missing or malformed (naming the line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no posterior file here (run greatgame calibrate --method abc)")
    meta: dict[str, str] = {}
    header: list[str] | None = None
    rows: list[list[float]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.strip()
            if not text:
                continue
            if text.startswith("#"):
                key, _, value = text[1:].partition(":")
                meta[key.strip()] = value.strip()
                continue
            cells = [c.strip() for c in text.split(",")]
            if header is None:
                if cells[0] != "weight" or len(cells) < 2 or len(set(cells)) != len(cells):
                    raise InputError(path, "the header must be weight then distinct parameter "
                                     "paths", line=lineno, field="header")
                header = cells
                continue
            if len(cells) != len(header):
                raise InputError(path, f"expected {len(header)} values, got {len(cells)}",
                                 line=lineno, field="row")
            try:
                row = [float(c) for c in cells]
            except ValueError:
                raise InputError(path, "expected numbers", line=lineno, field="row") from None
            bad = next((h for h, x in zip(header, row, strict=True) if not math.isfinite(x)),
                       None)
            if bad is not None or row[0] < 0:
                raise InputError(path, "must be a finite number (weights non-negative)",
                                 line=lineno, field=bad or "weight")
            rows.append(row)
    if header is None or not rows:
        raise InputError(path, "no draws in the file", field="rows")
    data = np.array(rows)
    try:
        return Posterior(tuple(header[1:]), data[:, 1:], data[:, 0], meta, str(path))
    except ValueError as e:
        raise InputError(path, str(e), field="weight") from None


def installed_posterior(scenarios_dir: Path, world: str) -> Posterior | None:
    """The world's installed posterior, or None when there is none."""
    path = posterior_path(scenarios_dir, world)
    return load_posterior(path) if path.is_file() else None
