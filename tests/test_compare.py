"""sim.analysis.paired: intervals against scipy, paired differences, overtaking, leaders, reuse."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.analysis import paired as C
from sim.runs import gather as G
from sim.runs.runner import derive_seeds, run_batch
from sim.scenario.scenarios import load_scenario
from sim.world.quarters import parse_quarter

SEEDS = [11, 22, 33]


def _shares(values: dict[tuple[str, str, str], list[list[float]]],
            quarters=("2020Q1", "2020Q2", "2020Q3", "2020Q4"), seeds=SEEDS) -> pd.DataFrame:
    """Tidy shares from {(scenario, area, power): [[rep0 q0, q1, ...], [rep1 ...], ...]}."""
    rows = []
    for (scen, area, power), reps in values.items():
        for r, series in enumerate(reps):
            for q, v in zip(quarters, series, strict=True):
                rows.append({"scenario": scen, "replication": r, "seed": seeds[r],
                             "quarter": q, "step": quarters.index(q) + 1, "area": area,
                             "power": power, "share": v})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def short_runs():
    s = load_scenario("baseline").with_end("2016Q2")
    return run_batch(s, derive_seeds(5, 3))


# --------------------------------------------------------------------------- intervals

def test_t_interval_matches_scipy_and_handles_edges():
    x = np.array([0.1, 0.3, 0.2, 0.25])
    lo, hi = C.t_interval([x.mean()], [x.std(ddof=1)], [len(x)])
    ref = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert lo[0] == pytest.approx(ref[0]) and hi[0] == pytest.approx(ref[1])
    lo, hi = C.t_interval([0.4, 0.4], [0.0, 0.1], [5, 1])
    assert lo[0] == hi[0] == 0.4  # no spread: zero width, exactly the mean
    assert np.isnan(lo[1]) and np.isnan(hi[1])  # one value: no interval


def test_share_intervals_mean_and_interval():
    vals = [[0.1, 0.2, 0.3, 0.4], [0.2, 0.2, 0.3, 0.5], [0.3, 0.2, 0.3, 0.6]]
    out = C.share_intervals(_shares({("a", "region", "china"): vals}))
    assert list(out.columns) == ["scenario", "area", "power", "quarter", "year", "n", "mean",
                                 "sd", "ci_low", "ci_high"]
    q1 = out[out.quarter == "2020Q1"].iloc[0]
    x = np.array([0.1, 0.2, 0.3])
    ref = stats.t.interval(0.95, 2, loc=x.mean(), scale=stats.sem(x))
    assert q1["n"] == 3 and q1["mean"] == pytest.approx(0.2)
    assert (q1["ci_low"], q1["ci_high"]) == pytest.approx(ref)
    q2 = out[out.quarter == "2020Q2"].iloc[0]
    assert q2["ci_low"] == q2["ci_high"] == pytest.approx(0.2)
    assert list(out.quarter) == ["2020Q1", "2020Q2", "2020Q3", "2020Q4"]


# --------------------------------------------------------------------------- differences

def test_paired_differences_equal_scipy_paired_t():
    a = [[0.30, 0.31, 0.32, 0.33], [0.28, 0.30, 0.31, 0.35], [0.29, 0.29, 0.30, 0.30]]
    b = [[0.32, 0.35, 0.36, 0.40], [0.31, 0.33, 0.37, 0.38], [0.29, 0.33, 0.33, 0.36]]
    shares = _shares({("ref", "region", "russia"): a, ("alt", "region", "russia"): b})
    out = C.paired_differences(shares, "ref")
    assert set(out.scenario) == {"alt"} and set(out.reference) == {"ref"}
    for k, q in enumerate(["2020Q1", "2020Q2", "2020Q3", "2020Q4"]):
        xa = np.array([r[k] for r in a])
        xb = np.array([r[k] for r in b])
        row = out[out.quarter == q].iloc[0]
        assert row["mean"] == pytest.approx((xb - xa).mean())
        if np.ptp(xb - xa) > 0:
            ci = stats.ttest_rel(xb, xa).confidence_interval(0.95)
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
            assert row["distinct"] == (ci.low > 0 or ci.high < 0)
    assert out["distinct"].dtype == bool


def test_self_comparison_is_exactly_zero_with_zero_width(short_runs):
    ref = short_runs.shares
    twin = ref.assign(scenario="baseline (2)")
    both = pd.concat([ref, twin], ignore_index=True)
    out = C.paired_differences(both, "baseline")
    assert len(out) == ref[["area", "power", "quarter"]].drop_duplicates().shape[0]
    assert (out["mean"] == 0).all()
    assert (out["ci_low"] == 0).all() and (out["ci_high"] == 0).all()
    assert not out["distinct"].any()


def test_paired_refuses_unpaired_seeds():
    a = _shares({("ref", "region", "china"): [[0.1] * 4] * 3})
    b = _shares({("alt", "region", "china"): [[0.2] * 4] * 3}, seeds=[11, 22, 99])
    with pytest.raises(ValueError, match="not paired"):
        C.paired(pd.concat([a, b]), "ref")
    with pytest.raises(ValueError, match="reference"):
        C.paired(a, "nope")


def test_unique_labels():
    assert G.unique_labels(["a", "b", "a", "a"]) == ["a", "b", "a (2)", "a (3)"]


# --------------------------------------------------------------------------- overtaking

def test_overtaking_first_crossing_median_and_fractions():
    q = tuple(f"2020Q{i}" for i in range(1, 5)) + tuple(f"2021Q{i}" for i in range(1, 5))
    china = [[0.1, 0.2, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5],   # passes in 2020Q3
             [0.1, 0.1, 0.1, 0.1, 0.1, 0.4, 0.5, 0.5],   # passes in 2021Q2
             [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],   # never
             [0.5, 0.1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]]   # ahead at start, falls back, passes 2020Q3
    russia = [[0.3] * 8] * 4
    shares = _shares({("s", "region", "china"): china, ("s", "region", "russia"): russia},
                     quarters=q, seeds=[1, 2, 3, 4])
    out = C.overtaking(shares, [("china", "russia")], areas=["region"])
    r = out.iloc[0]
    assert (r["n_runs"], r["n_overtake"]) == (4, 3)
    assert r["share_of_runs"] == pytest.approx(0.75)
    assert (r["earliest"], r["median"], r["latest"]) == ("2020Q3", "2020Q3", "2021Q2")
    assert (r["ahead_at_start"], r["ahead_at_end"]) == (1, 3)
    back = C.overtaking(shares, [("russia", "china")], areas=["region"]).iloc[0]
    assert back["n_overtake"] == 1 and back["median"] == "2020Q2"  # run 4 only


# --------------------------------------------------------------------------- leaders

def test_leaders_exclude_other_and_flag_changes():
    q = ("2025Q4", "2030Q4")
    data = {
        ("ref", "region", "china"): [[0.20, 0.30], [0.22, 0.26]],
        ("ref", "region", "russia"): [[0.30, 0.25], [0.28, 0.27]],
        ("ref", "region", "other"): [[0.50, 0.45], [0.50, 0.47]],
        ("alt", "region", "china"): [[0.20, 0.20], [0.22, 0.20]],
        ("alt", "region", "russia"): [[0.30, 0.35], [0.28, 0.33]],
        ("alt", "region", "other"): [[0.50, 0.45], [0.50, 0.47]],
    }
    out = C.leaders(_shares(data, quarters=q, seeds=[1, 2]), list(q), reference="ref")
    ref = out[out.scenario == "ref"].set_index("quarter")
    assert list(ref["leader"]) == ["russia", "china"]  # `other` holds more but is no power
    assert ref.loc["2030Q4", "changed"] and ref.loc["2030Q4", "previous_leader"] == "russia"
    assert ref.loc["2030Q4", "leader_share"] == pytest.approx(0.28)
    assert ref.loc["2030Q4", "margin"] == pytest.approx(0.02)
    assert ref.loc["2030Q4", "share_of_runs"] == pytest.approx(0.5)
    alt = out[out.scenario == "alt"].set_index("quarter")
    assert alt.loc["2030Q4", "differs_from_reference"]
    assert not alt.loc["2025Q4", "differs_from_reference"]


# --------------------------------------------------------------------------- tilt shifts

def test_tilt_shifts_ranks_and_merges_identical_ones():
    rows = []
    quarters = ["2020Q1", "2020Q2", "2020Q3"]
    for scen, jump in (("a", 0.10), ("b", 0.10), ("c", 0.04)):
        for rep in (0, 1):
            for i, q in enumerate(quarters):
                rows.append({"scenario": scen, "replication": rep, "quarter": q,
                             "state": "kyrgyzstan", "power": "china",
                             "tilt": 0.2 + (jump if i == 2 else 0.0)})
                rows.append({"scenario": scen, "replication": rep, "quarter": q,
                             "state": "kazakhstan", "power": "russia",
                             "tilt": 0.5 - 0.06 * i})
    out = C.tilt_shifts(pd.DataFrame(rows), lag_quarters=1, top=3)
    first = out.iloc[0]
    assert (first["scenario"], first["state"], first["quarter"]) == ("a", "kyrgyzstan", "2020Q3")
    assert first["change"] == pytest.approx(0.10) and first["same_in"] == "b"
    assert first["quarter_before"] == "2020Q2"
    assert len(out) == 2  # kazakhstan's identical shifts merged too; c's smaller jump dropped
    assert out.iloc[1]["state"] == "kazakhstan" and out.iloc[1]["same_in"] == "b, c"


# --------------------------------------------------------------------------- summary rows

def test_largest_differences_only_distinct_and_not_other():
    d = pd.DataFrame({
        "scenario": "alt", "reference": "ref",
        "area": ["region", "region", "region", "kyrgyzstan", "kyrgyzstan"],
        "power": ["other", "china", "russia", "china", "us"],
        "quarter": "2030Q4", "mean": [0.2, -0.05, 0.03, 0.09, 0.5],
        "ci_low": [0.1, -0.06, 0.02, 0.08, -0.1], "ci_high": [0.3, -0.04, 0.04, 0.1, 1.1],
        "distinct": [True, True, True, True, False]})
    out = C.largest_differences(d, ["2030Q4"])
    assert list(zip(out.area, out.power, strict=True)) == [
        ("region", "china"), ("region", "russia"), ("kyrgyzstan", "china")]
    assert list(out["row"]) == [1, 2, 3]


# --------------------------------------------------------------------------- reuse

def _manifest(hashes, seeds, start="2015Q1", end="2035Q4", version="0.1.0"):
    return {"scenario": {"file_hashes": hashes, "period": {"start": start, "end": end}},
            "environment": {"greatgame": version, "numpy": "2", "mesa": "3"},
            "seeds": [{"replication": i, "seed": s} for i, s in enumerate(seeds)]}


@pytest.mark.parametrize("change, expected", [
    ({}, [0, 1, 2]),
    ({"hashes": {"baseline.yaml": "other"}}, []),
    ({"end": "2030Q4"}, []),
    ({"version": "0.2.0"}, []),
    ({"seeds": [11, 22]}, [0, 1]),          # stored 2 of the 3 wanted
    ({"seeds": [11, 22, 33, 44]}, [0, 1, 2]),  # stored more than wanted
    ({"seeds": [11, 99, 33]}, [0, 2]),
])
def test_reusable_replications(change, expected):
    hashes = {"baseline.yaml": "abc"}
    args = {"hashes": hashes, "seeds": SEEDS} | change
    m = _manifest(args["hashes"], args["seeds"], end=change.get("end", "2035Q4"),
                  version=change.get("version", "0.1.0"))
    got = G.reusable_replications(m, hashes, (parse_quarter("2015Q1"),
                                              parse_quarter("2035Q4")), SEEDS,
                                  {"greatgame": "0.1.0", "numpy": "2", "mesa": "3"})
    assert got == expected


def test_reusable_replications_tolerates_a_broken_manifest():
    assert G.reusable_replications({"scenario": {}}, {}, (0, 1), SEEDS, {}) == []


def test_build_on_real_runs_has_consistent_tables(short_runs):
    alt = short_runs.shares.assign(scenario="copy")
    shares = pd.concat([short_runs.shares, alt], ignore_index=True)
    t = C.build(shares, "baseline", ["2015Q4", "2016Q2"])
    assert set(t) == {"shares", "differences", "overtaking", "leaders"}
    sh = t["shares"]
    # means over powers sum to 1 in every area and quarter (shares do)
    total = sh.groupby(["scenario", "area", "quarter"])["mean"].sum()
    assert np.allclose(total, 1.0)
    assert (sh["ci_low"] <= sh["mean"] + 1e-15).all()
    assert (sh["mean"] <= sh["ci_high"] + 1e-15).all()
    assert (t["differences"]["mean"] == 0).all()
    assert set(t["leaders"]["quarter"]) == {"2015Q4", "2016Q2"}
