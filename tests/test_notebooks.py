"""The notebooks run top to bottom (small settings) and are stored without outputs."""

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PROGRESS = ("run/s", "s/run", "it/s", "%|")
"""Marks of a tqdm progress bar in a cell's output."""


def test_the_four_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_what_if", "03_classroom",
                                           "04_discovery"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_stored_without_outputs(path):
    book = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(book["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {i} has outputs"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} was run"
    assert "widgets" not in book.get("metadata", {}), f"{path.name}: widget state stored"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    # the kernel inherits the environment: small settings, no windows, a throwaway folder
    monkeypatch.setenv("GREATGAME_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # only this interpreter's kernel: no `python3` kernelspec of the user's shadows it
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    streams = [o.get("text", "") for c in book.cells if c.cell_type == "code"
               for o in c.get("outputs", []) if o.get("output_type") == "stream"]
    bars = [t for t in streams if any(m in t for m in PROGRESS) or "\r" in t]
    assert not bars, bars[:3]  # progress bars are for terminals, not cells
    assert os.environ["GREATGAME_NOTEBOOK_FAST"] == "1"
    if path.stem in ("01_quickstart", "02_what_if"):
        assert (tmp_path / "results" / "notebooks" / "baseline" / "shares.parquet").is_file()
    if path.stem == "04_discovery":
        found = tmp_path / "results" / "notebooks" / "discovery_200" / "discover"
        assert [p.name for p in found.glob("*/sentence.txt")] == ["sentence.txt"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_say_nothing_of_missing_modules(path):
    text = path.read_text(encoding="utf-8")
    for stale in ("not in this version", "being built alongside", "find_spec"):
        assert stale not in text, f"{path.name}: {stale!r}"


def test_what_the_notebooks_write_is_ignored_by_git():
    if not (ROOT / ".git").exists():
        pytest.fail("run the tests from a git checkout: .gitignore is checked with git")
    written = "notebooks/results/notebooks/baseline/shares.parquet"
    done = subprocess.run(["git", "check-ignore", "-q", "--no-index", written], cwd=ROOT)
    assert done.returncode == 0, f"{written} is not ignored by git"


def test_readme_says_how_to_open_the_notebooks():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert any(d.startswith("jupyterlab") for d in extras["notebooks"])
    assert any(d.startswith("ipykernel") for d in extras["notebooks"])
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert 'pip install -e ".[notebooks]"' in readme and "jupyter lab" in readme
    assert "notebooks/results/" in readme
    local = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    assert '".[notebooks]"' in local and "jupyter lab" in local
