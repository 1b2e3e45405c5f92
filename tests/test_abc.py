"""ABC calibration (`calibrate --method abc`) and the posterior predictive check."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.analysis import predictive as P
from sim.analysis.fit import loss, losses, target_tuples
from sim.calibration import abc as A
from sim.calibration import abc_elfi as E
from sim.calibration.evaluate import FreeParam
from sim.calibration.predictive import applicable, posterior_check
from sim.cli.main import main
from sim.errors import InputError
from sim.scenario import history as H
from sim.scenario.posterior import load_posterior, posterior_path, write_posterior
from sim.scenario.scenarios import load_scenario, scenarios_dir

TWO = [FreeParam("powers.china.capacity_growth", 0.0, 0.15),
       FreeParam("params.trade_gdp_elasticity", 0.2, 2.0)]
TINY = ["--method", "abc", "--population", "20", "--generations", "2", "--batch", "10",
        "--replications", "1", "--executor", "serial", "--facts-replications", "0",
        "--params", "powers.china.capacity_growth=0:0.15", "params.trade_gdp_elasticity"]


def _settings(**kw):
    base = dict(free=list(TWO), population=20, generations=3, replications=1, batch=10,
                executor="serial", time_limit=None, facts_replications=0)
    return A.AbcSettings(**(base | kw))


# --------------------------------------------------------------------------- distance

def test_the_row_wise_loss_is_the_loss():
    targets = H.fit_targets()
    rng = np.random.default_rng(0)
    rows = targets.value.to_numpy() * np.exp(rng.normal(0, 0.3, (5, len(targets))))
    rows[4, 3] = np.nan
    got = losses(rows, targets)
    for r, g in zip(rows, got, strict=True):
        assert g == pytest.approx(loss(r, targets)[0], rel=1e-12)
    assert got[4] == np.inf


def test_the_uniform_box_is_the_priors_density():
    box = E.UniformBox(TWO)
    inside = np.array([[0.05, 1.0], [0.0, 2.0]])
    assert np.allclose(box.logpdf(inside), -np.log(0.15 * 1.8))
    assert box.logpdf(np.array([[0.2, 1.0], [0.1, 0.1]])).tolist() == [-np.inf, -np.inf]
    assert box.logpdf(np.array([0.05, 1.0])) == pytest.approx(-np.log(0.15 * 1.8))


# --------------------------------------------------------------------------- the run

def test_tiny_abc_writes_a_valid_posterior(tmp_path, capsys):
    out = tmp_path / "abc"
    assert main(["calibrate", *TINY, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "effective sample size" in text and "posterior mean" in text
    post = load_posterior(out / "posterior.csv")
    assert post.names == ("powers.china.capacity_growth", "params.trade_gdp_elasticity")
    assert post.size == 20 and post.meta["method"].startswith("abc-smc")
    assert post.meta["train_until"] == "2024"
    assert 1 <= post.effective_size() <= 20
    for f, (lo, hi) in zip(TWO, [(0, 0.15), (0.2, 2.0)], strict=True):
        assert ((post.values[:, TWO.index(f)] >= lo) & (post.values[:, TWO.index(f)] <= hi)).all()
    for f in ("summary.md", "posterior_summary.csv", "acceptance.csv", "particles.csv",
              "points.csv", "fit.csv", "corner.png", "prior_posterior.png", "acceptance.png",
              "model_vs_history.png", "central_asia.yaml", "calibration.json"):
        assert (out / f).is_file(), f
    acc = pd.read_csv(out / "acceptance.csv")
    assert list(acc.generation) == [0, 1] and (acc.epsilon.diff().dropna() < 0).all()
    assert ((acc.acceptance_rate > 0) & (acc.acceptance_rate <= 1)).all()
    summ = pd.read_csv(out / "posterior_summary.csv")
    assert (summ.q05 <= summ.q50).all() and (summ.q50 <= summ.q95).all()
    assert "## Posterior" in (out / "summary.md").read_text()
    # the same command again without --resume is refused (resume: the next test)
    assert main(["calibrate", *TINY, "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_redoes_nothing_and_gives_the_same_posterior(tmp_path):
    ref = A.run_abc(_settings(), tmp_path / "ref")
    n_ref = len(list((tmp_path / "ref" / "runs").glob("part-*.parquet")))
    assert ref.fresh == n_ref and len(ref.generations) == 3
    out = tmp_path / "cut"

    def interrupt(done, total):
        if done >= 60:  # in generation 1
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        A.run_abc(_settings(), out, progress=interrupt)
    saved = len(list((out / "runs").glob("part-*.parquet")))
    assert 0 < saved < n_ref
    with pytest.raises(InputError, match="--resume"):
        A.run_abc(_settings(), out)
    res = A.run_abc(_settings(), out, resume=True)
    assert res.fresh == n_ref - saved and res.cached == saved  # nothing lost or repeated
    assert np.array_equal(res.posterior.values, ref.posterior.values)
    assert np.array_equal(res.posterior.weights, ref.posterior.weights)
    assert [g.epsilon for g in res.generations] == [g.epsilon for g in ref.generations]
    # a time limit counts the time replayed generations first took
    capped = A.run_abc(_settings(generations=4, time_limit=1e-3), out, resume=True)
    assert len(capped.generations) == 1 and capped.stopped.startswith("time limit")
    assert capped.fresh == 0
    # more generations continue the same run; other settings are another calibration
    more = A.run_abc(_settings(generations=4), out, resume=True)
    assert more.cached >= n_ref and len(more.generations) == 4
    with pytest.raises(InputError, match="different calibration"):
        A.run_abc(_settings(population=30), out, resume=True)


@pytest.mark.slow
def test_same_posterior_whatever_the_executor(tmp_path):
    serial = A.run_abc(_settings(generations=2), tmp_path / "serial")
    pool = A.run_abc(_settings(generations=2, executor="processes", workers=2),
                     tmp_path / "pool")
    assert np.array_equal(serial.posterior.values, pool.posterior.values)
    assert np.array_equal(serial.posterior.weights, pool.posterior.weights)
    other = A.run_abc(_settings(generations=2, seed=1), tmp_path / "other")
    assert not np.array_equal(serial.posterior.values, other.posterior.values)


@pytest.mark.slow
def test_abc_recovers_a_known_parameter(tmp_path):
    """Figures made by the model at a known point: the posterior finds it and narrows."""
    free = [FreeParam("params.investment_depreciation", 0.0, 0.15), TWO[1]]
    truth = {"params.investment_depreciation": 0.07, "params.trade_gdp_elasticity": 1.3}
    targets = H.fit_targets()
    task = E.AbcTask(str(load_scenario("baseline").path), "2024Q4", tuple(truth), 8,
                     target_tuples(targets), tuple(sorted(H.mirror_ratios().items())))
    seeds = np.arange(8).reshape(1, 8) + 1000
    made = E.simulate_particles(task, np.array([list(truth.values())]), seeds)[0]
    synthetic = targets.assign(value=made, bound="", weight=1.0)[np.isfinite(made)]
    synthetic = synthetic.reset_index(drop=True)
    res = A.run_abc(_settings(free=free, population=100, generations=5, batch=50),
                    tmp_path / "syn", targets=synthetic)
    mean = res.mean()
    for f in free:
        assert abs(mean[f.path] - truth[f.path]) < 0.1 * (f.hi - f.lo), (f.path, mean)
    from sim.calibration.abc_report import posterior_table

    table = posterior_table(res)
    assert (table.narrowing > 0.2).all() and (table.sd < table.prior_sd).all(), table
    assert ((table.q05 <= list(truth.values())) & (list(truth.values()) <= table.q95)).all()


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    for args, words in [(["--method", "bayes"], "invalid choice"),
                        (["--method", "abc", "--population", "0"], "at least 1"),
                        (["--method", "abc", "--generations", "-1"], "at least 1"),
                        (["--budget", "0"], "at least 1"),
                        (["--method", "abc", "--quantile", "1.5"], "between 0 and 1"),
                        (["--method", "abc", "--time-limit", "x"], "expected a number")]:
        with pytest.raises(SystemExit) as e:
            main(["calibrate", *args, "--out", str(tmp_path / "x")])
        assert e.value.code == 2
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if "error:" in ln]
        assert len(lines) == 1 and words in lines[0], err
    assert not (tmp_path / "x").exists()
    assert main(["calibrate", *TINY, "--train-until", "2021", "--install",
                 "--out", str(tmp_path / "y")]) == 2
    assert "not installed" in capsys.readouterr().err


# --------------------------------------------------------------------------- install

@pytest.mark.slow
def test_install_writes_the_posterior_and_its_mean(tmp_path, monkeypatch, capsys):
    import sim.scenario.scenarios as scenarios_module

    copy = tmp_path / "scenarios"
    shutil.copytree(scenarios_dir(), copy)  # --install must never touch the shipped files
    monkeypatch.setattr(scenarios_module, "scenarios_dir", lambda: copy)
    layer = copy / "calibration" / "central_asia.yaml"
    before = layer.read_text()
    # tilt_speed is not in the installed layer: nothing installed to beat
    args = [a if a != "params.trade_gdp_elasticity" else "params.tilt_speed=0.01:0.2"
            for a in TINY]
    assert main(["calibrate", *args, "--install", "--out", str(tmp_path / "a")]) == 0
    assert "installed:" in capsys.readouterr().out
    post = load_posterior(posterior_path(copy, "central_asia"))
    assert post.names == ("powers.china.capacity_growth", "params.tilt_speed")
    text = layer.read_text()
    assert text != before and "posterior mean" in text
    scn = load_scenario(copy / "baseline.yaml")
    from sim.calibration.evaluate import current_value

    for name, v in post.mean().items():
        assert current_value(scn, name) == pytest.approx(v, rel=1e-8)
    # a tiny fit of parameters the layer holds fits worse than the shipped values: its draws
    # are installed (the uncertainty), the better point values stay (the central estimate)
    shipped = layer.read_text()
    assert main(["calibrate", *TINY, "--install", "--out", str(tmp_path / "b")]) == 0
    assert "the point values in" in capsys.readouterr().out
    assert layer.read_text() == shipped
    assert load_posterior(posterior_path(copy, "central_asia")).names == (
        "powers.china.capacity_growth", "params.trade_gdp_elasticity")


# --------------------------------------------------------------------------- predictive check

def test_coverage_on_known_draws():
    targets = pd.DataFrame({"series": ["a", "a", "b", "b", "b"],
                            "value": [50.0, 97.0, 2.0, 90.0, 120.0],
                            "bound": ["", "", "", "lower", "upper"]})
    draws = np.tile(np.arange(1.0, 101.0)[:, None], (1, 5))  # 1..100 in every column
    table = P.coverage(draws, targets)
    assert table.p05.iloc[0] == pytest.approx(5.95) and table.p95.iloc[0] == pytest.approx(95.05)
    assert table.inside.tolist() == [True, False, False, True, True]
    series = P.by_series(table).set_index("series")
    assert series.loc["a", "inside"] == 1 and series.loc["a", "share"] == 0.5
    assert series.loc["b", "figures"] == 3 and series.loc["all", "share"] == pytest.approx(0.6)
    assert P.share_inside(table) == pytest.approx(0.6)
    nan = P.coverage(np.full((10, 5), np.nan), targets)
    assert not nan.inside.any()
    with pytest.raises(ValueError):
        P.coverage(draws[:, :4], targets)


def test_keys_a_scenario_cannot_take_are_left_out():
    from sim.scenario.posterior import Posterior

    post = Posterior(("powers.china.capacity_growth", "events.no_such_event.effects[0].value"),
                     np.array([[0.05, 1.0], [0.06, 2.0]]), np.array([1.0, 1.0]))
    keep, skipped = applicable(load_scenario("baseline"), post)
    assert keep == [0] and len(skipped) == 1 and "no_such_event" in skipped[0]


def test_a_backtest_check_needs_a_backtest_posterior(tmp_path):
    path = write_posterior(tmp_path / "p.csv", ["powers.china.capacity_growth"],
                           np.array([[0.05]]), np.array([1.0]), {"train_until": "2024"})
    with pytest.raises(InputError, match="no held-out years"):
        posterior_check(load_posterior(path), 4, 1, backtest=True)
    path = write_posterior(tmp_path / "q.csv", ["powers.china.capacity_growth"],
                           np.array([[0.05]]), np.array([1.0]))
    with pytest.raises(InputError, match="train_until"):
        posterior_check(load_posterior(path), 4, 1, backtest=True)


def test_validate_runs_the_posterior_predictive_checks(tmp_path, capsys):
    rng = np.random.default_rng(3)
    vals = np.column_stack([rng.uniform(0.02, 0.06, 50), rng.uniform(0.7, 1.1, 50)])
    names = ["powers.china.capacity_growth", "params.trade_gdp_elasticity"]
    post = write_posterior(tmp_path / "post.csv", names, vals, np.ones(50))
    bt = write_posterior(tmp_path / "bt" / "posterior.csv", names, vals, np.ones(50),
                         {"train_until": "2021"})
    out = tmp_path / "v"
    code = main(["validate", "-n", "2", "--ppc-replications", "30", "--posterior", str(post),
                 "--backtest-posterior", str(bt.parent), "--out", str(out)])
    text = capsys.readouterr().out
    assert code in (0, 1)
    assert "Posterior predictive check (30 runs" in text and "inside the model's 90% band" in text
    assert "Backtest posterior predictive check" in text and "2022-2024" in text
    for f in ("ppc.csv", "ppc_series.csv", "backtest_ppc.csv", "backtest_ppc_series.csv"):
        assert (out / f).is_file(), f
    ppc = pd.read_csv(out / "ppc.csv")
    assert len(ppc) == len(H.fit_targets()) and (ppc.p05 <= ppc.p95).all()
    series = pd.read_csv(out / "ppc_series.csv")
    assert series.series.iloc[-1] == "all" and series.figures.iloc[-1] == len(ppc)
    bt_table = pd.read_csv(out / "backtest_ppc.csv")
    assert (bt_table.year > 2021).all()
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert 0 <= manifest["predictive_checks"]["ppc"]["share_inside"] <= 1
    assert "ppc.csv" in manifest["files"]
    # the band with model discrepancy: never narrower, estimated out of sample for a backtest
    flat = " ".join(text.split())
    assert "With model discrepancy" in flat and "in sample" in flat and "out of sample" in flat
    bt = manifest["predictive_checks"]["backtest_ppc"]["with_discrepancy"]
    assert bt["in_sample"] is False and bt["estimated_on_years"] == [2015, 2021]
    assert bt["sigma"] > 0 and bt["estimated_on_figures"] > 0
    assert manifest["predictive_checks"]["ppc"]["with_discrepancy"]["in_sample"] is True
    assert ((ppc.p95_disc - ppc.p05_disc) >= 0).all() and "share_disc" in series.columns


def test_residual_scale_is_the_rms_log_error_of_the_median_over_point_figures():
    targets = pd.DataFrame({"value": [1.0, 2.0, 4.0, 5.0], "bound": ["", "", "lower", ""]})
    e = np.array([0.1, -0.3, 0.9, 0.2])  # ln(sourced / model); the bound is left out
    model = targets["value"].to_numpy() / np.exp(e)
    draws = np.vstack([model * 0.9, model, model * 1.1])  # median = model
    sigma, n = P.residual_scale(draws, targets)
    assert n == 3 and sigma == pytest.approx(np.sqrt(np.mean(e[[0, 1, 3]] ** 2)))
    sigma, n = P.residual_scale(draws, targets, use=np.array([True, False, False, False]))
    assert n == 1 and sigma == pytest.approx(0.1)
    assert np.isnan(P.residual_scale(draws[:, :0], targets.iloc[:0])[0])


def test_discrepancy_draws_are_seeded_lognormal_and_widen_the_band():
    draws = np.full((4000, 3), 10.0)
    a, b = P.with_discrepancy(draws, 0.2, 5), P.with_discrepancy(draws, 0.2, 5)
    assert np.array_equal(a, b) and not np.array_equal(a, P.with_discrepancy(draws, 0.2, 6))
    assert np.log(a / 10).std() == pytest.approx(0.2, rel=0.05)
    assert np.array_equal(P.with_discrepancy(draws, 0.0, 5), draws)
    targets = pd.DataFrame({"value": [10.0, 12.0, 13.0], "bound": ["", "", ""]})
    assert P.coverage(draws, targets).inside.sum() == 1  # only the exact value
    assert P.coverage(a, targets).inside.sum() == 3  # 13 = 10 e^0.26, inside 10 e^(±0.33)


def test_without_a_posterior_the_check_is_skipped_in_one_line(tmp_path, capsys, monkeypatch):
    import argparse

    import sim.scenario.scenarios as scenarios_module
    from sim.cli import calibrate_abc

    monkeypatch.setattr(scenarios_module, "scenarios_dir", lambda: tmp_path)
    args = argparse.Namespace(posterior=None, backtest_posterior=None, ppc_replications=10,
                              seed=1)
    checks = calibrate_abc.predictive_checks(args, "central_asia")
    assert all(isinstance(r, str) for _, r in checks)
    calibrate_abc.print_predictive(checks)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("skipped:" in ln for ln in lines)
    assert Path(tmp_path).exists()
