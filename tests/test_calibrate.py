"""Calibration: loss, observation, free parameters, the resumable search, the CLI, the layer."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.analysis.validation import history_fit
from sim.calibration import report as R
from sim.calibration import search as C
from sim.cli.main import main
from sim.errors import InputError
from sim.runs.runner import derive_seeds, run_batch
from sim.scenario import history as H
from sim.scenario.scenarios import load_scenario, scenarios_dir

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--replications", "1", "--executor", "serial", "--profile-points", "2",
        "--facts-replications", "0"]


@pytest.fixture(scope="module")
def baseline():
    return load_scenario("baseline")


@pytest.fixture(scope="module")
def targets():
    return H.fit_targets()


def _settings(**kw):
    base = dict(budget=18, replications=1, executor="serial", profile_points=2,
                facts_replications=0, starts=2,
                free=list(C.DEFAULT_FREE)[:4])
    return C.Settings(**(base | kw))


# --------------------------------------------------------------------------- loss

def test_loss_is_zero_on_the_sources_and_grows_with_error(targets):
    v = targets.value.to_numpy()
    total, comps = C.loss(v, targets)
    assert total == 0 and set(comps) == set(C.GROUPS)
    worse, _ = C.loss(v / 1.1, targets)  # below every figure, lower bounds included
    assert worse == pytest.approx(np.log(1.1) ** 2)
    assert C.loss(v * np.nan, targets)[0] == float("inf")


def test_bounds_are_one_sided(targets):
    lower = (targets.bound == "lower").to_numpy()
    assert lower.any()
    v = targets.value.to_numpy().copy()
    v[lower] *= 2  # above a lower bound: no error
    assert np.all(C.log_errors(v, targets)[lower] == 0)
    v[lower] /= 4
    assert np.all(C.log_errors(v, targets)[lower] < 0)


def test_groups_count_equally_whatever_their_size(targets):
    v = targets.value.to_numpy().copy()
    inv = targets.series.isin(C.GROUPS["investment"]).to_numpy()
    v[inv] *= np.e  # 5 figures off by a factor e
    total, comps = C.loss(v, targets)
    assert comps["investment"] == pytest.approx(1.0)
    assert total == pytest.approx(1.0 / len(C.GROUPS))


def test_observe_on_hand_made_arrays():
    quarters = [f"2020Q{i}" for i in range(1, 5)]
    partners, states = ["china", "russia", "other"], ["a", "b"]
    z = np.zeros((1, 4, 3, 2))
    exports, imports = z.copy(), z.copy()
    exports[0, :, 0, 0] = [1, 2, 3, 4]  # mean 2.5
    imports[0, :, 0, 0] = 1.0
    imports[0, :, 1, 0] = 3.5  # russia
    debt = z.copy()
    debt[0, 3, :, 1] = [1.0, 1.0, 2.0]
    stock = z.copy()
    stock[0, 1, 0, :] = [5.0, 7.0]
    arrays = {"exports": exports, "imports": imports, "investment_stock": stock, "debt": debt}
    targets = [("china_trade", "a", "china", 2020, ""),
               ("china_trade_share", "a", "china", 2020, ""),
               ("china_exports", "region", "china", 2020, ""),
               ("china_investment_stock", "region", "china", 2020, "2020Q2"),
               ("china_debt_share", "b", "china", 2020, "2020Q4"),
               ("china_trade", "a", "china", 2021, "")]
    out = C.observe(arrays, quarters, partners, states, targets, {"a": 0.5})[0]
    assert out[0] == pytest.approx(3.5)
    assert out[1] == pytest.approx(0.5 * 3.5 / (0.5 * 3.5 + 3.5))  # national basis
    assert out[2] == pytest.approx(2.5)
    assert out[3] == pytest.approx(12.0)
    assert out[4] == pytest.approx(0.25)
    assert np.isnan(out[5])  # 2021 not simulated


# --------------------------------------------------------------------------- free parameters

def test_default_free_set_is_within_the_vocabulary(baseline):
    assert 6 <= len(C.DEFAULT_FREE) <= 13
    free = C.parse_free(None, baseline)
    for f in free:
        baseline.with_overrides({f.path: f.lo})
        baseline.with_overrides({f.path: f.hi})
        assert f.lo < f.hi and f.why
        assert f.lo <= C.current_value(baseline, f.path) <= f.hi


def test_parse_free(baseline):
    free = C.parse_free(["params.w_trade", "params.tilt_speed=0.01:0.2",
                         "powers.china.capacity_growth"], baseline)
    # capacity_growth is not in the default set: it takes the vocabulary's range
    assert [(f.lo, f.hi) for f in free] == [(0.0, 1.0), (0.01, 0.2), (-0.5, 0.5)]
    for bad, words in [(["params.nope"], "unknown"), (["params.w_trade=0.5:0.2"], "LO < HI"),
                       (["params.w_trade=0:7"], "than"), (["params.w_trade=x"], "LO:HI"),
                       (["params.w_trade", "params.w_trade"], "twice"),
                       (["params.regional_weighting"], "not a number")]:
        with pytest.raises(InputError, match=words):
            C.parse_free(bad, baseline)


def test_point_key_is_stable():
    assert C.point_key([0.1 + 0.2, 1]) == C.point_key([0.3, 1.0])
    assert C.point_key([0.3]) != C.point_key([0.30001])


# --------------------------------------------------------------------------- evaluation

def test_evaluation_matches_validate_on_the_same_seeds(baseline, targets):
    """The ensemble evaluation of the scenario's own values equals the Mesa runs' fit."""
    names = [f.path for f in C.DEFAULT_FREE]
    start = tuple(C.current_value(baseline, n) for n in names)
    seeds = derive_seeds(7, 2)
    task = C.EvalTask(baseline.path, "2024Q4", tuple(names), (start,), tuple(seeds),
                      C.target_tuples(targets), tuple(H.mirror_ratios().items()))
    res = C.run_task(task)[0]
    mesa = history_fit(run_batch(baseline.with_end("2024Q4"), seeds).metrics)
    assert C.loss(res["mean"], targets)[0] == pytest.approx(mesa["loss"], rel=1e-9)
    again = C.run_task(task)[0]
    assert np.array_equal(res["mean"], again["mean"])  # common seeds: deterministic


def test_calibration_improves_and_resumes_after_an_interruption(tmp_path):
    ref = C.calibrate(_settings(), tmp_path / "ref")
    assert ref.best.loss <= ref.start.loss
    assert ref.facts is None
    n_ref = len(ref.log.evals)
    assert n_ref == len(list((tmp_path / "ref" / "runs").glob("part-*.parquet")))

    for stop_at in (5, 14):  # in the Latin hypercube, then in the local searches
        out = tmp_path / f"cut{stop_at}"

        def interrupt(done, total, stop_at=stop_at):
            if done >= stop_at:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            C.calibrate(_settings(), out, progress=interrupt)
        saved = len(list((out / "runs").glob("part-*.parquet")))
        assert 0 < saved < n_ref
        with pytest.raises(InputError, match="--resume"):
            C.calibrate(_settings(), out)
        res = C.calibrate(_settings(), out, resume=True)
        assert set(res.log.evals) == set(ref.log.evals)
        assert res.fresh == n_ref - saved  # nothing lost, nothing repeated
        assert res.best.loss == ref.best.loss and res.best.key == ref.best.key

    again = C.calibrate(_settings(), tmp_path / "ref", resume=True)
    assert again.fresh == 0
    with pytest.raises(InputError, match="different calibration"):
        C.calibrate(_settings(replications=2), tmp_path / "ref", resume=True)


def test_train_until_must_leave_a_training_window(tmp_path):
    with pytest.raises(InputError, match="train-until"):
        C.calibrate(_settings(train_until=2015), tmp_path / "x")


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path):
    """A calibration killed with SIGKILL resumes without losing or repeating points."""
    args = ["calibrate", "--budget", "40", *TINY, "--starts", "2"]
    ref = tmp_path / "ref"
    assert main([*args, "--out", str(ref)]) == 0
    ref_keys = set(pd.read_csv(ref / "evaluations.csv").key)
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "sim", *args, "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        if len(list((out / "runs").glob("part-*.parquet"))) >= 12 if (out / "runs").exists() \
                else False:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = len(list((out / "runs").glob("part-*.parquet")))
    assert 12 <= saved < len(ref_keys)
    assert main([*args, "--out", str(out), "--resume"]) == 0
    assert set(pd.read_csv(out / "evaluations.csv").key) == ref_keys
    assert len(list((out / "runs").glob("part-*.parquet"))) == len(ref_keys)


# --------------------------------------------------------------------------- CLI and report

def test_cli_backtest_writes_the_report(tmp_path, capsys):
    out = tmp_path / "bt"
    code = main(["calibrate", "--budget", "16", *TINY, "--train-until", "2021",
                 "--params", "powers.china.capacity_growth", "params.trade_gdp_elasticity",
                 "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Backtest" in text and "naive frozen" in text and "lowest mean error" in text
    for f in ("summary.md", "fit.csv", "fitted.csv", "evaluations.csv", "slices.csv",
              "trajectories.csv", "backtest.csv", "model_vs_history.png", "residuals.png",
              "identification.png", "backtest.png", "central_asia.yaml", "calibration.json"):
        assert (out / f).is_file(), f
    bt = pd.read_csv(out / "backtest.csv")
    rows = bt[(bt.series == "china_trade_share") & (bt.area != "mean")]
    assert len(rows) >= 5 and (rows.year > 2021).all()
    for _, g in rows.groupby("area"):
        assert g.frozen.nunique() == 1  # held at the 2021 value
    assert {"err_model", "err_ex_ante", "err_frozen", "err_trend"} <= set(bt.columns)
    fit = pd.read_csv(out / "fit.csv")
    assert set(fit[~fit.train].year) == {2022, 2023, 2024}
    summary = (out / "summary.md").read_text()
    assert "## Backtest" in summary and "Held-out years" in summary
    # a backtest is never installed
    assert main(["calibrate", "--budget", "16", *TINY, "--train-until", "2021", "--install",
                 "--out", str(tmp_path / "x")]) == 2


def test_cli_rejects_bad_input(tmp_path, capsys):
    assert main(["calibrate", "--params", "params.nope", "--out", str(tmp_path)]) == 2
    assert "unknown model parameter" in capsys.readouterr().err
    (tmp_path / "junk.txt").write_text("x")
    assert main(["calibrate", "--budget", "4", *TINY, "--out", str(tmp_path)]) == 2
    assert "not a calibration folder" in capsys.readouterr().err


def test_a_calibration_folder_in_use_is_refused(tmp_path, capsys):
    """A second calibration into a folder another one is writing to exits 2, naming it."""
    import threading

    from sim.runs.sweep import folder_lock

    out = tmp_path / "cal"
    held, release = threading.Event(), threading.Event()

    def holder():
        with folder_lock(out, "calibration"):
            held.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(10)
        assert main(["calibrate", "--budget", "4", *TINY, "--out", str(out)]) == 2
        assert "another calibration in this process is running" in capsys.readouterr().err
        assert not (out / "runs").exists()  # nothing written
    finally:
        release.set()
        t.join()
    # free again: the same command now runs
    assert main(["calibrate", "--budget", "4", *TINY, "--out", str(out)]) == 0


def test_layer_round_trip(tmp_path):
    out = tmp_path / "cal"
    res = C.calibrate(_settings(budget=10, profile_points=0), out)
    text = R.layer_text(res, "2025-01-01", "greatgame calibrate", {"params.w_debt": (0.2, "")})
    path = tmp_path / "layer.yaml"
    path.write_text(text)
    entries = R.read_layer_entries(path)
    assert entries["params.w_debt"] == (0.2, "")  # an earlier calibration's entry is kept
    scn = load_scenario(path)
    for f in res.settings.free:
        assert entries[f.path][0] == pytest.approx(res.best.values[f.path], rel=1e-9)
        assert "calibrated: greatgame calibrate 2025-01-01" in entries[f.path][1]
        assert C.current_value(scn, f.path) == pytest.approx(res.best.values[f.path], rel=1e-9)


def test_the_baseline_uses_the_shipped_calibration(baseline):
    layer = R.layer_path(scenarios_dir(), baseline.world.name)
    entries = R.read_layer_entries(layer)
    assert entries, "scenarios/calibration/central_asia.yaml holds no fitted values"
    for path, (value, comment) in entries.items():
        assert comment.startswith("calibrated: greatgame calibrate")
        assert C.current_value(baseline, path) == pytest.approx(value)
        assert C.current_value(load_scenario("no_ukraine_war"), path) == pytest.approx(value)
    assert str(layer) in baseline.file_hashes


def test_validate_reports_the_history_fit(tmp_path, capsys):
    out = tmp_path / "v"
    code = main(["validate", "-n", "2", "--out", str(out)])
    text = capsys.readouterr().out
    assert code in (0, 1)
    assert "Fit to sourced history 2015-2024" in text
    assert (out / "history_fit.csv").is_file() and (out / "model_vs_history.png").is_file()
    fit = pd.read_csv(out / "history_fit.csv")
    assert len(fit) == len(H.fit_targets()) and fit.model.notna().all()
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["history_fit"]["loss"] > 0


def test_a_state_without_figures_keeps_its_own_parameters(baseline, targets):
    free = C.parse_free(None, baseline)
    states = baseline.world.state_names
    kept, dropped = C.usable_free(free, targets, states)
    assert kept == free and not dropped  # 2015-2024: every state has figures
    early = targets[targets.year <= 2021]
    kept, dropped = C.usable_free(free, early, states)
    names = {f.path for f in kept}
    assert "powers.china.toward.kazakhstan.trade_affinity" in names  # Xi's 2021 figure
    assert "powers.china.toward.uzbekistan.trade_affinity" not in names
    assert any("uzbekistan" in d for d in dropped)
    assert "params.trade_gdp_elasticity" in names


def test_executors_give_the_same_fit(tmp_path):
    settings = dict(budget=12, profile_points=2)
    serial = C.calibrate(_settings(**settings), tmp_path / "serial")
    pool = C.calibrate(_settings(**settings, executor="processes", workers=2), tmp_path / "pool")
    assert set(serial.log.evals) == set(pool.log.evals)
    assert {k: e.loss for k, e in serial.log.evals.items()} == \
        {k: e.loss for k, e in pool.log.evals.items()}
    assert serial.best.key == pool.best.key


def test_fast_facts_equal_the_mesa_runs(baseline):
    """The ensemble frames give the validate command's facts, observed text included."""
    from sim.analysis.validation import check_facts
    from sim.calibration.facts import ensemble_frames

    seeds = derive_seeds(11, 3)
    shares, metrics = ensemble_frames(baseline, seeds)
    mesa = run_batch(baseline, seeds)
    fast, slow = check_facts(shares, metrics), check_facts(mesa.shares, mesa.metrics)
    pd.testing.assert_frame_equal(fast, slow)


@pytest.mark.slow
def test_a_fit_worse_than_the_installed_one_is_said_and_never_installed(tmp_path, capsys,
                                                                         monkeypatch):
    """The installed size elasticity (about 0.001) lies outside the range searched here."""
    import shutil

    import sim.scenario.scenarios as scenarios_module

    shipped = scenarios_dir()
    copy = tmp_path / "scenarios"
    shutil.copytree(shipped, copy)  # --install must never touch the shipped layer
    monkeypatch.setattr(scenarios_module, "scenarios_dir", lambda: copy)
    layer = R.layer_path(copy, "central_asia")
    before = layer.read_text()
    installed = C.current_value(load_scenario("baseline"), "params.size_elasticity")
    assert not 0.3 <= installed <= 1.5
    args = ["calibrate", "--budget", "6", *TINY, "--starts", "1", "--params",
            "params.size_elasticity=0.3:1.5"]
    assert main([*args, "--install", "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert "warning: the installed calibration fits better than this one" in err
    assert "not installed: the installed calibration fits better" in err
    assert "**Warning:** the installed calibration fits better" in (
        tmp_path / "a" / "summary.md").read_text()
    assert layer.read_text() == before
