"""Writing and reading result folders, and reading the package's sourced figures.

A result folder holds the tidy frames (Parquet), the event log and summary (CSV), a
`manifest.json` that says how to reproduce it, and PNG charts. Folders are written in a
temporary sibling folder and moved into place only when complete, so a crash never leaves
a half-written folder and a previous run's folder is replaced only by a complete one.
No modelling and no argument parsing.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import sim
from sim.runs.tables import RunResult
from sim.world.quarters import format_quarter
from sim.world.values import Scenario

SHARES, METRICS, EVENTS, SUMMARY, MANIFEST = (
    "shares.parquet", "metrics.parquet", "events.csv", "summary.csv", "manifest.json")
DPI = 150


class OutputError(OSError):
    """The output folder cannot be written (e.g. the path is an existing file)."""


# --------------------------------------------------------------------------- folders

@contextmanager
def staged_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to `out_dir`; move it into place on success.

    On an exception inside the block the temporary folder is deleted and `out_dir` is left
    as it was (absent, or the previous run's folder). On success a previous `out_dir` is
    replaced by the new one.

    Raises:
        OutputError: `out_dir` exists and is not a folder.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex[:8]
    tmp = out.parent / f".{out.name}.tmp-{token}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{token}"
    if out.exists():
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old.exists():
            os.replace(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def save_figure(fig: Figure, path: Path) -> None:
    """Save a figure as PNG and free it."""
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    fig.clear()


def _save_all(folder: Path, figures: Mapping[str, Figure]) -> None:
    for name, fig in figures.items():
        save_figure(fig, folder / name)


# --------------------------------------------------------------------------- manifest

def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions of the package, Python and the libraries that shape the numbers."""
    return {
        "greatgame": sim.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mesa": _version("mesa"),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": _version("pyarrow"),
        "matplotlib": matplotlib.__version__,
    }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def scenario_record(scenario: Scenario) -> dict[str, Any]:
    """Describe a scenario as plain JSON: name, files and hashes, period, parameters, events."""
    return {
        "name": scenario.name,
        "description": scenario.description,
        "path": str(Path(scenario.path).resolve()),
        "file_hashes": dict(scenario.file_hashes),
        "period": {"start": format_quarter(scenario.start), "end": format_quarter(scenario.end),
                   "quarters": scenario.n_quarters},
        "parameters": scenario.params.model_dump(),
        "overrides": dict(scenario.overrides),
        "events": [
            {"id": e.id, "at": e.at, "duration_quarters": e.duration,
             "description": e.description,
             "effects": [{"target": f.target, "op": f.op, "value": f.value} for f in e.effects]}
            for e in scenario.events
        ],
    }


def manifest(scenario: Scenario, seeds: Sequence[int], started: datetime, finished: datetime,
             *, root_seed: int | None = None, command: str | None = None,
             files: Sequence[str] = (), extra: Mapping[str, Any] | None = None) -> dict:
    """Everything needed to reproduce a result folder, as a JSON-ready dict."""
    out = {
        "environment": environment(),
        "command": command if command is not None else shlex.join(sys.argv),
        "started": _iso(started),
        "finished": _iso(finished),
        "seconds": round((finished - started).total_seconds(), 3),
        "scenario": scenario_record(scenario),
        "root_seed": root_seed,
        "replications": len(seeds),
        "seeds": [{"replication": i, "seed": int(s)} for i, s in enumerate(seeds)],
        "executor": "serial",
        "files": sorted(files),
    }
    for k, v in (extra or {}).items():
        out.setdefault(k, v)
    return out


def _write_json(path: Path, data: Mapping) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- runs

def write_run(out_dir: str | Path, scenario: Scenario, result: RunResult, seeds: Sequence[int],
              started: datetime, finished: datetime, extra: Mapping[str, Any] | None = None,
              *, summary: pd.DataFrame, figures: Mapping[str, Figure] | None = None,
              root_seed: int | None = None, command: str | None = None) -> Path:
    """Write a run's results, summary, manifest and charts into `out_dir`, all or nothing.

    Args:
        out_dir: The result folder; replaced if it exists, created if not.
        scenario: The scenario that was run.
        result: Its results (`sim.runs.runner.run_batch`).
        summary: The summary table (`sim.analysis.bands.summarise`), saved as CSV.
        figures: Charts by file name (`sim.output.figures.run_figures`), saved as PNG.
        seeds: The per-replication seeds, replication i first.
        started: When the runs started.
        finished: When they finished.
        extra: More manifest entries (they never replace the standard ones).
        root_seed: The seed the replication seeds were derived from.
        command: The command line (default: this process's).

    Returns:
        The result folder.
    """
    out = Path(out_dir)
    with staged_dir(out) as tmp:
        result.shares.to_parquet(tmp / SHARES, index=False)
        result.metrics.to_parquet(tmp / METRICS, index=False)
        result.events.to_csv(tmp / EVENTS, index=False)
        summary.to_csv(tmp / SUMMARY, index=False)
        _save_all(tmp, figures or {})
        files = [p.name for p in tmp.iterdir()] + [MANIFEST]
        _write_json(tmp / MANIFEST, manifest(scenario, seeds, started, finished,
                                             root_seed=root_seed, command=command,
                                             files=files, extra=extra))
    return out


def read_run(run_dir: str | Path) -> RunResult:
    """Read a result folder written by `write_run` back into frames.

    Raises:
        FileNotFoundError: a results file is missing.
    """
    d = Path(run_dir)
    events = pd.read_csv(d / EVENTS, dtype={"scenario": "str", "replication": "int64",
                                            "seed": "int64", "quarter": "str", "event": "str"})
    return RunResult(shares=pd.read_parquet(d / SHARES), metrics=pd.read_parquet(d / METRICS),
                     events=events)


def read_manifest(run_dir: str | Path) -> dict:
    """Read the manifest of a result folder."""
    return json.loads((Path(run_dir) / MANIFEST).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- validation

def write_validation(out_dir: str | Path, scenario: Scenario, facts: pd.DataFrame,
                     fit: pd.DataFrame, seeds: Sequence[int], started: datetime,
                     finished: datetime, extra: Mapping[str, Any] | None = None, *,
                     figures: Mapping[str, Figure] | None = None,
                     root_seed: int | None = None, command: str | None = None) -> Path:
    """Write `validate` results: facts.csv, trade_fit.csv, their charts and a manifest.

    `figures` are the charts by file name (`sim.output.figures.validation_figures`).

    Returns:
        The result folder.
    """
    out = Path(out_dir)
    with staged_dir(out) as tmp:
        facts.to_csv(tmp / "facts.csv", index=False)
        fit.to_csv(tmp / "trade_fit.csv", index=False)
        _save_all(tmp, figures or {})
        files = [p.name for p in tmp.iterdir()] + [MANIFEST]
        _write_json(tmp / MANIFEST, manifest(scenario, seeds, started, finished,
                                             root_seed=root_seed, command=command,
                                             files=files, extra=extra))
    return out
