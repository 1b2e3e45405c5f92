"""Bad input from issue 12: every case exits 2 with one clear line and loses nothing.

`CASES` is the table of bad inputs the tests try: an id, the command line (with `{t}` for
the test's folder, whose files `_make_files` writes), and words the error must hold.
Each runs through `main()` as a user would; none may run a model, write an output folder or
touch what was in one. `python tests/test_bad_input.py` prints the table with each exit
code and error line.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from sim.cli.main import main  # noqa: E402
from sim.errors import InputError  # noqa: E402
from sim.runs import store  # noqa: E402
from sim.scenario.scenarios import MAX_EXTENDS, load_scenario  # noqa: E402
from sim.scenario.yamlsafe import load_yaml, read_text  # noqa: E402
from sim.world.quarters import parse_quarter  # noqa: E402

SECRET = "sk_live_51HkQz7DoNotLeakThisTokenAnywhere"
HEAD = "name: t\ndescription: A test.\nextends: baseline\n"
BIG = "9" * 5000
TIME_LIMIT = 20
"""Seconds any case may take: a FIFO or a device must be refused, not read."""


def _make_chain(t: Path) -> None:
    """Write a chain of 1,000 scenario files extending each other into `t/chain`."""
    chain = t / "chain"
    chain.mkdir()
    n = 1000
    for i in range(n):
        ext = f"s{i + 1}.yaml" if i < n - 1 else "baseline"
        (chain / f"s{i}.yaml").write_text(f"name: s{i}\ndescription: Link {i}.\nextends: {ext}\n")


def _make_files(t: Path) -> None:
    """Write the bad files the cases name, into `t`."""
    (t / "user").mkdir()
    (t / "user" / "thesis.docx").write_bytes(b"PK\x03\x04 four years of work")
    (t / "user" / "sub").mkdir()
    (t / "user" / "sub" / "data.csv").write_text("a,b\n1,2\n")
    (t / "afile").write_text("not a folder")
    (t / "home").mkdir()
    (t / "home" / ".bashrc").write_text("export PATH=$PATH\n")
    os.mkfifo(t / "fifo.yaml")
    (t / "dir.yaml").mkdir()
    (t / ".env").write_text(f"API_KEY={SECRET}\nDEBUG=1\n")
    files = {
        "extends_env.yaml": f"name: t\ndescription: A test.\nextends: {t}/.env\n",
        "extends_fifo.yaml": f"name: t\ndescription: A test.\nextends: {t}/fifo.yaml\n",
        "extends_dev.yaml": "name: t\ndescription: A test.\nextends: /dev/zero\n",
        "world_fifo.yaml": f"name: t\ndescription: A test.\nworld: {t}/fifo.yaml\n",
        "year0.yaml": HEAD + "period: {end: 0000Q1}\n",
        "year9999.yaml": HEAD + "period: {end: 9999Q4}\n",
        "event_year1.yaml": HEAD + "events:\n  - id: e\n    at: 0001Q1\n    effects:\n"
                            "      - {target: params.w_trade, op: set, value: 0.5}\n",
        "fullwidth.yaml": HEAD + "period: {end: ２０３０Q4}\n",
        "bigint.yaml": HEAD + f"events:\n  - id: e\n    at: 2027Q1\n    duration: {BIG}\n"
                       "    effects:\n      - {target: params.w_trade, op: add, value: 0.1}\n",
        "sexagesimal.yaml": HEAD + "set:\n  states.kyrgyzstan.fragility: 1:30\n",
        "bool_number.yaml": HEAD + "set:\n  powers.china.capacity_growth: true\n",
        "yes_number.yaml": HEAD + "set:\n  powers.china.capacity_growth: yes\n",
        "arabic_digits.yaml": HEAD + "set:\n  powers.china.capacity_growth: ٠٫٥\n",
        "underscore.yaml": HEAD + "set:\n  powers.china.capacity: 1_000\n",
        "effect_bool.yaml": HEAD + "events:\n  - id: e\n    at: 2027Q1\n    effects:\n"
                            "      - {target: powers.china.capacity, op: scale, value: true}\n",
        "fragilty.yaml": HEAD + "set:\n  states.kyrgyzstan.fragilty: 0.3\n",
        "typo_field.yaml": "name: t\ndescripton: A test.\nextends: baseline\n",
        "typo_event.yaml": HEAD + "events: [ukraine_war_2023]\n",
        "multi.yaml": HEAD + "peroid: {end: 2030Q4}\n",
        "several.yaml": HEAD + "set:\n  states.kyrgyzstan.fragilty: 0.3\n"
                        "  powers.china.capacity_growth: 1:30\n"
                        "remove_events: [ukraine_war_2021]\n"
                        "events:\n  - id: e\n    at: 2027Q1\n    effects:\n"
                        "      - {target: states.kazakstan.hedging, op: add, value: 0.1}\n",
        "top_list.yaml": "- a\n- b\n",
        "binary.yaml": "name: t\x00\n",
        "long_value.yaml": HEAD + f"world: {'w' * 300}\n",
    }
    for name, text in files.items():
        (t / name).write_text(text, encoding="utf-8")


N12 = "1000000000000"
RUN = ["run", "baseline", "--out", "{t}/out"]
# (id, command line, words the error line must hold)
CASES: list[tuple[str, list[str], list[str]]] = [
    # item 1: --out never deletes what the user had
    ("run --out user folder", ["run", "baseline", "-n", "1", "--out", "{t}/user"],
     ["--out", "thesis.docx", "not a greatgame result", "delete"]),
    ("compare --out user folder", ["compare", "baseline", "no_treaty", "-n", "1",
                                   "--out", "{t}/user"], ["--out", "not a greatgame result"]),
    ("validate --out user folder", ["validate", "-n", "1", "--out", "{t}/user"],
     ["--out", "not a greatgame result"]),
    ("demo --out user folder", ["demo", "-n", "1", "--out", "{t}/user"],
     ["--out", "not a greatgame result"]),
    ("run --out home folder", ["run", "baseline", "-n", "1", "--out", "{t}/home"],
     ["--out", "home"]),
    ("run --out a file", ["run", "baseline", "-n", "1", "--out", "{t}/afile"],
     ["--out", "not a folder"]),
    ("run --out inside a file", ["run", "baseline", "-n", "1", "--out", "{t}/afile/x"],
     ["--out", "not a folder"]),
    ("calibrate --out user folder", ["calibrate", "--budget", "4", "--replications", "1",
                                     "--profile-points", "0", "--facts-replications", "0",
                                     "--executor", "serial", "--out", "{t}/user"],
     ["user", "not a calibration folder"]),
    # item 3: only regular files are read
    ("check FIFO", ["check", "{t}/fifo.yaml"], ["fifo.yaml", "named pipe"]),
    ("check /dev/zero", ["check", "/dev/zero"], ["/dev/zero", "character device"]),
    ("check /dev/urandom", ["check", "/dev/urandom"], ["/dev/urandom", "character device"]),
    ("check a directory", ["check", "{t}/dir.yaml"], ["dir.yaml", "directory"]),
    ("run FIFO", [*RUN[:1], "{t}/fifo.yaml", *RUN[2:]], ["fifo.yaml", "named pipe"]),
    ("extends a FIFO", ["check", "{t}/extends_fifo.yaml"],
     ["extends_fifo.yaml:3: extends:", "named pipe"]),
    ("extends /dev/zero", ["check", "{t}/extends_dev.yaml"],
     ["extends_dev.yaml:3: extends:", "character device"]),
    ("world is a FIFO", ["check", "{t}/world_fifo.yaml"],
     ["world_fifo.yaml:3: world:", "named pipe"]),
    ("sweep file is a FIFO", ["sweep", "{t}/fifo.yaml", "--out", "{t}/out"],
     ["fifo.yaml", "named pipe"]),
    ("sensitivity file is /dev/zero", ["sensitivity", "/dev/zero", "--method", "morris",
                                       "--outcome", "china.region.2035Q4"],
     ["/dev/zero", "character device"]),
    # item 4: impossible sizes are refused up front, with their cost
    ("run -n 10^12", ["run", "baseline", "-n", N12, "--out", "{t}/out"],
     ["-n", "1,000,000,000,000 runs", "memory"]),
    ("compare -n 10^12", ["compare", "baseline", "no_treaty", "-n", N12, "--out", "{t}/out"],
     ["-n", "runs", "memory"]),
    ("demo -n 10^12", ["demo", "-n", N12, "--out", "{t}/out"], ["-n", "memory"]),
    ("validate -n 10^12", ["validate", "-n", N12, "--out", "{t}/out"], ["-n", "memory"]),
    ("compare --workers 10^6", ["compare", "baseline", "no_treaty", "--workers", "1000000",
                                "--out", "{t}/out"], ["--workers", "at most"]),
    ("explain -n 10^12", ["explain", "baseline", "kyrgyzstan", "2027Q2", "-n", N12],
     ["-n", "memory"]),
    ("run --end 9999Q4", ["run", "baseline", "--end", "9999Q4", "--out", "{t}/out"],
     ["--end", "year 9999", "1900-2200"]),
    ("run --end 1899Q4", ["run", "baseline", "--end", "1899Q4", "--out", "{t}/out"],
     ["--end", "1900-2200"]),
    ("compare --end 9999Q4", ["compare", "baseline", "no_treaty", "--end", "9999Q4",
                              "--out", "{t}/out"], ["--end", "1900-2200"]),
    ("compare --years 99999", ["compare", "baseline", "no_treaty", "--years", "99999",
                               "--out", "{t}/out"], ["--years", "2200"]),
    ("explain quarter 9999Q4", ["explain", "baseline", "kyrgyzstan", "9999Q4"],
     ["year 9999", "1900-2200"]),
    ("explain --before 0001Q1", ["explain", "baseline", "kyrgyzstan", "2027Q2", "--before",
                                 "0001Q1"], ["before", "year 1", "1900-2200"]),
    ("compare --map-quarter 0001Q1", ["compare", "baseline", "no_treaty", "--map-quarter",
                                      "0001Q1", "--out", "{t}/out"], ["--map-quarter", "year 1"]),
    ("period end 0000Q1", ["check", "{t}/year0.yaml"], ["year0.yaml:4: period.end:", "year 0"]),
    ("period end 9999Q4", ["check", "{t}/year9999.yaml"], ["year9999.yaml:4: period.end:"]),
    ("event at 0001Q1", ["check", "{t}/event_year1.yaml"],
     ["event_year1.yaml:6: events[0].at:", "year 1"]),
    ("run with period 0000Q1", ["run", "{t}/year0.yaml", "--out", "{t}/out"],
     ["year0.yaml:4: period.end:"]),
    # item 6: name the problem, not the content; no YAML 1.1 surprises; all errors, hints
    ("extends a .env", ["check", "{t}/extends_env.yaml"],
     ["extends_env.yaml:3: extends:", ".env", "mapping"]),
    ("scenario is a .env", ["run", "{t}/.env", "--out", "{t}/out"], [".env:1", "mapping"]),
    ("5000-digit duration", ["check", "{t}/bigint.yaml"],
     ["bigint.yaml:7: events[0].duration:", "5000-digit"]),
    ("5000-digit --seed", ["run", "baseline", "--seed", BIG, "--out", "{t}/out"],
     ["--seed", "5000-digit"]),
    ("5000-digit -n", ["run", "baseline", "-n", BIG, "--out", "{t}/out"],
     ["-n", "5000-digit"]),
    ("300-character world name", ["check", "{t}/long_value.yaml"],
     ["long_value.yaml:4: world:", "characters"]),
    ("1:30 as a number", ["check", "{t}/sexagesimal.yaml"],
     ["sexagesimal.yaml:5: set.states.kyrgyzstan.fragility:", "expected a number", "1:30"]),
    ("true as a number", ["check", "{t}/bool_number.yaml"],
     ["bool_number.yaml:5: set.powers.china.capacity_growth:", "expected a number", "true"]),
    ("yes as a number", ["check", "{t}/yes_number.yaml"],
     ["yes_number.yaml:5:", "expected a number", "'yes'"]),
    ("Arabic-Indic digits as a number", ["check", "{t}/arabic_digits.yaml"],
     ["arabic_digits.yaml:5:", "expected a number"]),
    ("1_000 as a number", ["check", "{t}/underscore.yaml"],
     ["underscore.yaml:5:", "expected a number", "1_000"]),
    ("true as an effect value", ["check", "{t}/effect_bool.yaml"],
     ["effect_bool.yaml:8: events[0].effects[0].value:", "expected a number (got true)"]),
    ("full-width digits in a quarter", ["check", "{t}/fullwidth.yaml"],
     ["fullwidth.yaml:4: period.end:", "expected a quarter"]),
    ("-n in Arabic-Indic digits", ["run", "baseline", "-n", "١٠", "--out", "{t}/out"],
     ["-n", "expected a whole number"]),
    ("-n 1_0", ["run", "baseline", "-n", "1_0", "--out", "{t}/out"],
     ["-n", "expected a whole number"]),
    ("extends chain of 1,000 files", ["check", "{c}/chain/s0.yaml"],
     [f"s{MAX_EXTENDS - 1}.yaml:3: extends:", f"longer than {MAX_EXTENDS}", "s0.yaml"]),
    ("misspelt attribute fragilty", ["check", "{t}/fragilty.yaml"],
     ["fragilty.yaml:5: set.states.kyrgyzstan.fragilty:", "did you mean 'fragility'?"]),
    ("misspelt field descripton", ["check", "{t}/typo_field.yaml"],
     ["typo_field.yaml:2: descripton: unknown field (did you mean 'description'?)"]),
    ("misspelt event id", ["check", "{t}/typo_event.yaml"],
     ["typo_event.yaml:4: events[0]:", "did you mean 'ukraine_war_2022'?"]),
    ("misspelt scenario name", ["run", "baselin", "--out", "{t}/out"],
     ["baselin", "did you mean 'baseline'?"]),
    ("several errors in one file", ["check", "{t}/several.yaml"],
     ["several.yaml:5: set.states.kyrgyzstan.fragilty:"]),
    ("top level is a list", ["check", "{t}/top_list.yaml"], ["top_list.yaml:1:", "a list"]),
    ("binary file", ["check", "{t}/binary.yaml"], ["binary.yaml", "binary"]),
]


@contextmanager
def _time_limit(seconds: int):
    """Fail instead of hanging (a FIFO's open blocks) or reading forever (/dev/zero)."""
    def stop(signum, frame):
        raise TimeoutError(f"took more than {seconds} s: the input was read, not refused")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_case(argv: list[str], t: Path, c: Path | None = None) -> tuple[int, str, str]:
    """Run `greatgame` in-process on a case: exit code, stderr, stdout.

    `{t}` in the arguments stands for `t`, `{c}` for the folder holding the chain (`c`).
    """
    args = [a.replace("{t}", str(t)).replace("{c}", str(c or t)) for a in argv]
    err, out = StringIO(), StringIO()
    with redirect_stderr(err), redirect_stdout(out), _time_limit(TIME_LIMIT):
        try:
            code = main(args)
        except SystemExit as e:  # argparse's usage errors
            code = e.code
    return code, err.getvalue(), out.getvalue()


def error_line(stderr: str) -> str:
    """The line that says what is wrong (argparse puts its usage lines first)."""
    lines = stderr.splitlines()
    return next((ln for ln in lines if ln.startswith("error:") or ": error: " in ln), "")


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*")) if not p.is_fifo()}


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chain")
    _make_chain(folder)
    return folder


@pytest.fixture
def t(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    _make_files(tmp_path)
    return tmp_path


@pytest.mark.parametrize("argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_clear_line_and_loses_nothing(t, c, argv, words):
    before = _tree(t)
    code, err, out = run_case(argv, t, c)
    line = error_line(err)
    assert code == 2, err
    assert line, err
    for w in words:
        assert w.replace("{t}", str(t)) in line, line
    assert SECRET[:8] not in err + out  # no file content echoed
    assert BIG[:60] not in err + out  # long values are clipped
    assert "Traceback" not in err
    assert len(line) < 400, line
    assert _tree(t) == before  # nothing written, nothing deleted (no results/, no out/)


# --------------------------------------------------------------------------- item 1: --out

def test_run_writes_into_an_empty_folder_and_over_its_previous_result(t):
    out = t / "res"
    out.mkdir()
    argv = ["run", "baseline", "-n", "1", "--end", "2015Q2", "--out", str(out)]
    assert run_case(argv, t)[0] == 0
    first = json.loads((out / "manifest.json").read_text())
    assert run_case([*argv, "--seed", "7"], t)[0] == 0  # a previous result is replaced
    second = json.loads((out / "manifest.json").read_text())
    assert first["root_seed"] != second["root_seed"] == 7
    assert sorted(p.name for p in t.iterdir() if p.name.startswith(".res")) == []


def test_previous_result_with_a_users_file_in_it_is_not_replaced(t):
    out = t / "res"
    argv = ["run", "baseline", "-n", "1", "--end", "2015Q2", "--out", str(out)]
    assert run_case(argv, t)[0] == 0
    (out / "notes.md").write_text("my reading of the run")
    before = _tree(out)
    code, err, _ = run_case(argv, t)
    assert code == 2 and "notes.md" in error_line(err) and "move it" in error_line(err)
    assert _tree(out) == before


def test_validate_lists_every_file_it_writes_so_it_can_replace_its_result(t):
    out = t / "v"
    argv = ["validate", "-n", "1", "--out", str(out)]
    assert run_case(argv, t)[0] in (0, 1)  # facts may fail with one run
    listed = set(json.loads((out / "manifest.json").read_text())["files"])
    assert {p.name for p in out.iterdir()} == listed
    assert {"history_fit.csv", "model_vs_history.png"} <= listed


def test_folder_filled_while_the_runs_ran_is_left_alone(t, tmp_path):
    out = t / "late"
    with pytest.raises(InputError, match="not a greatgame result"):
        with store.staged_dir(out) as tmp:
            (tmp / "shares.parquet").write_bytes(b"new")
            out.mkdir()
            (out / "thesis.docx").write_text("written meanwhile")
    assert [p.name for p in out.iterdir()] == ["thesis.docx"]
    assert sorted(p.name for p in t.iterdir() if p.name.startswith(".late")) == []


def test_current_folder_is_never_the_output(t, monkeypatch):
    empty = t / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(InputError, match="current folder"):
        store.check_output_dir(".")
    assert store.check_output_dir(t / "new") == (t / "new").resolve()
    assert store.check_output_dir(t / "dir.yaml") == (t / "dir.yaml").resolve()  # empty


def test_foreign_manifest_is_not_a_result(t):
    (t / "user" / "manifest.json").write_text(json.dumps({"files": ["thesis.docx"]}))
    with pytest.raises(InputError, match="not a greatgame result"):
        store.check_output_dir(t / "user")
    (t / "piped").mkdir()
    os.mkfifo(t / "piped" / "manifest.json")  # refused, not read (a read would hang)
    with _time_limit(5), pytest.raises(InputError, match="not a greatgame result"):
        store.check_output_dir(t / "piped")


# --------------------------------------------------------------------------- item 3: files

def test_read_text_refuses_special_files_without_reading_them(t):
    for path, kind in ((t / "fifo.yaml", "named pipe"), ("/dev/zero", "character device"),
                       (t / "dir.yaml", "directory")):
        with _time_limit(5), pytest.raises(InputError, match=kind):
            read_text(path)


def test_read_text_refuses_files_over_the_limit_without_reading_them_whole(t, monkeypatch):
    from sim.scenario import yamlsafe

    monkeypatch.setattr(yamlsafe, "MAX_BYTES", 10)
    (t / "big.yaml").write_text("name: " + "x" * 20)
    with pytest.raises(InputError, match="limited to 10"):
        read_text(t / "big.yaml")


# --------------------------------------------------------------------------- item 4: sizes

def test_quarters_outside_the_years_are_refused_in_one_place():
    assert parse_quarter("1900Q1") == 1900 * 4 and parse_quarter("2200Q4") == 2200 * 4 + 3
    for bad in ("1899Q4", "2201Q1", "0000Q1", "9999Q4"):
        with pytest.raises(ValueError, match="1900-2200"):
            parse_quarter(bad)


def test_size_estimate_covers_what_results_really_take():
    from sim.runs.runner import derive_seeds, run_batch

    scenario = load_scenario("baseline").with_end("2016Q4")
    result = run_batch(scenario, derive_seeds(1, 2))
    frames = sum(int(f.memory_usage(deep=True).sum())
                 for f in (result.shares, result.metrics, result.events))
    per_run_quarter = frames / (2 * scenario.n_quarters)
    assert per_run_quarter * 2 <= store.RESULT_BYTES_PER_RUN_QUARTER <= per_run_quarter * 6
    store.check_result_size(1000, 84)  # the default sizes are far within
    with pytest.raises(InputError, match="at most"):
        store.check_result_size(10**12, 84)


# --------------------------------------------------------------------------- item 6: YAML

def test_plain_values_are_read_as_yaml_1_2():
    data = load_yaml("x.yaml", "a: 1:30\nb: 012\nc: yes\nd: 1_000\ne: 1e-3\nf: 0x10\n"
                               "g: true\nh: -2\ni: .5\nj: ~\nk: off\n")
    assert data == {"a": "1:30", "b": 12, "c": "yes", "d": "1_000", "e": 0.001, "f": "0x10",
                    "g": True, "h": -2, "i": 0.5, "j": None, "k": "off"}


def test_check_lists_every_problem_in_a_file_one_line_each(t):
    code, err, _ = run_case(["check", "{t}/several.yaml"], t)
    lines = err.splitlines()
    assert code == 2
    assert [ln.split(": ")[1] for ln in lines] == [
        f"{t}/several.yaml:5", f"{t}/several.yaml:6", f"{t}/several.yaml:7",
        f"{t}/several.yaml:12"]
    assert "did you mean 'fragility'?" in lines[0]
    assert "expected a number (got '1:30')" in lines[1]
    assert "did you mean 'ukraine_war_2022'?" in lines[2]
    assert "did you mean 'kazakhstan'?" in lines[3]
    assert all(ln.startswith("error: ") for ln in lines)


def test_run_reports_the_first_problem_and_how_many_more(t):
    code, err, _ = run_case(["run", "{t}/several.yaml", "--out", "{t}/out"], t)
    assert code == 2 and err.count("\n") == 1
    assert "and 3 more problems: `greatgame check` lists them all" in err


def test_load_scenario_error_keeps_all_problems(t):
    with pytest.raises(InputError) as info:
        load_scenario(t / "multi.yaml")
    assert [e.field for e in info.value.errors] == ["peroid"]
    assert "did you mean 'period'?" in str(info.value)


if __name__ == "__main__":  # print the table of cases for the issue
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        os.environ["HOME"] = str(base / "home")
        os.chdir(base)
        _make_files(base)
        _make_chain(base)
        print("| bad input | command | exit | error line |\n|---|---|---|---|")
        for name, argv, _ in CASES:
            code, err, _ = run_case(argv, base)
            shown = " ".join(a if len(a) < 40 else a[:12] + "…" for a in argv)
            shown = shown.replace("{c}", "{t}")
            line = error_line(err).replace(str(base), "T").replace("|", "\\|")
            print(f"| {name} | `{shown.replace('{t}', 'T')}` | {code} | `{line}` |")
        sys.exit(0)
