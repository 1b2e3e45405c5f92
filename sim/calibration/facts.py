"""The stylized facts as a constraint on the calibration: fast checks and the selection.

`ensemble_frames` runs a scenario through the ensemble engine and returns the tidy
`shares` and `metrics` frames the facts need (the columns `sim.analysis.validation.check_facts`
reads, built as `sim.runs.runner.collect` builds them from a Mesa model, with the same numbers
to rounding). `facts_pass` judges a point as `greatgame validate` would, on the default
ten runs and on `replications` runs. No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.world.values import Scenario
from sim.world.vocabulary import DEFAULT_REPLICATIONS


def ensemble_frames(scenario: Scenario, seeds: Sequence[int]) -> tuple[pd.DataFrame,
                                                                       pd.DataFrame]:
    """Shares and metrics of `scenario` run once per seed (replication i uses seeds[i]).

    Returns:
        `shares` (replication, quarter, area, power, a column per channel, share) and
        `metrics` (replication, quarter, state, power, exports, imports, trade,
        investment_stock, debt, debt_share, engagement in USD bn a year).
    """
    from sim.engine.ensemble import SHARE_REPORTERS, Ensemble
    from sim.runs.tidy import shares_columns

    B = len(seeds)
    ens = Ensemble([scenario] * B, list(seeds),
                   record=(*SHARE_REPORTERS, "pair_metrics", "power_metrics"))
    ens.run()
    quarters, partners, states = ens.quarters(), ens.world.partners, ens.world.states
    T, J, S = len(quarters), len(partners), len(states)
    cols = shares_columns(quarters, partners, states, ens.arrays("channel_shares"),
                          ens.arrays("state_influence"), ens.arrays("region_channels"),
                          ens.arrays("region_influence"))
    shares = pd.DataFrame(cols)
    shares.insert(0, "replication", np.repeat(np.arange(B), len(shares) // B))

    pm = ens.records["pair_metrics"]
    arr = {k: np.stack([d[k] for d in pm], axis=1) for k in
           ("exports", "imports", "investment_stock", "debt")}  # (B, T, J, S)
    eng = np.stack([d["engagement"] for d in ens.records["power_metrics"]], axis=1)
    eng = np.concatenate([eng, np.full((B, T, J - eng.shape[-1]), np.nan)], axis=-1) * 4.0
    debt_tot = arr["debt"].sum(axis=2, keepdims=True)
    metrics = {
        "replication": np.repeat(np.arange(B), T * J * S),
        "quarter": np.tile(np.repeat(quarters, J * S), B),
        "state": np.tile(np.tile(states, J * T), B),
        "power": np.tile(np.tile(np.repeat(partners, S), T), B),
        "exports": arr["exports"].ravel(),
        "imports": arr["imports"].ravel(),
        "investment_stock": arr["investment_stock"].ravel(),
        "debt": arr["debt"].ravel(),
        "debt_share": np.divide(arr["debt"], debt_tot, out=np.zeros_like(arr["debt"]),
                                where=debt_tot > 0).ravel(),
        "engagement": np.broadcast_to(eng[..., None], (B, T, J, S)).ravel(),
    }
    metrics["trade"] = metrics["exports"] + metrics["imports"]
    return shares, pd.DataFrame(metrics)


def facts_pass(scenario: Scenario, names: Sequence[str], values: Sequence[float],
               replications: int, seed: int) -> pd.DataFrame:
    """The nine facts for one point, judged on the first ten runs and on all of them.

    Replication i has the same seed whatever the number of runs, so the first ten are
    the runs of a default `greatgame validate`. A fact passes only if it passes on both;
    `share_of_runs` is the lower of the two shares.
    """
    from sim.analysis.validation import check_facts
    from sim.runs.runner import derive_seeds

    scn = scenario.with_overrides(dict(zip(names, map(float, values), strict=True)))
    shares, metrics = ensemble_frames(scn, derive_seeds(seed, replications))
    out = check_facts(shares, metrics)
    n = min(DEFAULT_REPLICATIONS, replications)
    if n < replications:
        first = check_facts(shares[shares.replication < n], metrics[metrics.replication < n])
        out["passed"] = out.passed & first.passed
        out["share_of_runs"] = np.minimum(out.share_of_runs, first.share_of_runs)
    return out
