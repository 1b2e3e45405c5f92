"""How fast a sweep refuses what it cannot run, and how fast its workers die with it.

    python benchmarks/bench_sweep_checks.py        # about a minute on 2 cores

Prints: loading a billion-run sweep file (plans are lazy), estimating its cost, the whole
`greatgame sweep` refusing it (exit 2), refusing an unreachable Dask scheduler (exit 2;
it was exit 1 after 20 s), and the time from SIGKILL of a process-pool sweep's parent to
the last of its workers gone (they poll their parent every 0.1 s).
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

SLOW = """\
name: slow
description: enough chunks to kill the sweep half-way
scenarios: [baseline]
replications: 40
seed: 1
end: 2025Q4
chunk_size: 1
"""


def _cli(*args: str) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True)
    return res.returncode, time.perf_counter() - t0, res.stderr.strip().splitlines()[-1]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main() -> None:
    """Print the figures."""
    from sim.runs import sweep_cost as SC
    from sim.scenario.sweepfile import load_sweep_file

    tmp = Path(tempfile.mkdtemp(prefix="bench_checks_"))
    huge = tmp / "huge.yaml"
    huge.write_text(HUGE)
    t0 = time.perf_counter()
    plan = load_sweep_file(huge)
    print(f"load a {plan.n_runs:,}-run sweep file: {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    cost = SC.estimate(plan, 2)
    print(f"estimate its cost: {time.perf_counter() - t0:.2f} s ({cost.describe()})")
    code, sec, line = _cli("sweep", str(huge), "--out", str(tmp / "h"), "--executor", "serial")
    print(f"greatgame sweep refuses it: exit {code} in {sec:.1f} s (whole command)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slow = tmp / "slow.yaml"
    slow.write_text(SLOW)
    code, sec, line = _cli("sweep", str(slow), "--out", str(tmp / "u"), "--executor", "dask",
                           "--scheduler", f"tcp://127.0.0.1:{port}")
    print(f"unreachable scheduler: exit {code} in {sec:.1f} s (whole command)")

    out = tmp / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "sweep", str(slow), "--out",
                             str(out), "--executor", "processes", "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.time() + 120
    while time.time() < deadline and len(workers) < 2:
        if (out / "runs").exists() and list((out / "runs").glob("part-*.parquet")):
            kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
            workers = [int(k) for k in kids if b"spawn_main" in Path(
                f"/proc/{k}/cmdline").read_bytes()]
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    t0 = time.perf_counter()
    proc.wait()
    while any(_alive(w) for w in workers) and time.perf_counter() - t0 < 30:
        time.sleep(0.005)
    left = [w for w in workers if _alive(w)]
    print(f"SIGKILL of the parent -> {len(workers)} workers gone in "
          f"{time.perf_counter() - t0:.2f} s" + (f" (still alive: {left})" if left else ""))
    for w in left:
        os.kill(w, signal.SIGKILL)


if __name__ == "__main__":
    main()
