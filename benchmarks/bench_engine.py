"""Benchmark the ensemble engine against the Mesa engine on baseline sweeps.

    python benchmarks/bench_engine.py
    python benchmarks/bench_engine.py --mesa-runs 1000 --memory-runs 100000

Each figure is one `greatgame sweep` in a fresh subprocess (baseline, 84 quarters, every
state and quarter kept), timed end to end: model, tidy rows, Parquet parts, summaries and
charts. Prints runs per second for each engine, serial and on 2 processes, the ratio, and
the parent's peak memory for a large ensemble sweep (which keeps only the regional shares
at three quarters, so the output stays a few tens of MB). Targets: ensemble throughput at
least 100x the Mesa engine's; 100,000 runs on 2 cores with parent peak memory under 1 GB.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_sweep import measure  # noqa: E402

SMALL_OUTCOMES = "outcomes:\n  areas: [region]\n  quarters: [2025Q4, 2030Q4, 2035Q4]\n"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mesa-runs", default="1000,10000",
                    help="run counts for the Mesa engine (10,000 takes ~10 min on 2 cores)")
    ap.add_argument("--ensemble-runs", default="1000,10000",
                    help="run counts for the ensemble engine")
    ap.add_argument("--memory-runs", type=int, default=100_000,
                    help="runs of the large ensemble sweep for the memory figure (0: skip)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for engine, counts in (("mesa", _ints(args.mesa_runs)),
                               ("ensemble", _ints(args.ensemble_runs))):
            for n in counts:
                for executor, workers in (("serial", 1), ("processes", 2)):
                    chunk = 50 if engine == "mesa" else None
                    rows.append(measure(folder, n, executor, workers, engine, chunk=chunk))
                    r = rows[-1]
                    print(f"{engine:9s} {executor:9s} x{workers} {n:>7d} runs: "
                          f"{r['wall']:8.1f} s  {r['runs_per_s']:9.1f} runs/s  "
                          f"parent {r['rss_mb']:5.0f} MB", flush=True)
        print("ensemble / mesa throughput at the same run count and executor:")
        for r in rows:
            if r["engine"] != "ensemble":
                continue
            m = next((x for x in rows if x["engine"] == "mesa" and x["runs"] == r["runs"]
                      and x["executor"] == r["executor"]), None)
            if m:
                print(f"  {r['runs']:>7d} runs, {r['executor']:9s}: "
                      f"{r['runs_per_s'] / m['runs_per_s']:6.1f}x (target >= 100x)")
        if args.memory_runs:
            big = measure(folder, args.memory_runs, "processes", 2, "ensemble",
                          outcomes=SMALL_OUTCOMES, chunk=None)
            print(f"ensemble, 2 processes, {args.memory_runs} runs (regional shares at 3 "
                  f"quarters kept): {big['wall']:.0f} s, {big['runs_per_s']:.0f} runs/s, "
                  f"parent peak {big['rss_mb']:.0f} MB (target < 1024 MB)")


if __name__ == "__main__":
    main()
