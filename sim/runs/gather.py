"""The runs analyses need: a comparison's runs (stored ones reused), and explanations.

`gather` takes the scenarios of a comparison and one seed per replication (the same in
every scenario), reads the replications a result folder already holds when its manifest
matches (same scenario files, period, versions, seed, uncertainty mode, posterior file and
parameter set), and runs the rest through the runner with their alignment traces, serially
or on a process pool. With posterior draws (`sim.runs.runner.Uncertainty`) replication i
runs parameter set i in every scenario, applied by `sim.runs.runner.replicate`. It can also
run the same seeds in the other uncertainty mode on the ensemble engine (shares only), so
a report can say how much of an interval's width the posterior adds. What it returns is
what `sim.output.report` analyses and draws. `explain` runs a scenario to explain one
state's tilt move (`greatgame explain`); `explain_shifts` explains a comparison's largest
shifts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.analysis import explain as E
from sim.errors import InputError
from sim.runs.executors import make_executor
from sim.runs.runner import (
    Uncertainty,
    applicable,
    check_draws,
    masked_changes,
    replicate,
    run_traced,
    simulate,
    skipped_keys,
)
from sim.runs.store import environment, read_manifest, read_run
from sim.runs.tables import ALIGNMENT_COLUMNS, RunResult, shares_frame
from sim.world.quarters import format_quarter, parse_quarter
from sim.world.values import Scenario

CHUNK = 5
"""Runs per task on a process pool."""


def unique_labels(names: Sequence[str]) -> list[str]:
    """Labels for scenarios in compare order; a repeated name gets ` (2)`, ` (3)`, ...

    Comparing a scenario with itself needs two labels for one name.
    """
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def reusable_replications(manifest: Mapping[str, Any], file_hashes: Mapping[str, str],
                          period: tuple[int, int], seeds: Sequence[int],
                          versions: Mapping[str, str | None],
                          uncertainty: Mapping[str, Any] | None = None,
                          parameters: Sequence[Mapping[str, float]] | None = None) -> list[int]:
    """Which wanted replications a stored result folder already holds.

    A folder qualifies when its manifest records the same scenario file hashes, the same
    period, the same versions (package, numpy, mesa) and the same uncertainty: the same
    mode and, with posterior draws, the same posterior file (by hash). Then each wanted
    replication i is reusable when the folder holds replication i with the same seed and
    the same parameter set. Runs with and without posterior draws are never mixed; a
    manifest that records no uncertainty (older versions) holds runs without draws.

    Args:
        manifest: The folder's manifest (`sim.runs.store.read_manifest`).
        file_hashes: The scenario's file hashes now.
        period: The scenario's (start, end) quarter indices.
        seeds: The wanted seed of each replication.
        versions: Library -> version now (keys as in the manifest's `environment`).
        uncertainty: The wanted `Uncertainty.record()` (default: no draws).
        parameters: The wanted parameter set of each replication (default: none).

    Returns:
        The reusable replication indices (empty if the folder does not qualify).
    """
    want_mode, want_hash = _mode_and_hash(uncertainty)
    want = [dict(p) for p in parameters] if parameters is not None else [{}] * len(seeds)
    try:
        rec = manifest["scenario"]
        env = manifest.get("environment", {})
        same = (dict(rec["file_hashes"]) == dict(file_hashes)
                and (parse_quarter(rec["period"]["start"]),
                     parse_quarter(rec["period"]["end"])) == tuple(period)
                and all(env.get(k) == v for k, v in versions.items())
                and _mode_and_hash(manifest.get("uncertainty")) == (want_mode, want_hash))
        stored = {int(s["replication"]): (int(s["seed"]), {
            k: float(v) for k, v in (s.get("parameters") or {}).items()})
            for s in manifest["seeds"]}
    except (KeyError, TypeError, ValueError, AttributeError):
        return []
    if not same:
        return []
    return [i for i, seed in enumerate(seeds) if stored.get(i) == (int(seed), want[i])]


def _mode_and_hash(record: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """(mode, posterior hash) of an uncertainty record; no record means no draws."""
    if not record:
        return "none", None
    mode = record["mode"]
    return mode, (record.get("posterior") or {}).get("sha256") if mode == "posterior" else None


@dataclass
class Source:
    """Where one scenario's runs came from."""

    label: str
    scenario: Scenario
    n_runs: int
    reused: list[int] = field(default_factory=list)
    reused_from: str | None = None
    parameters: list[dict[str, float]] = field(default_factory=list)
    """The parameter set each replication ran with (the posterior keys this scenario
    takes; empty without posterior draws)."""
    skipped: list[str] = field(default_factory=list)
    """Posterior keys this scenario cannot take (events it lacks), left out of its runs."""
    masked: list[str] = field(default_factory=list)
    """Posterior keys on which this scenario differs from the reference before the draws:
    the draws replace both values, so the comparison does not show that change."""

    @property
    def n_ran(self) -> int:
        """Runs simulated now."""
        return self.n_runs - len(self.reused)

    def describe(self, label: bool = True) -> str:
        """One line for the terminal and the report."""
        head = f"{self.label}: " if label else ""
        drawn = any(self.parameters)
        if not self.reused:
            text = f"{head}ran {self.n_runs} runs"
        else:
            what = "seeds, posterior draws" if drawn else "seeds"
            text = (f"{head}read {len(self.reused)} of {self.n_runs} runs from "
                    f"{self.reused_from} (same scenario files, {what}, period and version)")
            text += f"; ran {self.n_ran}" if self.n_ran else ""
        if self.skipped:
            text += f"; posterior keys it cannot take, skipped: {', '.join(self.skipped)}"
        if self.masked:
            text += (f"; warning: it changes {', '.join(self.masked)}, which the posterior "
                     "draws replace in every scenario, so that change does not show")
        return text


@dataclass
class Gathered:
    """Runs of every compared scenario, labelled in compare order, plus their traces."""

    result: RunResult
    traces: pd.DataFrame
    sources: list[Source]
    seeds: list[int]
    root_seed: int | None = None
    uncertainty: Uncertainty = field(default_factory=Uncertainty)
    counterpart: pd.DataFrame | None = None
    """Shares of the same seeds in the other uncertainty mode (`Uncertainty.other`), when
    asked for and a posterior is known; labelled as `result.shares`."""


def _versions() -> dict[str, str | None]:
    env = environment()
    return {k: env[k] for k in ("greatgame", "numpy", "mesa")}


def _stored(folder: Path, scenario: Scenario, seeds: Sequence[int],
            uncertainty: Uncertainty, parameters: Sequence[Mapping[str, float]]) -> list[int]:
    """Replications of `seeds` that the result folder holds for this scenario."""
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError):
        return []
    if manifest.get("scenario", {}).get("name") != scenario.name:
        return []
    return reusable_replications(manifest, scenario.file_hashes,
                                   (scenario.start, scenario.end), seeds, _versions(),
                                   uncertainty.record(), parameters)


def _relabel(result: RunResult, label: str) -> RunResult:
    for frame in (result.shares, result.metrics, result.events):
        frame["scenario"] = label
    return result


def _execute(tasks: list[tuple[Scenario, list[tuple[int, int]], str, None, list[dict]]],
             workers: int,
             progress: Callable[[int], None] | None) -> list[tuple[RunResult, pd.DataFrame]]:
    """Run tasks on the project's executors.

    Each task holds `run_traced`'s arguments: scenario, [(replication, seed)], label, until
    and the runs' parameter sets.
    """
    kind = "serial" if workers <= 1 or len(tasks) <= 1 else "processes"
    with make_executor(kind, workers) as (ex, _):
        # A pool takes every task at once; the serial executor runs each as it is submitted,
        # so submit those one at a time to report progress as they finish.
        queued = [] if kind == "serial" else [ex.submit(run_traced, *task) for task in tasks]
        out = []
        for i, task in enumerate(tasks):
            out.append((queued[i] if queued else ex.submit(run_traced, *task)).result())
            if progress:
                progress(len(task[1]))
        return out


MIN_PARALLEL = 16
"""Below this many runs to simulate, a process pool costs more than it saves."""


def gather(scenarios: Sequence[Scenario], seeds: Sequence[int], *,
           results_root: str | Path | None = "results", workers: int = 1,
           progress: Callable[[int], None] | None = None,
           root_seed: int | None = None, uncertainty: Uncertainty | None = None,
           counterpart: bool = False) -> Gathered:
    """The runs of each scenario, replication i with seeds[i] in every scenario.

    With posterior draws, replication i also runs parameter set i of
    `uncertainty.parameter_sets(len(seeds), root_seed)` in every scenario (keys a scenario
    cannot take skipped, see `sim.runs.runner.replicate`). Stored runs are read from
    `results_root/<scenario name>/` when the folder's manifest has the same scenario file
    hashes, period, versions and uncertainty, and the same seed and parameter set for that
    replication; the other runs are simulated (with `workers` processes when above 1;
    results are the same as serial, since each run depends only on its scenario,
    parameters and seed).

    Args:
        scenarios: The scenarios, the reference first; a scenario may appear twice.
        seeds: One seed per replication.
        results_root: Where to look for stored runs (None: never reuse).
        workers: Processes to run on.
        progress: Called with the number of runs finished.
        root_seed: The seed `seeds` were derived from (posterior draws are sampled with it).
        uncertainty: Posterior draws or not (default: none).
        counterpart: Also run the same seeds in the other mode (`Uncertainty.other`) on the
            ensemble engine, shares only, when a posterior is known (`Gathered.counterpart`).

    Returns:
        Labelled results (`unique_labels`), traces of the runs simulated now,
        and where each scenario's runs came from.

    Raises:
        InputError: a posterior key names nothing in a scenario's world, or a drawn value
            does not fit (before anything runs).
    """
    unc = uncertainty or Uncertainty()
    sets = check_draws(scenarios, unc, len(seeds), root_seed)
    labels = unique_labels([s.name for s in scenarios])
    sources, tasks, stored = [], [], {}
    for label, scen in zip(labels, scenarios, strict=True):
        names = unc.posterior.names if unc.drawn else ()
        src = Source(label, scen, len(seeds), parameters=[applicable(scen, p) for p in sets],
                     skipped=skipped_keys(scen, names),
                     masked=masked_changes(scen, scenarios[0], names))
        if results_root is not None:
            folder = Path(results_root) / scen.name
            reps = _stored(folder, scen, seeds, unc, src.parameters)
            if reps:
                res = read_run(folder)
                keep = set(reps)
                stored[label] = RunResult(
                    *(f[f["replication"].isin(keep)].reset_index(drop=True)
                      for f in (res.shares, res.metrics, res.events)))
                _relabel(stored[label], label)
                src.reused, src.reused_from = reps, str(folder)
                if progress:
                    progress(len(reps))
        todo = [(i, int(s)) for i, s in enumerate(seeds) if i not in set(src.reused)]
        for k in range(0, len(todo), CHUNK):
            chunk = todo[k:k + CHUNK]
            tasks.append((scen, chunk, label, None,
                          [sets[i] for i, _ in chunk] if unc.drawn else None))
        sources.append(src)
    n_todo = sum(len(t[1]) for t in tasks)
    done = _execute(tasks, workers if n_todo >= MIN_PARALLEL else 1, progress)
    results, traces = [], []
    for label in labels:
        parts = [r for t, (r, _) in zip(tasks, done, strict=True) if t[2] == label]
        if label in stored:
            parts.append(stored[label])
        merged = RunResult.concat(parts) if parts else None
        if merged is not None:
            for name in ("shares", "metrics", "events"):
                f = getattr(merged, name)
                sort = ["replication", "step"] if "step" in f.columns else ["replication"]
                setattr(merged, name, f.sort_values(sort, kind="stable").reset_index(drop=True))
            results.append(merged)
        traces += [tr for t, (_, tr) in zip(tasks, done, strict=True) if t[2] == label]
    trace = pd.concat(traces, ignore_index=True) if traces else pd.DataFrame(
        columns=ALIGNMENT_COLUMNS)
    other = unc.other() if counterpart else None
    twin = (counterpart_shares(sources, seeds, other, root_seed) if other is not None
            else None)
    return Gathered(RunResult.concat(results), trace, sources, [int(s) for s in seeds],
                    root_seed, unc, twin)


def counterpart_shares(sources: Sequence[Source], seeds: Sequence[int],
                       uncertainty: Uncertainty, root_seed: int | None) -> pd.DataFrame:
    """The shares of a comparison's scenarios, same seeds, in another uncertainty mode.

    Run on the ensemble engine (one batch per scenario, shares only): the same numbers the
    Mesa runs would give (to 1e-12) at a small part of their cost, so a report can give
    the interval widths of both modes without running the comparison twice.

    Returns:
        Tidy shares labelled like the gathered ones (scenario, replication, seed, ...).
    """
    sets = uncertainty.parameter_sets(len(seeds), root_seed)
    frames = []
    for src in sources:
        out = simulate(replicate(src.scenario, sets, source=uncertainty.path), list(seeds),
                       engine="ensemble", record=("shares",))
        frame = shares_frame(out)
        frame["scenario"] = src.label
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)



# --------------------------------------------------------------------------- explanations

def explain(scenario: Scenario, state: str, quarter: str, seed: int | Sequence[int], *,
            before: str | None = None, lag_quarters: int = 4,
            parameters: Sequence[Mapping[str, float]] | None = None) -> pd.DataFrame:
    """Why a state's tilt moved between two quarters: each partner's score, term by term.

    Runs the scenario with the seed (or each seed, then averages) up to `quarter`.

    Args:
        scenario: A validated scenario.
        state: A state of its world (case-insensitive).
        quarter: The quarter after the move, YYYYQn.
        seed: A run seed, or several (the table is then the mean over the runs).
        before: The quarter before the move (default: `lag_quarters` before `quarter`).
        lag_quarters: Default span, in quarters.
        parameters: One parameter set per seed (posterior draws; see
            `sim.runs.runner.replicate`).

    Returns:
        One row per partner (the powers and `other`): scenario, state, quarter_before,
        quarter, n_runs, power, then for each of the terms (economy, security, sentiment,
        dependence, hedging), the score and the tilt: `<x>_before`, `<x>_after`,
        `<x>_change`. Terms are in score points, with their sign (dependence and hedging
        are costs, zero or negative); tilt is a fraction of the state's alignment. For the
        terms and score, `<x>_pull` is the change minus the tilt-weighted mean change over
        all partners: what moves the state's target tilt toward (positive) or away from
        (negative) the partner, since the target is a logit choice over scores.

    Raises:
        InputError: unknown state, malformed quarter, or a quarter outside the period or
            `before` not earlier than `quarter`.
    """
    state = E.check_state(scenario, state)
    q = E.check_quarter(scenario, quarter)
    if before is None:
        b = q - lag_quarters
        if b < scenario.start:
            raise InputError(None, f"no quarter {lag_quarters} quarters before {quarter}: "
                               f"{scenario.name} starts in {format_quarter(scenario.start)}")
    else:
        b = E.check_quarter(scenario, before, "before")
    if b >= q:
        raise InputError(None, f"before ({format_quarter(b)}) must be earlier than {quarter}")
    seeds = [int(seed)] if isinstance(seed, int | np.integer) else [int(s) for s in seed]
    if not seeds:
        raise InputError(None, "no seed given")
    _, trace = run_traced(scenario, list(enumerate(seeds)), until=format_quarter(q),
                          parameters=parameters)
    return E.explain_trace(trace, state, format_quarter(q), format_quarter(b))


def explain_shifts(g: Gathered, shifts: pd.DataFrame) -> list[pd.DataFrame]:
    """Explain tables of tilt shifts (`sim.analysis.paired.tilt_shifts`) in gathered runs.

    From the traces when the runs were simulated now, else by rerunning the scenario's seeds.
    """
    out = []
    by_label = {s.label: s for s in g.sources}
    for r in shifts.itertuples():
        src = by_label[r.scenario]
        traced = g.traces.loc[g.traces["scenario"] == r.scenario, "replication"].nunique()
        if traced == src.n_runs:
            t = E.explain_shift(g.traces, r)
        else:
            t = explain(src.scenario, r.state, r.quarter, g.seeds, before=r.quarter_before,
                        parameters=src.parameters if g.uncertainty.drawn else None)
            t["scenario"] = r.scenario
        out.append(t)
    return out
