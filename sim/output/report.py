"""The what-if comparison report: tables, charts, one HTML file, from gathered runs.

The runs come from `sim.runs.gather` (stored ones reused, the rest simulated with common
random numbers); this module never runs a model. `analyse` computes the tables
(`sim.analysis.paired`), the explanations of the largest tilt shifts (`sim.analysis.explain`,
from the runs' traces or the explain callable the command passes) and the plain-language
summary; `write_report` writes the folder: one self-contained `report.html` (charts
embedded as SVG, no network needed), the charts as PNG and SVG, the tables as CSV, the
per-run shares as Parquet and a manifest.

Numbers and sentences are made in `sim.output.report_text`: the CSV tables hold the rounded
values the HTML shows, and every number of the summary sentences is taken from a CSV row.

Every report says which kind of interval it shows (model randomness only, or model
randomness and parameter uncertainty from posterior draws: `sim.runs.runner.Uncertainty`)
and, when the gathered runs come with their counterpart in the other mode, how wide the
headline intervals are in both (`interval_widths.csv`).
"""

from __future__ import annotations

import base64
import io as _io
import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

import sim
from sim.analysis import explain as E
from sim.analysis import paired as C
from sim.output import plots
from sim.output.report_text import (
    INTERVAL_OF_MODE,
    Num,
    Sentence,
    display_explanations,
    display_tables,
    fmt,
    interval_name,
    overtaking_note,
    round_value,
    sentence_text,
    shift_title,
    summary_sentences,
)
from sim.runs import store as sio
from sim.world.quarters import format_quarter, parse_quarter, quarter_range, year_quarter
from sim.world.values import Scenario
from sim.world.vocabulary import REGION

if TYPE_CHECKING:  # the report analyses gathered runs; it never gathers or runs them
    from sim.runs.gather import Gathered

REPORT = "report.html"
PARQUET_COLUMNS = ["scenario", "replication", "seed", "quarter", "area", "power", "share"]
"""Columns of the per-run shares written next to the report (channel columns left out)."""
WIDTH = 12.5
"""Width of the wide charts in inches (they are shown at the page's width)."""

CHARTS = {
    "shares_by_scenario": "Regional shares per scenario",
    "difference_over_time": "Difference from the reference over time",
    "difference_heatmap": "Differences by state and power",
    "leader_map": "Leading power by state",
    "overtaking": "Overtaking quarters",
}
"""Chart file stem -> caption title."""


# --------------------------------------------------------------------------- options

def check_options(scenarios: Sequence[Scenario], years: Sequence[int] | None = None,
                  map_quarter: str | None = None,
                  pairs: Sequence[tuple[str, str]] = ()) -> None:
    """Check comparison options against the scenarios before anything runs.

    Raises:
        ValueError: the periods do not overlap, a year or the map quarter is outside the
            compared period, or a pair names an unknown power.
    """
    start, end = max(s.start for s in scenarios), min(s.end for s in scenarios)
    if start > end:
        raise ValueError("the scenarios' periods do not overlap")
    period = f"{format_quarter(start)}–{format_quarter(end)}"
    for y in years or []:
        if not start <= parse_quarter(year_quarter(y)) <= end:
            raise ValueError(f"--years {y}: {year_quarter(y)} is outside the compared "
                             f"period {period}")
    if map_quarter is not None:
        try:
            q = parse_quarter(map_quarter)
        except ValueError as e:
            raise ValueError(f"--map-quarter: {e}") from None
        if not start <= q <= end:
            raise ValueError(f"--map-quarter {map_quarter} is outside the compared period "
                             f"{period}")
    partners = set.intersection(*(set(s.world.partner_names) for s in scenarios))
    known = ", ".join(p for p in scenarios[0].world.partner_names if p in partners)
    for p, r in pairs:
        for x in (p, r):
            if x not in partners:
                raise ValueError(f"--overtake {p}:{r}: unknown power {x!r} (powers: {known})")
        if p == r:
            raise ValueError(f"--overtake {p}:{r}: a power cannot overtake itself")


# --------------------------------------------------------------------------- analysis

@dataclass
class Comparison:
    """Everything the report shows."""

    gathered: Gathered
    reference: str
    tables: dict[str, pd.DataFrame]
    display: dict[str, pd.DataFrame]
    quarters: list[str]
    map_quarter: str
    pairs: list[tuple[str, str]]
    confidence: float
    shifts: pd.DataFrame
    explanations: list[pd.DataFrame]
    sentences: list[Sentence]
    lag_quarters: int
    widths: pd.DataFrame | None = None
    """Mean interval width of the headline differences in each uncertainty mode available
    (`interval_widths.csv`)."""
    rerun_options: list[str] | None = None
    """Options that ask a command for the same uncertainty (for the explain commands shown)."""


def analyse(g: Gathered, years: Sequence[int] | None = None, map_quarter: str | None = None,
            pairs: Sequence[tuple[str, str]] = (("china", "russia"),),
            confidence: float = C.CONFIDENCE, top_shifts: int = 4,
            lag_quarters: int = 4,
            explain: Callable[[pd.DataFrame], list[pd.DataFrame]] | None = None,
            rerun_options: Sequence[str] | None = None) -> Comparison:
    """Tables, explanations and summary of gathered runs (the first scenario is the reference).

    Args:
        g: `gather` output.
        years: Years to tabulate (each as its fourth quarter; default 2025, 2030, 2035 where
            simulated, else the last quarter).
        map_quarter: Quarter of the leader maps (default: the last chosen year's Q4, the
            quarter the summary's headline speaks of).
        pairs: (power, rival) pairs for overtaking.
        confidence: Confidence level.
        top_shifts: How many of the largest tilt shifts to explain.
        lag_quarters: Span of a tilt shift, in quarters.
        explain: Explain tables of the largest tilt shifts, given them (the caller's
            `sim.runs.gather.explain_shifts`, which reruns reused runs with traces); by
            default from the gathered traces, which cover the runs simulated now.
        rerun_options: Options that ask `greatgame explain` for the same uncertainty
            (shown in the reproduce commands).

    Raises:
        ValueError: a chosen map quarter is outside the compared period.
    """
    shares = g.result.shares
    reference = g.sources[0].label
    common = C.common_quarters(shares)
    years = list(years) if years else [2025, 2030, 2035]
    quarters = [q for q in map(year_quarter, years) if q in set(common)] or [common[-1]]
    if map_quarter is None:
        map_quarter = quarters[-1]
    elif map_quarter not in set(common):
        raise ValueError(f"--map-quarter {map_quarter} is outside the compared period "
                         f"{common[0]}–{common[-1]}")
    unc = g.uncertainty
    tables = C.build(shares, reference, quarters, pairs, confidence,
                     interval=INTERVAL_OF_MODE[unc.mode])
    tables["map_leaders"] = (tables["leaders"] if map_quarter in quarters
                             else C.leaders(shares, [map_quarter], reference))
    display = display_tables(tables)
    for name in ("shares", "differences"):
        display[name]["interval"] = INTERVAL_CODES[unc.mode]
    widths = interval_widths(g, tables["differences"], reference, quarters[-1], confidence)
    display["interval_widths"] = widths
    start = quarter_range(common[0], common[-1])
    since = start[min(lag_quarters, len(start) - 1)]
    shifts = C.tilt_shifts(g.result.metrics, lag_quarters, top_shifts, since=since)
    explanations = (explain(shifts) if explain is not None else
                    [E.explain_shift(g.traces, r) for r in shifts.itertuples()])
    sh, ex = display_explanations(shifts, explanations)
    display["tilt_shifts"], display["explanations"] = sh, ex
    sentences = summary_sentences(tables, display, quarters, confidence,
                                  uncertainty=unc.mode)
    return Comparison(g, reference, tables, display, quarters, map_quarter, list(pairs),
                      confidence, shifts, explanations, sentences, lag_quarters, widths,
                      list(rerun_options or []))


INTERVAL_CODES = {"none": "randomness", "posterior": "randomness+posterior"}
"""The `interval` column of shares.csv and differences.csv: what the intervals cover."""


def interval_widths(g: Gathered, diffs: pd.DataFrame, reference: str, quarter: str,
                    confidence: float = C.CONFIDENCE) -> pd.DataFrame:
    """The mean interval width of the headline differences, in each mode the runs allow.

    The headline differences are each power's regional difference from the reference in
    the headline quarter (`sim.analysis.paired.headline_width`). The first row is the
    report's own runs; a second row, when the gathered runs carry their counterpart in the
    other uncertainty mode (same seeds), gives the width in that mode. `mean_width_pp` is
    the width of the interval each mode's report shows (`INTERVAL_OF_MODE`: the t interval
    of the mean without draws, the credible interval with them); `range_width_pp` is the
    width of the central range of the runs in both, the like-for-like measure of how much
    the outcome varies in each mode.

    Returns:
        Rows uncertainty (`none` or `posterior`), interval (what it covers), kind (what the
        interval is), shown (True for the report's own intervals), runs (where the runs
        came from), quarter, n_differences, mean_width_pp, range_width_pp (rounded as
        shown).
    """
    unc = g.uncertainty
    rows = []

    def row(mode, label, shown, runs, d_shown, d_range):
        width, n = C.headline_width(d_shown, quarter)
        spread, _ = C.headline_width(d_range, quarter)
        return {"uncertainty": mode, "interval": label,
                "kind": interval_name(confidence, mode, long=True), "shown": shown,
                "runs": runs, "quarter": quarter, "n_differences": n,
                "mean_width_pp": width * 100, "range_width_pp": spread * 100}

    def diffs_of(shares, mode):
        return C.paired_differences(shares, reference, confidence, quarters=[quarter],
                                    interval=mode)

    own_range = (diffs if INTERVAL_OF_MODE[unc.mode] == "runs" else
                 diffs_of(g.result.shares[g.result.shares["quarter"] == quarter], "runs"))
    rows.append(row(unc.mode, unc.label, True, "the runs of this report", diffs, own_range))
    other = unc.other()
    if g.counterpart is not None and other is not None:
        twin = g.counterpart[g.counterpart["quarter"] == quarter]
        rows.append(row(other.mode, other.label, False,
                        "the same seeds in the other mode, on the ensemble engine",
                        diffs_of(twin, INTERVAL_OF_MODE[other.mode]), diffs_of(twin, "runs")))
    frame = pd.DataFrame(rows)
    frame["n_differences"] = frame["n_differences"].astype("Int64")
    for col in ("mean_width_pp", "range_width_pp"):
        frame[col] = [round_value(v, col) for v in frame[col]]
    return frame


SHORT = {"none": "with model randomness only", "posterior": "with posterior draws"}
"""Each uncertainty mode in a few words, for the terminal's comparison of widths."""


def widths_text(c: Comparison) -> str:
    """One paragraph for the terminal: which intervals the report shows and how wide."""
    w = c.widths
    if w is None or w.empty:
        return c.gathered.uncertainty.label
    own = w.iloc[0]
    text = (f"{interval_name(c.confidence, own['uncertainty'])}s over "
            f"{len(c.gathered.seeds)} paired runs, "
            f"{own['interval']}; the headline differences ({own['n_differences']} regional "
            f"differences in {own['quarter']}) are on average "
            f"{fmt(own['mean_width_pp'], 'mean_width_pp')} points wide")
    if len(w) > 1:
        other = w.iloc[1]
        text += (f", {fmt(other['mean_width_pp'], 'mean_width_pp')} points with "
                 f"{other['interval']} ({other['kind']}). Like for like, the central "
                 f"{c.confidence:.0%} of the runs' differences spans "
                 f"{fmt(own['range_width_pp'], 'range_width_pp')} points "
                 f"{SHORT[own['uncertainty']]} and "
                 f"{fmt(other['range_width_pp'], 'range_width_pp')} "
                 f"{SHORT[other['uncertainty']]}")
    elif c.gathered.uncertainty.posterior is None:
        text += " (no posterior is installed for this world, so parameter uncertainty is " \
                "not shown)"
    return text + "."


# --------------------------------------------------------------------------- charts

def draw_charts(c: Comparison) -> dict[str, Figure]:
    """The report's charts as pyplot-free figures (file stem -> Figure)."""
    t = c.tables
    figs: dict[str, Figure] = {}
    n_scen = len(c.gathered.sources)

    def new(w: float, h: float) -> Figure:
        return Figure(figsize=(w, h), layout="constrained")

    def panels(n: int, cols: int) -> tuple[float, float]:
        """Figure size for n panels in `cols` columns, about as wide as the page."""
        cols = max(1, min(cols, n))
        width = WIDTH if cols > 1 else 0.6 * WIDTH
        return width, min(3.6, width / cols * 0.68) * int(np.ceil(n / cols)) + 1.3

    band = interval_name(c.confidence, c.gathered.uncertainty.mode, long=True)
    figs["shares_by_scenario"] = plots.plot_compare_shares(
        t["shares"], new(*panels(n_scen, 2 if n_scen == 4 else 3)), reference=c.reference,
        confidence=c.confidence, band=band)
    n_diff = max(1, n_scen - 1)
    figs["difference_over_time"] = plots.plot_difference_lines(
        t["differences"], new(*panels(n_diff, 3)), confidence=c.confidence,
        band=interval_name(c.confidence, c.gathered.uncertainty.mode))
    figs["difference_heatmap"] = plots.plot_difference_heatmap(
        t["differences"], c.quarters,
        new(3.3 * len(c.quarters) + 1.8, 2.5 * n_diff + 1.2), confidence=c.confidence)
    n_maps = len(plots.leader_map_groups(t["map_leaders"], c.map_quarter)[0])
    rows = int(np.ceil(n_maps / 2))
    figs["leader_map"] = plots.plot_leader_maps(
        t["map_leaders"], c.map_quarter,
        new(max(8.0, 6.2 * min(2, n_maps)), 3.9 * rows + 1.2 + 0.3 * (n_maps < n_scen)))
    ot = t["overtaking"]
    p, r = c.pairs[0]
    ot1 = ot[(ot["power"] == p) & (ot["rival"] == r)]
    shown = ot1.loc[ot1["n_overtake"] > 0, "area"].nunique()
    if not shown:  # an empty chart: the report says it in a line instead
        return figs
    fig = new(11, 0.27 * shown * (n_scen + 0.8) + 1.9)
    common = C.common_quarters(c.gathered.result.shares)
    plots.plot_overtaking(t["overtaking"], fig.add_subplot(), power=p, rival=r,
                          first=int(common[0][:4]), last=int(common[-1][:4]) + 1)
    figs["overtaking"] = fig
    return figs


def _svg_bytes(fig: Figure) -> bytes:
    buf = _io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", facecolor="white",
                metadata={"Date": None})
    return buf.getvalue()


# --------------------------------------------------------------------------- html

def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("sim.output", "templates"),
                       autoescape=select_autoescape(["html", "j2"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _num_html(n: Num) -> str:
    from markupsafe import escape

    absolute = ' data-abs="1"' if n.absolute else ""
    return (f'<span class="num" data-src="{n.table}.csv" data-row="{n.row}" '
            f'data-col="{escape(n.column)}"{absolute}>{escape(n.text)}</span>')


def _sentence_html(s: Sentence) -> str:
    from markupsafe import escape

    return "".join(_num_html(p) if isinstance(p, Num) else str(escape(p)) for p in s)


def _cell(table: str, frame: pd.DataFrame, row: int, column: str) -> str:
    return _num_html(Num(table, row, column, frame.at[row, column]))


def _interval(table: str, frame: pd.DataFrame, row: int, mid: str, lo: str, hi: str) -> str:
    return (f"{_cell(table, frame, row, mid)} <small>[{_cell(table, frame, row, lo)}, "
            f"{_cell(table, frame, row, hi)}]</small>")


def _overtaking_cell(ov: pd.DataFrame, i: int) -> str:
    """One scenario's overtaking in one area, as HTML with CSV-row numbers."""
    r = ov.loc[i]

    def num(col: str) -> str:
        return _cell("overtaking", ov, i, col)

    if r["n_overtake"] > 0:
        return (f"{num('n_overtake')} of {num('n_runs')} runs; median {num('median')} "
                f"<small>({num('earliest')} to {num('latest')})</small>")
    if r["ahead_at_start"] == r["n_runs"]:
        return (f"ahead from the start <small>(in {num('ahead_at_start')} of {num('n_runs')} "
                f"runs; at the end in {num('ahead_at_end')})</small>")
    return f"never <small>(0 of {num('n_runs')} runs)</small>".replace(
        "(0 of", f"({num('n_overtake')} of")


def _html_tables(c: Comparison) -> dict[str, Any]:
    """Rows of the HTML tables, cells as pre-rendered HTML (numbers as CSV-row spans)."""
    d = c.display
    quarters = c.quarters
    sh, di = d["shares"], d["differences"]
    sh_idx = {(r.scenario, r.area, r.power, r.quarter): i for i, r in enumerate(sh.itertuples())}
    di_idx = {(r.scenario, r.area, r.power, r.quarter): i for i, r in enumerate(di.itertuples())}
    scen = [s.label for s in c.gathered.sources]
    powers = list(dict.fromkeys(sh["power"]))
    areas = list(dict.fromkeys(sh["area"]))

    def share_rows(area: str) -> list[dict]:
        rows = []
        for s in scen:
            for p in powers:
                cells = [_interval("shares", sh, sh_idx[(s, area, p, q)], "share_pct",
                                   "ci_low_pct", "ci_high_pct") for q in quarters]
                rows.append({"scenario": s, "power": plots.power_label(p), "cells": cells})
        return rows

    def diff_rows(area: str) -> list[dict]:
        rows = []
        for s in scen[1:]:
            for p in powers:
                cells, flags = [], []
                for q in quarters:
                    i = di_idx[(s, area, p, q)]
                    cells.append(_interval("differences", di, i, "diff_pp", "diff_ci_low_pp",
                                           "diff_ci_high_pp"))
                    flags.append(bool(di.at[i, "distinct"]))
                rows.append({"scenario": s, "power": plots.power_label(p),
                             "cells": list(zip(cells, flags, strict=True))})
        return rows

    ov = d["overtaking"]
    oi = {(r.scenario, r.area, r.power, r.rival): i for i, r in enumerate(ov.itertuples())}
    over = []
    for p, r in dict.fromkeys(zip(ov["power"], ov["rival"], strict=True)):
        for a in dict.fromkeys(ov["area"]):
            cells = []
            for s in scen:
                i = oi.get((s, a, p, r))
                cells.append("—" if i is None else _overtaking_cell(ov, i))
            over.append({"pair": f"{plots.power_label(p)} over {plots.power_label(r)}",
                         "area": plots.area_label(a), "cells": cells})
    lead = d["leaders"]
    lead_rows = []
    if len(lead):
        li = {(r.scenario, r.area, r.quarter): i for i, r in enumerate(lead.itertuples())}
        for s in scen:
            for a in areas:
                cells = []
                for q in quarters:
                    i = li.get((s, a, q))
                    if i is None:
                        cells.append(("—", False))
                        continue
                    r = lead.loc[i]
                    html = (f"{plots.power_label(r['leader'])} "
                            f"{_cell('leaders', lead, i, 'leader_share_pct')}% "
                            f"<small>(margin {_cell('leaders', lead, i, 'margin_pp')} pp; "
                            f"leads in {_cell('leaders', lead, i, 'runs_led_pct')}% of runs)"
                            "</small>")
                    cells.append((html, bool(r.get("differs_from_reference", False))
                                   or bool(r["changed"])))
                lead_rows.append({"scenario": s, "area": plots.area_label(a), "cells": cells})
    return {
        "region_shares": share_rows(REGION),
        "region_diffs": diff_rows(REGION),
        "state_diffs": [(plots.area_label(a), diff_rows(a)) for a in areas if a != REGION],
        "state_shares": [(plots.area_label(a), share_rows(a)) for a in areas if a != REGION],
        "overtaking": over,
        "leaders": lead_rows,
    }


def _explain_html(c: Comparison) -> list[dict]:
    ex, sh = c.display["explanations"], c.display["tilt_shifts"]
    names = {s.label: s.scenario.name for s in c.gathered.sources}
    out = []
    for k, s in enumerate(sh.itertuples()):
        rows = ex[ex["shift"] == s.shift]
        focus = rows.index[rows["power"] == s.power]
        reason = str(ex.at[focus[0], "reason"]) if len(focus) else ""
        main, long = [], []
        for i in rows.index:
            r = ex.loc[i]
            main.append({
                "power": plots.power_label(r["power"]), "focus": r["power"] == s.power,
                "cells": [_cell("explanations", ex, i, col) for col in (
                    "tilt_before_pct", "tilt_after_pct", "tilt_change_pp",
                    *[f"{t}_change" for t in E.TERMS], "score_change", "score_pull")]})
            for t in (*E.TERMS, "score"):
                long.append({"power": plots.power_label(r["power"]),
                             "term": E.TERM_LABELS[t],
                             "cells": [_cell("explanations", ex, i, f"{t}_{part}")
                                       for part in ("before", "after", "change", "pull")]})
        out.append({
            "title": shift_title(s.state, s.scenario, s.power, s.tilt_change_pp),
            "shift": [_cell("tilt_shifts", sh, k, col) for col in (
                "quarter_before", "quarter", "tilt_before_pct", "tilt_after_pct",
                "tilt_change_pp")],
            "same_in": s.same_in, "reason": reason, "rows": main, "long": long,
            "n_runs": _cell("explanations", ex, int(rows.index[0]), "n_runs"),
            "command": (f"greatgame explain {names[s.scenario]} {s.state} {s.quarter} "
                        f"--before {s.quarter_before} --replications {len(c.gathered.seeds)}"
                        + (f" --seed {c.gathered.root_seed}"
                           if c.gathered.root_seed is not None else "")
                        + "".join(f" {shlex.quote(o)}" for o in c.rerun_options or [])),
        })
    return out


def _uncertainty_html(c: Comparison) -> dict[str, Any]:
    """What the methods note says about the intervals, numbers as CSV-row spans."""
    u = c.gathered.uncertainty
    out: dict[str, Any] = {"mode": u.mode, "label": u.label, "widths": {},
                           "known": u.posterior is not None,
                           "skipped": [(s.label, ", ".join(s.skipped))
                                       for s in c.gathered.sources if s.skipped],
                           "masked": [(s.label, ", ".join(s.masked))
                                      for s in c.gathered.sources if s.masked]}
    if u.drawn:
        post = u.posterior
        out |= {"path": post.path, "sha256": (u.sha256 or "")[:12],
                "names": ", ".join(post.names), "draws": post.size,
                "effective": f"{post.effective_size():.0f}"}
    w = c.widths
    for i, row in (w.iterrows() if w is not None else []):
        out["widths"][row["uncertainty"]] = {
            col: _cell("interval_widths", w, i, col)
            for col in ("mean_width_pp", "range_width_pp", "n_differences", "quarter")}
        out["widths"][row["uncertainty"]]["kind"] = row["kind"]
    return out


def render_html(c: Comparison, svgs: dict[str, bytes], meta: dict[str, Any]) -> str:
    """The report as one HTML string (charts embedded as base64 SVG)."""
    g = c.gathered
    charts = [{"stem": stem, "title": CHARTS[stem],
               "src": "data:image/svg+xml;base64," + base64.b64encode(svgs[stem]).decode()}
              for stem in CHARTS if stem in svgs]
    scenarios = [{"label": s.label, "name": s.scenario.name,
                  "description": s.scenario.description, "source": s.describe(False),
                  "reference": i == 0,
                  "period": f"{format_quarter(s.scenario.start)}–"
                            f"{format_quarter(s.scenario.end)}"}
                 for i, s in enumerate(g.sources)]
    from markupsafe import Markup

    p, r = c.pairs[0]
    missing = {"overtaking": overtaking_note(c.display["overtaking"], p, r)} \
        if "overtaking" not in svgs else {}
    return _env().get_template("report.html.j2").render(
        uncertainty=_uncertainty_html(c),
        missing=missing, chart_titles=CHARTS,
        title=meta["title"], meta=meta, scenarios=scenarios, charts=charts,
        summary=[Markup(_sentence_html(s)) for s in c.sentences],
        tables={k: v for k, v in _html_tables(c).items()}, quarters=c.quarters,
        explanations=_explain_html(c), reference=c.reference, lag=c.lag_quarters,
        confidence=f"{c.confidence:.0%}", n_runs=len(g.seeds), map_quarter=c.map_quarter,
        ci=interval_name(c.confidence, g.uncertainty.mode),
        ci_long=interval_name(c.confidence, g.uncertainty.mode, long=True),
        terms=[E.TERM_LABELS[t] for t in E.TERMS], Markup=Markup)


# --------------------------------------------------------------------------- writing

def runs_table(g: Gathered) -> pd.DataFrame:
    """One row per scenario and replication: its seed and where the run came from.

    With posterior draws, also a column per posterior parameter holding the value the run
    used (empty where the scenario cannot take the key).
    """
    names = list(g.uncertainty.posterior.names) if g.uncertainty.drawn else []
    rows = []
    for s in g.sources:
        for i, seed in enumerate(g.seeds):
            src = f"read from {s.reused_from}" if i in set(s.reused) else "ran"
            params = s.parameters[i] if i < len(s.parameters) else {}
            rows.append({"scenario": s.label, "scenario_name": s.scenario.name,
                         "replication": i, "seed": seed, "source": src}
                        | {k: params.get(k, np.nan) for k in names})
    return pd.DataFrame(rows)


def title_of(c: Comparison) -> str:
    """Report title: the scenarios against the reference."""
    others = [s.label for s in c.gathered.sources[1:]]
    return (f"What-if comparison: {', '.join(others)} against {c.reference}" if others
            else f"Scenario report: {c.reference}")


def write_report(out_dir: str | Path, c: Comparison, *, command: str | None = None,
                 started: datetime | None = None) -> Path:
    """Write the report folder, all or nothing (see the module docstring for the files).

    Args:
        out_dir: The folder; replaced if it exists.
        c: `analyse` output.
        command: The command line, recorded in the manifest and the report.
        started: When the work started (default: now).

    Returns:
        The path of `report.html`.
    """
    out = Path(out_dir)
    started = started or datetime.now(UTC)
    t0 = time.perf_counter()
    figs = draw_charts(c)
    svgs = {stem: _svg_bytes(f) for stem, f in figs.items()}
    g = c.gathered
    now = datetime.now(UTC)
    meta = {
        "title": title_of(c),
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "version": sim.__version__,
        "command": command or "",
        "root_seed": g.root_seed,
        "n_runs": len(g.seeds),
        "first_seeds": ", ".join(str(s) for s in g.seeds[:3]) + (
            ", …" if len(g.seeds) > 3 else ""),
        "period": f"{C.common_quarters(g.result.shares)[0]}–"
                  f"{C.common_quarters(g.result.shares)[-1]}",
        "pairs": ", ".join(f"{plots.power_label(p)} over {plots.power_label(r)}"
                           for p, r in c.pairs),
    }
    html = render_html(c, svgs, meta)
    tables = dict(c.display)
    tables["runs"] = runs_table(g)
    tables["summary"] = pd.DataFrame({
        "number": range(1, len(c.sentences) + 1),
        "sentence": [sentence_text(s) for s in c.sentences]})
    with sio.staged_dir(out) as tmp:
        (tmp / REPORT).write_text(html, encoding="utf-8")
        for name, frame in tables.items():
            frame.to_csv(tmp / f"{name}.csv", index=False)
        for stem, fig in figs.items():
            (tmp / f"{stem}.svg").write_bytes(svgs[stem])
            sio.save_figure(fig, tmp / f"{stem}.png")
        g.result.shares[PARQUET_COLUMNS].to_parquet(tmp / "shares.parquet", index=False)
        files = sorted(p.name for p in tmp.iterdir()) + ["manifest.json"]
        manifest = {
            "environment": sio.environment(),
            "command": command,
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "report_seconds": round(time.perf_counter() - t0, 3),
            "reference": c.reference,
            "scenarios": [sio.scenario_record(s.scenario) | {
                "label": s.label, "reused_replications": s.reused,
                "reused_from": s.reused_from, "skipped_posterior_keys": s.skipped,
                "changes_replaced_by_draws": s.masked}
                for s in g.sources],
            "root_seed": g.root_seed,
            "replications": len(g.seeds),
            "uncertainty": g.uncertainty.record(),
            "seeds": sio.seed_records(g.seeds, g.uncertainty.parameter_sets(
                len(g.seeds), g.root_seed) if g.uncertainty.drawn else None),
            "interval_widths": (c.widths.astype(object).where(c.widths.notna(), None)
                                .to_dict("records") if c.widths is not None else []),
            "confidence": c.confidence,
            "quarters": c.quarters,
            "map_quarter": c.map_quarter,
            "overtaking_pairs": [list(p) for p in c.pairs],
            "tilt_shift_quarters": c.lag_quarters,
            "files": files,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n",
                                           encoding="utf-8")
    return out / REPORT
