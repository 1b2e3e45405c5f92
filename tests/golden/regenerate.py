"""Regenerate the pinned baseline summary used by tests/test_regression.py.

Run only when a model change is intended to move the numbers:

    python tests/golden/regenerate.py

then review `git diff tests/golden/` (every changed figure should be explained by the
change) and commit the new file together with the change.
"""

from pathlib import Path

from sim.runs.runner import derive_seeds, run_batch
from sim.scenario.scenarios import load_scenario

ROOT_SEED = 20250617
REPLICATIONS = 4
QUARTERS = ["2015Q4", "2020Q4", "2025Q4", "2030Q4", "2035Q4"]
OUT = Path(__file__).with_name("baseline_summary.csv")


def summary():
    """Mean regional share per power and quarter over the pinned replications."""
    res = run_batch(load_scenario("baseline"), derive_seeds(ROOT_SEED, REPLICATIONS))
    sh = res.shares
    sel = sh[(sh.area == "region") & sh.quarter.isin(QUARTERS)]
    out = sel.groupby(["quarter", "power"], as_index=False)[["share", "trade", "security"]].mean()
    return out.sort_values(["quarter", "power"]).reset_index(drop=True)


if __name__ == "__main__":
    summary().to_csv(OUT, index=False, float_format="%.12g")
    print(f"wrote {OUT}")
