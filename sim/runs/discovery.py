"""A sweep folder read for scenario discovery, and the discovery's own result folder.

`open_sweep` checks that a folder holds a sweep (`sweep.json`, Parquet parts under
`runs/`) and reads what it recorded: its varied parameters and the powers, areas and
quarters a condition may name. `read_runs` gives one row per finished run: its scenario,
point, replication, seed, parameter values and the shares a condition reads.
`write_discovery` writes the tables, the sentence and the charts into a new folder, all or
nothing (`sim.runs.store.staged_dir`), with a manifest that lets a later discovery of the
same condition replace it. No analysis and no drawing here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from matplotlib.figure import Figure

from sim.analysis.condition import Names, Term
from sim.errors import InputError, shorten
from sim.runs import store
from sim.runs.sweep import LOCK_FILE, SPEC_FILE, catalogue, folder_lock, load_sweep
from sim.world.quarters import parse_quarter
from sim.world.vocabulary import REGION

OUT_FOLDER = "discover"
"""Where discoveries go inside the sweep folder by default: `<sweep>/discover/<slug>/`."""
POWER_ORDER = ("china", "russia", "eu", "us", "other")
RUN_COLUMNS = ["run_id", "scenario", "point", "replication", "seed"]


@dataclass(frozen=True)
class SweepFolder:
    """What a sweep folder holds, read without loading its rows."""

    path: Path
    name: str
    identity_hash: str
    parameters: tuple[str, ...]
    names: Names
    scenarios: tuple[str, ...]
    runs_ok: int
    runs_failed: int
    runs_planned: int | None
    sweep_file: str | None
    scenario_files: Mapping[str, Sequence[str]]


def open_sweep(folder: str | Path) -> SweepFolder:
    """Check that `folder` holds a finished (or partly finished) sweep and describe it.

    Raises:
        InputError: not a folder, not a sweep folder, no finished run, or a sweep is
            still running there; one line saying what to do.
    """
    given = str(folder)
    path = Path(folder)
    if not path.is_dir():
        hint = ""
        if not path.exists() and "/" not in given and not given.endswith((".yaml", ".yml")):
            guess = Path("results") / "sweeps" / given
            hint = (f" (did you mean {str(guess)!r}?)" if (guess / SPEC_FILE).is_file() else
                    f"; to run the sweep file {given!r} first: greatgame sweep {given}")
        elif path.is_file():
            hint = f"; it is a file (to run a sweep file first: greatgame sweep {given})"
        raise InputError(None, f"{shorten(given)} is not a sweep folder{hint}",
                         field="SWEEP_FOLDER")
    spec_path = path / SPEC_FILE
    if not spec_path.is_file():
        raise InputError(None, f"{shorten(given)} holds no {SPEC_FILE}, so it is not the folder "
                               "of a `greatgame sweep` (results/sweeps/<name>/ by default)",
                         field="SWEEP_FOLDER")
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        identity = spec["identity"]
        parameters = tuple(str(p) for p in identity.get("parameters", []))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(None, f"{shorten(given)}: {SPEC_FILE} cannot be read ({e})",
                         field="SWEEP_FOLDER") from None
    with _reading(path):
        cat = catalogue(path)
        ok = sum(r.get("status") == "ok" for r in cat.records)
        failed = len(cat.records) - ok
        if not ok:
            raise InputError(None, f"{shorten(given)}: no run of the sweep has finished yet"
                                   + (f" ({failed} failed)" if failed else ""),
                             field="SWEEP_FOLDER")
        labels = _labels(path)
    powers = sorted(labels["power"], key=lambda p: (POWER_ORDER.index(p)
                                                    if p in POWER_ORDER else 99, p))
    areas = sorted(labels["area"], key=lambda a: (a != REGION, a))
    quarters = sorted(labels["quarter"], key=parse_quarter)
    scenario_files = {k: list(v) for k, v in identity.get("scenarios", {}).items()}
    return SweepFolder(path=path, name=str(spec.get("name", path.name)),
                       identity_hash=str(spec.get("identity_hash", "")),
                       parameters=parameters, names=Names(powers, areas, quarters),
                       scenarios=tuple(sorted(labels["scenario"])), runs_ok=ok,
                       runs_failed=failed, runs_planned=_planned(identity),
                       sweep_file=spec.get("sweep_file"), scenario_files=scenario_files)


def _planned(identity: Mapping[str, Any]) -> int | None:
    try:
        points = identity["points"]
        n_points = points["count"] if isinstance(points, dict) else len(points)
        return len(identity["scenarios"]) * int(n_points) * int(identity["replications"])
    except (KeyError, TypeError, ValueError):
        return None


class _reading:
    """Hold the sweep folder's lock while reading, so no sweep adds parts meanwhile."""

    def __init__(self, path: Path):
        self.path, self.lock = path, None

    def __enter__(self):
        if not (self.path / LOCK_FILE).exists() and not os.access(self.path, os.W_OK):
            return self  # a read-only copy of a sweep: nothing can be running there
        self.lock = folder_lock(self.path, what="sweep")
        try:
            self.lock.__enter__()
        except OSError:  # a lock file this user may not open: read without the lock
            self.lock = None
        except InputError as e:
            self.lock = None
            raise InputError(None, f"{e.message.split(';')[0]}; run discover once it has "
                                   "finished", field="SWEEP_FOLDER") from None
        return self

    def __exit__(self, *exc):
        if self.lock is not None:
            self.lock.__exit__(*exc)
        return False


def _labels(path: Path) -> dict[str, set[str]]:
    """The distinct powers, areas, quarters and scenarios of the rows (streamed)."""
    cols = ["power", "area", "quarter", "scenario"]
    out: dict[str, set[str]] = {c: set() for c in cols}
    dset = load_sweep(path, as_dataset=True)
    for batch in dset.to_batches(columns=cols, batch_size=1 << 20):
        for c in cols:
            col = batch.column(c)
            values = pc.unique(col)
            if pa.types.is_dictionary(values.type):
                values = values.dictionary.take(pc.unique(values.indices))
            out[c].update(str(v) for v in values.to_pylist() if v is not None)
    return out


def read_runs(sweep: SweepFolder, terms: Sequence[Term]) -> tuple[pd.DataFrame, list[str]]:
    """One row per finished run: run columns, parameter values and each term's share.

    Args:
        sweep: The sweep (`open_sweep`).
        terms: The shares to read; each becomes a column named like `china.region.2030Q4`
            holding the share (0 to 1).

    Returns:
        The table, sorted by run id, and notes (runs left out because they lack a term:
        a scenario whose period ends before a term's quarter).
    """
    powers = sorted({t.power for t in terms})
    areas = sorted({t.area for t in terms})
    quarters = sorted({t.quarter for t in terms})
    flt = (ds.field("power").isin(powers) & ds.field("area").isin(areas)
           & ds.field("quarter").isin(quarters))
    with _reading(sweep.path):
        dset = load_sweep(sweep.path, as_dataset=True)
        cols = [*RUN_COLUMNS, "power", "area", "quarter", "share", *sweep.parameters]
        rows = dset.to_table(columns=cols, filter=flt).to_pandas()
    for c in ("power", "area", "quarter", "scenario"):
        rows[c] = rows[c].astype(str)
    rows["term"] = rows["power"] + "." + rows["area"] + "." + rows["quarter"]
    wide = rows.pivot_table(index="run_id", columns="term", values="share", aggfunc="first")
    runs = rows.drop_duplicates("run_id").set_index("run_id")[
        [c for c in RUN_COLUMNS if c != "run_id"] + list(sweep.parameters)]
    names = [str(t) for t in terms]
    table = runs.join(wide.reindex(columns=names)).sort_index().reset_index()
    notes = []
    missing = table[names].isna().any(axis=1)
    if missing.any():
        lacking = [n for n in names if table[n].isna().any()]
        notes.append(f"{int(missing.sum()):,} run(s) did not record {', '.join(lacking)} "
                     "(their scenario's period ends earlier); left out")
        table = table[~missing].reset_index(drop=True)
    return table, notes


def effect_targets(sweep: SweepFolder) -> dict[str, tuple[str, str]]:
    """Each varied event effect value -> (target, op) of that effect, as far as readable.

    Read from the sweep's scenario files (through its sweep file, else the scenario files
    its identity lists). Only for words in the sentence: when nothing can be read, the
    parameters keep their plain names.
    """
    from sim.scenario.scenarios import load_scenario

    wanted = [p for p in sweep.parameters if p.startswith("events.")]
    if not wanted:
        return {}
    candidates = []
    for name, files in sweep.scenario_files.items():
        candidates += [f for f in files if Path(f).stem == name]
    out: dict[str, tuple[str, str]] = {}
    for path in candidates:
        try:
            scenario = load_scenario(path)
        except (InputError, OSError):
            continue
        events = {e.id: e for e in scenario.events}
        for p in wanted:
            m = re.match(r"^events\.([^.]+)\.effects\[(\d+)\]\.value$", p)
            if m and p not in out and m.group(1) in events:
                effects = events[m.group(1)].effects
                i = int(m.group(2))
                if i < len(effects):
                    out[p] = (effects[i].target, effects[i].op)
        if len(out) == len(wanted):
            break
    return out


# --------------------------------------------------------------------------- output

def slug(condition: str) -> str:
    """A folder name for a condition.

    `china.region.2030Q4 > russia.region.2030Q4` -> `china-region-2030q4-gt-russia-region-
    2030q4`; a long one is cut and ends in a hash of the text.
    """
    s = condition.lower()
    for op, word in ((">=", " ge "), ("<=", " le "), (">", " gt "), ("<", " lt "),
                     ("+", " plus "), ("-", " minus "), ("*", " times "), ("/", " over "),
                     ("%", " pct "), ("(", " "), (")", " ")):
        s = s.replace(op, word)
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-") or "condition"
    if len(s) > 80:
        digest = hashlib.sha256(" ".join(condition.split()).encode()).hexdigest()[:8]
        s = s[:70].rstrip("-") + "-" + digest
    return s


def default_out(sweep: SweepFolder, condition: str) -> Path:
    """`<sweep>/discover/<slug>/`."""
    return sweep.path / OUT_FOLDER / slug(condition)


def check_out(out: Path) -> Path:
    """Check, before any work, that the discovery may be written to `out`.

    Raises:
        InputError: the folder holds anything but a previous result, or cannot be written.
    """
    resolved = store.check_output_dir(out)
    parent = next((p for p in [resolved.parent, *resolved.parents] if p.exists()), None)
    if parent is not None and not os.access(parent, os.W_OK):
        raise InputError(None, f"--out {out}: cannot write in {parent}; choose another folder "
                               "with --out")
    return resolved


def write_discovery(out: Path, *, tables: Mapping[str, pd.DataFrame],
                    texts: Mapping[str, str], figures: Mapping[str, Figure],
                    record: Mapping[str, Any]) -> Path:
    """Write a discovery folder, all or nothing: CSV tables, text files, charts, manifest.

    Args:
        out: The folder (new, empty, or a previous result: replaced).
        tables: File name -> table, written as CSV.
        texts: File name -> text (one line each).
        figures: Base name -> figure, saved as `<name>.png` and `<name>.svg`.
        record: What the manifest says besides the environment and the file list.

    Returns:
        The folder.
    """
    with store.staged_dir(out) as tmp:
        for name, table in tables.items():
            table.to_csv(tmp / name, index=False)
        for name, text in texts.items():
            (tmp / name).write_text(text.rstrip("\n") + "\n", encoding="utf-8")
        for name, fig in figures.items():
            fig.savefig(tmp / f"{name}.png", dpi=store.DPI, bbox_inches="tight",
                        facecolor="white")
            fig.savefig(tmp / f"{name}.svg", bbox_inches="tight", facecolor="white")
        files = sorted([p.name for p in tmp.iterdir()] + [store.MANIFEST])
        env = store.environment() | {"ema_workbench": _version("ema_workbench"),
                                     "scikit-learn": _version("scikit-learn")}
        body = {"environment": env, **record, "files": files}
        (tmp / store.MANIFEST).write_text(json.dumps(body, indent=2, default=str) + "\n",
                                          encoding="utf-8")
    return out


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None
