"""`greatgame demo`: the headline job leaves results/demo/report.html and says what it found."""

import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from sim.cli.main import DEMO_SCENARIOS, main

ROOT = Path(__file__).resolve().parent.parent


def test_demo_writes_the_report_in_results_demo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--replications", "2", "--workers", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    report = Path("results/demo/report.html")
    assert report.is_file()
    assert out[0].startswith("What-if comparison: no_treaty, no_ukraine_war, us_stays against "
                             "baseline (2 runs each, seed 20250617")
    assert "Summary:" in out
    assert out[-2] == f"report: {report}"
    assert out[-1].startswith("took ") and out[-1].endswith(" s")
    runs = pd.read_csv("results/demo/runs.csv")
    assert list(dict.fromkeys(runs["scenario"])) == list(DEMO_SCENARIOS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_packaging_ships_the_template_and_the_new_dependencies():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = " ".join(meta["project"]["dependencies"])
    assert "jinja2" in deps and "scipy" in deps
    assert "templates/*.j2" in meta["tool"]["setuptools"]["package-data"]["sim.output"]
    assert (ROOT / "sim" / "output" / "templates" / "report.html.j2").is_file()


def test_every_data_file_in_the_package_ships_with_a_normal_install():
    """`pip install .` (not -e) copies only what package-data names: every non-Python file
    under sim/ must match a pattern of its package (the installed posterior once did not,
    so a normal install ran without parameter uncertainty)."""
    from fnmatch import fnmatch

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = meta["tool"]["setuptools"]["package-data"]
    files = [p for p in (ROOT / "sim").rglob("*")
             if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert any(p.name == "central_asia_posterior.csv" for p in files)
    missing = []
    for f in files:
        shipped = False
        for package, globs in patterns.items():
            base = ROOT.joinpath(*package.split("."))
            if base in f.parents and any(fnmatch(f.relative_to(base).as_posix(), g)
                                         for g in globs):
                shipped = True
        if not shipped:
            missing.append(f.relative_to(ROOT).as_posix())
    assert not missing, f"not in package-data: {missing}"


def test_readme_starts_with_the_demo():
    text = (ROOT / "README.md").read_text()
    quick = text[text.index("## Quick start"):]
    first = quick[quick.index("```bash"):].splitlines()[1]
    assert first == ("python3 -m venv .venv && .venv/bin/pip install -e . && "
                     ".venv/bin/greatgame demo")
    for command in ("greatgame demo", "greatgame compare", "greatgame explain"):
        assert f"`{command}" in text
    assert "## Comparing what-ifs" in text


@pytest.mark.slow
def test_full_demo_as_a_new_user_runs_it(tmp_path):
    exe = Path(sys.executable).with_name("greatgame")
    t0 = time.perf_counter()
    done = subprocess.run([str(exe), "demo"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    seconds = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "results" / "demo" / "report.html").is_file()
    assert "report: results/demo/report.html" in done.stdout
    assert "(30 runs each" in done.stdout
    print(f"greatgame demo took {seconds:.1f} s wall")
    assert seconds < 180  # aim: under a minute on 2 free cores; generous for a busy machine
