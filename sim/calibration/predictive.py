"""Posterior predictive runs: the baseline with replication i on parameter set i.

`predictive_draws` runs a scenario n times on the ensemble engine, replication i with
parameter set i of `Posterior.sample(n, seed)` and the i-th seed of `derive_seeds(seed,
n)`, and returns the model's value of each sourced figure per run. The coverage of the
sourced figures by the resulting band is `sim.analysis.predictive`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.scenario.posterior import Posterior
from sim.world.values import Scenario

CHUNK = 200
"""Runs per ensemble batch (keeps memory flat for many runs)."""


def applicable(scenario: Scenario, posterior: Posterior) -> tuple[list[int], list[str]]:
    """Which of the posterior's parameters the scenario can take.

    A key naming an event the scenario does not have (`events.<id>.effects[0].value`), or
    anything else `with_overrides` refuses, is left out.

    Returns:
        The indexes of the columns kept, and one line per key left out saying why.
    """
    keep, skipped = [], []
    for j, name in enumerate(posterior.names):
        try:
            scenario.with_overrides({name: float(posterior.values[0, j])})
        except (InputError, ValueError) as e:
            skipped.append(f"{name}: not applied to {scenario.name} ({' '.join(str(e).split())})")
            continue
        keep.append(j)
    return keep, skipped


def predictive_draws(scenario: Scenario, posterior: Posterior, n: int, seed: int,
                     targets: Sequence[tuple], ratios: dict[str, float]
                     ) -> tuple[np.ndarray, list[str]]:
    """The model's value of each figure in n runs, run i with posterior draw i.

    Args:
        scenario: The scenario to run (its period must cover the figures).
        posterior: The weighted draws.
        n: Runs.
        seed: Root seed: of the run seeds and of the draws' resampling.
        targets: The figures as `sim.analysis.fit.target_tuples`.
        ratios: The mirror ratios (`sim.scenario.history.mirror_ratios`).

    Returns:
        (n, figures) values, and the keys left out (see `applicable`).
    """
    from sim.analysis.fit import observe
    from sim.runs.runner import derive_seeds, simulate

    keep, skipped = applicable(scenario, posterior)
    rows = posterior.sample(n, seed)
    seeds = derive_seeds(seed, n)
    names = [posterior.names[j] for j in keep]
    out = []
    for a in range(0, n, CHUNK):
        scns = [scenario.with_overrides(dict(zip(names, map(float, rows[i, keep]),
                                                 strict=True))) if names else scenario
                for i in range(a, min(n, a + CHUNK))]
        sim_out = simulate(scns, seeds[a:a + CHUNK], engine="ensemble", record=("metrics",))
        out.append(observe(sim_out.arrays["pair_metrics"], sim_out.quarters, sim_out.partners,
                           sim_out.states, targets, ratios))
    return np.concatenate(out, axis=0), skipped


def posterior_check(posterior: Posterior, n: int, seed: int, backtest: bool = False,
                    scenario: str = "baseline") -> dict:
    """The posterior predictive check against the sourced history (or its test years).

    The scenario runs to the last history year. For a backtest posterior (its file says
    `train_until`), every installed calibrated value is undone first, as the backtest
    calibration did, and only the figures after the training years are checked.

    Besides the model's own band, the check reports the band with a model-discrepancy
    term (`sim.analysis.predictive.with_discrepancy`): each run's value times
    exp(N(0, sigma^2)), sigma the RMS log error of the model's median on the fitted figures
    (`residual_scale`). For a backtest sigma comes from the training years only, so the
    held-out check stays out of sample; on the whole history it is estimated on the
    figures it checks (in sample, said as such).

    Returns:
        `table` (per figure, `sim.analysis.predictive.coverage`, plus `p05_disc`,
        `p95_disc`, `inside_disc`), `series` (per series, plus `inside_disc` and
        `share_disc`), `share`, `n`, `skipped` (keys left out), `years`, and `discrepancy`
        (`sigma`, `figures` and `years` it was estimated on, `in_sample`, `share`).

    Raises:
        InputError: a backtest posterior whose file does not say its training years.
    """
    from sim.analysis import predictive as P
    from sim.analysis.fit import target_tuples
    from sim.calibration.search import backtest_reset
    from sim.scenario import history as H
    from sim.scenario.scenarios import load_scenario

    scn = load_scenario(scenario).with_end(f"{H.FIT_END}Q4")
    targets = H.fit_targets(H.load_history())
    first, last = H.FIT_START, H.FIT_END
    if backtest:
        try:
            until = int(posterior.meta["train_until"])
        except (KeyError, ValueError):
            raise InputError(posterior.path or None, "a backtest posterior must say its "
                             "training years (# train_until: YEAR); write it with greatgame "
                             "calibrate --method abc --train-until YEAR") from None
        if until >= H.FIT_END:
            raise InputError(posterior.path or None, f"fitted on all the history (train_until "
                             f"{until}): no held-out years to check")
        reset = backtest_reset(scn)
        if reset:
            scn = scn.with_overrides(reset)
        first = until + 1
    draws, skipped = predictive_draws(scn, posterior, n, seed, target_tuples(targets),
                                      H.mirror_ratios())
    years = targets.year.astype(int).to_numpy()
    check = years >= first
    sigma, n_sigma = P.residual_scale(draws, targets, years < first if backtest else check)
    checked = targets[check].reset_index(drop=True)
    table = P.coverage(draws[:, check], checked)
    noisy = P.coverage(P.with_discrepancy(draws[:, check], sigma, seed), checked)
    table["p05_disc"], table["p95_disc"] = noisy["p05"], noisy["p95"]
    table["inside_disc"] = noisy["inside"]
    series = P.by_series(table).merge(P.by_series(noisy)[["series", "inside", "share"]],
                                      on="series", suffixes=("", "_disc"))
    return {"table": table, "series": series, "share": P.share_inside(table),
            "n": n, "skipped": skipped, "years": (first, last),
            "discrepancy": {"sigma": sigma, "figures": n_sigma,
                            "years": (H.FIT_START, first - 1) if backtest else (first, last),
                            "in_sample": not backtest, "share": P.share_inside(noisy)}}


def coverage_frame(check: dict) -> pd.DataFrame:
    """The per-figure table as written to a validate folder (sourced value and band)."""
    cols = ["series", "area", "partner", "year", "quarter", "value", "bound", "weight",
            "p05", "p50", "p95", "inside", "p05_disc", "p95_disc", "inside_disc", "source"]
    t = check["table"]
    return t[[c for c in cols if c in t.columns]]
