"""The greatgame command: exit codes, output, files; bad input writes nothing; determinism."""

import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import sim  # noqa: E402
from sim.cli.main import main  # noqa: E402

FAST = ["--replications", "2", "--end", "2016Q2"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bad_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: bad\ndescription: A typo.\nextends: baseline\nset:\n"
                 "  powers.china.budget_growht: 0.1\n")
    return f


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _shares(folder):
    return pd.read_parquet(folder / "shares.parquet")


# --------------------------------------------------------------------------- run

def test_run_writes_results_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "baseline", "--replications", "2", "--end", "2026Q4",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    for name in ("shares.parquet", "metrics.parquet", "events.csv", "summary.csv",
                 "manifest.json", "regional_shares.png", "state_shares.png"):
        assert (out / name).is_file(), name
    lines = captured.out.splitlines()
    assert lines[0].startswith("baseline: share of regional influence, 2 runs")
    header = next(ln for ln in lines if ln.startswith("power"))
    assert "2025Q4" in header and "2026Q4" in header
    china = next(ln for ln in lines if ln.startswith("China"))
    assert china.count("%") == 2 and "[" in china
    assert lines[-1] == f"results: {out}"
    assert "2/2" in captured.err  # progress bar on stderr


def test_run_default_out_folder_and_single_run_has_no_bar(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "baseline", "--replications", "1", "--end", "2015Q4"]) == 0
    assert (tmp_path / "results" / "baseline" / "manifest.json").is_file()
    captured = capsys.readouterr()
    assert "run/s" not in captured.err and "1/1" not in captured.err


def test_run_full_period(tmp_path, capsys):
    out = tmp_path / "full"
    assert main(["run", "no_ukraine_war", "--replications", "2", "--out", str(out)]) == 0
    shares = _shares(out)
    assert shares.quarter.iloc[0] == "2015Q1" and shares.quarter.max() == "2035Q4"
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.quarter.unique()) == ["2025Q4", "2035Q4"]
    assert "2035Q4" in capsys.readouterr().out


def test_bad_scenario_exits_2_and_creates_nothing(tmp_path, bad_file, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(bad_file), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert str(bad_file) in err and ":5:" in err and "budget_growht" in err
    assert not out.exists()
    assert not (tmp_path / "results").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_bad_scenario_leaves_existing_out_unchanged(tmp_path, bad_file, capsys):
    out = tmp_path / "out"
    assert main(["run", "baseline", "--out", str(out), *FAST]) == 0
    (out / "note.txt").write_text("mine")
    before = _snapshot(out)
    assert main(["run", str(bad_file), "--out", str(out), *FAST]) == 2
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "out"]


@pytest.mark.parametrize("args, message", [
    (["run", "nosuch"], "nosuch"),
    (["run", "baseline", "--end", "2010Q1"], "before the start"),
])
def test_bad_input_exits_2(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "<input>" not in err
    assert not out.exists()


@pytest.mark.parametrize("args", [
    ["run"],
    ["run", "baseline", "--replications", "0"],
    ["run", "baseline", "--end", "2025Q5"],
    ["run", "baseline", "--seed", "x"],
    ["frobnicate"],
    [],
])
def test_bad_usage_exits_2(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and sim.__version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert "(default: 10)" in text and "(default: 20250617)" in text
    assert "default: None" not in text


def test_unexpected_error_is_one_line_exit_1(tmp_path, monkeypatch, capsys):
    def boom(*a, **k):
        raise RuntimeError("kernel exploded\nsecond line")

    monkeypatch.setattr("sim.runs.runner.run_batch", boom)
    out = tmp_path / "out"
    assert main(["run", "baseline", "--out", str(out), *FAST]) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "kernel exploded second line" in lines[0]
    assert "Traceback" not in err and "--debug" in lines[0]
    assert not out.exists()
    with pytest.raises(RuntimeError):
        main(["--debug", "run", "baseline", "--out", str(out), *FAST])
    with pytest.raises(RuntimeError):
        main(["run", "baseline", "--debug", "--out", str(out), *FAST])


# --------------------------------------------------------------------------- determinism

def test_same_seed_same_shares_new_seed_differs(tmp_path, capsys):
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert main(["run", "baseline", "--seed", seed, "--out", str(tmp_path / name),
                     *FAST]) == 0
    a, b, c = (_shares(tmp_path / n) for n in "abc")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (tmp_path / "a" / "shares.parquet").read_bytes() == \
        (tmp_path / "b" / "shares.parquet").read_bytes()
    assert not a["share"].equals(c["share"])
    assert not a["seed"].equals(c["seed"])


def test_counterfactual_matches_baseline_until_the_war(tmp_path, capsys):
    for name in ("baseline", "no_ukraine_war"):
        assert main(["run", name, "--replications", "2", "--seed", "9", "--end", "2023Q4",
                     "--out", str(tmp_path / name)]) == 0
    cols = ["replication", "seed", "quarter", "step", "area", "power", "trade", "investment",
            "debt", "remittances", "security", "alignment", "share"]
    base = _shares(tmp_path / "baseline")[cols]
    alt = _shares(tmp_path / "no_ukraine_war")[cols]
    assert len(base) == len(alt)
    before = base.quarter < "2022Q1"
    pd.testing.assert_frame_equal(base[before], alt[before], check_exact=True)
    for q in sorted(base.quarter[~before].unique()):
        b, a = base[base.quarter == q], alt[alt.quarter == q]
        assert not b["share"].reset_index(drop=True).equals(a["share"].reset_index(drop=True)), q


# --------------------------------------------------------------------------- check, scenarios

def test_check_good_files(capsys):
    files = [str(ROOT / "sim" / "scenarios" / name) for name in ("baseline.yaml", "us_stays.yaml")]
    assert main(["check", *files]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"OK  {files[0]}  (baseline: History as it happened")
    assert lines[1].startswith(f"OK  {files[1]}  (us_stays: ")


def test_check_reports_each_bad_file(bad_file, capsys):
    good = str(ROOT / "sim" / "scenarios" / "baseline.yaml")
    assert main(["check", str(bad_file), good]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith(f"OK  {good}")
    assert captured.err.count("\n") == 1 and str(bad_file) in captured.err


def test_scenarios_lists_shipped_aligned(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [ln.split()[0] for ln in lines]
    assert names == sorted(p.stem for p in (ROOT / "sim" / "scenarios").glob("*.yaml"))
    assert {"baseline", "no_ukraine_war", "no_treaty", "us_stays"} <= set(names)
    starts = {len(ln) - len(ln[len(ln.split()[0]):].lstrip()) for ln in lines}
    assert len(starts) == 1  # descriptions start in one column
    assert all(len(ln) < 140 for ln in lines)


def test_python_dash_m_sim():
    proc = subprocess.run([sys.executable, "-m", "sim", "scenarios"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "baseline" in proc.stdout and "no_ukraine_war" in proc.stdout


# --------------------------------------------------------------------------- validate

def test_validate_writes_tables_and_exit_code_follows_facts(tmp_path, capsys):
    out = tmp_path / "val"
    code = main(["validate", "--replications", "2", "--out", str(out)])
    facts = pd.read_csv(out / "facts.csv")
    assert code == (0 if facts.passed.all() else 1)
    assert len(facts) == 9
    assert {"fact", "expected", "observed", "share_of_runs", "passed"} <= set(facts.columns)
    fit = pd.read_csv(out / "trade_fit.csv")
    assert {"area", "year", "sourced", "model", "model_p05", "model_p95"} <= set(fit.columns)
    assert (out / "trade_fit.png").read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "PASS" in text or "FAIL" in text
    assert "GACC" in text and "MAPE" in text
    assert f"{int(facts.passed.sum())}/9 facts pass" in text


def test_validate_exits_1_when_a_fact_fails(tmp_path, monkeypatch, capsys):
    import sim.analysis.validation

    real = sim.analysis.validation.check_facts

    def one_fails(shares, metrics):
        f = real(shares, metrics)
        f.loc[0, "passed"] = False
        return f

    monkeypatch.setattr(sim.analysis.validation, "check_facts", one_fails)
    assert main(["validate", "--replications", "1", "--out", str(tmp_path / "v")]) == 1
    assert "FAIL" in capsys.readouterr().out
