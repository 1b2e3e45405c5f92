"""Benchmark sweeps: runs per second by executor, and the parent's peak memory as runs grow.

    python benchmarks/bench_sweep.py                  # 1,000 runs x 3 executors; 1k and 10k memory
    python benchmarks/bench_sweep.py --runs 200 --memory-runs 200,2000   # quicker

Each measurement runs `greatgame sweep` in a fresh subprocess (baseline, 84 quarters, all
outcomes kept; throughput with the Mesa engine, memory with the default ensemble engine)
and reads that process's wall time and maximum resident set (the parent's own memory:
workers are separate processes). Prints a table and the ratios the project targets:
2 processes >= 1.6x serial; Dask LocalCluster <= 1.15x slower than processes; parent
peak memory at the largest run count within 1.2x of the smallest.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from sim.cli.main import main
    t = time.perf_counter()
    code = main(sys.argv[1:])
    wall = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps({"code": code, "wall": wall, "rss_mb": rss}))
""")


def sweep_file(folder: Path, runs: int, outcomes: str = "", chunk: int | None = 50) -> Path:
    """A sweep of `runs` baseline replications (all outcomes kept unless `outcomes`)."""
    path = folder / f"bench_{runs}_{time.time_ns()}.yaml"
    body = (f"name: bench_{runs}\ndescription: benchmark\nscenarios: [baseline]\n"
            f"replications: {runs}\nseed: 1\n")
    if chunk:
        body += f"chunk_size: {chunk}\n"
    path.write_text(body + outcomes)
    return path


def measure(folder: Path, runs: int, executor: str, workers: int, engine: str = "mesa",
            outcomes: str = "", chunk: int | None = 50) -> dict:
    """Run one sweep in a subprocess; return wall time, runs/s and parent max RSS."""
    out = folder / f"out_{runs}_{executor}_{workers}_{time.time_ns()}"
    cmd = [sys.executable, "-c", CHILD, "sweep", str(sweep_file(folder, runs, outcomes, chunk)),
           "--out", str(out), "--executor", executor, "--workers", str(workers),
           "--engine", engine]
    res = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None or res.returncode != 0:
        raise SystemExit(f"benchmark run failed ({executor}):\n{res.stderr[-2000:]}")
    data = json.loads(line[6:])
    manifest = json.loads((out / "manifest.json").read_text())
    data.update(runs=runs, executor=executor, workers=workers, engine=engine,
                runs_per_s=runs / data["wall"],
                execute_s=manifest["this_invocation"]["seconds"])
    data["execute_runs_per_s"] = runs / data["execute_s"]
    data["sustained_runs_per_s"] = sustained_rate(out, workers)
    shutil.rmtree(out, ignore_errors=True)
    return data


def sustained_rate(out: Path, workers: int) -> float:
    """Runs per second once every worker has finished its first chunk (start-up excluded).

    From the parts' write times: the runs finished after the `workers`-th part, over the
    time from that part to the last. NaN with too few parts to tell.
    """
    from sim.runs.sweep_worker import part_records

    parts = sorted((p.stat().st_mtime, len(part_records(p)))
                   for p in (out / "runs").glob("part-*.parquet"))
    if len(parts) <= workers:
        return float("nan")
    start, end = parts[workers - 1][0], parts[-1][0]
    runs_after = sum(n for _, n in parts[workers:])
    return runs_after / (end - start) if end > start else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000, help="runs for the throughput table")
    ap.add_argument("--memory-runs", default="1000,10000",
                    help="comma-separated run counts for the memory comparison")
    args = ap.parse_args()
    mem_runs = [int(x) for x in args.memory_runs.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [measure(folder, args.runs, "serial", 1),
                measure(folder, args.runs, "processes", 2),
                measure(folder, args.runs, "dask", 2)]
        print(f"throughput, {args.runs} baseline runs (84 quarters, all outcomes kept):")
        print(f"{'executor':22s} {'wall s':>8s} {'runs/s':>8s} {'parent MB':>10s}")
        for r in rows:
            label = f"{r['executor']} ({r['workers']} worker{'s' * (r['workers'] > 1)})"
            print(f"{label:22s} {r['wall']:8.1f} {r['runs_per_s']:8.1f} {r['rss_mb']:10.0f}")
        serial, procs, dask = rows
        print(f"processes vs serial: {procs['runs_per_s'] / serial['runs_per_s']:.2f}x faster "
              "(target >= 1.6x)")
        print(f"dask vs processes:   {procs['runs_per_s'] / dask['runs_per_s']:.2f}x slower "
              "(target <= 1.15x; includes ~2 s cluster start)")
        mem = [measure(folder, n, "processes", 2, "ensemble", chunk=None) for n in mem_runs]
        print("parent peak memory (processes, 2 workers, ensemble engine, all outcomes kept):")
        for r in mem:
            print(f"  {r['runs']:>6d} runs: {r['rss_mb']:6.0f} MB  ({r['runs_per_s']:.1f} runs/s)")
        print(f"ratio {mem[-1]['runs']} / {mem[0]['runs']} runs: "
              f"{mem[-1]['rss_mb'] / mem[0]['rss_mb']:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
