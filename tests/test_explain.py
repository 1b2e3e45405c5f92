"""sim.analysis.explain: traced runs equal plain runs; the table adds up; reason; the CLI."""

import re

import numpy as np
import pandas as pd
import pytest

from sim.analysis import explain as E
from sim.cli.main import main
from sim.errors import InputError
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
    with pytest.raises(InputError, match=match):
        explain_runs(scenario, state, quarter, SEEDS[0], **kw)


def _fake(tilt_change: float, pulls: dict[str, float], others=()) -> pd.DataFrame:
    """An explain table: the partner china with these term pulls, plus (power, term, pull)s."""
    rows = []
    for power in ("china", "russia", "other"):
        row = {"scenario": "s", "state": "kyrgyzstan", "quarter_before": "2026Q2",
               "quarter": "2027Q2", "n_runs": 1, "power": power, "tilt_before": 0.30,
               "tilt_after": 0.30 + (tilt_change if power == "china" else -tilt_change / 2),
               "tilt_change": tilt_change if power == "china" else -tilt_change / 2}
        for t in E.TERMS:
            row[f"{t}_pull"] = pulls.get(t, 0.0) if power == "china" else 0.0
        for p, t, v in others:
            if p == power:
                row[f"{t}_pull"] = v
        row["score_pull"] = sum(row[f"{t}_pull"] for t in E.TERMS)
        rows.append(row)
    return pd.DataFrame(rows)


def _num(text: str) -> float:
    return float(text.replace("\u2212", "-").replace("+", ""))


def check_reason(text: str, table: pd.DataFrame, power: str) -> None:
    """The sentence agrees with the table in direction and size (numbers as shown)."""
    r = table[table["power"] == power].iloc[0]
    who = E._name(power)
    change = round(float(r["tilt_change"]) * 100, 1)
    assert f"tilt {r['tilt_before']:.1%} to {r['tilt_after']:.1%}, " in text
    assert f"{E.signed(change, 1)} points" in text
    if change == 0:
        assert f"tilt toward {who} hardly changed" in text and "leaned" not in text
        return
    d = 1 if change > 0 else -1
    assert f"leaned {'toward' if d > 0 else 'away from'} {who} (" in text
    pulls = {t: float(r[f"{t}_pull"]) for t in E.TERMS}
    m = re.search(r"mostly because of ([a-z ]+) \(pull ([^ ]+) score points", text)
    if m:
        term = {E.TERM_LABELS[t]: t for t in E.TERMS}[m.group(1)]
        assert round(float(r["score_pull"]), 3) * d > 0  # the score moved the same way
        assert _num(m.group(2)) == round(pulls[term], 3) and _num(m.group(2)) * d > 0
        same = [abs(v) for v in pulls.values() if v * d > 0]
        assert abs(pulls[term]) == max(same)  # the largest pull that way
        named = {term}
        bigger = [t for t, v in pulls.items() if v * d < 0 and abs(v) > abs(pulls[term])]
        if bigger:  # a larger pull the other way is named too
            t2 = max(bigger, key=lambda t: abs(pulls[t]))
            assert f"{E.TERM_LABELS[t2]} pulled the other way, {E.signed(pulls[t2])}" in text
            named.add(t2)
        else:
            assert "pulled the other way" not in text
    else:
        verb = "rise" if d > 0 else "fall"
        m = re.search(rf"its score did not {verb} against .*\(score pull ([^)]+)\)", text)
        assert m, text
        assert _num(m.group(1)) == round(float(r["score_pull"]), 3)
        assert _num(m.group(1)) * d <= 0
        named = set()
    every = [(p, t, float(row[f"{t}_pull"])) for p, (_, row) in zip(
        table["power"], table.iterrows(), strict=True) for t in E.TERMS]
    q, t, v = max(every, key=lambda x: abs(x[2]))
    mention = (f"the largest pull in the table was {E._name(q)}'s {E.TERM_LABELS[t]} "
               f"({E.signed(v)}, {'toward' if v > 0 else 'away from'} {E._name(q)})")
    if t in named or round(v, 3) == 0:
        assert "largest pull in the table" not in text
    else:
        assert mention in text, (text, mention)


def test_reason_names_the_term_that_pulled_most_in_the_direction_of_the_move():
    t = _fake(-0.03, {"sentiment": -0.05, "dependence": -0.02, "economy": 0.01})
    text = E.reason(t)
    assert text.startswith("From 2026Q2 to 2027Q2 Kyrgyzstan leaned away from China")
    assert "(tilt 30.0% to 27.0%, \u22123.0 points)" in text
    assert "mostly because of sentiment (pull \u22120.050 score points" in text
    check_reason(text, t, "china")
    up = _fake(0.02, {"dependence": 0.03, "hedging": -0.01})
    assert "leaned toward China" in E.reason(up) and "dependence cost" in E.reason(up)
    against = _fake(0.02, {"economy": 0.05, "dependence": -0.03, "sentiment": 0.04})
    assert "dependence cost pulled the other way" not in E.reason(against)
    against = _fake(0.02, {"economy": 0.03, "dependence": -0.04, "sentiment": 0.03})
    assert "dependence cost pulled the other way, \u22120.040" in E.reason(against)
    for table in (up, against):
        check_reason(E.reason(table), table, "china")
    assert "hardly changed" in E.reason(_fake(0.0, {}))
    with pytest.raises(InputError):
        E.reason(t, power="india")


def test_reason_does_not_credit_a_term_when_the_score_moved_the_other_way():
    # the partner's tilt rose but its score fell against the others': a catch-up, not a pull
    t = _fake(0.02, {"hedging": -0.2, "economy": 0.01})
    text = E.reason(t)
    assert "mostly because of" not in text
    assert "although its score did not rise" in text and "(score pull \u22120.190)" in text
    check_reason(text, t, "china")
    # a pull elsewhere in the table larger than any of the partner's is named with its way
    t = _fake(-0.01, {"economy": -0.002}, others=[("other", "dependence", 0.03)])
    text = E.reason(t)
    assert ("the largest pull in the table was the rest of the world's dependence cost "
            "(+0.030, toward the rest of the world)") in text
    check_reason(text, t, "china")


@pytest.fixture(scope="module")
def late_table():
    """Kyrgyzstan 2026Q2-2027Q2: Russia's tilt falls as China's economic weight grows."""
    return explain_runs(load_scenario("baseline").with_end("2027Q2"), "kyrgyzstan", "2027Q2",
                        SEEDS[:2])


def test_every_reason_agrees_with_its_table_on_real_runs(table, late_table):
    for t in (table, late_table):
        for power in t["power"]:
            check_reason(E.reason(t, power), t, power)
    text = E.reason(late_table)
    assert "leaned away from Russia" in text
    # the term named is one that pulled Russia down; the catch-up wording (a tilt that
    # moves against its own score) is tested on constructed tables above
    assert "mostly because of economic benefit" in text


def test_reason_and_describe_on_a_real_table(table):
    text = E.reason(table)
    biggest = table.loc[table["tilt_change"].abs().idxmax(), "power"]
    assert "Kyrgyzstan" in text and E._name(biggest) in text
    assert E.reason(table, "us").count("the US") >= 1
    out = E.describe(table)
    assert "Why Kyrgyzstan's tilt moved: baseline, 2017Q2 to 2018Q2 (mean of 3 runs)" in out
    assert "dependence cost" in out and "Δ hedging" in out and "+0.000" not in out


# --------------------------------------------------------------------------- cli

def test_cli_explain_prints_table_and_reason(capsys):
    assert main(["explain", "baseline", "Kyrgyzstan", "2016Q2", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Why Kyrgyzstan's tilt moved: baseline, 2015Q2 to 2016Q2 "
                          "(mean of 2 runs)")
    assert "score pull" in out
    last = " ".join(out.strip().split("\n\n")[-1].split())  # the wrapped reason
    assert last.startswith("From 2015Q2 to 2016Q2 Kyrgyzstan ") and last.endswith(").")


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
