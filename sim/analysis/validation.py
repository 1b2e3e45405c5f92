"""The baseline's stylized facts and its fit to sourced trade figures.

Pure DataFrame -> DataFrame checks on `run` results (shares and metrics, any number of
replications). A fact passes when it holds in more than half of the replications; the
share of replications in which it holds is reported beside it, and the observed values
shown are means over replications. No I/O, no plotting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

SECURITY_STATES = ("kazakhstan", "kyrgyzstan", "tajikistan")


@dataclass(frozen=True)
class Fact:
    """A stylized fact: what is expected, and a check returning (holds, observed text)."""

    number: int
    text: str
    expected: str
    check: Callable[[pd.DataFrame, pd.DataFrame], tuple[bool, str]]


def _year(df: pd.DataFrame) -> pd.Series:
    return df["quarter"].str[:4].astype(int)


def annual_trade(metrics: pd.DataFrame, year: int) -> pd.DataFrame:
    """Trade in a calendar year (mean of the quarterly annual rates), per state and power."""
    m = metrics[_year(metrics) == year]
    return m.groupby(["replication", "state", "power"], as_index=False)[
        ["exports", "imports", "trade"]].mean()


def _f1(shares, metrics):
    t = annual_trade(metrics, 2025).groupby(["replication", "power"]).trade.sum().unstack()
    holds = (t["china"] > t["russia"]) & (t["china"] > t["eu"])
    m = t.mean()
    return bool(holds.mean() > 0.5), (f"China {m['china']:.0f}, Russia {m['russia']:.0f}, "
                                      f"EU {m['eu']:.0f} USD bn"), holds.mean()


def _f2(shares, metrics):
    s = shares[(shares.area.isin(SECURITY_STATES)) & (shares.power != "other")
               & (_year(shares) <= 2025)]
    top = s.loc[s.groupby(["replication", "area", "quarter"]).security.idxmax()]
    lead = top.groupby("replication").power.apply(lambda p: bool((p == "russia").all()))
    reg = shares[(shares.area == "region") & (shares.power == "russia")]
    y = _year(reg)
    before = reg[y == 2021].groupby("replication").security.mean()
    after = reg[(y >= 2023) & (y <= 2025)].groupby("replication").security.mean()
    falls = after < before
    holds = lead & falls
    return bool(holds.mean() > 0.5), (
        f"Russia leads security in KZ/KG/TJ every quarter in {lead.mean():.0%} of runs; "
        f"its regional security share {before.mean():.1%} (2021) -> {after.mean():.1%} "
        f"(2023-25)"), holds.mean()


def _f3(shares, metrics):
    t = annual_trade(metrics, 2025)
    t = t[t.power == "china"].copy()
    t["surplus"] = t.exports > t.imports
    ok = t.groupby("replication").apply(
        lambda g: set(g.loc[g.surplus, "state"]) == {"turkmenistan"}, include_groups=False)
    mean = t.groupby("state")[["exports", "imports"]].mean()
    surplus = [s for s in mean.index if mean.loc[s, "exports"] > mean.loc[s, "imports"]]
    return bool(ok.mean() > 0.5), "surplus with China: " + (", ".join(surplus) or "none"), ok.mean()


def _last(metrics, quarter="2025Q4"):
    return metrics[metrics.quarter == quarter]


def _f4(shares, metrics):
    m = _last(metrics)
    m = m[m.power == "china"]
    top = m.loc[m.groupby("replication").investment_stock.idxmax()].state
    mean = m.groupby("state").investment_stock.mean().sort_values(ascending=False)
    return (bool((top == "kazakhstan").mean() > 0.5),
            ", ".join(f"{s} {v:.1f}" for s, v in mean.head(3).items()) + " USD bn",
            (top == "kazakhstan").mean())


def _f5(shares, metrics):
    m = _last(metrics)
    m = m[m.power == "china"]
    ok = m.groupby("replication").apply(
        lambda g: set(g.nlargest(2, "debt_share").state) == {"kyrgyzstan", "tajikistan"},
        include_groups=False)
    mean = m.groupby("state").debt_share.mean().sort_values(ascending=False)
    return (bool(ok.mean() > 0.5),
            "China's share of debt: " + ", ".join(f"{s} {v:.0%}" for s, v in mean.items()),
            ok.mean())


def _f6(shares, metrics):
    us = shares[(shares.area == "region") & (shares.power == "us")]
    q = us.quarter
    before = us[(q >= "2020Q1") & (q <= "2021Q2")].groupby("replication").share.mean()
    after = us[(q >= "2022Q1") & (q <= "2023Q4")].groupby("replication").share.mean()
    holds = after < before
    return bool(holds.mean() > 0.5), (f"US regional share {before.mean():.1%} (2020-21H1) -> "
                                      f"{after.mean():.1%} (2022-23)"), holds.mean()


def _f7(shares, metrics):
    m = metrics[(metrics.power == "china")]
    per_q = m.groupby(["replication", "quarter"]).engagement.first().reset_index()
    per_q["year"] = _year(per_q)
    yearly = per_q.groupby(["replication", "year"]).engagement.mean().unstack()
    r24 = yearly[2024] / yearly[2023]
    r25 = yearly[2025] / yearly[2024]
    holds = (r24 >= 1.7) & (r24 <= 2.4) & (r25 >= 0.95) & (r25 <= 1.25)
    return bool(holds.mean() > 0.5), (f"2024/2023 x{r24.mean():.2f}, 2025/2024 "
                                      f"x{r25.mean():.2f}"), holds.mean()


def _f8(shares, metrics):
    s = shares[(shares.area == "region") & (shares.quarter == "2025Q4") & (shares.power != "other")]
    ok = s.groupby("replication").apply(
        lambda g: set(g.nlargest(2, "share").power) == {"china", "russia"}
        and g.share.max() < 0.5, include_groups=False)
    mean = s.groupby("power").share.mean().sort_values(ascending=False)
    return bool(ok.mean() > 0.5), ", ".join(f"{p} {v:.1%}" for p, v in mean.items()), ok.mean()


def _f9(shares, metrics):
    t = annual_trade(metrics, 2025)
    t = t[t.power == "china"].groupby("replication").trade.sum()
    return bool((t > 100).mean() > 0.5), f"{t.mean():.1f} USD bn", (t > 100).mean()


FACTS: tuple[Fact, ...] = (
    Fact(
        1,
        "By 2025 China is the region's largest trade partner",
        "China's 2025 trade > Russia's and the EU's",
        _f1,
    ),
    Fact(
        2,
        "Russia stays the leading security partner of KZ, KG, TJ; its credibility falls after 2022",
        "Russia top security share in KZ/KG/TJ every quarter 2015-2025; "
        "its regional security share lower in 2023-25 than 2021",
        _f2,
    ),
    Fact(
        3,
        "Only Turkmenistan runs a trade surplus with China",
        "exports > imports with China in 2025 for Turkmenistan alone",
        _f3,
    ),
    Fact(
        4,
        "Kazakhstan is the largest recipient of Chinese investment",
        "largest Chinese investment stock at 2025Q4",
        _f4,
    ),
    Fact(
        5,
        "Kyrgyzstan and Tajikistan owe the largest shares of their external debt to China",
        "the two highest China debt shares at 2025Q4",
        _f5,
    ),
    Fact(
        6,
        "US influence falls after the 2021 withdrawal from Afghanistan",
        "US regional share lower in 2022-23 than in 2020-21H1",
        _f6,
    ),
    Fact(
        7,
        "Chinese engagement roughly doubles in 2024 and is flat-to-up in 2025",
        "2024/2023 in [1.7, 2.4]; 2025/2024 in [0.95, 1.25]",
        _f7,
    ),
    Fact(
        8,
        "In 2025 China and Russia lead and neither holds a majority: a balance",
        "top two powers at 2025Q4 are China and Russia, each below 50%",
        _f8,
    ),
    Fact(
        9,
        "Region-China trade passes USD 100 bn in 2025",
        "2025 trade with China > 100 USD bn",
        _f9,
    ),
)


def check_facts(shares: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Check every stylized fact on baseline results.

    Returns:
        One row per fact: number, fact, expected, observed, share_of_runs, passed.
    """
    rows = []
    for f in FACTS:
        ok, observed, frac = f.check(shares, metrics)
        rows.append({"number": f.number, "fact": f.text, "expected": f.expected,
                     "observed": observed, "share_of_runs": float(frac), "passed": ok})
    return pd.DataFrame(rows)


STATE_NAMES = {
    "Kazakhstan": "kazakhstan", "Kyrgyzstan": "kyrgyzstan", "Tajikistan": "tajikistan",
    "Turkmenistan": "turkmenistan", "Uzbekistan": "uzbekistan", "Central Asia (5)": "region",
}


def trade_fit(metrics: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Model trade with China against China's customs (GACC) turnover figures, in USD bn.

    Args:
        metrics: Run metrics.
        history: The sourced trade table (`sim/scenario/data/trade.csv`).

    Returns:
        One row per sourced figure in the simulated years: area, year, sourced, model mean,
        5-95% band, error and relative error.
    """
    h = history[(history.reporter == "China (GACC)") & (history.partner == "China")
                & (history.flow == "turnover") & (history.unit == "USD bn")
                & (history.period == "full year") & history.country.isin(STATE_NAMES)].copy()
    h["area"] = h.country.map(STATE_NAMES)
    years = sorted(set(_year(metrics)))
    rows = []
    for _, r in h.iterrows():
        y = int(r.year)
        if y not in years:
            continue
        t = annual_trade(metrics, y)
        t = t[t.power == "china"]
        if r.area != "region":
            t = t[t.state == r.area]
        per_rep = t.groupby("replication").trade.sum()
        model = per_rep.mean()
        rows.append({"area": r.area, "year": y, "sourced": float(r.value),
                     "model": model, "model_p05": per_rep.quantile(0.05),
                     "model_p95": per_rep.quantile(0.95),
                     "error": model - float(r.value),
                     "relative_error": (model - float(r.value)) / float(r.value),
                     "source": r.source})
    out = pd.DataFrame(rows)
    return out.sort_values(["area", "year"]).reset_index(drop=True) if len(out) else out


def fit_summary(fit: pd.DataFrame) -> dict[str, float]:
    """Mean absolute percentage error and count of the trade fit."""
    if fit.empty:
        return {"n": 0, "mape": float("nan")}
    return {"n": int(len(fit)), "mape": float(np.mean(np.abs(fit.relative_error)))}


def history_fit(metrics: pd.DataFrame) -> dict:
    """Runs against all the sourced history the calibration fits (docs/calibration.md).

    Args:
        metrics: The runs' tidy metrics (`RunResult.metrics`).

    Returns:
        `loss`, `components` (per group), `n` (figures), `table` (per figure: sourced,
        model mean and band, log error) and `paths` (the charted series per year/quarter).
    """
    from sim.analysis import fit as C
    from sim.scenario import history as H

    history = H.load_history()
    targets = H.fit_targets(history)
    m = metrics
    quarters = list(dict.fromkeys(m.quarter))
    partners = list(dict.fromkeys(m.power))
    states = list(dict.fromkeys(m.state))
    shape = (m.replication.nunique(), len(quarters), len(partners), len(states))
    srt = m.assign(_q=m.quarter.map({q: i for i, q in enumerate(quarters)}),
                   _p=m.power.map({p: i for i, p in enumerate(partners)}),
                   _s=m.state.map({s: i for i, s in enumerate(states)})).sort_values(
        ["replication", "_q", "_p", "_s"])
    arrays = {k: srt[k].to_numpy(float).reshape(shape) for k in C.METRIC_ARRAYS}
    ratios = H.mirror_ratios(history)
    obs = C.observe(arrays, quarters, partners, states, C.target_tuples(targets), ratios)
    mean = obs.mean(axis=0)
    total, comps = C.loss(mean, targets)
    table = targets.copy()
    table["model"], table["model_p05"], table["model_p95"] = (
        mean, np.quantile(obs, 0.05, 0), np.quantile(obs, 0.95, 0))
    table["log_error"] = C.log_errors(mean, targets)
    tgt, meta = C.path_targets(("region", *states), [q for q in quarters if q[:4] <= "2025"])
    o = C.observe(arrays, quarters, partners, states, tgt, ratios)
    paths = pd.DataFrame([("after", s, a, p, y, q, x, mu, lo, hi)
                          for (s, a, p, y, q, x), mu, lo, hi in zip(
                              meta, o.mean(0), np.quantile(o, 0.05, 0),
                              np.quantile(o, 0.95, 0), strict=True) if np.isfinite(mu)],
                         columns=["label", "series", "area", "partner", "year", "quarter",
                                  "x", "mean", "p05", "p95"])
    return {"loss": total, "components": comps, "n": int(len(targets)), "table": table,
            "paths": paths}
