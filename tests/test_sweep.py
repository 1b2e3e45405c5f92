"""Sweeps: files, seeds, executors giving identical numbers, streaming parts, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cli.main import main
from sim.errors import InputError
from sim.runs.sweep import done_records, execute, load_sweep
from sim.scenario.sweepfile import load_sweep_file, run_seed, sweeps_dir

ROOT = Path(__file__).parent.parent


def write_sweep(tmp_path, body: str, name="small.yaml") -> Path:
    p = tmp_path / name
    p.write_text(body)
    return p


SMALL = """\
name: small
description: two scenarios, a two-point grid, two replications, a short period
scenarios: [baseline, no_treaty]
replications: 2
seed: 11
end: 2016Q4
chunk_size: {chunk}
parameters:
  powers.china.capacity_growth: [0.02, 0.08]
outcomes:
  areas: [region, kyrgyzstan]
  quarters: all
"""


@pytest.fixture
def small(tmp_path):
    return write_sweep(tmp_path, SMALL.format(chunk=3))


@pytest.mark.parametrize("path", sorted(sweeps_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_sweeps_load(path):
    plan = load_sweep_file(path)
    assert plan.n_runs == len(plan.scenario_paths) * len(plan.points) * plan.replications
    assert len({r.run_id for r in plan.runs()}) == plan.n_runs


def test_shipped_sweeps_are_the_three_promised():
    names = {p.stem for p in sweeps_dir().glob("*.yaml")}
    assert {"ukraine_war_severity", "china_budget_x_treaty", "sensitivity_core"} <= names


def test_sampled_designs_use_qmc_within_ranges(tmp_path):
    body = ("name: s\ndescription: d\nscenarios: [baseline]\ndesign: {d}\nsamples: 16\n"
            "parameters:\n  params.w_trade: {{min: 0.1, max: 0.3}}\n"
            "  powers.china.capacity_growth: {{min: 0.0, max: 0.1}}\n")
    for design in ("lhs", "sobol"):
        plan = load_sweep_file(write_sweep(tmp_path, body.format(d=design)))
        x = np.array([[p["params.w_trade"], p["powers.china.capacity_growth"]]
                      for p in plan.points])
        assert x.shape == (16, 2)
        assert np.all((x[:, 0] >= 0.1) & (x[:, 0] <= 0.3))
        assert np.all((x[:, 1] >= 0.0) & (x[:, 1] <= 0.1))
        if design == "lhs":  # one sample in each of the 16 strata of every dimension
            strata = np.floor((x[:, 0] - 0.1) / 0.2 * 16).astype(int)
            assert sorted(strata) == list(range(16))


BAD = [
    ("unknown field", "name: s\ndescription: d\nscenarios: [baseline]\nbogus: 1\n", 4, "bogus"),
    ("bad design", "name: s\ndescription: d\nscenarios: [baseline]\ndesign: random\n", 4,
     "design"),
    ("sobol not power of two",
     "name: s\ndescription: d\nscenarios: [baseline]\ndesign: sobol\nsamples: 10\n"
     "parameters:\n  params.w_trade: {min: 0.1, max: 0.2}\n", 5, "samples"),
    ("grid given a range",
     "name: s\ndescription: d\nscenarios: [baseline]\nparameters:\n"
     "  params.w_trade: {min: 0.1, max: 0.2}\n", 5, "parameters.params.w_trade"),
    ("unknown parameter",
     "name: s\ndescription: d\nscenarios: [baseline]\nparameters:\n"
     "  powers.china.budjet: [1, 2]\n", 5, "parameters.powers.china.budjet"),
    ("value out of range",
     "name: s\ndescription: d\nscenarios: [baseline]\nparameters:\n"
     "  states.kyrgyzstan.fragility: [0.5, 3]\n", 5, "parameters.states.kyrgyzstan.fragility"),
    ("unknown event effect",
     "name: s\ndescription: d\nscenarios: [baseline]\nparameters:\n"
     "  events.no_such_war.effects[0].value: [1]\n", 5, "parameters.events.no_such_war"),
    ("unknown scenario", "name: s\ndescription: d\nscenarios: [baseline, atlantis]\n", 3,
     "scenarios.1"),
    ("bad area",
     "name: s\ndescription: d\nscenarios: [baseline]\noutcomes:\n  areas: [region, mars]\n",
     5, "outcomes.areas.1"),
    ("bad quarter", "name: s\ndescription: d\nscenarios: [baseline]\nend: 2030Q7\n", 4, "end"),
    ("zero replications", "name: s\ndescription: d\nscenarios: [baseline]\nreplications: 0\n",
     4, "replications"),
]


@pytest.mark.parametrize("case,body,line,field", BAD, ids=[b[0] for b in BAD])
def test_bad_sweep_files_fail_with_one_line(tmp_path, case, body, line, field):
    path = write_sweep(tmp_path, body)
    with pytest.raises(InputError) as e:
        load_sweep_file(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert e.value.line == line, msg
    assert e.value.field.startswith(field), msg


def test_bad_sweep_file_exits_2_and_writes_nothing(tmp_path, capsys):
    path = write_sweep(tmp_path, BAD[0][1])
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--executor", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()


def test_seeds_depend_on_point_and_replication_not_on_scenario(small):
    plan = load_sweep_file(small)
    runs = plan.runs()
    by_key = {}
    for r in runs:
        by_key.setdefault((r.point, r.replication), set()).add(r.seed)
        expected = np.random.SeedSequence(11, spawn_key=(r.point, r.replication))
        assert r.seed == int(expected.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    assert all(len(s) == 1 for s in by_key.values())  # same seed in every scenario
    assert len({next(iter(s)) for s in by_key.values()}) == len(by_key)
    assert run_seed(11, 0, 0) != run_seed(12, 0, 0)


def test_sweep_rows_match_single_runs(small, tmp_path):
    """A sweep run is the same run `run_one` gives for its scenario, parameters and seed."""
    from sim.runs.runner import run_one

    plan = load_sweep_file(small)
    execute(plan, tmp_path / "out", executor="serial")
    df = load_sweep(tmp_path / "out")
    spec = plan.runs()[5]
    scn = plan.scenario(spec.scenario).with_overrides(plan.points[spec.point])
    alone = run_one(scn, spec.seed).shares
    alone = alone[alone.area.isin(["region", "kyrgyzstan"])]
    mine = df[df.run_id == spec.run_id].astype({"area": str, "power": str, "quarter": str})
    a = alone.sort_values(["step", "area", "power"]).share.to_numpy()
    b = mine.sort_values(["step", "area", "power"]).share.to_numpy()
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)  # the engines' standard
    assert (mine["powers.china.capacity_growth"] == plan.points[spec.point][
        "powers.china.capacity_growth"]).all()


@pytest.mark.slow
def test_executors_give_identical_results(small, tmp_path):
    plan = load_sweep_file(small)
    frames = {}
    for kind, workers in (("serial", 1), ("processes", 2), ("dask", 2)):
        out = tmp_path / kind
        outcome = execute(plan, out, executor=kind, workers=workers, engine="mesa")
        assert outcome.ran == plan.n_runs and not outcome.failed
        frames[kind] = load_sweep(out)
    assert len(frames["serial"]) == plan.n_runs * 8 * 2 * 5
    pd.testing.assert_frame_equal(frames["serial"], frames["processes"])
    pd.testing.assert_frame_equal(frames["serial"], frames["dask"])
    for kind, workers in (("serial", 1), ("processes", 2), ("dask", 2)):
        out = tmp_path / f"ensemble-{kind}"
        execute(plan, out, executor=kind, workers=workers, engine="ensemble")
        ens = load_sweep(out)
        pd.testing.assert_frame_equal(ens.drop(columns="share"),
                                      frames["serial"].drop(columns="share"))
        np.testing.assert_allclose(ens.share, frames["serial"].share, rtol=0, atol=1e-12)


def test_parts_are_streamed_and_indexed(small, tmp_path):
    plan = load_sweep_file(small)
    out = tmp_path / "out"
    execute(plan, out, executor="serial")
    parts = sorted((out / "runs").glob("part-*.parquet"))
    assert len(parts) == -(-plan.n_runs // 3)  # one part per chunk of 3 runs
    ids = sorted(r["run_id"] for r in done_records(out))
    assert ids == list(range(plan.n_runs))
    assert not list((out / "runs").glob(".*tmp"))


def test_a_chunk_written_twice_replaces_itself(small, tmp_path):
    """A chunk run again (its worker's pool broke after it wrote) must not double its rows."""
    from sim.runs.sweep_worker import ChunkTask, store_chunk

    plan = load_sweep_file(small)
    out = tmp_path / "out"
    execute(plan, out, executor="serial")
    before = load_sweep(out)
    chunk = tuple(plan.runs()[3:6])
    task = ChunkTask(plan.scenario_paths, plan.end, plan.parameters, plan.points,
                     plan.outcomes, chunk, "ensemble", str(out))
    store_chunk(task)
    store_chunk(task)
    pd.testing.assert_frame_equal(load_sweep(out), before)
    assert sorted(r["run_id"] for r in done_records(out)) == list(range(plan.n_runs))


def test_a_failing_writer_fails_the_chunk_and_leaves_no_part(small, tmp_path, monkeypatch):
    """A full disk is not a failing run: nothing is retried, recorded or left half-written."""
    import pyarrow.parquet as pq

    from sim.runs.sweep_worker import ChunkTask, store_chunk

    plan = load_sweep_file(small)
    out = tmp_path / "out"
    task = ChunkTask(plan.scenario_paths, plan.end, plan.parameters, plan.points,
                     plan.outcomes, tuple(plan.runs()[:3]), "ensemble", str(out))

    def full(self, batch, row_group_size=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", full)
    with pytest.raises(OSError, match="No space left"):
        store_chunk(task)
    assert not list((out / "runs").iterdir())


def test_bands_equal_a_direct_computation(tmp_path, monkeypatch):
    """The streamed bands equal pandas on the full rows, with a failed run left out."""
    import sim.runs.sweep_worker
    from sim.runs.sweep_summary import band_table, region_cube

    plan = load_sweep_file(write_sweep(tmp_path, SMALL.replace("replications: 2",
                                                               "replications: 5")
                                       .format(chunk=4)))
    bad_seed = plan.runs()[7].seed
    real = sim.runs.sweep_worker.simulate

    def flaky(scenarios, seeds, *rest, **kw):
        if bad_seed in seeds:
            raise FloatingPointError("boom")
        return real(scenarios, seeds, *rest, **kw)

    monkeypatch.setattr(sim.runs.sweep_worker, "simulate", flaky)
    out = tmp_path / "out"
    execute(plan, out, executor="serial")
    df = load_sweep(out)
    df = df[df.area == "region"].astype({"scenario": str, "quarter": str, "power": str})
    assert df.run_id.nunique() == plan.n_runs - 2  # the bad seed fails in both scenarios
    for by_point in (True, False):
        keys = ["scenario", "point", "step", "quarter", "power"] if by_point else \
            ["scenario", "step", "quarter", "power"]
        g = df.groupby(keys)["share"]
        want = pd.DataFrame({"mean": g.mean(), "p05": g.quantile(0.05),
                             "p95": g.quantile(0.95), "n": g.size()}).reset_index()
        got = band_table(region_cube(out), by_point=by_point)
        got = got.astype({"scenario": str, "quarter": str, "power": str})
        assert list(got.columns) == [*keys, "mean", "p05", "p95", "n"]
        merged = want.merge(got, on=keys, suffixes=("", "_got"), validate="1:1")
        assert len(merged) == len(want) == len(got)
        assert (merged.n == merged.n_got).all()
        for col in ("mean", "p05", "p95"):  # kept as float32: 1e-7
            np.testing.assert_allclose(merged[col], merged[f"{col}_got"], rtol=1e-6)
    some = region_cube(out, quarters=["2016Q2", "2015Q3"])
    assert sorted(some["quarters"]) == ["2015Q3", "2016Q2"]
    assert some["values"].shape[2] == 2


def test_folder_with_another_sweep_is_refused(small, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial"]) == 0
    capsys.readouterr()
    # same sweep again without --resume: refused, nothing changed
    before = sorted(p.name for p in (out / "runs").iterdir())
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial"]) == 2
    assert "--resume" in capsys.readouterr().err
    # another sweep (other seed) into the same folder: refused even with --resume
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial",
                 "--seed", "99", "--resume"]) == 2
    assert "different sweep" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "runs").iterdir()) == before
    # resume of a complete sweep runs nothing
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial",
                 "--resume"]) == 0
    assert "(0 now, 8 before)" in capsys.readouterr().out


@pytest.mark.parametrize("engine", ["mesa", "ensemble"])
def test_failed_runs_are_recorded_and_the_sweep_goes_on(small, tmp_path, monkeypatch, capsys,
                                                        engine):
    import sim.runs.sweep_worker

    plan = load_sweep_file(small)
    bad_seed = plan.runs()[2].seed
    real = sim.runs.sweep_worker.simulate

    def flaky(scenarios, seeds, *rest, **kw):
        if bad_seed in seeds:
            raise FloatingPointError("overflow in a kernel")
        return real(scenarios, seeds, *rest, **kw)

    monkeypatch.setattr(sim.runs.sweep_worker, "simulate", flaky)
    out = tmp_path / "out"
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial",
                 "--engine", engine]) == 1
    text = capsys.readouterr().out
    assert "run(s) failed" in text and "overflow in a kernel" in text
    manifest = json.loads((out / "manifest.json").read_text())
    failed = manifest["failed_runs"]
    # the bad seed is replication r at point p: it fails in both scenarios
    assert {f["seed"] for f in failed} == {bad_seed} and len(failed) == 2
    assert all("params" in f and "error" in f for f in failed)
    df = load_sweep(out)
    assert df.run_id.nunique() == plan.n_runs - 2


def test_outputs_and_charts(small, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial"]) == 0
    for name in ("manifest.json", "summary.csv", "regional_shares.png",
                 "outcome_vs_parameters.png", "sweep.json"):
        assert (out / name).is_file(), name
    m = json.loads((out / "manifest.json").read_text())
    assert m["runs_total"] == m["runs_done"] == 8 and m["complete"]
    assert m["root_seed"] == 11 and m["executor"]["kind"] == "serial"
    assert set(m["scenario_files"]) == {"baseline", "no_treaty"}
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.quarter) == {"2016Q4"}
    assert set(summary.scenario) == {"baseline", "no_treaty"}
    g = summary.groupby(["scenario", "point"])["mean"].sum()
    np.testing.assert_allclose(g.to_numpy(), 1.0, rtol=1e-6)


def _sweep_cmd(path, out, *extra):
    return [sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out),
            "--executor", "serial", *extra]


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    body = SMALL.format(chunk=1).replace("end: 2016Q4", "end: 2019Q4").replace(
        "replications: 2", "replications: 6")
    path = write_sweep(tmp_path, body)
    full = tmp_path / "full"
    subprocess.run(_sweep_cmd(path, full), check=True, capture_output=True, cwd=ROOT)

    cut = tmp_path / "cut"
    proc = subprocess.Popen(_sweep_cmd(path, cut), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        parts = list((cut / "runs").glob("part-*.parquet")) if (cut / "runs").exists() else []
        if len(parts) >= 5:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(done_records(cut))
    assert 0 < n_before < 24, "the kill must land half-way"

    res = subprocess.run(_sweep_cmd(path, cut, "--resume"), capture_output=True, text=True,
                         cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert f"({24 - n_before} now, {n_before} before)" in res.stdout
    a, b = load_sweep(full), load_sweep(cut)
    assert not b.duplicated(["run_id", "step", "area", "power"]).any()
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_a_worker_that_dies_is_replaced(tmp_path):
    body = SMALL.format(chunk=1).replace("end: 2016Q4", "end: 2021Q4").replace(
        "replications: 2", "replications: 5")
    path = write_sweep(tmp_path, body)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out),
           "--executor", "processes", "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killed = False
    deadline = time.time() + 60
    while time.time() < deadline and not killed:
        for child in _children(proc.pid):
            if "spawn_main" in _cmdline(child) and (out / "runs").exists() and list(
                    (out / "runs").glob("part-*.parquet")):
                os.kill(child, signal.SIGKILL)
                killed = True
                break
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=120)
    assert killed
    assert proc.returncode == 0, stderr
    df = load_sweep(out)
    assert df.run_id.nunique() == 20
    assert not df.duplicated(["run_id", "step", "area", "power"]).any()


def _children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_sensitivity_morris_ranks_a_parameter_that_matters_above_one_that_cannot(tmp_path,
                                                                                   capsys):
    body = ("name: sa\ndescription: d\nscenarios: [baseline]\nreplications: 1\nseed: 3\n"
            "end: 2020Q4\ndesign: lhs\nsamples: 4\nparameters:\n"
            "  params.w_trade: {min: 0.05, max: 0.6}\n"
            "  params.w_security: {min: 0.05, max: 0.6}\n"
            "  params.protest_max_probability: {min: 0.25, max: 0.2500001}\n")
    path = write_sweep(tmp_path, body)
    out = tmp_path / "sa"
    assert main(["sensitivity", str(path), "--method", "morris", "--samples", "3",
                 "--outcome", "china.region.2020Q4", "--out", str(out),
                 "--executor", "serial"]) == 0
    table = pd.read_csv(out / "indices.csv")
    assert set(table.parameter) == {"params.w_trade", "params.w_security",
                                    "params.protest_max_probability"}
    mu = table.set_index("parameter").mu_star
    assert mu["params.w_trade"] > 10 * mu["params.protest_max_probability"]
    assert (out / "sensitivity.png").is_file()
    assert "morris indices for china.region.2020Q4" in capsys.readouterr().out


def test_sensitivity_sobol_and_bad_outcome(tmp_path, capsys):
    body = ("name: sa\ndescription: d\nscenarios: [baseline]\nreplications: 1\nseed: 3\n"
            "end: 2016Q4\ndesign: lhs\nsamples: 4\nparameters:\n"
            "  params.w_trade: {min: 0.05, max: 0.6}\n"
            "  params.w_security: {min: 0.05, max: 0.6}\n")
    path = write_sweep(tmp_path, body)
    assert main(["sensitivity", str(path), "--outcome", "china.mars.2016Q4", "--out",
                 str(tmp_path / "x"), "--executor", "serial"]) == 2
    assert "unknown area 'mars'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    out = tmp_path / "sobol"
    assert main(["sensitivity", str(path), "--method", "sobol", "--samples", "8",
                 "--outcome", "russia.region.2016Q4", "--out", str(out),
                 "--executor", "serial"]) == 0
    table = pd.read_csv(out / "indices.csv")
    assert {"S1", "S1_conf", "ST", "ST_conf"} <= set(table.columns)
    assert len(table) == 2
