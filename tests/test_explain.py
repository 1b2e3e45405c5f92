"""sim.analysis.explain: traced runs equal plain runs; the table adds up; reason; the CLI."""

import numpy as np
import pandas as pd
import pytest

from sim.analysis import explain as E
from sim.cli.main import main
from sim.runs.gather import explain as explain_runs
from sim.runs.runner import derive_seeds, run_one, run_traced
from sim.runs.tables import ALIGNMENT_COLUMNS
from sim.scenario.scenarios import load_scenario

SEEDS = derive_seeds(20250617, 3)


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("baseline").with_end("2018Q4")


@pytest.fixture(scope="module")
def table(scenario):
    return explain_runs(scenario, "kyrgyzstan", "2018Q2", SEEDS)


def test_traced_run_is_the_plain_run(scenario):
    traced, trace = run_traced(scenario, [(2, SEEDS[0])])
    plain = run_one(scenario, SEEDS[0], replication=2)
    for name in ("shares", "metrics", "events"):
        pd.testing.assert_frame_equal(getattr(traced, name), getattr(plain, name))
    assert list(trace.columns) == ALIGNMENT_COLUMNS
    assert len(trace) == scenario.n_quarters * 5 * 5  # quarters x partners x states
    # the trace's tilt is the tilt the metrics recorded
    m = plain.metrics.set_index(["quarter", "state", "power"])["tilt"]
    t = trace.set_index(["quarter", "state", "power"])["tilt"]
    assert np.array_equal(t.loc[m.index].to_numpy(), m.to_numpy())


def test_explain_table_adds_up(table):
    assert list(table["power"]) == ["china", "russia", "eu", "us", "other"]
    assert set(table["quarter_before"]) == {"2017Q2"} and set(table["quarter"]) == {"2018Q2"}
    assert set(table["n_runs"]) == {3}
    for part in ("before", "after"):
        terms = sum(table[f"{t}_{part}"] for t in E.TERMS)
        assert np.allclose(terms, table[f"score_{part}"])
        assert table[f"tilt_{part}"].sum() == pytest.approx(1.0)
    for x in (*E.TERMS, "score", "tilt"):
        assert np.allclose(table[f"{x}_change"], table[f"{x}_after"] - table[f"{x}_before"])
    assert (table["dependence_before"] <= 0).all() and (table["hedging_after"] <= 0).all()
    w = (table["tilt_before"] + table["tilt_after"]) / 2
    for t in (*E.TERMS, "score"):  # pulls are relative to the tilt-weighted mean change
        assert float((w * table[f"{t}_pull"]).sum()) == pytest.approx(0.0, abs=1e-12)


def test_explain_over_seeds_is_the_mean_of_single_runs(scenario, table):
    singles = [explain_runs(scenario, "Kyrgyzstan", "2018Q2", s) for s in SEEDS]
    for col in ("economy_after", "sentiment_before", "tilt_change"):  # pulls: from the means
        mean = np.mean([t[col].to_numpy() for t in singles], axis=0)
        assert np.allclose(table[col], mean)
    assert set(singles[0]["n_runs"]) == {1}


def test_explain_before_option(scenario):
    t = explain_runs(scenario, "tajikistan", "2018Q2", SEEDS[0], before="2016Q1")
    assert set(t["quarter_before"]) == {"2016Q1"}


@pytest.mark.parametrize("state, quarter, kw, match", [
    ("kirgizstan", "2018Q2", {}, "unknown state 'kirgizstan'"),
    ("kyrgyzstan", "2040Q1", {}, "outside baseline's period 2015Q1–2018Q4"),
    ("kyrgyzstan", "2018-2", {}, "expected a quarter like 2025Q4"),
    ("kyrgyzstan", "2015Q3", {}, "no quarter 4 quarters before 2015Q3"),
    ("kyrgyzstan", "2016Q3", {"before": "2016Q3"}, "must be earlier"),
])
def test_explain_rejects_bad_input(scenario, state, quarter, kw, match):
    with pytest.raises(E.ExplainError, match=match):
        explain_runs(scenario, state, quarter, SEEDS[0], **kw)


def _fake(tilt_change: float, pulls: dict[str, float]) -> pd.DataFrame:
    row = {"scenario": "s", "state": "kyrgyzstan", "quarter_before": "2026Q2",
           "quarter": "2027Q2", "n_runs": 1, "power": "china", "tilt_before": 0.30,
           "tilt_after": 0.30 + tilt_change, "tilt_change": tilt_change}
    for t in E.TERMS:
        row[f"{t}_pull"] = pulls.get(t, 0.0)
    return pd.DataFrame([row])


def test_reason_names_the_term_that_pulled_most_in_the_direction_of_the_move():
    t = _fake(-0.03, {"sentiment": -0.05, "dependence": -0.02, "economy": 0.08})
    text = E.reason(t)
    assert text.startswith("From 2026Q2 to 2027Q2 Kyrgyzstan leaned away from China")
    assert "(tilt 30.0% to 27.0%)" in text
    assert "mostly because of sentiment (pull -0.050" in text
    up = E.reason(_fake(0.02, {"dependence": 0.01, "hedging": -0.2}))
    assert "leaned toward China" in up and "dependence cost" in up
    none = E.reason(_fake(0.02, {"hedging": -0.2}))
    assert "no term pulled that way" in none and "hedging" in none
    assert "did not change" in E.reason(_fake(0.0, {}))
    with pytest.raises(E.ExplainError):
        E.reason(t, power="india")


def test_reason_and_describe_on_a_real_table(table):
    text = E.reason(table)
    biggest = table.loc[table["tilt_change"].abs().idxmax(), "power"]
    assert "Kyrgyzstan" in text and E._name(biggest) in text
    assert E.reason(table, "us").count("the US") == 1
    out = E.describe(table)
    assert "Why Kyrgyzstan's tilt moved: baseline, 2017Q2 to 2018Q2 (mean of 3 runs)" in out
    assert "dependence cost" in out and "Δ hedging" in out


# --------------------------------------------------------------------------- cli

def test_cli_explain_prints_table_and_reason(capsys):
    assert main(["explain", "baseline", "Kyrgyzstan", "2016Q2", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Why Kyrgyzstan's tilt moved: baseline, 2015Q2 to 2016Q2 "
                          "(mean of 2 runs)")
    assert "score pull" in out and out.strip().splitlines()[-1].endswith("average).")


@pytest.mark.parametrize("argv, message", [
    (["explain", "baseline", "kirgizstan", "2016Q2"], "unknown state 'kirgizstan'"),
    (["explain", "baseline", "kyrgyzstan", "2040Q1"], "is outside baseline's period"),
    (["explain", "baseline", "kyrgyzstan", "late"], "expected a quarter like 2025Q4"),
    (["explain", "no_such_scenario", "kyrgyzstan", "2016Q2"], "no_such_scenario"),
])
def test_cli_explain_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
