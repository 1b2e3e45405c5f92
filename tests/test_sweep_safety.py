"""Sweeps never store a run twice, and refuse what this machine cannot run (issue 12).

Workers die with their parent, a sweep folder is locked while a sweep runs, readers keep
one copy of each run whatever parts lie in the folder, parts reach the disk before their
rename, impossible sizes are refused up front, and Dask problems are bad input.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.cli.main import main
from sim.errors import InputError
from sim.runs import sweep as S
from sim.runs import sweep_cost as SC
from sim.runs import sweep_summary as SS
from sim.runs.sweep import done_records, execute, load_sweep
from sim.scenario.sweepfile import load_sweep_file

ROOT = Path(__file__).parent.parent

SMALL = """\
name: small
description: two scenarios, a two-point grid, two replications, a short period
scenarios: [baseline, no_treaty]
replications: {reps}
seed: 11
end: {end}
chunk_size: {chunk}
parameters:
  powers.china.capacity_growth: [0.02, 0.08]
outcomes:
  areas: [region, kyrgyzstan]
  quarters: all
"""


def write(tmp_path, body: str, name="small.yaml") -> Path:
    p = tmp_path / name
    p.write_text(body)
    return p


@pytest.fixture
def small(tmp_path):
    return write(tmp_path, SMALL.format(reps=2, end="2016Q4", chunk=3))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


# --------------------------------------------------------------------------- dedupe

def test_each_run_is_read_once_whatever_parts_lie_in_the_folder(small, tmp_path, capsys):
    """Parts cut at other boundaries (workers of a killed sweep, two sweeps at once)."""
    from sim.runs.sweep_worker import ChunkTask, store_chunk, write_part

    plan = load_sweep_file(small)
    out = tmp_path / "out"
    execute(plan, out, executor="serial")
    clean = load_sweep(out)
    clean_band = SS.region_band(out)
    runs = plan.runs()

    def task(chunk):
        return ChunkTask(plan.scenario_paths, plan.end, plan.parameters, plan.points,
                         plan.outcomes, tuple(chunk), "ensemble", str(out))

    store_chunk(task(runs[1:6]))  # overlaps three parts of the first sweep
    store_chunk(task(runs[0:8]))  # every run again, in one part
    # and a part saying run 4 failed (a Dask task given up on), with no rows
    failed = dict(done_records(out)[4], status="failed", error="KilledWorker: x")
    import pyarrow as pa

    write_part(out, pa.table({}), [failed])
    assert len(list((out / "runs").glob("part-*.parquet"))) == 3 + 3
    recs = done_records(out)
    assert [r["run_id"] for r in recs] == list(range(8))
    assert all(r["status"] == "ok" for r in recs)  # a success beats a failure
    pd.testing.assert_frame_equal(load_sweep(out), clean)
    dset = load_sweep(out, as_dataset=True)
    assert dset.count_rows() == len(clean)
    assert not dset.to_table(columns=["run_id", "step", "area", "power"]).to_pandas() \
        .duplicated().any()
    pd.testing.assert_frame_equal(SS.region_band(out), clean_band)
    final = SS.final_outcomes(out, plan)
    assert len(final) == 8 * 5 and not final.duplicated(["run_id", "power"]).any()
    # resume and the manifest count each run once
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial",
                 "--resume"]) == 0
    assert "(0 now, 8 before)" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs_done"] == manifest["runs_total"] == 8 and manifest["complete"]


def test_an_unreadable_part_is_set_aside_and_its_runs_run_again(small, tmp_path):
    plan = load_sweep_file(small)
    out = tmp_path / "out"
    execute(plan, out, executor="serial")
    clean = load_sweep(out)
    part = sorted((out / "runs").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:100])  # renamed before it reached the disk
    assert len(done_records(out)) < 8
    outcome = execute(plan, out, executor="serial", resume=True)
    assert outcome.ran == 8 - outcome.done_before > 0
    assert any("unreadable" in n for n in outcome.notes)
    assert (part.parent / f"unreadable-{part.name}").exists()
    pd.testing.assert_frame_equal(load_sweep(out), clean)


def test_parts_reach_the_disk_before_their_rename(small, tmp_path, monkeypatch):
    from sim.runs.sweep_worker import ChunkTask, store_chunk

    plan = load_sweep_file(small)
    out = tmp_path / "out"
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    task = ChunkTask(plan.scenario_paths, plan.end, plan.parameters, plan.points,
                     plan.outcomes, tuple(plan.runs()[:3]), "ensemble", str(out))
    store_chunk(task)
    renames = [i for i, e in enumerate(events) if e[0] == "replace" and ".part-" in e[1]]
    assert len(renames) == 1
    i = renames[0]
    tmp, final = events[i][1], events[i][2]
    assert ("fsync", tmp) in events[:i]  # the data, before the rename
    assert ("fsync", str(Path(final).parent)) in events[i:]  # the rename itself


def test_an_orphaned_worker_writes_no_part(small, tmp_path, monkeypatch):
    import sim.runs.executors as E
    from sim.runs.sweep_worker import ChunkTask, store_chunk

    class Exited(BaseException):
        pass

    def fake_exit(code):
        raise Exited(code)

    plan = load_sweep_file(small)
    out = tmp_path / "out"
    monkeypatch.setattr(E, "_parent_pid", os.getppid() + 1_000_000)  # "our parent died"
    monkeypatch.setattr(os, "_exit", fake_exit)
    task = ChunkTask(plan.scenario_paths, plan.end, plan.parameters, plan.points,
                     plan.outcomes, tuple(plan.runs()[:3]), "ensemble", str(out))
    with pytest.raises(Exited):
        store_chunk(task)
    assert list((out / "runs").iterdir()) == []  # neither a part nor its temporary file


# --------------------------------------------------------------------------- the lock

HOLD = textwrap.dedent("""
    import sys, time
    from sim.runs.sweep import folder_lock
    with folder_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(60)
""")


def test_a_second_sweep_in_a_busy_folder_is_refused_and_a_killed_holder_frees_it(
        small, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial"]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in (out / "runs").iterdir())
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for extra in ([], ["--resume"]):
            assert main(["sweep", str(small), "--out", str(out), "--executor", "serial",
                         *extra]) == 2
            line = one_line_error(capsys)
            assert "another sweep is running in this folder" in line
            assert f"pid {holder.pid}" in line
        with pytest.raises(InputError, match=f"pid {holder.pid}"):
            execute(load_sweep_file(small), out, executor="serial", resume=True)
        assert sorted(p.name for p in (out / "runs").iterdir()) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the system released the lock of the killed process: no stale lock
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial",
                 "--resume"]) == 0
    assert "(0 now, 8 before)" in capsys.readouterr().out


@pytest.mark.slow
def test_two_sweeps_started_at_once_store_each_run_once(tmp_path):
    path = write(tmp_path, SMALL.format(reps=3, end="2017Q4", chunk=1))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out), "--executor",
           "serial", "--uncertainty", "none"]  # a subprocess: conftest's stand-in does not reach it
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "another sweep is running in this folder" in refused or "--resume" in refused
    df = load_sweep(out)
    assert sorted(df.run_id.unique()) == list(range(12))
    assert not df.duplicated(["run_id", "step", "area", "power"]).any()
    assert len(list((out / "runs").glob("part-*.parquet"))) == 12


def test_the_lock_is_reentrant_in_one_thread_and_refused_to_another(tmp_path):
    import threading

    out = tmp_path / "out"
    with S.folder_lock(out), S.folder_lock(out):
        errors = []

        def other():
            try:
                with S.folder_lock(out):
                    pass
            except InputError as e:
                errors.append(str(e))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert errors and "in this process" in errors[0]
    with S.folder_lock(out):  # released by the outer exit
        pass


def _children(pid):
    res = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in res.stdout.split()]


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigkill_of_a_process_pool_sweep_leaves_no_worker_and_resume_stores_runs_once(
        tmp_path):
    """The tester's case, small: kill the parent, workers go, resume stores each run once."""
    path = write(tmp_path, SMALL.format(reps=6, end="2019Q4", chunk=1))
    out = tmp_path / "cut"
    cmd = [sys.executable, "-m", "sim", "sweep", str(path), "--out", str(out),
           "--executor", "processes", "--workers", "2", "--uncertainty", "none"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers = []
    deadline = time.time() + 90
    while time.time() < deadline and len(workers) < 2:
        parts = list((out / "runs").glob("part-*.parquet")) if (out / "runs").exists() else []
        if len(parts) >= 3:
            workers = [c for c in _children(proc.pid) if "spawn_main" in _cmdline(c)]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(workers) == 2
    t0 = time.time()
    while any(_alive(w) for w in workers) and time.time() - t0 < 5:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "workers outlived their sweep"
    time.sleep(0.5)  # a worker still writing would show up here
    n_before = len(done_records(out))
    assert 0 < n_before < 24, "the kill must land half-way"
    res = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"({24 - n_before} now, {n_before} before)" in res.stdout
    df = load_sweep(out)
    assert sorted(df.run_id.unique()) == list(range(24))
    assert not df.duplicated(["run_id", "step", "area", "power"]).any()
    assert len(df) == 24 * 20 * 2 * 5  # quarters x areas x powers
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs_done"] == 24 and manifest["complete"]
    full = tmp_path / "full"
    execute(load_sweep_file(path), full, executor="serial")
    pd.testing.assert_frame_equal(load_sweep(full), df)


# --------------------------------------------------------------------------- sizes

HUGE = """\
name: huge
description: a billion runs
scenarios: [baseline]
replications: 1000
seed: 1
design: lhs
samples: 1000000
parameters:
  params.w_trade: {min: 0.1, max: 0.3}
"""


def test_a_billion_run_sweep_is_refused_at_once_and_writes_nothing(tmp_path, capsys):
    from sim.scenario.sweepfile import Points, RunList

    path = write(tmp_path, HUGE)
    plan = load_sweep_file(path)
    assert plan.n_runs == 10**9 and len(plan.runs()) == 10**9
    assert isinstance(plan.runs(), RunList) and isinstance(plan.points, Points)
    assert plan.points._array is None  # the million-point sample is not even drawn
    assert plan.runs()[10**9 - 1].run_id == 10**9 - 1
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--executor", "serial"]) == 2
    assert plan.points._array is None
    line = one_line_error(capsys)
    assert "too large for this machine: 1,000,000,000 runs would need about" in line
    assert "of memory" in line and "of disk" in line and "days on 1 worker" in line
    assert not out.exists()
    with pytest.raises(InputError):
        execute(plan, out, executor="serial")
    assert not out.exists()


def test_a_huge_grid_is_lazy_and_refused(tmp_path, capsys):
    values = "[" + ", ".join(str(0.1 + i / 1000) for i in range(100)) + "]"
    body = ("name: grid\ndescription: d\nscenarios: [baseline]\nparameters:\n"
            + "".join(f"  params.{p}: {values}\n" for p in (
                "w_trade", "w_security", "w_investment", "w_debt", "w_remittances")))
    path = write(tmp_path, body)
    plan = load_sweep_file(path)
    assert len(plan.points) == 100**5
    assert plan.points[100**5 - 1] == {f"params.{p}": 0.199 for p in (
        "w_trade", "w_security", "w_investment", "w_debt", "w_remittances")}
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--executor", "serial"]) == 2
    assert "100,000,000,000 runs would need" in one_line_error(capsys)
    assert not out.exists()


def test_a_chunk_too_big_for_memory_is_refused(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, "name: c\ndescription: d\nscenarios: [baseline]\n"
                           "replications: 40000\nchunk_size: 20000\nend: 2016Q4\n")
    # a worker: 200 MB, and 1,000 bytes per run and quarter: 360 MB for 20,000 runs
    monkeypatch.setattr(SC, "available_memory", lambda: 300 * 10**6)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--executor", "serial"]) == 2
    line = one_line_error(capsys)
    assert "for each of 1 worker(s) running 20,000 runs at a time" in line
    assert "where 300 MB is available" in line and "chunk_size" in line
    assert not out.exists()


def test_a_sweep_bigger_than_the_free_disk_is_refused(small, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(SC, "free_disk", lambda out: 1000)
    out = tmp_path / "out"
    assert main(["sweep", str(small), "--out", str(out), "--executor", "serial"]) == 2
    assert "of disk for the rows where 1 KB is free" in one_line_error(capsys)
    assert not out.exists()


def test_many_points_are_hashed_not_listed_in_sweep_json(tmp_path):
    body = ("name: lhs\ndescription: d\nscenarios: [baseline]\nreplications: 1\ndesign: lhs\n"
            "samples: {n}\nseed: {seed}\nparameters:\n  params.w_trade: {{min: 0.1, max: 0.3}}\n")
    few = load_sweep_file(write(tmp_path, body.format(n=4, seed=1), "few.yaml"))
    assert few.identity()["points"] == [dict(p) for p in few.points]
    many = load_sweep_file(write(tmp_path, body.format(n=20_000, seed=1), "a.yaml"))
    other = load_sweep_file(write(tmp_path, body.format(n=20_000, seed=2), "b.yaml"))
    ident = many.identity()["points"]
    assert ident["count"] == 20_000 and len(json.dumps(many.identity())) < 10_000  # not 600 KB
    assert other.identity()["points"]["sha256"] != ident["sha256"]
    x = np.array([p["params.w_trade"] for p in many.points])
    assert x.shape == (20_000,) and ((x >= 0.1) & (x <= 0.3)).all()


def test_workers_are_capped_at_the_cores_and_the_chunks(small, tmp_path, capsys):
    from sim.runs.executors import default_workers

    out = tmp_path / "out"
    assert main(["sweep", str(small), "--out", str(out), "--executor", "processes",
                 "--workers", "1000"]) == 0
    err = capsys.readouterr().err
    cores = default_workers()
    assert f"--workers 1000: this machine has {cores} core(s); using {cores}" in err
    ex = json.loads((out / "manifest.json").read_text())["executor"]
    chunks = -(-8 // 3)
    assert ex["workers"] == min(cores, chunks) and ex["requested"] == 1000
    assert len(load_sweep(out)) == 8 * 8 * 2 * 5


# --------------------------------------------------------------------------- Dask

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address,message", [
    ("tcp://127.0.0.1:{port}", "--scheduler: cannot reach a Dask scheduler at"),
    ("localhost", "--scheduler: expected tcp://HOST:PORT, got 'localhost'"),
    ("tcp://127.0.0.1:99999", "--scheduler: expected tcp://HOST:PORT"),
])
def test_an_unreachable_or_malformed_scheduler_exits_2_at_once(small, tmp_path, capsys,
                                                               monkeypatch, address, message):
    import distributed

    def no_client(*args, **kwargs):  # the old way: a Client retrying for 20 s, then exit 1
        raise AssertionError("a Client was tried")

    monkeypatch.setattr(distributed, "Client", no_client)
    out = tmp_path / "out"
    code = main(["sweep", str(small), "--out", str(out), "--executor", "dask",
                 "--scheduler", address.format(port=_free_port())])
    assert code == 2
    assert message in one_line_error(capsys)
    assert not out.exists()


def test_a_silent_listener_is_not_a_scheduler(small, tmp_path, capsys, monkeypatch):
    import sim.runs.executors as E

    monkeypatch.setattr(E, "SCHEDULER_TIMEOUT_SECONDS", 1)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        code = main(["sweep", str(small), "--out", str(tmp_path / "out"), "--executor", "dask",
                     "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert code == 2
    assert "no Dask scheduler answered at" in one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_a_running_scheduler_passes_the_check_and_runs_the_sweep(small, tmp_path):
    """The address check lets a real scheduler through (its workers send rows back)."""
    from distributed import LocalCluster

    plan = load_sweep_file(small)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard": False,
                                        "dashboard_address": "127.0.0.1:0"}) as cluster:
        outcome = execute(plan, tmp_path / "remote", executor="dask",
                          scheduler=cluster.scheduler_address)
    assert outcome.ran == 8 and not outcome.executor.local
    execute(plan, tmp_path / "serial", executor="serial")
    pd.testing.assert_frame_equal(load_sweep(tmp_path / "remote"),
                                  load_sweep(tmp_path / "serial"))


def test_scheduler_needs_the_dask_executor(small, tmp_path, capsys):
    assert main(["sweep", str(small), "--out", str(tmp_path / "out"), "--scheduler",
                 "tcp://127.0.0.1:8786"]) == 2
    assert "--scheduler needs --executor dask" in one_line_error(capsys)


def _http_status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, http.client.HTTPException):  # not HTTP (the scheduler's own port)
        return None


def test_a_local_cluster_serves_no_dashboard(tmp_path):
    import psutil

    from sim.runs.executors import make_executor

    with make_executor("dask", 1) as (ex, info):
        assert ex.submit(sum, [1, 2]).result() == 3
        ports = {c.laddr.port for c in psutil.Process().net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN}
        assert 8787 not in ports
        served = {p: [_http_status(p, path) for path in ("/status", "/health", "/info/main/")]
                  for p in ports}
    assert served and all(200 not in codes for codes in served.values()), served
