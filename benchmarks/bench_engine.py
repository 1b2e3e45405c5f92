"""Benchmark the ensemble engine against the Mesa engine on baseline sweeps.

    python benchmarks/bench_engine.py                       # as the issue asks: ~35 min
    python benchmarks/bench_engine.py --mesa-runs 1000 --memory-runs 0    # ~5 min

Each figure is one `greatgame sweep` in a fresh subprocess (baseline, 84 quarters, every
state and quarter kept, as a modeller's default sweep). Two throughputs are printed:

- "sweep": runs divided by the sweep's own timer (what `greatgame sweep` prints and
  manifest.json records): starting the workers, loading the scenario, simulating,
  building the rows and writing the Parquet parts. This is the engines' comparison, and
  the figure the target is checked on.
- "end to end": runs divided by the whole command, which adds a fixed 1.5-3 s for
  imports, the summary table, the chart and the manifest. At 1,000 ensemble runs that
  fixed part is most of the time, which is why the end-to-end ratio is smaller there.
- "sustained": runs per second once every worker has finished its first chunk, from the
  parts' write times: the engines' rate with start-up (spawning workers, imports, loading
  the scenario, a fresh process's first page faults) left out.

Then the ratio ensemble / Mesa at the same run count and executor, and the parent's peak
memory for a large ensemble sweep (which keeps only the regional shares at three
quarters, so the output stays a few tens of MB). Targets: ensemble throughput at least
100x the Mesa engine's; 100,000 runs on 2 cores with parent peak memory under 1 GB.
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
                    help="run counts for the Mesa engine (10,000 takes ~30 min on 2 cores)")
    ap.add_argument("--ensemble-runs", default="1000,10000",
                    help="run counts for the ensemble engine")
    ap.add_argument("--memory-runs", type=int, default=100_000,
                    help="runs of the large ensemble sweep for the memory figure (0: skip)")
    args = ap.parse_args()
    rows = []
    print(f"{'engine':9s} {'executor':13s} {'runs':>7s} {'sweep s':>8s} {'runs/s':>8s} "
          f"{'command s':>9s} {'runs/s':>8s} {'sustained':>9s} {'parent MB':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for engine, counts in (("mesa", _ints(args.mesa_runs)),
                               ("ensemble", _ints(args.ensemble_runs))):
            for n in counts:
                for executor, workers in (("serial", 1), ("processes", 2)):
                    chunk = 50 if engine == "mesa" else None
                    rows.append(measure(folder, n, executor, workers, engine, chunk=chunk))
                    r = rows[-1]
                    print(f"{engine:9s} {executor + ' x' + str(workers):13s} {n:>7d} "
                          f"{r['execute_s']:8.1f} {r['execute_runs_per_s']:8.1f} "
                          f"{r['wall']:9.1f} {r['runs_per_s']:8.1f} "
                          f"{r['sustained_runs_per_s']:9.1f} {r['rss_mb']:9.0f}",
                          flush=True)
        print("ensemble / Mesa throughput, same run count and executor (target >= 100x):")
        for r in rows:
            if r["engine"] != "ensemble":
                continue
            mesa = [x for x in rows if x["engine"] == "mesa" and x["executor"] == r["executor"]]
            m = next((x for x in mesa if x["runs"] == r["runs"]), None)
            note = ""
            if m is None and mesa:  # Mesa's rate does not depend on the run count
                m = max(mesa, key=lambda x: x["runs"])
                note = f"  (against Mesa at {m['runs']} runs)"
            if m:
                sweep = r["execute_runs_per_s"] / m["execute_runs_per_s"]
                whole = r["runs_per_s"] / m["runs_per_s"]
                held = r["sustained_runs_per_s"] / m["sustained_runs_per_s"]
                print(f"  {r['runs']:>7d} runs, {r['executor']:9s}: sweep {sweep:6.1f}x "
                      f"[{'met' if sweep >= 100 else 'MISSED'}]  sustained {held:6.1f}x "
                      f"[{'met' if held >= 100 else 'MISSED'}]  end to end {whole:6.1f}x"
                      f"{note}")
        if args.memory_runs:
            big = measure(folder, args.memory_runs, "processes", 2, "ensemble",
                          outcomes=SMALL_OUTCOMES, chunk=None)
            print(f"ensemble, 2 processes, {args.memory_runs} runs (regional shares at 3 "
                  f"quarters kept): sweep {big['execute_s']:.0f} s "
                  f"({big['execute_runs_per_s']:.0f} runs/s), command {big['wall']:.0f} s, "
                  f"parent peak {big['rss_mb']:.0f} MB (target < 1024 MB) "
                  f"[{'met' if big['rss_mb'] < 1024 else 'MISSED'}]")


if __name__ == "__main__":
    main()
