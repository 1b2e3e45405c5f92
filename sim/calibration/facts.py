"""The stylized facts as a constraint on the calibration: fast checks and the selection.

`ensemble_frames` runs a scenario through the ensemble engine and returns the tidy
`shares` and `metrics` frames the facts need (`sim.analysis.validation.check_facts`).
`facts_pass` judges a point as `greatgame validate` would, on the default ten runs and on
`replications` runs. No I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.world.values import Scenario
from sim.world.vocabulary import DEFAULT_REPLICATIONS


def ensemble_frames(scenario: Scenario, seeds: Sequence[int]) -> tuple[pd.DataFrame,
                                                                       pd.DataFrame]:
    """Shares and metrics of `scenario` run once per seed on the ensemble engine.

    Replication i uses seeds[i]; the frames are `sim.runs.tables`' shares and metrics, the
    same tables `greatgame run` writes (with the Mesa engine's numbers to 1e-12).
    """
    from sim.runs.runner import simulate
    from sim.runs.tables import metrics_frame, shares_frame

    sim_out = simulate([scenario] * len(seeds), list(seeds), engine="ensemble",
                       record=("shares", "channels", "metrics"))
    return shares_frame(sim_out), metrics_frame(sim_out)


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
