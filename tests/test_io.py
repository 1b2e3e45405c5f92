"""sim.runs.store: result folders round-trip, carry a full manifest, are written all or nothing."""

import json
from datetime import UTC, datetime, timedelta

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import sim  # noqa: E402
from sim.analysis.bands import summarise  # noqa: E402
from sim.errors import InputError  # noqa: E402
from sim.output.figures import run_figures, validation_figures  # noqa: E402
from sim.runs import store as io  # noqa: E402
from sim.runs.runner import derive_seeds, run_batch  # noqa: E402
from sim.scenario.history import trade_figures  # noqa: E402
from sim.scenario.scenarios import load_scenario  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2025, 6, 17, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def run():
    scenario = load_scenario("baseline").with_end("2016Q2")
    seeds = derive_seeds(11, 2)
    return scenario, seeds, run_batch(scenario, seeds)


def _write(out, run, **kw):
    scenario, seeds, result = run
    return io.write_run(out, scenario, result, seeds, T0, T0 + timedelta(seconds=3),
                        summary=summarise(result.shares),
                        figures=run_figures(result.shares, result.events),
                        root_seed=11, command="greatgame run baseline", **kw)


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_write_then_read_back(tmp_path, run):
    _, _, result = run
    out = _write(tmp_path / "res", run)
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "shares.parquet", "metrics.parquet", "events.csv", "summary.csv", "manifest.json",
        "regional_shares.png", "state_shares.png"])
    back = io.read_run(out)
    pd.testing.assert_frame_equal(back.shares, result.shares, check_exact=True)
    pd.testing.assert_frame_equal(back.metrics, result.metrics, check_exact=True)
    pd.testing.assert_frame_equal(back.events, result.events, check_exact=True)
    for png in ("regional_shares.png", "state_shares.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["scenario", "quarter", "power", "mean", "p05", "p95", "n"]
    assert set(summary.quarter) == {"2016Q2"}
    assert (summary.n == 2).all()
    # no temporary folder left beside the result
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_manifest_says_how_to_reproduce(tmp_path, run):
    scenario, seeds, _ = run
    m = io.read_manifest(_write(tmp_path / "res", run, extra={"note": "x", "seeds": "no"}))
    assert m["environment"]["greatgame"] == sim.__version__
    for key in ("python", "mesa", "numpy"):
        assert m["environment"][key]
    sc = m["scenario"]
    assert sc["name"] == "baseline"
    assert sc["file_hashes"] == scenario.file_hashes and len(sc["file_hashes"]) > 2
    assert sc["parameters"] == json.loads(json.dumps(scenario.params.model_dump()))
    assert sc["period"] == {"start": "2015Q1", "end": "2016Q2", "quarters": 6}
    assert {e["id"]: e["at"] for e in sc["events"]}["ukraine_war_2022"] == "2022Q1"
    assert m["root_seed"] == 11 and m["replications"] == 2
    assert m["seeds"] == [{"replication": i, "seed": s} for i, s in enumerate(seeds)]
    assert m["command"] == "greatgame run baseline"
    assert m["started"].startswith("2025-06-17") and m["seconds"] == 3
    assert datetime.fromisoformat(m["finished"]) - datetime.fromisoformat(m["started"]) == \
        timedelta(seconds=3)
    assert m["note"] == "x"
    assert m["seeds"] != "no"  # extra never replaces a standard entry
    assert "manifest.json" in m["files"] and "shares.parquet" in m["files"]


def test_existing_folder_is_replaced_when_complete(tmp_path, run):
    out = tmp_path / "res"
    out.mkdir()
    (out / "old.txt").write_text("previous run")  # a previous result: its manifest lists it
    (out / "manifest.json").write_text(json.dumps({"environment": {"greatgame": "0"},
                                                   "files": ["old.txt", "manifest.json"]}))
    _write(out, run)
    assert not (out / "old.txt").exists()
    assert (out / "shares.parquet").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_failure_mid_write_leaves_no_folder(tmp_path, run, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(io, "save_figure", boom)  # after the parquet files
    with pytest.raises(RuntimeError, match="disk on fire"):
        _write(tmp_path / "res", run)
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_write_keeps_previous_folder(tmp_path, run, monkeypatch):
    out = _write(tmp_path / "res", run)
    before = _snapshot(out)

    def boom(*a, **k):
        raise OSError("no space left")

    monkeypatch.setattr(io, "_write_json", boom)  # the very last file
    with pytest.raises(OSError, match="no space"):
        _write(out, run)
    assert _snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_failure_while_moving_into_place_restores_previous(tmp_path, monkeypatch):
    out = tmp_path / "res"
    out.mkdir()
    (out / "a.txt").write_text("old")  # a previous result: its manifest lists a.txt
    (out / "manifest.json").write_text(json.dumps({"environment": {"greatgame": "0"},
                                                   "files": ["a.txt", "manifest.json"]}))
    real_replace = io.os.replace
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # old -> aside works, new -> place fails
            raise OSError("rename failed")
        return real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", flaky)
    with pytest.raises(OSError, match="rename failed"):
        with io.staged_dir(out) as tmp:
            (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "manifest.json"]


def test_output_path_that_is_a_file(tmp_path, run):
    f = tmp_path / "res"
    f.write_text("not a folder")
    with pytest.raises(InputError, match="not a folder"):
        _write(f, run)
    assert f.read_text() == "not a folder"


def test_write_validation(tmp_path, run):
    scenario, seeds, _ = run
    facts = pd.DataFrame({"number": [1], "fact": ["f"], "expected": ["e"], "observed": ["o"],
                          "share_of_runs": [1.0], "passed": [True]})
    fit = pd.DataFrame({"area": ["region"], "year": [2025], "sourced": [106.3], "model": [100.0],
                        "model_p05": [99.0], "model_p95": [101.0], "error": [-6.3],
                        "relative_error": [-0.059], "source": ["GACC"]})
    out = io.write_validation(tmp_path / "v", scenario, facts, fit, seeds, T0, T0, root_seed=11,
                              figures=validation_figures(facts, fit))
    names = {p.name for p in out.iterdir()}
    assert {"facts.csv", "trade_fit.csv", "trade_fit.png", "manifest.json"} <= names
    pd.testing.assert_frame_equal(pd.read_csv(out / "trade_fit.csv"), fit, check_dtype=False)


def test_sourced_trade_is_the_package_copy():
    h = trade_figures()
    assert {"country", "partner", "year", "flow", "value", "unit", "reporter",
            "source"} <= set(h.columns)
    gacc = h[(h.reporter == "China (GACC)") & (h.country == "Central Asia (5)")
             & (h.flow == "turnover") & (h.year == 2025)]
    assert gacc.value.tolist() == [106.3]
