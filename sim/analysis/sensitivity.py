"""Global sensitivity analysis with SALib: Sobol indices or Morris elementary effects.

The parameter ranges come from a sweep file (`{min, max}` entries). SALib draws the
sample; the sweep runner evaluates it (so it can use any executor and be resumed); SALib
analyses one outcome, e.g. China's regional share in 2035Q4, averaged over replications.
Pure functions plus `outcome_values`, which reads a finished sweep folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.scenario.sweepfile import Outcomes, SweepPlan, with_points
from sim.world.vocabulary import OTHER

METHODS = ("sobol", "morris")
MORRIS_LEVELS = 4


@dataclass(frozen=True)
class Outcome:
    """One scalar outcome: a power's share in an area at a quarter."""

    power: str
    area: str
    quarter: str

    def __str__(self) -> str:
        return f"{self.power}.{self.area}.{self.quarter}"


def parse_outcome(text: str, powers: list[str], areas: list[str]) -> Outcome:
    """Parse `china.region.2035Q4` (power, state-or-region, quarter).

    Raises:
        ValueError: a part is unknown or malformed, naming what was expected.
    """
    parts = text.split(".")
    if len(parts) != 3:
        raise ValueError(f"--outcome {text!r}: expected POWER.AREA.QUARTER, "
                         "e.g. china.region.2035Q4")
    power, area, quarter = parts
    if power not in [*powers, OTHER]:
        raise ValueError(f"--outcome {text!r}: unknown power {power!r} "
                         f"(expected one of {', '.join([*powers, OTHER])})")
    if area not in areas:
        states = ", ".join(a for a in areas if a != "region")
        raise ValueError(f"--outcome {text!r}: unknown area {area!r} "
                         f"(expected region or one of {states})")
    if not re.fullmatch(r"\d{4}Q[1-4]", quarter):
        raise ValueError(f"--outcome {text!r}: expected a quarter like 2035Q4, got {quarter!r}")
    return Outcome(power, area, quarter)


def problem(plan: SweepPlan) -> dict:
    """The SALib problem (names and bounds) of a sweep with ranges.

    Raises:
        ValueError: the sweep has no parameter ranges.
    """
    if not plan.ranges:
        raise ValueError(f"sweep {plan.name} has no parameter ranges ({{min, max}}); "
                         "sensitivity needs design lhs or sobol")
    names = list(plan.ranges)
    return {"num_vars": len(names), "names": names,
            "bounds": [list(plan.ranges[n]) for n in names]}


def sample(prob: dict, method: str, n: int, seed: int) -> np.ndarray:
    """Draw the SALib sample: Saltelli/Sobol (first and total order) or Morris trajectories."""
    if method == "sobol":
        from SALib.sample import sobol

        return sobol.sample(prob, n, calc_second_order=False, seed=seed)
    if method == "morris":
        from SALib.sample import morris

        return morris.sample(prob, n, num_levels=MORRIS_LEVELS, seed=seed)
    raise ValueError(f"unknown method {method!r} (expected sobol or morris)")


def analyse(prob: dict, method: str, x: np.ndarray, y: np.ndarray, seed: int) -> pd.DataFrame:
    """SALib analysis as a table, most influential parameter first.

    Sobol columns: S1, S1_conf, ST, ST_conf. Morris columns: mu_star, mu_star_conf, mu,
    sigma. Confidence columns are 95% bootstrap half-widths.
    """
    if method == "sobol":
        from SALib.analyze import sobol

        r = sobol.analyze(prob, y, calc_second_order=False, seed=seed)
        df = pd.DataFrame({"parameter": prob["names"], "S1": r["S1"], "S1_conf": r["S1_conf"],
                           "ST": r["ST"], "ST_conf": r["ST_conf"]})
        return df.sort_values("ST", ascending=False).reset_index(drop=True)
    from SALib.analyze import morris

    r = morris.analyze(prob, x, y, num_levels=MORRIS_LEVELS, seed=seed)
    df = pd.DataFrame({"parameter": prob["names"], "mu_star": r["mu_star"],
                       "mu_star_conf": r["mu_star_conf"], "mu": r["mu"],
                       "sigma": r["sigma"]})
    return df.sort_values("mu_star", ascending=False).reset_index(drop=True)


UNITS = {"morris": "percentage points", "sobol": "share of variance"}
"""Unit of the indices as `display_indices` gives them (and the CLI prints, saves and charts)."""

_MORRIS_COLUMNS = ("mu_star", "mu_star_conf", "mu", "sigma")


def display_indices(table: pd.DataFrame, method: str) -> pd.DataFrame:
    """The indices in the unit the report uses everywhere, with that unit in a `unit` column.

    Morris effects of a share (a fraction) become percentage points of the share (x 100):
    how far the outcome moves across a parameter's range. Sobol indices are shares of the
    outcome's variance (0 to 1) and stay as they are.

    Args:
        table: `analyse` output.
        method: `morris` or `sobol`.
    """
    out = table.copy()
    if method == "morris":
        for c in _MORRIS_COLUMNS:
            out[c] = out[c] * 100.0
    out["unit"] = UNITS[method]
    return out


def evaluation_plan(plan: SweepPlan, x: np.ndarray, method: str, outcome: Outcome,
                    replications: int, out: str) -> SweepPlan:
    """A sweep plan that runs every sample point of the first scenario, keeping one outcome.

    Every point uses the same replication seeds (common random numbers), so differences
    between points come from the parameters, not from the draws.
    """
    names = list(plan.ranges)
    points = [dict(zip(names, map(float, row), strict=True)) for row in x]
    first = next(iter(plan.scenario_paths))
    base = with_points(plan, points, name_suffix=method,
                       outcomes=Outcomes(areas=[outcome.area], quarters=[outcome.quarter]),
                       replications=replications, out=out)
    from dataclasses import replace

    return replace(base, scenario_paths={first: plan.scenario_paths[first]},
                   scenario_hashes={first: plan.scenario_hashes[first]}, seed_by_point=False)


def outcome_values(df: pd.DataFrame, outcome: Outcome, n_points: int) -> np.ndarray:
    """Mean outcome per sample point (over replications), in point order.

    Raises:
        ValueError: some points have no successful run (the outcome would be undefined).
    """
    sel = df[(df.power == outcome.power) & (df.area == outcome.area)
             & (df.quarter == outcome.quarter)]
    means = sel.groupby("point")["share"].mean()
    missing = sorted(set(range(n_points)) - set(means.index))
    if missing:
        raise ValueError(f"{len(missing)} sample points have no successful run "
                         f"(first: {missing[0]}); see failed runs in the manifest")
    return means.sort_index().to_numpy()
