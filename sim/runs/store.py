"""Writing and reading result folders, and reading the package's sourced figures.

A result folder holds the tidy frames (Parquet), the event log and summary (CSV), a
`manifest.json` that says how to reproduce it, and PNG charts. Folders are written in a
temporary sibling folder and moved into place only when complete, so a crash never leaves
a half-written folder and a previous run's folder is replaced only by a complete one.

A folder is only ever written where nothing of the user's can be lost (`check_output_dir`):
a new folder, an empty one, or a previous result of this tool, recognised by its manifest
and holding nothing its manifest does not list. Also the estimate of the memory a batch of
runs needs (`check_result_size`), so that impossible requests are refused up front.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from sim.errors import InputError
from sim.runs.tables import RunResult
from sim.world.quarters import format_quarter
from sim.world.values import Scenario

SHARES, METRICS, EVENTS, SUMMARY, MANIFEST = (
    "shares.parquet", "metrics.parquet", "events.csv", "summary.csv", "manifest.json")
DPI = 150




# --------------------------------------------------------------------------- folders

_LEGACY_FILES = frozenset({"history_fit.csv", "model_vs_history.png"})
"""Files older versions of `validate` wrote next to its manifest without listing them."""


def _is_result(folder: Path) -> tuple[bool, list[str]]:
    """Whether `folder` holds a result of this tool, and its entries the manifest omits."""
    path = folder / MANIFEST
    if not path.is_file():  # a FIFO named manifest.json would hang the read
        return False, []
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, []
    if not (isinstance(manifest, dict) and isinstance(manifest.get("environment"), dict)
            and "greatgame" in manifest["environment"]
            and isinstance(manifest.get("files"), list)):
        return False, []
    listed = {str(f) for f in manifest["files"]} | {MANIFEST} | _LEGACY_FILES
    return True, sorted(p.name for p in folder.iterdir() if p.name not in listed)


def check_output_dir(out_dir: str | Path) -> Path:
    """Check that a result may be written to `out_dir` without losing anything.

    Allowed: a path that does not exist, an empty folder, or a folder holding a previous
    result of this tool (a `manifest.json` written by it) and nothing else than the files
    that manifest lists. A symbolic link is followed.

    Returns:
        The folder, resolved (absolute, links followed).

    Raises:
        InputError: the path is a file, or a folder holding anything else; the message
            says what and how to proceed.
    """
    given = Path(out_dir)
    out = given.resolve()
    if not out.exists():
        if out.parent.exists() and not out.parent.is_dir():
            raise InputError(None, f"--out {given}: {out.parent} is not a folder")
        return out
    if not out.is_dir():
        raise InputError(None, f"--out {given}: exists and is not a folder")
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise InputError(None, f"--out {given}: is the current folder or holds it, and would be "
                          "replaced; choose a new folder")
    try:
        entries = sorted(p.name for p in out.iterdir())
    except OSError as e:
        raise InputError(None, f"--out {given}: cannot be read ({e.strerror or e})") from None
    if not entries:
        return out
    if out.parent == out or out == Path.home().resolve():
        raise InputError(None, f"--out {given}: a home or root folder is never a result folder; "
                          "choose a new folder")
    is_result, others = _is_result(out)
    if not is_result:
        first = ", ".join(_quoted(n) for n in entries[:2])
        more = f" and {len(entries) - 2} more" if len(entries) > 2 else ""
        raise InputError(None, f"--out {given}: holds {first}{more} and is not a greatgame result "
                          "folder (no manifest.json of one); writing there would delete them, "
                          "so choose a new or empty folder")
    if others:
        first = ", ".join(_quoted(n) for n in others[:2])
        more = f" and {len(others) - 2} more" if len(others) > 2 else ""
        raise InputError(None, f"--out {given}: holds {first}{more}, not part of the previous "
                          "result (its manifest does not list it); replacing the result would "
                          "delete it, so move it or choose another folder")
    return out


def _quoted(name: str, limit: int = 40) -> str:
    """A file name for a message, quoted and clipped to `limit` characters."""
    text = repr(name)
    return text if len(text) <= limit else text[:limit - 1] + "…'"


@contextmanager
def staged_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to `out_dir`; move it into place on success.

    On an exception inside the block the temporary folder is deleted and `out_dir` is left
    as it was (absent, or the previous run's folder). On success a previous `out_dir` is
    replaced by the new one. `out_dir` is checked (`check_output_dir`) before and again
    just before it is replaced, so nothing but an earlier result is ever deleted.

    Raises:
        InputError: `out_dir` is a file, or a folder holding something other than a
            previous result of this tool.
    """
    out = check_output_dir(out_dir)
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
    try:
        check_output_dir(out)  # again: something may have been put there meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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


def _finish(folder: Path, figures: Mapping[str, Figure] | None, record: dict[str, Any]) -> None:
    """Save the figures, then the manifest listing every file of the folder (itself too)."""
    for name, fig in (figures or {}).items():
        save_figure(fig, folder / name)
    files = [p.name for p in folder.iterdir()] + [MANIFEST]
    _write_json(folder / MANIFEST, record | {"files": sorted(files)})


# --------------------------------------------------------------------------- sizes

RESULT_BYTES_PER_RUN_QUARTER = 30_000
"""Peak memory one run's results take per simulated quarter while a batch is gathered and
written: about 10 kB in the shares, metrics and event frames of the five-state world
(measured; `tests/test_bad_input.py` checks the figure), times three for the copies made
when runs are stacked and written to Parquet."""


def memory_limit() -> int:
    """Return the memory results may take, in bytes: half the physical memory.

    4 GiB when the machine's memory cannot be read.
    """
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def _bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def check_result_size(runs: int, quarters: int, what: str = "-n") -> None:
    """Refuse a batch whose results would not fit in memory, before any seed is derived.

    Args:
        runs: Runs whose results are held together (replications x scenarios).
        quarters: Quarters each run simulates.
        what: The option to name in the message.

    Raises:
        InputError: the estimate (`RESULT_BYTES_PER_RUN_QUARTER`) exceeds `memory_limit()`.
    """
    need = runs * quarters * RESULT_BYTES_PER_RUN_QUARTER
    limit = memory_limit()
    if need > limit:
        most = max(0, limit // (quarters * RESULT_BYTES_PER_RUN_QUARTER))
        raise InputError(None, f"{what}: {runs:,} runs of {quarters} quarters would need about "
                        f"{_bytes(need)} of memory for their results, more than the "
                        f"{_bytes(limit)} allowed (half this machine's memory); at most "
                        f"{most:,} runs fit (for more, `greatgame sweep` streams results to "
                        "disk)")


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


def seed_records(seeds: Sequence[int],
                 parameters: Sequence[Mapping[str, float]] | None = None) -> list[dict]:
    """Each replication's seed and, with posterior draws, the parameter set it ran with."""
    out = [{"replication": i, "seed": int(s)} for i, s in enumerate(seeds)]
    if parameters is not None:
        for rec, params in zip(out, parameters, strict=True):
            rec["parameters"] = {k: float(v) for k, v in params.items()}
    return out


def manifest(scenario: Scenario, seeds: Sequence[int], started: datetime, finished: datetime,
             *, root_seed: int | None = None, command: str | None = None,
             files: Sequence[str] = (), extra: Mapping[str, Any] | None = None,
             uncertainty: Mapping[str, Any] | None = None,
             parameters: Sequence[Mapping[str, float]] | None = None) -> dict:
    """Everything needed to reproduce a result folder, as a JSON-ready dict.

    `uncertainty` is `sim.runs.runner.Uncertainty.record()` (default: no posterior draws);
    `parameters` the parameter set each replication ran with (posterior draws, the keys
    the scenario took), recorded with its seed: stored runs are reused only when both match.
    """
    out = {
        "environment": environment(),
        "command": command if command is not None else shlex.join(sys.argv),
        "started": _iso(started),
        "finished": _iso(finished),
        "seconds": round((finished - started).total_seconds(), 3),
        "scenario": scenario_record(scenario),
        "root_seed": root_seed,
        "replications": len(seeds),
        "uncertainty": dict(uncertainty) if uncertainty is not None else {
            "mode": "none", "interval": "model randomness only", "posterior": None},
        "seeds": seed_records(seeds, parameters),
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
              root_seed: int | None = None, command: str | None = None,
              uncertainty: Mapping[str, Any] | None = None,
              parameters: Sequence[Mapping[str, float]] | None = None) -> Path:
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
        uncertainty: Whether the runs drew their parameters from a posterior (see
            `manifest`).
        parameters: The parameter set each replication ran with.

    Returns:
        The result folder.
    """
    out = Path(out_dir)
    with staged_dir(out) as tmp:
        result.shares.to_parquet(tmp / SHARES, index=False)
        result.metrics.to_parquet(tmp / METRICS, index=False)
        result.events.to_csv(tmp / EVENTS, index=False)
        summary.to_csv(tmp / SUMMARY, index=False)
        _finish(tmp, figures, manifest(scenario, seeds, started, finished, root_seed=root_seed,
                                       command=command, extra=extra, uncertainty=uncertainty,
                                       parameters=parameters))
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
                     root_seed: int | None = None, command: str | None = None,
                     more: Callable[[Path], None] | None = None) -> Path:
    """Write `validate` results: facts.csv, trade_fit.csv, their charts and a manifest.

    Args:
        out_dir: The result folder (see `check_output_dir`).
        scenario: The scenario run (the baseline).
        facts: The stylized facts table.
        fit: The trade fit table.
        seeds: The per-replication seeds.
        started: When the runs started.
        finished: When they finished.
        extra: More manifest entries.
        figures: The charts by file name (`sim.output.figures.validation_figures`).
        root_seed: The seed the replication seeds were derived from.
        command: The command line.
        more: Called with the staging folder to write further files into it (they are
            listed in the manifest and moved into place with the rest).

    Returns:
        The result folder.
    """
    out = Path(out_dir)
    with staged_dir(out) as tmp:
        if more is not None:
            more(tmp)
        facts.to_csv(tmp / "facts.csv", index=False)
        fit.to_csv(tmp / "trade_fit.csv", index=False)
        _finish(tmp, figures, manifest(scenario, seeds, started, finished, root_seed=root_seed,
                                       command=command, extra=extra))
    return out
