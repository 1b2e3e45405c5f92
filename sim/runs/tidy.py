"""The tidy shares table's layout, built from recorded arrays for many runs at once.

One definition of the rows (region then states, quarter by quarter) shared by the Mesa
runner, the sweep workers and calibration. numpy only: sweep workers import it without
pandas.
"""

from __future__ import annotations

import numpy as np

from sim.world.vocabulary import CHANNELS, REGION


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
