"""The baseline summary at a fixed seed is pinned; renew it with tests/golden/regenerate.py."""

import importlib.util
from pathlib import Path

import pandas as pd

GOLDEN = Path(__file__).parent / "golden"


def _load_regenerate():
    spec = importlib.util.spec_from_file_location("regenerate", GOLDEN / "regenerate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_baseline_summary_matches_pinned_values():
    regen = _load_regenerate()
    expected = pd.read_csv(GOLDEN / "baseline_summary.csv")
    actual = regen.summary()
    assert list(actual.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(actual.reset_index(drop=True), expected, check_exact=False,
                                  rtol=1e-9, atol=1e-12)
