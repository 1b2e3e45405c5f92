"""Parameter uncertainty in every what-if: posterior draws, paired by replication.

Built on synthetic posterior files (`write_posterior`): no test depends on which parameters
a calibration happens to fit, only on what a posterior file is. Replication i runs
parameter set i of `Posterior.overrides(n, root_seed)` with the seed it has without draws,
in every scenario; keys naming an event a scenario lacks are skipped for it; stored runs
are never mixed across modes; reports say which intervals they show.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest

from sim.analysis import paired as C
from sim.cli.main import main
from sim.output import report as R
from sim.output import report_text as T
from sim.runs import gather as G
from sim.runs import runner
from sim.runs.runner import (
    Uncertainty,
    choose_uncertainty,
    derive_seeds,
    replicate,
    simulate,
    skipped_keys,
)
from sim.runs.tables import shares_frame
from sim.scenario.posterior import load_posterior, write_posterior
from sim.scenario.scenarios import load_scenario

END = "2016Q4"
SEED = 4242
N = 4


def _names_and_ranges() -> dict[str, tuple[float, float]]:
    """A few posterior keys and plausible ranges, found in the shipped scenarios.

    Nothing here names a parameter: the model's rules (and names) change, a posterior file
    does not care. Two model parameters and one attribute of China, each spread 30% around
    the baseline's value within its range, and the effect value of an event that baseline
    has and no_ukraine_war does not.
    """
    from sim.world.vocabulary import Params, PowerAttrs, field_table

    base, no_war = load_scenario("baseline"), load_scenario("no_ukraine_war")

    def spread(value, lo, hi):
        a, b = value * 0.7, value * 1.3
        lo = -math.inf if lo is None else lo
        hi = math.inf if hi is None else hi
        return max(min(a, b), lo + 1e-6), min(max(a, b), hi)

    def usable(model, values):
        return [(r["name"], spread(values[r["name"]], r["min"], r["max"]))
                for r in field_table(model) if isinstance(values.get(r["name"]), float)
                and values[r["name"]] > 0 and not r["name"].startswith(("w_", "priority_"))]

    params = usable(Params, base.params.model_dump())[:2]
    china = usable(PowerAttrs, base.world.powers["china"].model_dump())[:1]
    event = sorted({e.id for e in base.events} - {e.id for e in no_war.events})[0]
    effect = next(e for e in base.events if e.id == event).effects[0].value
    out = {f"params.{n}": r for n, r in params} | {f"powers.china.{n}": r for n, r in china}
    out[f"events.{event}.effects[0].value"] = spread(effect, None, None)
    return out


RANGES = _names_and_ranges()
NAMES = list(RANGES)
PARAM = NAMES[0]  # a model parameter: `params.<name>`
WAR_KEY = NAMES[-1]  # an effect of an event no_ukraine_war lacks
INSTALLED_FOR = runner.installed_for  # the real one (tests run with a stand-in: conftest.py)


def synthetic(path, names=NAMES, n=40, seed=1):
    """A posterior file with spread-out values (each within its attribute's range)."""
    rng = np.random.default_rng(seed)
    values = np.column_stack([rng.uniform(*RANGES.get(k, (0.1, 0.9)), n) for k in names])
    return write_posterior(path, names, values, rng.uniform(0.1, 1.0, n),
                           {"method": "synthetic", "command": "tests"})


def _inside(key, share):
    """A value `share` of the way through a key's range."""
    lo, hi = RANGES[key]
    return lo + share * (hi - lo)


@pytest.fixture(scope="module")
def post_file(tmp_path_factory):
    return synthetic(tmp_path_factory.mktemp("posterior") / "central_asia_posterior.csv")


@pytest.fixture(scope="module")
def drawn(post_file):
    return choose_uncertainty("posterior", post_file, ["central_asia"])


@pytest.fixture(scope="module")
def scenarios():
    return [load_scenario(n).with_end(END) for n in ("baseline", "no_ukraine_war", "us_stays")]


@pytest.fixture(scope="module")
def gathered(scenarios, drawn):
    return G.gather(scenarios, derive_seeds(SEED, N), results_root=None, root_seed=SEED,
                    uncertainty=drawn, counterpart=True)


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for f in fragments:
        assert f in err[0], err
    return err[0]


# --------------------------------------------------------------------------- the one door

def test_choosing_the_uncertainty(post_file, monkeypatch):
    assert choose_uncertainty(None, None, ["central_asia"]).mode == "none"  # none installed
    u = choose_uncertainty(None, post_file, ["central_asia"])
    assert u.drawn and u.sha256 and u.posterior.names == tuple(NAMES)
    assert u.label == "model randomness and parameter uncertainty (posterior draws)"
    monkeypatch.setattr(runner, "installed_for", lambda world: load_posterior(post_file))
    assert choose_uncertainty(None, None, ["central_asia"]).drawn  # the default follows it
    off = choose_uncertainty("none", None, ["central_asia"])
    assert off.mode == "none" and off.posterior is not None and off.other().drawn
    assert off.label == "model randomness only"
    assert off.parameter_sets(3, SEED) == [{}, {}, {}]


def test_replication_i_gets_parameter_set_i_in_every_scenario(gathered, drawn, scenarios):
    sets = drawn.posterior.overrides(N, SEED)
    base, no_war, us = gathered.sources
    assert base.parameters == sets and us.parameters == sets  # the same in every scenario
    assert no_war.skipped == [WAR_KEY] and base.skipped == [] == us.skipped
    assert no_war.parameters == [{k: v for k, v in p.items() if k != WAR_KEY} for p in sets]
    assert len({json.dumps(p, sort_keys=True) for p in sets}) == N  # different across reps
    # and the runs really ran them: replication 2 of us_stays, alone, with set 2 and seed 2
    seeds = derive_seeds(SEED, N)
    alone = shares_frame(simulate([scenarios[2].with_overrides(sets[2])], [seeds[2]],
                                  engine="mesa"))
    got = gathered.result.shares
    got = got[(got["scenario"] == "us_stays") & (got["replication"] == 2)]
    key = ["quarter", "area", "power"]
    m = got.merge(alone, on=key, suffixes=("", "_alone"), validate="one_to_one")
    assert len(m) == len(alone) and (m["share"] == m["share_alone"]).all()
    assert (got["seed"] == seeds[2]).all()
    plain = shares_frame(simulate([scenarios[2]], [seeds[2]], engine="mesa"))
    assert not np.allclose(plain["share"].to_numpy(), alone["share"].to_numpy())


def test_self_comparison_with_draws_is_exactly_zero(scenarios, drawn):
    g = G.gather([scenarios[0], scenarios[0]], derive_seeds(SEED, N), results_root=None,
                 root_seed=SEED, uncertainty=drawn)
    d = C.paired_differences(g.result.shares, "baseline")
    assert (d["mean"] == 0).all() and (d["ci_low"] == 0).all() and (d["ci_high"] == 0).all()
    assert not d["distinct"].any()
    # while the shares themselves spread over the draws more than over the seeds alone
    s = g.result.shares
    s = s[(s["scenario"] == "baseline") & (s["area"] == "region") & (s["quarter"] == END)]
    assert s.groupby("power")["share"].std().max() > 0


def test_serial_and_two_processes_give_identical_results_with_draws(scenarios, drawn,
                                                                    gathered, monkeypatch):
    monkeypatch.setattr(G, "MIN_PARALLEL", 1)
    monkeypatch.setattr(G, "CHUNK", 2)
    seeds = derive_seeds(SEED, N)
    par = G.gather(scenarios[:2], seeds, results_root=None, root_seed=SEED, uncertainty=drawn,
                   workers=2)
    ser = gathered.result.shares
    ser = ser[ser["scenario"].isin(["baseline", "no_ukraine_war"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(par.result.shares, ser)


def test_the_counterpart_on_the_ensemble_equals_mesa_runs_of_that_mode(scenarios, gathered):
    """The widths without draws come from the ensemble: the numbers Mesa gives, to 1e-12."""
    plain = G.gather(scenarios, gathered.seeds, results_root=None, root_seed=SEED)
    twin = gathered.counterpart
    mesa = plain.result.shares
    assert list(twin["scenario"].unique()) == ["baseline", "no_ukraine_war", "us_stays"]
    key = ["scenario", "replication", "quarter", "area", "power"]
    m = twin.merge(mesa, on=key, suffixes=("_ens", "_mesa"), validate="one_to_one")
    assert len(m) == len(mesa)
    assert np.allclose(m["share_ens"], m["share_mesa"], rtol=0, atol=1e-12)
    assert (m["seed_ens"] == m["seed_mesa"]).all()


def test_replicate_skips_only_missing_events_and_a_swept_value_wins(scenarios, drawn):
    no_war = scenarios[1]
    assert skipped_keys(no_war, NAMES) == [WAR_KEY]
    assert skipped_keys(scenarios[0], NAMES) == []
    drawn_value, swept = _inside(PARAM, 0.8), _inside(PARAM, 0.2)
    draw = {PARAM: drawn_value, WAR_KEY: 0.5}
    (one,) = replicate(no_war, [draw], fixed={PARAM: swept})
    assert runner.value_of(one, PARAM) == (swept,)  # the sweep's own point wins over the draw
    (war,) = replicate(scenarios[0], [draw])
    assert runner.value_of(war, WAR_KEY) == (0.5,)
    assert runner.value_of(war, PARAM) == (drawn_value,)
    a, b = replicate(scenarios[0], [{}, {}])
    assert a is scenarios[0] and b is a  # no draw: the scenario itself, shared


def test_a_key_the_world_lacks_is_an_error_naming_the_posterior(tmp_path, scenarios):
    bad = synthetic(tmp_path / "bad.csv", [PARAM, "params.no_such_thing"])
    u = choose_uncertainty("posterior", bad, ["central_asia"])
    with pytest.raises(Exception) as e:
        G.gather(scenarios[:1], derive_seeds(SEED, 2), results_root=None, root_seed=SEED,
                 uncertainty=u)
    assert "bad.csv" in str(e.value) and "params.no_such_thing" in str(e.value)


# --------------------------------------------------------------------------- reuse

def _manifest(seeds, params=None, unc=None):
    rec = {"file_hashes": {"b.yaml": "x"}, "period": {"start": "2015Q1", "end": "2016Q4"}}
    out = {"scenario": rec, "environment": {"greatgame": "1", "numpy": "2", "mesa": "3"},
           "seeds": [{"replication": i, "seed": s} | (
               {"parameters": params[i]} if params else {}) for i, s in enumerate(seeds)]}
    if unc is not None:
        out["uncertainty"] = unc
    return out


@pytest.mark.parametrize("stored, wanted, expected", [
    ("none", "none", [0, 1]),
    ("legacy", "none", [0, 1]),        # a manifest without the key holds runs without draws
    ("none", "posterior", []),
    ("legacy", "posterior", []),
    ("posterior", "none", []),
    ("posterior", "posterior", [0, 1]),
    ("posterior", "other_file", []),
    ("posterior", "other_draws", [1]),  # same file and seeds, replication 0's set differs
])
def test_reuse_never_mixes_modes_posteriors_or_parameter_sets(stored, wanted, expected):
    seeds = [11, 22]
    sets = [{PARAM: 0.1}, {PARAM: 0.2}]
    post = {"mode": "posterior", "posterior": {"sha256": "aaa"}}
    none = {"mode": "none", "posterior": None}
    m = {"none": _manifest(seeds, unc=none), "legacy": _manifest(seeds),
         "posterior": _manifest(seeds, sets, post)}[stored]
    want_unc, want_sets = {
        "none": (none, None), "posterior": (post, sets),
        "other_file": ({"mode": "posterior", "posterior": {"sha256": "bbb"}}, sets),
        "other_draws": (post, [{PARAM: 0.3}, sets[1]])}[wanted]
    got = G.reusable_replications(m, {"b.yaml": "x"}, (8060, 8067), seeds,
                                  {"greatgame": "1", "numpy": "2", "mesa": "3"},
                                  want_unc, want_sets)
    assert got == expected


def test_compare_reuses_stored_runs_only_in_the_same_mode(tmp_path, post_file, capsys):
    results = tmp_path / "results"
    run = ["run", "baseline", "-n", "2", "--end", END, "--seed", str(SEED), "--out",
           str(results / "baseline")]
    assert main([*run, "--posterior", str(post_file)]) == 0
    m = json.loads((results / "baseline" / "manifest.json").read_text())
    assert m["uncertainty"]["mode"] == "posterior"
    assert m["uncertainty"]["posterior"]["sha256"] == runner.file_sha256(post_file)
    assert m["seeds"][1]["parameters"] == load_posterior(post_file).overrides(2, SEED)[1]
    capsys.readouterr()
    cmp = ["compare", "baseline", "us_stays", "-n", "2", "--end", END, "--seed", str(SEED),
           "--workers", "1", "--results", str(results)]
    assert main([*cmp, "--out", str(tmp_path / "a"), "--uncertainty", "none"]) == 0
    assert "baseline: ran 2 runs" in capsys.readouterr().out
    assert main([*cmp, "--out", str(tmp_path / "b"), "--posterior", str(post_file)]) == 0
    text = capsys.readouterr().out
    assert (f"baseline: read 2 of 2 runs from {results / 'baseline'} (same scenario files, "
            "seeds, posterior draws, period and version)") in text
    other = synthetic(tmp_path / "other.csv", seed=9)
    assert main([*cmp, "--out", str(tmp_path / "c"), "--posterior", str(other)]) == 0
    assert "baseline: ran 2 runs" in capsys.readouterr().out
    # the reused runs are the runs a fresh comparison makes
    assert main([*cmp, "--out", str(tmp_path / "d"), "--posterior", str(post_file),
                 "--no-reuse"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "b" / "shares.parquet"),
                                  pd.read_parquet(tmp_path / "d" / "shares.parquet"))
    # and a plain run is not reused by a comparison with draws either
    assert main([*run[:-2], "--out", str(results / "baseline"), "--uncertainty", "none"]) == 0
    capsys.readouterr()
    assert main([*cmp, "--out", str(tmp_path / "e"), "--posterior", str(post_file)]) == 0
    assert "baseline: ran 2 runs" in capsys.readouterr().out


# --------------------------------------------------------------------------- the command line

COMMANDS = {
    "run": ["run", "baseline", "-n", "2", "--end", END],
    "compare": ["compare", "baseline", "us_stays", "-n", "2", "--end", END, "--workers", "1"],
    "demo": ["demo", "-n", "2", "--workers", "1"],
    "explain": ["explain", "baseline", "kazakhstan", "2016Q2", "-n", "2"],
}


@pytest.mark.parametrize("command", [*COMMANDS, "sweep"])
@pytest.mark.parametrize("case", ["none_installed", "missing_file", "contradiction",
                                  "unknown_key"])
def test_option_errors_exit_2_with_one_line_and_write_nothing(command, case, tmp_path,
                                                              capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if command == "sweep":
        (tmp_path / "s.yaml").write_text("name: s\ndescription: tiny\nscenarios: [baseline]\n"
                                         "replications: 2\nend: 2015Q4\n")
        argv = ["sweep", "s.yaml", "--executor", "serial", "--out", "out"]
    else:
        argv = [*COMMANDS[command]] + (["--out", "out"] if command != "explain" else [])
    bad = synthetic(tmp_path / "bad.csv", [PARAM, "params.no_such_thing"])
    good = synthetic(tmp_path / "good.csv")
    extra, fragments = {
        "none_installed": (["--uncertainty", "posterior"],
                           ["--uncertainty posterior: no posterior is installed for world "
                            "central_asia", "--posterior FILE"]),
        "missing_file": (["--posterior", "nowhere.csv"], ["nowhere.csv", "no posterior file"]),
        "contradiction": (["--posterior", str(good), "--uncertainty", "none"],
                          ["--uncertainty none"]),
        "unknown_key": (["--posterior", str(bad)], ["bad.csv", "params.no_such_thing"]),
    }[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main([*argv, *extra]) == 2
    _one_line_error(capsys, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_bad_uncertainty_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "baseline", "--uncertainty", "maybe"])
    assert e.value.code == 2
    assert "invalid choice: 'maybe'" in capsys.readouterr().err


def test_run_defaults_to_the_installed_posterior(tmp_path, post_file, monkeypatch, capsys):
    monkeypatch.setattr(runner, "installed_for", lambda world: load_posterior(post_file))
    out = tmp_path / "r"
    assert main(["run", "no_ukraine_war", "-n", "2", "--end", END, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "bands: model randomness and parameter uncertainty (posterior draws)" in text
    assert f"skipped: {WAR_KEY}" in text
    m = json.loads((out / "manifest.json").read_text())
    assert m["uncertainty"]["mode"] == "posterior" and m["uncertainty"]["skipped"] == [WAR_KEY]
    assert all(WAR_KEY not in s["parameters"] for s in m["seeds"])
    assert main(["run", "baseline", "-n", "2", "--end", END, "--out", str(out),
                 "--uncertainty", "none"]) == 0
    text = capsys.readouterr().out
    assert "bands: model randomness only (a posterior is installed" in text
    m = json.loads((out / "manifest.json").read_text())
    assert m["uncertainty"]["mode"] == "none" and "parameters" not in m["seeds"][0]


# --------------------------------------------------------------------------- reports

def test_compare_report_says_which_intervals_and_how_wide(tmp_path, post_file, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "baseline", "baseline", "no_ukraine_war", "-n", "3", "--end", END,
                 "--seed", str(SEED), "--workers", "1", "--no-reuse", "--out", str(out),
                 "--posterior", str(post_file)]) == 0
    text = capsys.readouterr().out
    assert "common random numbers, posterior draws)" in text
    assert "model randomness and parameter uncertainty (posterior draws)" in text
    d = pd.read_csv(out / "differences.csv")
    assert set(d["interval"]) == {"randomness+posterior"}
    self_d = d[d["scenario"] == "baseline (2)"]
    for col in ("diff_pp", "diff_ci_low_pp", "diff_ci_high_pp"):
        assert (self_d[col] == 0).all(), col
    assert set(pd.read_csv(out / "shares.csv")["interval"]) == {"randomness+posterior"}
    w = pd.read_csv(out / "interval_widths.csv")
    assert list(w["uncertainty"]) == ["posterior", "none"] and list(w["shown"]) == [True, False]
    assert list(w["kind"]) == ["95% credible interval, the central 95% of the runs",
                               "95% confidence interval of the mean"]
    # with draws the shown interval is the central range of the runs themselves
    assert w.loc[0, "mean_width_pp"] == w.loc[0, "range_width_pp"]  # 2016: before the war
    assert "95% credible interval" in " ".join(text.split())
    assert (w["n_differences"] == 8).all() and (w["quarter"] == END).all()
    runs = pd.read_csv(out / "runs.csv")
    nw = runs[runs["scenario"] == "no_ukraine_war"]
    assert nw[WAR_KEY].isna().all() and nw[PARAM].notna().all()
    for col in NAMES[:3]:  # paired: the same values across scenarios
        assert (runs.groupby("replication")[col].nunique() == 1).all()
    page = (out / "report.html").read_text()
    assert 'data-interval="posterior"' in page and "structural uncertainty" in page
    for mode in ("posterior", "none"):
        row = int(w.index[w["uncertainty"] == mode][0])
        assert (f'data-src="interval_widths.csv" data-row="{row}" data-col="mean_width_pp"'
                in page)
    m = json.loads((out / "manifest.json").read_text())
    assert m["uncertainty"]["mode"] == "posterior"
    assert m["scenarios"][2]["skipped_posterior_keys"] == [WAR_KEY]
    assert [r["uncertainty"] for r in m["interval_widths"]] == ["posterior", "none"]
    summary = pd.read_csv(out / "summary.csv")["sentence"]
    assert summary.iloc[-1].startswith("Every interval here covers model randomness and "
                                       "parameter uncertainty")
    assert f"--posterior {post_file}" in page or "no tilt shifts" in page.lower()


def test_a_plain_report_says_model_randomness_only(tmp_path, capsys):
    out = tmp_path / "plain"
    assert main(["compare", "baseline", "us_stays", "-n", "2", "--end", END, "--workers", "1",
                 "--no-reuse", "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())  # the terminal text is wrapped
    assert "model randomness only" in text and "no posterior is installed" in text
    assert set(pd.read_csv(out / "differences.csv")["interval"]) == {"randomness"}
    assert len(pd.read_csv(out / "interval_widths.csv")) == 1
    page = (out / "report.html").read_text()
    assert "No posterior is installed for this world" in page


def _tables(diff_means, spread):
    """Shares of a reference and one what-if, three runs, where the what-if moves China."""
    rows = []
    for rep, noise in enumerate((-1.0, 0.0, 1.0)):
        for scen, shift in (("ref", 0.0), ("alt", 1.0)):
            for step, quarter in ((83, "2035Q3"), (84, "2035Q4")):
                for area in ("region", "kazakhstan"):
                    china = 0.3 + shift * (diff_means["china"] + noise * spread)
                    russia = 0.4 + shift * diff_means["russia"]
                    for power, share in (("china", china), ("russia", russia),
                                         ("other", 1 - china - russia)):
                        rows.append({"scenario": scen, "replication": rep, "seed": rep,
                                     "quarter": quarter, "step": step, "area": area,
                                     "power": power, "share": share})
    shares = pd.DataFrame(rows)
    tables = C.build(shares, "ref", ["2035Q4"])
    return tables, T.display_tables(tables)


def test_a_difference_whose_interval_includes_zero_reads_no_clear_difference():
    tables, display = _tables({"china": -0.001, "russia": 0.02}, spread=0.004)
    text = [T.sentence_text(s) for s in T.summary_sentences(tables, display, ["2035Q4"],
                                                            uncertainty="posterior")]
    assert ("Under alt, Russia's regional share in 2035Q4 is 2.00 points higher than under ref"
            in " ".join(text))
    clear = [t for t in text if "no clear difference" in t]
    assert clear and clear[0].startswith(
        "Under alt, no clear difference in China's regional share in 2035Q4 from ref (95% "
        "credible interval \u2212")
    assert " to +" in clear[0] and clear[0].endswith("%).")
    assert text[-1] == T.INTERVAL_SENTENCES["posterior"].format(confidence=0.95)
    assert "the central 95% of the runs' values" in text[-1]


def test_headline_width_is_the_mean_width_of_each_powers_regional_difference():
    tables, _ = _tables({"china": -0.001, "russia": 0.02}, spread=0.004)
    d = tables["differences"]
    width, n = C.headline_width(d, "2035Q4")
    region = d[(d["area"] == "region") & (d["power"] != "other")]
    assert n == 2 and math.isclose(width, float((region["ci_high"] - region["ci_low"]).mean()))


def test_widths_table_has_one_row_without_a_posterior(scenarios):
    g = G.gather(scenarios[:2], derive_seeds(SEED, 2), results_root=None, root_seed=SEED,
                 counterpart=True)
    assert g.counterpart is None and g.uncertainty == Uncertainty()
    c = R.analyse(g, years=[2016])
    assert list(c.widths["uncertainty"]) == ["none"]
    assert "no posterior is installed" in R.widths_text(c)


# --------------------------------------------------------------------------- sweeps

SWEPT = (round(_inside(PARAM, 0.25), 6), round(_inside(PARAM, 0.75), 6))
SWEEP = f"""\
name: drawn
description: a tiny sweep with posterior draws
scenarios: [baseline, no_ukraine_war]
replications: 3
seed: 5
end: 2015Q4
parameters:
  {PARAM}: [{SWEPT[0]}, {SWEPT[1]}]
"""


def test_sweep_with_draws_swept_value_wins_and_modes_never_mix(tmp_path, post_file, capsys):
    from sim.runs.sweep import load_sweep
    from sim.scenario.sweepfile import load_sweep_file

    f = tmp_path / "drawn.yaml"
    f.write_text(SWEEP)
    out = tmp_path / "sw"
    base = ["sweep", str(f), "--out", str(out), "--executor", "serial"]
    assert main([*base, "--posterior", str(post_file)]) == 0
    said = capsys.readouterr()
    assert "model randomness and parameter uncertainty" in said.out
    # three replications: every point runs the same three draws, and the sweep says so
    assert "every point runs the same 3 posterior draws" in " ".join(said.err.split())
    m = json.loads((out / "manifest.json").read_text())
    assert m["uncertainty"]["mode"] == "posterior"
    assert m["uncertainty"]["swept_over_drawn"] == [PARAM]
    assert m["uncertainty"]["skipped"] == {"baseline": [], "no_ukraine_war": [WAR_KEY]}
    sets = load_posterior(post_file).overrides(3, 5)
    assert [d["parameters"] for d in m["draws"]] == sets
    df = load_sweep(out)
    plan = load_sweep_file(f)
    # a run: its draw, then its point's tilt speed on top, with the seed it has without draws
    r = df[(df["scenario"] == "no_ukraine_war") & (df["point"] == 1) & (df["replication"] == 2)]
    scn = load_scenario("no_ukraine_war").with_end("2015Q4")
    draw = {k: v for k, v in sets[2].items() if k != WAR_KEY} | {PARAM: SWEPT[1]}
    alone = shares_frame(simulate([scn.with_overrides(draw)], [int(r["seed"].iloc[0])],
                                  engine="mesa"))
    key = ["quarter", "area", "power"]
    m = r.astype({k: str for k in key}).merge(alone, on=key, suffixes=("", "_alone"),
                                               validate="one_to_one")
    assert len(m) == len(alone) == len(r)
    assert np.allclose(m["share"], m["share_alone"], rtol=0, atol=1e-12)
    assert (r[PARAM] == SWEPT[1]).all()
    assert r["seed"].iloc[0] == plan.runs()[len(plan.runs()) - 1].seed
    # resuming the same folder without draws is another sweep: refused, nothing changed
    capsys.readouterr()
    assert main([*base, "--uncertainty", "none", "--resume"]) == 2
    _one_line_error(capsys, "holds a different sweep", "it holds runs with posterior draws")


def test_a_sweep_with_draws_by_run_gives_every_point_its_own_draw(tmp_path, post_file, capsys):
    """`posterior_draws: by_run`: run (p, r) takes draw p x R + r, the same in every
    scenario; the point's value still wins; it is another sweep than by_replication."""
    from sim.runs.sweep import load_sweep, with_uncertainty
    from sim.scenario.sweepfile import load_sweep_file

    f = tmp_path / "by_run.yaml"
    f.write_text(SWEEP.replace("replications: 3", "replications: 2")
                 + "posterior_draws: by_run\n")
    out = tmp_path / "sw"
    assert main(["sweep", str(f), "--out", str(out), "--executor", "processes", "--workers",
                 "2", "--posterior", str(post_file)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "each run its own posterior draw" in err and "the same 2 posterior draws" not in err
    m = json.loads((out / "manifest.json").read_text())
    sets = load_posterior(post_file).overrides(4, 5)  # 2 points x 2 replications
    assert [(d["point"], d["replication"]) for d in m["draws"]] == [(0, 0), (0, 1), (1, 0),
                                                                    (1, 1)]
    assert [d["parameters"] for d in m["draws"]] == sets
    assert "by_run" in m["uncertainty"]["combination"]
    df = load_sweep(out)
    scn = load_scenario("baseline").with_end("2015Q4")
    for point, rep in ((0, 1), (1, 0)):  # two runs, two different draws, as run alone
        r = df[(df["scenario"] == "baseline") & (df["point"] == point)
               & (df["replication"] == rep)]
        draw = sets[point * 2 + rep] | {PARAM: SWEPT[point]}
        alone = shares_frame(simulate([scn.with_overrides(draw)], [int(r["seed"].iloc[0])],
                                      engine="mesa"))
        key = ["quarter", "area", "power"]
        both = r.astype({k: str for k in key}).merge(alone, on=key, suffixes=("", "_alone"))
        assert len(both) == len(alone) and np.allclose(both["share"], both["share_alone"],
                                                       rtol=0, atol=1e-12)
    by_rep = tmp_path / "by_rep.yaml"
    by_rep.write_text(SWEEP.replace("replications: 3", "replications: 2"))
    drawn = choose_uncertainty("posterior", post_file, ["central_asia"])
    assert (with_uncertainty(load_sweep_file(f), drawn).identity_hash()
            != with_uncertainty(load_sweep_file(by_rep), drawn).identity_hash())
    # without draws the key changes nothing: the same sweep
    assert (with_uncertainty(load_sweep_file(f), Uncertainty()).identity_hash()
            == with_uncertainty(load_sweep_file(by_rep), Uncertainty()).identity_hash())


def test_sweep_identity_without_draws_is_unchanged():
    from sim.runs.sweep import with_uncertainty
    from sim.scenario.sweepfile import load_sweep_file, sweeps_dir

    plan = load_sweep_file(sorted(sweeps_dir().glob("*.yaml"))[0])
    assert "uncertainty" not in plan.identity()
    assert with_uncertainty(plan, Uncertainty()).identity_hash() == plan.identity_hash()


def test_a_what_if_about_a_drawn_parameter_is_flagged(tmp_path, scenarios, drawn):
    what_if = tmp_path / "patient.yaml"
    what_if.write_text("name: patient\ndescription: States turn slowly.\nextends: baseline\n"
                       f"set:\n  {PARAM}: {_inside(PARAM, 0.0)!r}\n")
    g = G.gather([scenarios[0], load_scenario(what_if).with_end(END)], derive_seeds(SEED, 2),
                 results_root=None, root_seed=SEED, uncertainty=drawn)
    assert g.sources[1].masked == [PARAM] and g.sources[0].masked == []
    assert f"warning: it changes {PARAM}" in g.sources[1].describe()
    # the draw replaced the what-if's own value in its runs too: no difference in that key
    assert {p[PARAM] for p in g.sources[1].parameters} == {
        p[PARAM] for p in g.sources[0].parameters}
    plain = G.gather([scenarios[0], load_scenario(what_if).with_end(END)],
                     derive_seeds(SEED, 2), results_root=None, root_seed=SEED)
    assert plain.sources[1].masked == []


def test_without_draws_but_with_a_posterior_installed_both_widths_are_given(
        tmp_path, post_file, monkeypatch, capsys):
    monkeypatch.setattr(runner, "installed_for", lambda world: load_posterior(post_file))
    out = tmp_path / "none"
    assert main(["compare", "baseline", "us_stays", "-n", "3", "--end", END, "--workers", "1",
                 "--no-reuse", "--out", str(out), "--uncertainty", "none"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "points with model randomness and parameter uncertainty (posterior draws)" in text
    w = pd.read_csv(out / "interval_widths.csv")
    assert list(w["uncertainty"]) == ["none", "posterior"]
    assert set(pd.read_csv(out / "differences.csv")["interval"]) == {"randomness"}
    page = " ".join((out / "report.html").read_text().split())
    assert 'data-interval="none"' in page and "the former from the same seeds" in page
    assert "--uncertainty none" in page or "No tilt shifts" in page


def test_the_installed_posterior_is_found_where_calibration_installs_it(tmp_path, post_file,
                                                                         monkeypatch):
    from sim.scenario import posterior as P

    monkeypatch.setattr(runner, "installed_for", INSTALLED_FOR)
    where = tmp_path / "calibration" / "central_asia_posterior.csv"
    monkeypatch.setattr(P, "posterior_path", lambda d, world: tmp_path / "calibration" /
                        f"{world}_posterior.csv")
    assert runner.installed_for("central_asia") is None
    assert choose_uncertainty(None, None, ["central_asia"]).mode == "none"
    where.parent.mkdir()
    where.write_bytes(post_file.read_bytes())
    found = runner.installed_for("central_asia")
    assert found is not None and found.names == tuple(NAMES)
    assert runner.installed_for("central_asia") is found  # read once while unchanged
    u = choose_uncertainty(None, None, ["central_asia"])
    assert u.drawn and u.sha256 == runner.file_sha256(post_file)


def test_a_credible_interval_does_not_narrow_with_more_runs_but_a_ci_of_the_mean_does():
    """With posterior draws the report shows the runs' central range: more runs estimate it
    better, they do not make the future more certain. The t interval of the mean narrows."""
    rng = np.random.default_rng(7)

    def widths(n):
        diff = rng.normal(0.01, 0.02, n)  # per-run paired differences of China's share
        rows = []
        for rep in range(n):
            for scen, d in (("ref", 0.0), ("alt", diff[rep])):
                rows += [{"scenario": scen, "replication": rep, "seed": rep, "quarter": "2035Q4",
                          "step": 84, "area": "region", "power": "china", "share": 0.3 + d}]
        shares = pd.DataFrame(rows)
        runs = C.paired_differences(shares, "ref", interval="runs").iloc[0]
        mean = C.paired_differences(shares, "ref", interval="mean").iloc[0]
        return runs["ci_high"] - runs["ci_low"], mean["ci_high"] - mean["ci_low"]

    (runs_30, mean_30), (runs_3000, mean_3000) = widths(30), widths(3000)
    assert mean_3000 < mean_30 / 5  # 1/sqrt(n): about 10 times narrower
    assert 0.6 < runs_3000 / runs_30 < 1.6  # the spread of the runs stays
    assert abs(runs_3000 - 2 * 1.96 * 0.02) < 0.01  # the central 95% of N(0.01, 0.02)
    with pytest.raises(ValueError, match="unknown interval"):
        C.share_intervals(pd.DataFrame({"scenario": ["a"], "area": ["region"], "power": ["eu"],
                                        "quarter": ["2035Q4"], "share": [0.1]}),
                          interval="spread")
