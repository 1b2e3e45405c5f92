"""The charts a result folder holds: `greatgame run`'s and `greatgame validate`'s.

Each function draws pyplot-free figures from tidy tables and returns them by file name;
the caller hands them to the store (`sim.runs.store`), which saves them with the rest of
the folder, all or nothing. Never runs a model.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from sim.output import plots

REGIONAL_PNG = "regional_shares.png"
STATE_PNG = "state_shares.png"


def _figure(size: tuple[float, float]) -> Figure:
    return Figure(figsize=size, layout="constrained")


def run_figures(shares: pd.DataFrame, events: pd.DataFrame) -> dict[str, Figure]:
    """The regional and per-state share charts of a scenario's runs, events marked."""
    marks = plots.event_marks(events)
    regional = _figure((11, 5.8))
    plots.plot_regional_shares(shares, regional.add_subplot(), marks=marks)
    by_state = _figure((13, 7.6))
    plots.plot_state_shares(shares, by_state, marks=marks)
    return {REGIONAL_PNG: regional, STATE_PNG: by_state}


def validation_figures(facts: pd.DataFrame, fit: pd.DataFrame) -> dict[str, Figure]:
    """The stylized facts' pass/fail chart and, when figures overlap the period, the trade fit."""
    out = {}
    if len(fit):
        out["trade_fit.png"] = _figure((9.5, 0.38 * len(fit) + 2.2))
        plots.plot_trade_fit(fit, out["trade_fit.png"].add_subplot())
    out["facts.png"] = _figure((10, 0.6 * len(facts) + 1.6))
    plots.plot_facts(facts, out["facts.png"].add_subplot())
    return out
