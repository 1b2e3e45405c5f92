"""sim.analysis.bands on small hand-written frames with answers worked out by hand."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.analysis import bands as A
from sim.world.quarters import next_quarter, quarter_year

QUARTERS = ["2025Q3", "2025Q4", "2026Q1"]


def make_shares(quarters=QUARTERS, n_rep=5, scenario="demo"):
    """China's regional share is 0.1 * (rep + 1) + 0.01 * quarter index; other holds the rest.

    In kazakhstan China holds 0.5 in every replication.
    """
    rows = []
    for r in range(n_rep):
        for qi, q in enumerate(quarters):
            china = 0.1 * (r + 1) + 0.01 * qi
            for area, c in (("region", china), ("kazakhstan", 0.5)):
                rows.append({"scenario": scenario, "replication": r, "seed": 100 + r,
                             "quarter": q, "step": qi + 1, "area": area, "power": "china",
                             "share": c})
                rows.append({"scenario": scenario, "replication": r, "seed": 100 + r,
                             "quarter": q, "step": qi + 1, "area": area, "power": "other",
                             "share": 1 - c})
    return pd.DataFrame(rows)


def test_quarter_helpers():
    assert quarter_year("2025Q1") == 2025.0
    assert quarter_year("2025Q4") == 2025.75
    assert next_quarter("2025Q4") == "2026Q1"
    assert next_quarter("2025Q2") == "2025Q3"
    df = pd.DataFrame({"quarter": ["2026Q1", "2025Q4", "2025Q1", "2025Q4"]})
    assert A.quarter_order(df) == ["2025Q1", "2025Q4", "2026Q1"]


def test_power_order_puts_other_last():
    df = pd.DataFrame({"power": ["other", "russia", "china", "russia"]})
    assert A.power_order(df) == ["russia", "china", "other"]


def test_summarise_default_quarters_2025q4_and_last():
    out = A.summarise(make_shares())
    assert list(out.columns) == ["scenario", "quarter", "power", "mean", "p05", "p95", "n"]
    assert list(out.quarter) == ["2025Q4", "2025Q4", "2026Q1", "2026Q1"]
    assert list(out.power) == ["china", "other", "china", "other"]
    # China at 2025Q4: 0.11, 0.21, 0.31, 0.41, 0.51 -> mean 0.31; linear quantiles:
    # p05 = 0.11 + 0.2 * 0.10 = 0.13, p95 = 0.41 + 0.8 * 0.10 = 0.49.
    china = out[(out.quarter == "2025Q4") & (out.power == "china")].iloc[0]
    assert china["mean"] == pytest.approx(0.31)
    assert china["p05"] == pytest.approx(0.13)
    assert china["p95"] == pytest.approx(0.49)
    assert china["n"] == 5
    other = out[(out.quarter == "2026Q1") & (out.power == "other")].iloc[0]
    # other at 2026Q1: 0.88, 0.78, 0.68, 0.58, 0.48 -> mean 0.68, p05 0.50, p95 0.86
    assert (other["mean"], other["p05"], other["p95"]) == pytest.approx((0.68, 0.50, 0.86))


def test_summarise_once_when_last_quarter_is_2025q4():
    out = A.summarise(make_shares(["2025Q3", "2025Q4"]))
    assert list(out.quarter.unique()) == ["2025Q4"]
    assert len(out) == 2


def test_summarise_before_2025_reports_only_the_last_quarter():
    out = A.summarise(make_shares(["2016Q1", "2016Q2"]))
    assert list(out.quarter.unique()) == ["2016Q2"]


def test_summarise_given_quarters_and_area():
    out = A.summarise(make_shares(), quarters=["2025Q3"], area="kazakhstan")
    assert list(out.quarter) == ["2025Q3", "2025Q3"]
    assert out["mean"].tolist() == pytest.approx([0.5, 0.5])
    assert out["p05"].tolist() == pytest.approx([0.5, 0.5])


def test_summarise_unknown_quarter_or_area_raises():
    with pytest.raises(KeyError, match="2030Q1"):
        A.summarise(make_shares(), quarters=["2030Q1"])
    with pytest.raises(KeyError, match="mars"):
        A.summarise(make_shares(), area="mars")


def test_summarise_keeps_scenarios_apart():
    both = pd.concat([make_shares(), make_shares(scenario="alt").assign(
        share=lambda d: np.where(d.power == "china", 0.2, 0.8))])
    out = A.summarise(both)
    assert list(out.scenario.unique()) == ["demo", "alt"]
    alt = out[(out.scenario == "alt") & (out.power == "china")]
    assert alt["mean"].tolist() == pytest.approx([0.2, 0.2])


def test_band_per_quarter_and_power():
    out = A.band(make_shares())
    assert list(out.columns) == ["scenario", "quarter", "year", "power", "mean", "p05", "p95",
                                 "n"]
    assert len(out) == 3 * 2
    assert list(out.quarter) == ["2025Q3", "2025Q3", "2025Q4", "2025Q4", "2026Q1", "2026Q1"]
    assert list(out.year) == [2025.5, 2025.5, 2025.75, 2025.75, 2026.0, 2026.0]
    first = out.iloc[0]
    # China at 2025Q3: 0.1 .. 0.5 -> mean 0.3, p05 0.12, p95 0.48
    assert (first["power"], first["mean"], first["p05"], first["p95"]) == (
        "china", pytest.approx(0.3), pytest.approx(0.12), pytest.approx(0.48))


def test_band_of_a_channel_column():
    df = make_shares().assign(trade=lambda d: d.share * 2)
    out = A.band(df, value="trade")
    assert out.iloc[0]["mean"] == pytest.approx(0.6)


def test_stacked_band_boundaries():
    out = A.stacked_band(make_shares())
    top = out[out.power == "other"]
    assert np.allclose(top[["mean", "p05", "p95"]].to_numpy(), 1.0)
    china = out[(out.power == "china") & (out.quarter == "2025Q3")].iloc[0]
    assert (china["mean"], china["p05"], china["p95"]) == pytest.approx((0.3, 0.12, 0.48))
    # a different stacking order: other first
    rev = A.stacked_band(make_shares(), order=["other", "china"])
    first = rev[(rev.power == "other") & (rev.quarter == "2025Q3")].iloc[0]
    assert first["mean"] == pytest.approx(0.7)


def test_state_bands_has_every_state_but_not_the_region():
    out = A.state_bands(make_shares())
    assert set(out.area) == {"kazakhstan"}
    assert out["mean"].tolist() == pytest.approx([0.5] * len(out))


def test_wide_summary():
    w = A.wide_summary(A.summarise(make_shares()))
    assert list(w.columns) == ["scenario", "power", "2025Q4_mean", "2025Q4_p05", "2025Q4_p95",
                               "2026Q1_mean", "2026Q1_p05", "2026Q1_p95"]
    assert list(w.power) == ["china", "other"]
    assert w.loc[0, "2025Q4_mean"] == pytest.approx(0.31)


def test_started_events():
    ev = pd.DataFrame({"quarter": ["2021Q3", "2022Q1", "2023Q1", "2022Q1"],
                       "event": ["start a", "start war", "end war", "start b"]})
    out = A.started_events(ev)
    assert out.to_dict("list") == {"id": ["a", "b", "war"], "quarter": ["2021Q3", "2022Q1",
                                                                        "2022Q1"]}
    assert A.started_events(ev, ids=["war"]).id.tolist() == ["war"]
    empty = A.started_events(ev.iloc[:0])
    assert list(empty.columns) == ["id", "quarter"] and empty.empty


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_band_is_ordered_and_within_the_data(values):
    df = pd.DataFrame({"scenario": "s", "replication": range(len(values)), "quarter": "2020Q1",
                       "area": "region", "power": "china", "share": values})
    row = A.band(df).iloc[0]
    lo, hi = min(values) - 1e-12, max(values) + 1e-12
    assert lo <= row["p05"] <= row["p95"] <= hi
    assert lo <= row["mean"] <= hi
    assert row["n"] == len(values)
