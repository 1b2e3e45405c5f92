"""The sourced history: schema, one basis per series, nothing invented, quarters of stocks."""

import math
from importlib import resources

import pandas as pd
import pytest

from sim.scenario import history as H


@pytest.fixture(scope="module")
def hist():
    return H.load_history()


def _raw(name):
    with resources.as_file(resources.files("sim.scenario") / "data" / name) as path:
        return pd.read_csv(path)


def test_schema(hist):
    assert list(hist.columns) == list(H.COLUMNS)
    assert set(hist.series) <= set(H.SERIES) | {"china_exports_national",
                                                "china_imports_national", "total_exports",
                                                "total_imports"}
    assert hist.source.str.strip().ne("").all()
    assert set(hist.bound) <= {"", "lower", "upper"}
    assert set(hist.weight) <= {0.5, 1.0}
    areas = {"region", "kazakhstan", "kyrgyzstan", "tajikistan", "turkmenistan", "uzbekistan"}
    assert set(hist.area) <= areas
    # a fresh copy every call
    hist2 = H.load_history()
    hist2.loc[0, "value"] = -1
    assert H.load_history().loc[0, "value"] != -1


def test_fitted_figures_are_finite_positive_and_in_the_window(hist):
    t = hist[hist.in_loss]
    assert len(t) > 40
    assert (t.value > 0).all() and t.value.map(math.isfinite).all()
    assert t.year.between(H.FIT_START, H.FIT_END).all()
    assert set(t.unit) <= {"USD bn", "fraction"}
    stocks = t[t.series.isin(["china_investment_stock", "china_debt", "china_debt_share"])]
    assert stocks.quarter.str.match(r"^\d{4}Q[1-4]$").all()


def test_one_basis_per_fitted_series(hist):
    t = hist[hist.in_loss]
    n = t.groupby(["series", "area", "partner"]).basis.nunique()
    assert (n == 1).all(), n[n > 1]


def test_trade_with_china_is_on_the_customs_basis(hist):
    gacc = hist[hist.series == "china_trade"]
    assert (gacc.basis == H.GACC).all()
    kg = gacc[(gacc.area == "kyrgyzstan") & (gacc.year == 2024)]
    assert kg.value.tolist() == [22.71]  # China's figure, not Kyrgyzstan's 5.3
    national = hist[(hist.series == "china_trade_national") & (hist.area == "kyrgyzstan")
                    & (hist.year == 2024)]
    assert national.value.tolist() == [5.3] and not national.in_loss.any()
    # non-USD figures (the yuan series) are kept but never fitted
    assert not hist[hist.unit.isin(["CNY bn", "EUR bn"])].in_loss.any()


def test_nothing_is_invented(hist):
    """Each fitted figure is a raw value (percent scaled to fractions) or says how it was
    derived from raw values."""
    raw = set()
    for name in ("trade.csv", "investment.csv", "debt.csv"):
        v = pd.to_numeric(_raw(name)["value"], errors="coerce").dropna()
        raw |= {round(x, 6) for x in v} | {round(x / 100, 6) for x in v}
    for r in hist[hist.in_loss].itertuples():
        if r.source.startswith("derived:") or "note:" in r.source or "taken as" in r.note \
                or "lower bound" in r.note:
            continue
        assert round(r.value, 6) in raw, (r.series, r.area, r.year, r.value)


def test_derived_rows_name_both_figures(hist):
    d = hist[hist.source.str.startswith("derived:")]
    assert len(d)
    for r in d.itertuples():
        assert "/" in r.source
    uz = d[(d.series == "china_trade_share") & (d.area == "uzbekistan")]
    assert uz.value.round(4).tolist() == [round(12.4 / 65.9, 4)]


def test_approximate_and_bound_figures_weigh_half(hist):
    tj = hist[(hist.series == "china_debt_share") & (hist.area == "tajikistan")]
    assert set(tj.bound) == {"lower", ""}
    assert (tj.weight == 0.5).all()
    kg = hist[(hist.series == "china_trade_share") & (hist.area == "kyrgyzstan")]
    assert kg.weight.tolist() == [0.5]  # "around 35%"
    kz = hist[(hist.series == "china_trade") & (hist.area == "kazakhstan")]
    assert kz.set_index("year").weight.to_dict() == {2021: 0.5, 2022: 1.0, 2023: 1.0,
                                                     2024: 1.0}  # 2021: Xi's article


@pytest.mark.parametrize(("text", "quarter"), [
    ("2016-12-31", "2016Q4"), ("2018-01-31", "2017Q4"), ("2024-06-30", "2024Q2"),
    ("2024-01-01", "2023Q4"), ("2022-07", "2022Q2"), ("2016", "2016Q4"), ("soon", ""),
])
def test_date_quarter(text, quarter):
    assert H.date_quarter(text) == quarter


def test_mirror_ratios(hist):
    r = H.mirror_ratios(hist)
    assert set(r) == {"kazakhstan", "kyrgyzstan", "tajikistan", "turkmenistan", "uzbekistan"}
    assert r["kyrgyzstan"] == pytest.approx(5.3 / 22.71, abs=1e-4)
    assert r["turkmenistan"] == pytest.approx(10.6 / 10.65, abs=1e-4)
    assert all(0 < v <= 1.05 for v in r.values())


def test_fit_targets_window(hist):
    t = H.fit_targets(hist, until=2021)
    assert len(t) and (t.year <= 2021).all()
    assert len(H.fit_targets(hist)) == int(hist.in_loss.sum())
    # the thin early history, as documented: few figures before 2022
    assert len(t) < 20
