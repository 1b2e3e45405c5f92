"""`greatgame discover`: the condition language, PRIM on a known box, the command end to end.

Synthetic sweeps are written with the same on-disk layout as a real one (`sweep.json` and
Parquet parts written by the sweep's own `write_part`), with parameters named for the
test alone: nothing here depends on the model's parameter names.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sim.analysis.condition import Names, Term, parse_condition, shares_warning
from sim.analysis.discovery import (
    discover,
    parameter_label,
    percent,
    prepare_inputs,
    sentence,
    value_text,
)
from sim.cli.main import main
from sim.errors import InputError
from sim.runs.sweep_worker import write_part
from sim.world.vocabulary import PowerAttrs, field_table

NAMES = Names(["china", "russia", "eu", "us", "other"], ["region", "kazakhstan"],
              ["2025Q4", "2030Q4", "2035Q4"])
C, R = Term("china", "region", "2030Q4"), Term("russia", "region", "2030Q4")


# --------------------------------------------------------------------------- the language

def holds(text: str, china, russia) -> list[bool]:
    cond = parse_condition(text, NAMES)
    return cond.evaluate({C: np.asarray(china, float), R: np.asarray(russia, float)}).tolist()


@pytest.mark.parametrize(("text", "expected"), [
    # shares are read in percentage points: 0.30 is 30
    ("china.region.2030Q4 > 25", [True, False]),
    ("china.region.2030Q4 > 25%", [True, False]),
    ("china.region.2030Q4 > russia.region.2030Q4", [True, False]),
    # * and / bind tighter than + and -, which bind tighter than comparisons
    ("china.region.2030Q4 + 10 * 0 > 25", [True, False]),
    ("(china.region.2030Q4 + 10) * 0 > 25", [False, False]),
    ("china.region.2030Q4 - russia.region.2030Q4 - 15 > 0", [False, False]),
    ("china.region.2030Q4 - (russia.region.2030Q4 - 15) > 0", [True, True]),
    ("china.region.2030Q4 / 2 * 4 > 50", [True, False]),  # left to right: (30 / 2) * 4
    ("-china.region.2030Q4 < -25", [True, False]),
    ("china.region.2030Q4 / russia.region.2030Q4 >= 1.5", [True, False]),
    # comparisons chain like Python's
    ("20 < china.region.2030Q4 < 35", [True, False]),
    ("10 < china.region.2030Q4 < 15", [False, False]),
    # not binds tighter than and, which binds tighter than or
    ("not china.region.2030Q4 > 25 and russia.region.2030Q4 > 25", [False, True]),
    ("not (china.region.2030Q4 > 25 and russia.region.2030Q4 > 25)", [True, True]),
    ("china.region.2030Q4 > 25 or china.region.2030Q4 > 5 and russia.region.2030Q4 > 99",
     [True, False]),
    ("(china.region.2030Q4 > 25 or china.region.2030Q4 > 5) and russia.region.2030Q4 > 99",
     [False, False]),
    # a quarter's case does not matter; spaces do not matter
    ("china.region.2030q4>russia.region.2030Q4", [True, False]),
])
def test_the_language_reads_percentage_points_with_python_precedence(text, expected):
    assert holds(text, [0.30, 0.20], [0.20, 0.30]) == expected


def test_a_division_by_zero_is_infinite_and_zero_by_zero_compares_false():
    assert holds("china.region.2030Q4 / russia.region.2030Q4 > 1", [0.3, 0.0], [0.0, 0.0]) \
        == [True, False]


@pytest.mark.parametrize(("text", "position", "words"), [
    ("chna.region.2030Q4 > 3", 1, "unknown power 'chna' (did you mean 'china'?)"),
    ("China.region.2030Q4 > 3", 1, "did you mean 'china'?"),
    ("china.regoin.2030Q4 > 3", 7, "unknown area 'regoin' (did you mean 'region'?)"),
    ("china.kazakstan.2030Q4 > 3", 7, "did you mean 'kazakhstan'?"),
    ("china.region.2031Q4 > 3", 14,
     "quarter 2031Q4 was not recorded by this sweep (did you mean '2030Q4'?); it recorded "
     "2025Q4, 2030Q4, 2035Q4"),
    ("china.region.2030Q5 > 3", 14, "expected a quarter like 2025Q4"),
    ("china.region > 3", 1, "expected POWER.AREA.QUARTER"),
    ("china.region.2030Q4 == 3", 21, "`==` is not part of the language"),
    ("china.region.2030Q4 > 3 && us.region.2030Q4 > 1", 25, "write `and`"),
    ("(china.region.2030Q4 > 3", 25, "expected `)` to close the `(` at character 1"),
    ("china.region.2030Q4 > 3)", 24, "unexpected `)`"),
    ("china.region.2030Q4 > 3 russia.region.2030Q4 > 2", 25, "join conditions with"),
    ("china.region.2030Q4 + (us.region.2030Q4 > 1) > 2", 24, "`+` takes numbers"),
    ("china.region.2030Q4 > 3 and 5", 29, "`and` joins conditions"),
    ("not 5", 5, "`not` applies to a condition"),
    ("china.region.2030Q4 ** 2 > 1", 22, "expected a number"),
    ("__import__('os').system('true') > 1", 12, "unexpected character"),
    ("china.region.2030Q4 > 1e999", 23, "too large"),
])
def test_bad_conditions_name_the_position_and_what_is_wrong(text, position, words):
    with pytest.raises(InputError) as e:
        parse_condition(text, NAMES)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"--when: at character {position}: "), message
    assert words in message


@pytest.mark.parametrize(("text", "words"), [
    ("", "the condition is empty"),
    ("china.region.2030Q4", "is a number, not a condition"),
    ("china.region.2030Q4 * 2", "is a number, not a condition"),
    ("1 > 0", "reads no outcome"),
    ("x" * 5000, "at most 1,000"),
])
def test_conditions_that_are_no_question_are_refused(text, words):
    with pytest.raises(InputError, match=re.escape(words)):
        parse_condition(text, NAMES)


def test_the_parser_never_evaluates_python():
    import sim.analysis.condition as module

    text = open(module.__file__, encoding="utf-8").read()
    assert "eval(" not in text.replace("_eval(", "").replace(".evaluate(", "")
    assert "exec(" not in text


def test_conditions_read_in_words():
    said = {t: parse_condition(t, NAMES).describe() for t in (
        "china.region.2030Q4 > russia.region.2030Q4",
        "30 < china.region.2030Q4",
        "china.region.2030Q4 - russia.region.2030Q4 > 5",
        "china.kazakhstan.2035Q4 >= 40 and other.region.2030Q4 < 30",
        "china.region.2030Q4 > 30 and russia.region.2030Q4 < 20 or us.region.2030Q4 > 1",
    )}
    assert list(said.values()) == [
        "China's regional share in 2030Q4 is above Russia's",
        "China's regional share in 2030Q4 is above 30%",
        "China's regional share in 2030Q4 is more than 5 points above Russia's",
        "China's share in Kazakhstan in 2035Q4 is at least 40% and the rest of the world's "
        "regional share in 2030Q4 is below 30%",
        "the condition `china.region.2030Q4 > 30 and russia.region.2030Q4 < 20 or "
        "us.region.2030Q4 > 1` holds",  # mixed and/or: words would hide the grouping
    ]


def test_a_share_compared_with_a_fraction_gets_a_note():
    note = shares_warning(parse_condition("china.region.2030Q4 > 0.3", NAMES))
    assert note and "percentage points" in note and "write 30" in note
    assert shares_warning(parse_condition("china.region.2030Q4 > 30", NAMES)) is None


# --------------------------------------------------------------------------- PRIM

def known_box(n: int = 2000, noise: float = 0.02, seed: int = 7):
    """Three uniform inputs; the condition holds inside x1 > 0.6 and x2 < 0.3, plus noise."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.uniform(size=(n, 3)), columns=["params.x1", "params.x2", "params.x3"])
    inside = ((x["params.x1"] > 0.6) & (x["params.x2"] < 0.3)).to_numpy()
    flip = rng.uniform(size=n) < noise
    return x, np.where(flip, ~inside, inside)


def test_prim_recovers_a_known_box():
    x, y = known_box()
    found = discover(x, y, min_density=0.9)
    kept = found.kept.set_index("parameter")
    assert set(kept.index) == {"params.x1", "params.x2"}  # x3 tells nothing
    assert kept.loc["params.x1", "final_lower"] == pytest.approx(0.6, abs=0.03)
    assert kept.loc["params.x2", "final_upper"] == pytest.approx(0.3, abs=0.03)
    # the other sides are not limited: the box reaches the edges of the sampled ranges
    assert kept.loc["params.x1", "final_upper"] == x["params.x1"].max()
    assert kept.loc["params.x2", "final_lower"] == x["params.x2"].min()
    assert found.density >= 0.9 and found.coverage > 0.85
    assert (kept[["final_qp_lower", "final_qp_upper"]].min(axis=1) < 0.001).all()
    assert found.scores["parameter"].tolist()[-1] == "params.x3"
    assert found.scores["score"].sum() == pytest.approx(1.0)


def test_the_default_box_is_the_widest_dense_enough_one():
    x, y = known_box()
    found = discover(x, y)
    t = found.trajectory
    dense = t[(t["density"] >= 0.8) & (t["restricted"] > 0)]
    assert found.chosen == int(dense.sort_values("coverage", ascending=False).iloc[0]["box"])
    assert found.rule.startswith("the box with the greatest coverage")
    assert t.loc[found.chosen, "chosen"] and t["chosen"].sum() == 1
    # every box's numbers are what they say: density k/n, coverage k/all, mass n/all
    assert np.allclose(t["density"], t["k"] / t["n"])
    assert np.allclose(t["coverage"], t["k"] / y.sum())
    assert np.allclose(t["mass"], t["n"] / len(y))


def test_a_box_can_be_asked_for_and_one_off_the_trajectory_is_refused():
    x, y = known_box(n=600)
    assert discover(x, y, box=3).chosen == 3
    with pytest.raises(InputError, match=r"--box: box 999 is not on the peeling trajectory"):
        discover(x, y, box=999)


def test_a_common_condition_asks_for_more_than_80_percent():
    x, y = known_box(n=1000)
    found = discover(x, ~y)  # holds in about 88% of runs
    assert found.threshold == pytest.approx((1 + found.base_rate) / 2)
    assert found.density >= found.base_rate


def test_single_valued_inputs_are_left_out_and_none_varying_is_refused():
    x, _ = known_box(n=50)
    x["params.fixed"] = 0.25
    kept, notes = prepare_inputs(x)
    assert "params.fixed" not in kept and notes == [
        "params.fixed has the same value (0.25) in every run; left out"]
    with pytest.raises(InputError, match="no parameter varies between the sweep's runs"):
        prepare_inputs(x[["params.fixed"]])


def test_the_sentence_uses_the_tables_numbers():
    x, y = known_box()
    found = discover(x, y, min_density=0.9)
    text = sentence("the thing happens", found)
    assert text.startswith(f"The thing happens in {percent(found.density)} of runs where ")
    assert f"against {percent(found.base_rate)} of all 2,000 runs" in text
    assert text.endswith(f"cover {percent(found.coverage)} of all runs where it holds.")
    assert found.density == found.n_holds_in_box / found.n_in_box
    assert found.coverage == found.n_holds_in_box / found.n_holds


def test_parameters_are_put_in_words_by_rule():
    effect = "events.some_event.effects[1].value"
    assert parameter_label("powers.china.some_growth") == "China's some growth"
    assert parameter_label("powers.eu.budget") == "the EU's budget"
    assert parameter_label("states.*.hedging") == "every state's hedging"
    assert parameter_label("powers.russia.toward.*.sentiment") == \
        "sentiment between Russia and every state"
    assert parameter_label("other.toward.kazakhstan.debt") == \
        "debt between the rest of the world and Kazakhstan"
    assert parameter_label("params.some_weight") == "the some_weight parameter"
    assert parameter_label("params.w_security") == \
        "the weight of the security-ties channel in influence"  # its documentation's words
    assert parameter_label("params.tilt_speed") == "the tilt_speed parameter"  # not a noun
    assert parameter_label(effect) == "effect 1 of some_event"
    assert parameter_label(effect, {effect: ("powers.us.attention", "scale")}) == \
        "the factor some_event applies to the US's attention"
    assert parameter_label("something.else") == "something.else"
    yearly = next(r["name"] for r in field_table(PowerAttrs) if r["unit"] == "1/yr")
    assert value_text(f"powers.china.{yearly}", 0.0612) == "6.1%"  # a yearly rate
    assert value_text("params.whatever", 0.61234) == "0.612"
    assert percent(0.004) == "under 1%" and percent(0.996) == "over 99%"


# --------------------------------------------------------------------------- the command

def make_sweep(folder, inputs: pd.DataFrame, shares: dict[str, np.ndarray],
               scenarios: list[str] | None = None, failed: int = 0):
    """A sweep folder as `greatgame sweep` leaves it: sweep.json and Parquet parts."""
    n = len(inputs)
    scenarios = scenarios or ["baseline"] * n
    rows = []
    for i in range(n):
        for term, values in shares.items():
            power, area, quarter = term.split(".")
            rows.append({"run_id": i, "scenario": scenarios[i], "point": i, "replication": 0,
                         "seed": 1000 + i, "quarter": quarter, "step": int(quarter[:4]),
                         "area": area, "power": power, "share": float(values[i]),
                         **{k: float(v) for k, v in inputs.iloc[i].items()}})
    table = pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)
    records = [{"run_id": i, "scenario": scenarios[i], "point": i, "replication": 0,
                "seed": 1000 + i, "params": {}, "status": "ok", "seconds": 0.0}
               for i in range(n)]
    folder.mkdir(parents=True)
    half = n // 2  # two parts, as a sweep of two chunks leaves
    ids = table["run_id"].to_numpy()
    write_part(folder, table.filter(pa.array(ids < half)), records[:half])
    write_part(folder, table.filter(pa.array(ids >= half)), records[half:])
    if failed:
        write_part(folder, pa.table({}), [{"run_id": n + k, "scenario": "baseline",
                                           "point": n + k, "replication": 0, "seed": 1,
                                           "params": {}, "status": "failed", "seconds": 0.0,
                                           "error": "boom"} for k in range(failed)])
    identity = {"name": "synthetic", "scenarios": {s: {} for s in sorted(set(scenarios))},
                "design": "lhs", "parameters": list(inputs.columns),
                "points": [dict(r) for r in inputs.to_dict("records")], "replications": 1}
    (folder / "sweep.json").write_text(json.dumps(
        {"name": "synthetic", "identity_hash": "0" * 64, "identity": identity,
         "sweep_file": None}))
    return folder


def synthetic(tmp_path, n: int = 800, **kw):
    x, y = known_box(n=n)
    china = np.where(y, 0.32, 0.22)  # china.region.2030Q4 > russia.region.2030Q4 iff y
    shares = {"china.region.2030Q4": china, "russia.region.2030Q4": np.full(n, 0.27),
              "china.region.2025Q4": np.full(n, 0.2), "russia.region.2025Q4": np.full(n, 0.3)}
    return make_sweep(tmp_path / "sweep", x, shares, **kw), y


WHEN = "china.region.2030Q4 > russia.region.2030Q4"


def run(capsys, *args):
    code = main(["discover", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_discover_writes_charts_tables_and_the_sentence(tmp_path, capsys):
    folder, y = synthetic(tmp_path)
    code, out, err = run(capsys, folder, "--when", WHEN, "--min-density", "90")
    assert code == 0, err
    result = folder / "discover" / "china-region-2030q4-gt-russia-region-2030q4"
    names = {p.name for p in result.iterdir()}
    assert {"tradeoff.png", "tradeoff.svg", "box.png", "box.svg", "feature_scores.png",
            "feature_scores.svg", "summary.csv", "trajectory.csv", "box.csv",
            "feature_scores.csv", "runs.csv", "sentence.txt", "manifest.json"} == names
    text = (result / "sentence.txt").read_text().strip()
    assert " ".join(out.split()).count(text) == 1  # printed as saved
    manifest = json.loads((result / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(names)
    assert manifest["sentence"] == text and manifest["condition"] == WHEN

    # the sentence's percentages are the tables' numbers
    summary = pd.read_csv(result / "summary.csv").iloc[0]
    runs = pd.read_csv(result / "runs.csv")
    assert len(runs) == 800 and runs["holds"].tolist() == y.tolist()
    inside = runs[runs["in_box"]]
    assert summary["density"] == pytest.approx(inside["holds"].mean())
    assert summary["coverage"] == pytest.approx(runs["in_box"][runs["holds"]].mean())
    assert summary["base_rate"] == pytest.approx(runs["holds"].mean())
    said = re.findall(r"(\d+)%", text.split(" where ")[0] + text.split("against")[1])
    assert said == [f"{round(summary['density'] * 100)}",
                    f"{round(summary['base_rate'] * 100)}",
                    f"{round(summary['coverage'] * 100)}"]
    assert [summary[k] for k in ("density_text", "base_rate_text", "coverage_text")] == \
        [f"{s}%" for s in said]
    box = pd.read_csv(result / "box.csv")
    kept = box[box["in_sentence"]]
    assert set(kept["parameter"]) == {"params.x1", "params.x2"}
    x = runs[["params.x1", "params.x2", "params.x3"]]
    mine = np.ones(len(runs), bool)
    for r in kept.itertuples():
        mine &= (x[r.parameter] >= r.final_lower).to_numpy()
        mine &= (x[r.parameter] <= r.final_upper).to_numpy()
    assert mine.tolist() == runs["in_box"].tolist()  # the box the table gives is the box used
    trajectory = pd.read_csv(result / "trajectory.csv")
    assert trajectory["chosen"].sum() == 1 and summary["box"] == trajectory.loc[
        trajectory["chosen"], "box"].iloc[0]

    # the same discovery again replaces its own folder
    code, _, err = run(capsys, folder, "--when", WHEN, "--min-density", "90")
    assert code == 0, err


def run_bad(capsys, folder, *args) -> str:
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    code, out, err = run(capsys, folder, *args)
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    after = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.name != ".sweep.lock")
    assert after == [p for p in before if p.name != ".sweep.lock"]  # nothing written
    return lines[0]


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    folder, _ = synthetic(tmp_path, n=60)
    line = run_bad(capsys, folder, "--when", "china.region.2031Q4 > 20")
    assert line == ("error: --when: at character 14: quarter 2031Q4 was not recorded by this "
                    "sweep (did you mean '2030Q4'?); it recorded 2025Q4, 2030Q4")
    line = run_bad(capsys, folder, "--when", "chna.region.2030Q4 > 20")
    assert "did you mean 'china'?" in line and "the sweep holds china, russia" in line
    line = run_bad(capsys, folder, "--when", "china.kazakhstan.2030Q4 > 20")
    assert "unknown area 'kazakhstan'; the sweep holds region" in line
    line = run_bad(capsys, folder, "--when", WHEN, "--box", "5000")
    assert "--box: box 5000 is not on the peeling trajectory" in line
    line = run_bad(capsys, folder, "--when", WHEN, "--box", "2", "--min-density", "80")
    assert "give one of them" in line
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    line = run_bad(capsys, folder, "--when", WHEN, "--out", foreign)
    assert "is not a greatgame result folder" in line
    assert (foreign / "notes.txt").read_text() == "keep me"
    line = run_bad(capsys, tmp_path, "--when", WHEN)
    assert "holds no sweep.json" in line


def test_a_density_of_a_fraction_is_taken_for_a_slip(tmp_path, capsys):
    folder, _ = synthetic(tmp_path, n=60)
    with pytest.raises(SystemExit) as e:
        main(["discover", str(folder), "--when", WHEN, "--min-density", "0.8"])
    assert e.value.code == 2
    assert "is in percent (80 means 80%), got 0.8; did you mean 80?" in capsys.readouterr().err


def test_a_missing_folder_is_explained(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "discovery", "--when", WHEN)
    assert code == 2
    assert "greatgame sweep discovery" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("when", "words"), [
    ("china.region.2030Q4 > 99", "holds in none of the 60 runs"),
    ("china.region.2030Q4 > 1", "holds in all 60 runs"),
])
def test_a_condition_true_in_no_run_or_every_run_writes_nothing(tmp_path, capsys, when, words):
    folder, _ = synthetic(tmp_path, n=60)
    code, out, _ = run(capsys, folder, "--when", when)
    assert code == 1
    assert words in " ".join(out.split()) and "Nothing was written" in out
    assert not (folder / "discover").exists()


def test_a_sweep_that_varies_nothing_is_refused(tmp_path, capsys):
    n = 40
    x = pd.DataFrame({"params.fixed": np.full(n, 0.5)})
    y = np.arange(n) % 2 == 0
    folder = make_sweep(tmp_path / "flat", x, {"china.region.2030Q4": np.where(y, 0.3, 0.2)})
    line = run_bad(capsys, folder, "--when", "china.region.2030Q4 > 25")
    assert "no parameter varies between the sweep's runs" in line


def test_several_scenarios_become_an_input_and_failed_runs_are_noted(tmp_path, capsys):
    n = 400
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"params.a": rng.uniform(size=n), "params.fixed": np.full(n, 2.0)})
    scenarios = ["baseline" if i % 2 else "other_world" for i in range(n)]
    y = (np.array(scenarios) == "other_world") & (x["params.a"] > 0.5).to_numpy()
    folder = make_sweep(tmp_path / "two", x, {"china.region.2030Q4": np.where(y, 0.3, 0.2)},
                        scenarios=scenarios, failed=3)
    code, out, err = run(capsys, folder, "--when", "china.region.2030Q4 > 25", "--out",
                         tmp_path / "out")
    assert code == 0, err
    assert "params.fixed has the same value (2) in every run; left out" in err
    assert "3 failed run(s) of the sweep are left out" in err
    text = (tmp_path / "out" / "sentence.txt").read_text()
    assert "the scenario is other_world" in text and "the a parameter is above" in text
    lower = float(re.search(r"the a parameter is above ([0-9.]+)", text).group(1))
    assert 0.3 < lower <= 0.5  # the box holds all of a > 0.5, and some more when it must


@pytest.mark.slow
def test_discover_on_a_real_sweep_with_the_ensemble_engine(tmp_path, capsys):
    """A small real sweep (two parameters picked from the vocabulary, not by name)."""
    import sim
    from sim.scenario.scenarios import load_scenario
    from sim.world.vocabulary import Params, field_table

    scenario = load_scenario("baseline")
    quarter = scenario.quarters()[min(47, scenario.n_quarters - 1)]
    power = scenario.world.power_names[0]
    picked = [r for r in field_table(Params) if isinstance(r["default"], float)
              and r["default"] > 0 and r["min"] is not None and r["max"] is not None][:2]
    lines = [f"  params.{r['name']}: {{min: {max(r['min'], r['default'] * 0.5)}, "
             f"max: {min(r['max'], r['default'] * 1.5)}}}" for r in picked]
    sweep_file = tmp_path / "tiny.yaml"
    sweep_file.write_text("\n".join([
        "name: tiny_discovery", "description: a tiny sweep for the discover test",
        "scenarios: [baseline]", "replications: 1", "seed: 5", "design: lhs", "samples: 60",
        "parameters:", *lines, f"outcomes: {{areas: [region], quarters: [{quarter}]}}",
        f"end: {quarter}"]) + "\n")
    folder = tmp_path / "sweep"
    assert main(["sweep", str(sweep_file), "--out", str(folder), "--executor", "serial",
                 "--engine", "ensemble"]) == 0
    capsys.readouterr()
    shares = sim.load_sweep(folder)
    mine = shares[(shares["power"] == power) & (shares["area"] == "region")]["share"]
    when = f"{power}.region.{quarter} > {mine.median() * 100:.6f}"  # true in half the runs
    code, out, err = run(capsys, folder, "--when", when)
    assert code == 0, err
    result = next((folder / "discover").iterdir())
    text = (result / "sentence.txt").read_text().strip()
    assert " ".join(out.split()).count(text) == 1
    summary = pd.read_csv(result / "summary.csv").iloc[0]
    assert summary["runs"] == 60 and summary["holds"] == 30
    runs = pd.read_csv(result / "runs.csv")
    assert summary["density"] == pytest.approx(runs[runs["in_box"]]["holds"].mean())
    if summary["restricted"]:  # a box: density, base rate and coverage
        assert f"in {summary['density_text']} of runs where" in text
        assert f"against {summary['base_rate_text']} of all 60 runs" in text
        assert f"cover {summary['coverage_text']} of all runs where it holds" in text
    else:  # the two parameters tell nothing: the sentence says so, with the base rate
        assert f"in {summary['base_rate_text']} of all 60 runs" in text
        assert "no significant range" in text
    assert {f"{n}.{e}" for n in ("tradeoff", "feature_scores") for e in ("png", "svg")} <= {
        p.name for p in result.iterdir()}
