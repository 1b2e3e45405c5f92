"""Arrays into tidy tables: shares, metrics, events and alignment terms, for many runs at once.

The one place the results' columns are defined: `sim.runs.runner.simulate` returns arrays,
and these functions lay them out as the tables every command writes and reads
(`shares.parquet`, `metrics.parquet`, the explain trace). The shares layout (region then
states, quarter by quarter) is built with numpy alone, so sweep workers import this module
without pandas; the DataFrame builders import pandas when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.world.vocabulary import ALIGNMENT_TERMS, CHANNELS, REGION

if TYPE_CHECKING:
    import pandas as pd

    from sim.runs.runner import Simulated


def shares_template(quarters: list[str], partners: list[str],
                    states: list[str]) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """One run's rows of the tidy shares table: codes of quarter, area and power per row.

    Rows are the region's (quarter, power) then the states' (quarter, power, state).

    Returns:
        (codes: {"quarter", "area", "power"} integer arrays, labels: the lists they index).
    """
    T, J, S = len(quarters), len(partners), len(states)
    n_r = T * J
    t = np.arange(T, dtype=np.int32)
    j = np.arange(J, dtype=np.int32)
    codes = {
        "quarter": np.concatenate([np.repeat(t, J), np.repeat(t, J * S)]),
        "area": np.concatenate([np.zeros(n_r, dtype=np.int32),
                                np.tile(np.arange(1, S + 1, dtype=np.int32), T * J)]),
        "power": np.concatenate([np.tile(j, T), np.tile(np.repeat(j, S), T)]),
    }
    labels = {"quarter": list(quarters), "area": [REGION, *states], "power": list(partners)}
    return codes, labels


def shares_columns(quarters: list[str], partners: list[str], states: list[str],
                   st_ch: np.ndarray | None, st_tot: np.ndarray, rg_ch: np.ndarray | None,
                   rg_tot: np.ndarray, encoded: bool = False,
                   rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Columns of the tidy shares table for B runs at once.

    Args:
        quarters: Quarter labels (T).
        partners: Partner names (J).
        states: State names (S).
        st_ch: (B, T, C, J, S) channel shares per state, or None for no channel columns.
        st_tot: (B, T, J, S) influence per state.
        rg_ch: (B, T, C, J) regional channel shares, or None (with st_ch None).
        rg_tot: (B, T, J) regional influence.
        encoded: Give quarter, area and power as integer codes into `labels` (an extra
            key holding the three label lists) instead of strings: far faster for big
            batches.
        rows: Which of a run's rows to keep (a boolean mask over `shares_template`'s
            rows); all by default.

    Returns:
        Columns quarter, step, area, power, one per channel (if given), share; rows run
        by run, each run's region rows (quarter, power) then its state rows (quarter,
        power, state).
    """
    B, T, J, S = st_tot.shape
    n_r, n_s = T * J, T * J * S
    template, labels = shares_template(quarters, partners, states)
    if rows is not None:
        template = {k: v[rows] for k, v in template.items()}
    template["step"] = template["quarter"] + 1
    cols: dict = {}
    for name in ("quarter", "step", "area", "power"):
        full = np.tile(template[name], B)
        if name != "step" and not encoded:
            full = np.asarray(labels[name], dtype=object)[full]
        cols[name] = full

    def column(region: np.ndarray, state: np.ndarray) -> np.ndarray:
        both = np.concatenate([region.reshape(B, n_r), state.reshape(B, n_s)], axis=1)
        return (both if rows is None else both[:, rows]).ravel()

    for c, name in enumerate(CHANNELS if st_ch is not None else ()):
        cols[name] = column(rg_ch[:, :, c], st_ch[:, :, c])
    cols["share"] = column(rg_tot, st_tot)
    if encoded:
        cols["labels"] = labels
    return cols


# --------------------------------------------------------------------------- DataFrames

@dataclass
class RunResult:
    """Tidy results of one or more runs: shares, metrics and the event log."""

    shares: pd.DataFrame
    metrics: pd.DataFrame
    events: pd.DataFrame

    @staticmethod
    def concat(results: list[RunResult]) -> RunResult:
        """Stack several results."""
        import pandas as pd

        return RunResult(
            shares=pd.concat([r.shares for r in results], ignore_index=True),
            metrics=pd.concat([r.metrics for r in results], ignore_index=True),
            events=pd.concat([r.events for r in results], ignore_index=True),
        )


def _label(frame: pd.DataFrame, sim: Simulated, replications: Sequence[int]) -> pd.DataFrame:
    """Put the scenario, replication and seed columns first, each run's rows in turn."""
    n = len(frame) // sim.size
    frame.insert(0, "seed", np.repeat(np.array(sim.seeds, dtype=np.int64), n))
    frame.insert(0, "replication", np.repeat(np.array(replications, dtype=np.int64), n))
    frame.insert(0, "scenario", np.repeat(np.array(sim.names, dtype=object), n))
    return frame


def shares_frame(sim: Simulated, replications: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per run x quarter x area (region, then each state) x partner.

    Columns scenario, replication, seed, quarter, step, area, power, one per channel (when
    `channels` were recorded) and share. Shares over partners sum to 1 in every area.
    """
    import pandas as pd

    a = sim.arrays
    channels = "channel_shares" in a
    cols = shares_columns(sim.quarters, sim.partners, sim.states,
                          a["channel_shares"] if channels else None, a["state_influence"],
                          a["region_channels"] if channels else None, a["region_influence"])
    reps = range(sim.size) if replications is None else replications
    return _label(pd.DataFrame(cols), sim, reps)


def metrics_frame(sim: Simulated, replications: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per run x quarter x partner x state: pair, state and power metrics side by side.

    Trade is also given as its total and balance, debt as its share of the state's debt;
    engagement is converted to USD bn a year; `other` has no capacity, budget or engagement (NaN).
    """
    import pandas as pd

    pm, sm, wm = (sim.arrays[k] for k in ("pair_metrics", "state_metrics", "power_metrics"))
    B, T, J, S = pm["debt"].shape
    out = {
        "quarter": np.tile(np.repeat(sim.quarters, J * S), B),
        "step": np.tile(np.repeat(np.arange(1, T + 1), J * S), B),
        "state": np.tile(np.tile(sim.states, J * T), B),
        "power": np.tile(np.tile(np.repeat(sim.partners, S), T), B),
    }
    for k, v in pm.items():
        out[k] = v.ravel()
    out["trade"] = out["exports"] + out["imports"]
    out["trade_balance"] = out["exports"] - out["imports"]
    debt_tot = pm["debt"].sum(axis=2, keepdims=True)
    out["debt_share"] = np.divide(pm["debt"], debt_tot, out=np.zeros_like(pm["debt"]),
                                  where=debt_tot > 0).ravel()
    for k, v in sm.items():
        out[k] = np.broadcast_to(v[:, :, None, :], (B, T, J, S)).ravel()
    for k, v in wm.items():
        full = np.concatenate([v, np.full((B, T, J - v.shape[-1]), np.nan)], axis=-1)
        out[k] = np.broadcast_to(full[..., None], (B, T, J, S)).ravel()
    out["engagement"] = out["engagement"] * 4.0  # USD bn a quarter -> a year
    reps = range(sim.size) if replications is None else replications
    return _label(pd.DataFrame(out), sim, reps)


def events_frame(sim: Simulated, replications: Sequence[int] | None = None) -> pd.DataFrame:
    """The events each run logged: scenario, replication, seed, quarter, event."""
    import pandas as pd

    reps = range(sim.size) if replications is None else replications
    frames = []
    for name, rep, seed, log in zip(sim.names, reps, sim.seeds, sim.events, strict=True):
        f = pd.DataFrame(log, columns=["quarter", "event"])
        f.insert(0, "seed", np.int64(seed) if len(f) else pd.Series(dtype="int64"))
        f.insert(0, "replication", rep)
        f.insert(0, "scenario", name)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def run_result(sim: Simulated, replications: Sequence[int] | None = None) -> RunResult:
    """Shares, metrics and events of every run (record shares, channels and metrics)."""
    return RunResult(shares_frame(sim, replications), metrics_frame(sim, replications),
                     events_frame(sim, replications))


ALIGNMENT_COLUMNS = ["scenario", "replication", "seed", "quarter", "state", "power",
                     *ALIGNMENT_TERMS, "score", "tilt"]
"""The columns of `alignment_frame`."""


def alignment_frame(sim: Simulated, replications: Sequence[int] | None = None) -> pd.DataFrame:
    """Each quarter's alignment terms, score and tilt (after the move) per state and partner.

    Columns scenario, replication, seed, quarter, state, power, the terms, score, tilt; every
    partner, `other` included.
    """
    import pandas as pd

    al = sim.arrays["alignment"]
    B, T, J, S = al["tilt"].shape
    out = {
        "quarter": np.tile(np.repeat(sim.quarters, J * S), B),
        "state": np.tile(np.tile(sim.states, J * T), B),
        "power": np.tile(np.tile(np.repeat(sim.partners, S), T), B),
    }
    for k in (*ALIGNMENT_TERMS, "score", "tilt"):
        out[k] = al[k].ravel()
    reps = range(sim.size) if replications is None else replications
    return _label(pd.DataFrame(out), sim, reps)
