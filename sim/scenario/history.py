"""The sourced history the calibration fits: one tidy table built from `sim/scenario/data/*.csv`.

`load_history()` reads the package's copies of the calibration data (each row names its
publication and address) and returns one row per figure: `series, area, partner, year,
quarter, value, unit, basis, bound, weight, in_loss, source, source_url, note`. The
schema, every series and why a figure is or is not fitted are documented in
docs/calibration.md. Rules that matter:

- **One reporter basis per series.** Trade with China is China's customs (GACC) basis in
  `china_trade`/`china_exports`/`china_imports` (the model's basis); the states' own and
  the EDB's figures go to `china_trade_national` and `china_trade_share`, never mixed in.
- **Nothing is invented.** A few rows are *derived* from two sourced figures of the same
  agency and year (a share from a turnover and a total, a ratio of two bases); their
  `source` starts with `derived:` and names both. Nothing is interpolated.
- **Weights say how firm a figure is:** 1 for a published statistic, 0.5 for an official
  statement, an approximate figure ("about", "more than half") or a derived one. Bounds
  ("more than half") are kept as one-sided figures (`bound` = lower or upper).

No model code and no I/O beyond reading the shipped CSV files.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import numpy as np
import pandas as pd

from sim.world.vocabulary import STATES

COLUMNS = ("series", "area", "partner", "year", "quarter", "value", "unit", "basis", "bound",
           "weight", "in_loss", "source", "source_url", "note")
"""Columns of the history table, in order."""

AREAS = {
    "Kazakhstan": "kazakhstan", "Kyrgyzstan": "kyrgyzstan", "Tajikistan": "tajikistan",
    "Turkmenistan": "turkmenistan", "Uzbekistan": "uzbekistan", "Central Asia (5)": "region",
}
PARTNERS = {"China": "china", "Russia": "russia", "EU": "eu", "US": "us", "World": "world"}
GACC = "China official (GACC customs)"
"""Basis of the model's trade with China: China's customs figures and Chinese official
statements that quote them."""

SERIES: dict[str, str] = {
    "china_trade": "Turnover with China, USD bn a year, China's customs (GACC) basis.",
    "china_exports": "The state's exports to China, USD bn a year, GACC basis.",
    "china_imports": "The state's imports from China, USD bn a year, GACC basis.",
    "china_trade_national": "Turnover with China on the state's own (or EDB) basis; not "
                            "fitted (the model is on the GACC basis), used for mirror ratios.",
    "china_trade_share": "China's share of the state's total goods trade, national/EDB basis.",
    "mirror_ratio": "Derived: national-basis turnover with China / GACC turnover, same year.",
    "partner_trade": "Turnover with Russia, the EU or the US, USD bn a year (basis per pair).",
    "partner_exports": "The state's exports to a partner, USD bn a year.",
    "partner_imports": "The state's imports from a partner, USD bn a year.",
    "total_trade": "The state's total goods trade (turnover), USD bn, national basis.",
    "import_share": "A partner's share of the state's imports (national basis).",
    "export_share": "A partner's share of the state's exports (national basis).",
    "china_investment_stock": "Chinese FDI stock, USD bn (EDB bottom-up project database).",
    "china_investment_other": "Other Chinese investment figures (ODI stock, accumulated "
                              "investment, pledges, later EDB edition); not fitted.",
    "china_debt": "External debt owed to China, USD bn (stock at the date).",
    "china_debt_share": "Share of the state's external (state) debt owed to China.",
    "china_debt_gdp": "Debt owed to China as a share of GDP (Kiel/NBER estimates incl. "
                      "undisclosed lending); not fitted.",
    "external_debt": "Total external or state debt, USD bn; not fitted.",
    "gdp": "GDP, current USD bn (World Bank WDI); a check, not fitted.",
    "security": "Memberships (1 member, 0 not), bases and SIPRI arms-import shares; a "
                "check, not fitted (no observable counterpart of the security index).",
}
"""Every series in the table and what it holds."""

FIT_START, FIT_END = 2015, 2024
"""Years the calibration may fit (the model starts in 2015Q1)."""

_APPROX = re.compile(r"'(about|approx|nearly|roughly|over|more than|exceed|surpassing|almost|"
                     r"around|presumably|less than)", re.I)
"""A hedged quote in a note ("'about 1.2 bn'", "'more than 2 bn'"): an approximate figure."""


def _csv(name: str, **read_options) -> pd.DataFrame:
    """Read one of the sourced CSV files shipped in `sim/scenario/data/`."""
    with resources.as_file(resources.files("sim.scenario") / "data" / name) as path:
        return pd.read_csv(path, **read_options)


def _data(name: str) -> pd.DataFrame:
    return _csv(name, dtype=str, keep_default_na=False)


def trade_figures() -> pd.DataFrame:
    """The sourced trade table as shipped (`data/trade.csv`), numbers parsed.

    One row per country, partner, year, flow and reporter, with its source.
    """
    return _csv("trade.csv")


def _num(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _row(**kw) -> dict:
    row = dict.fromkeys(COLUMNS, "")
    row.update(bound="", weight=1.0, in_loss=True, quarter="")
    row.update(kw)
    return row


def _approx(note: str) -> bool:
    return bool(_APPROX.search(note or ""))


def date_quarter(text: str) -> str:
    """The quarter whose end is nearest a stock date (`2018-01-31` -> `2017Q4`).

    A bare year or `YYYY-MM` month maps to the quarter holding the end of that period; an
    unparseable date gives "".
    """
    m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", text or "")
    if m:
        ts = pd.Timestamp(text)
        ends = [pd.Timestamp(ts.year - 1, 12, 31)] + [
            pd.Timestamp(ts.year, mo, 30 if mo in (6, 9) else 31) for mo in (3, 6, 9, 12)]
        best = min(ends, key=lambda e: abs((e - ts).days))
        return f"{best.year}Q{(best.month - 1) // 3 + 1}"
    m = re.match(r"^(\d{4})-(\d{2})$", text or "")
    if m:  # a month: its middle
        return date_quarter(f"{m.group(1)}-{m.group(2)}-15")
    m = re.match(r"^(\d{4})$", text or "")
    if m:
        return f"{m.group(1)}Q4"
    return ""


# --------------------------------------------------------------------------- trade

def _trade_rows() -> list[dict]:
    t = _data("trade.csv")
    rows = []
    for r in t.itertuples(index=False):
        area = AREAS.get(r.country)
        partner = PARTNERS.get(r.partner)
        value = _num(r.value)
        if area is None or partner is None or np.isnan(value):
            continue  # the joint KZ;UZ;TJ row gives no figure
        year = int(r.year) if r.year else None
        common = dict(area=area, partner=partner, year=year, value=value, unit=r.unit,
                      source=r.source, source_url=r.source_url, note=r.note)
        full_year = r.period == "full year"
        chinese = r.reporter.startswith("China")
        statement = "statement" in r.reporter or "President" in r.reporter
        weight = 0.5 if (statement or _approx(r.note)) else 1.0
        usd = r.unit == "USD bn"
        in_window = year is not None and FIT_START <= year <= FIT_END
        if partner == "china" and chinese:
            series = {"turnover": "china_trade", "country_exports_to_partner": "china_exports",
                      "partner_exports_to_country": "china_imports"}.get(r.flow)
            if series is None:
                continue
            rows.append(_row(series=series, basis=GACC, weight=weight,
                             in_loss=usd and full_year and in_window
                             and r.reporter != "China (MOFCOM)", **common))
            rows[-1]["note"] = "; ".join(filter(None, [f"reporter: {r.reporter}", r.note]))
        elif partner == "china":
            series = {"turnover": "china_trade_national",
                      "country_exports_to_partner": "china_exports_national",
                      "partner_exports_to_country": "china_imports_national",
                      "share_of_country_trade": "china_trade_share",
                      "share_of_country_imports": "import_share",
                      "share_of_country_exports": "export_share"}[r.flow]
            if r.unit == "percent":
                common["value"], common["unit"] = value / 100.0, "fraction"
            fit = series == "china_trade_share" and full_year and in_window
            rows.append(_row(series=series, basis=r.reporter, weight=weight, in_loss=fit,
                             **common))
        elif partner == "world":
            series = {"turnover": "total_trade", "exports": "total_exports",
                      "imports": "total_imports"}[r.flow]
            rows.append(_row(series=series, basis=r.reporter, weight=weight, in_loss=False,
                             **common))
        else:
            series = {"turnover": "partner_trade", "country_exports_to_partner": "partner_exports",
                      "partner_exports_to_country": "partner_imports",
                      "share_of_country_imports": "import_share",
                      "share_of_country_exports": "export_share"}[r.flow]
            if r.unit == "percent":
                common["value"], common["unit"] = value / 100.0, "fraction"
            fit = series == "partner_trade" and usd and full_year and in_window
            # Kazakhstan-US 2022 names no reporter; 2024 appears US-side: one basis per
            # series, so only 2024 is fitted.
            fit = fit and not (area == "kazakhstan" and partner == "us" and year == 2022)
            rows.append(_row(series=series, basis=r.reporter, weight=weight, in_loss=fit,
                             **common))
        if not full_year:
            rows[-1]["note"] = "; ".join(filter(None, [f"period: {r.period}", rows[-1]["note"]]))
    return rows


def _derived_trade(rows: list[dict]) -> list[dict]:
    """China's trade share where only a turnover and a total exist, and mirror ratios."""
    df = pd.DataFrame(rows)
    out = []

    def get(series, area, partner, year, basis_prefix):
        m = df[(df.series == series) & (df.area == area) & (df.partner == partner)
               & (df.year == year) & df.basis.str.startswith(basis_prefix)]
        return m.iloc[0] if len(m) else None

    # Shares derived from the same country's statistics (turnover with China / total).
    for area, year, num_basis, den_basis in (
            ("uzbekistan", 2024, "Uzbekistan (Statistics", "Uzbekistan (Statistics"),
            ("tajikistan", 2024, "Tajikistan (statistics", "Tajikistan (Customs")):
        have = df[(df.series == "china_trade_share") & (df.area == area) & (df.year == year)]
        num = get("china_trade_national", area, "china", year, num_basis)
        den = get("total_trade", area, "world", year, den_basis)
        if len(have) or num is None or den is None:
            continue
        approx = _approx(num.note) or _approx(den.note) or num.basis != den.basis
        out.append(_row(series="china_trade_share", area=area, partner="china", year=year,
                        value=round(num.value / den.value, 4), unit="fraction",
                        basis=num.basis if num.basis == den.basis else
                        f"{num.basis} / {den.basis}", weight=0.5 if approx else 1.0,
                        in_loss=FIT_START <= year <= FIT_END,
                        source=f"derived: {num.value} / {den.value} ({num.source}; {den.source})",
                        source_url=num.source_url, note="China's turnover / total turnover"))
    # Mirror ratios: the same year's turnover with China on the national and GACC bases.
    for area in STATES:
        for year in range(FIT_START, 2026):
            g = get("china_trade", area, "china", year, GACC)
            n = df[(df.series == "china_trade_national") & (df.area == area)
                   & (df.year == year)]
            if g is None or not len(n) or g.weight < 1:
                continue
            if area == "uzbekistan":  # the basis of Uzbekistan's share figures
                n = n[n.basis.str.startswith("Uzbekistan")]
            n = n.iloc[0]
            out.append(_row(series="mirror_ratio", area=area, partner="china", year=year,
                            value=round(n.value / g.value, 4), unit="ratio",
                            basis=f"{n.basis} / GACC", weight=0.5 if _approx(n.note) else 1.0,
                            in_loss=False,
                            source=f"derived: {n.value} ({n.source}) / {g.value} ({g.source})",
                            source_url=n.source_url, note="national-basis / GACC turnover"))
    return out


# --------------------------------------------------------------------------- investment

def _investment_rows() -> list[dict]:
    t = _data("investment.csv")
    rows = []
    for r in t.itertuples(index=False):
        area = AREAS.get(r.country)
        value = _num(r.value)
        if area is None or r.partner != "China" or np.isnan(value):
            continue
        common = dict(area=area, partner="china", value=value, unit=r.unit, source=r.source,
                      source_url=r.source_url, note=r.note)
        q = date_quarter(r.date)
        year = int(q[:4]) if q else None
        if r.indicator in ("FDI stock (EDB bottom-up project database)", "FDI stock (EDB)"):
            rows.append(_row(series="china_investment_stock", year=year, quarter=q,
                             basis="EDB FDI stock (2024 edition)", **common))
        else:
            rows.append(_row(series="china_investment_other", year=year, quarter=q,
                             basis=r.indicator, in_loss=False, **common))
    # EDB's 2016 regional stock: the 2025 edition says "up from 19.6 in 2016" and the 2024
    # edition "+41% since 2016" (27.7 / 1.41 = 19.6): one figure, consistent in both.
    later = t[t.indicator == "FDI stock (EDB, later edition)"]
    later = later[later.country == "Central Asia (5)"]
    if len(later) and "19.6 in 2016" in later.iloc[0].note:
        r = later.iloc[0]
        rows.append(_row(series="china_investment_stock", area="region", partner="china",
                         year=2016, quarter="2016Q4", value=19.6, unit="USD bn",
                         basis="EDB FDI stock (2024 edition)", weight=0.5,
                         source=f"{r.source} (note: 'up from 19.6 in 2016'; the 2024 edition's "
                                "+41% since 2016 gives the same)",
                         source_url=r.source_url,
                         note="stock date within 2016 not given; taken as end-2016"))
    return rows


# --------------------------------------------------------------------------- debt

_KG_BASIS = "Kyrgyz Ministry of Finance (China Exim Bank; 'China' from 2024)"
_TJ_BASIS = "Tajik official figures as reported (creditor definitions vary)"


def _debt_rows() -> list[dict]:
    t = _data("debt.csv")
    rows = []
    totals = {}
    for r in t.itertuples(index=False):
        area = AREAS.get(r.country)
        if area is None:
            continue
        value = _num(r.value)
        q = date_quarter(r.date)
        year = int(q[:4]) if q else None
        common = dict(area=area, source=r.source, source_url=r.source_url, note=r.note)
        approx = _approx(r.note) or "statement" in r.date or "publication" in r.date
        weight = 0.5 if approx else 1.0
        if r.creditor in ("China Exim Bank", "China") and r.indicator in (
                "loans outstanding", "debt outstanding"):
            if not q:  # "2019 (publication)", "2020 (spring, statement date)", ...
                q, year = _loose_quarter(r.date)
            basis = _KG_BASIS if area == "kyrgyzstan" else _TJ_BASIS
            # Tajikistan's 2025 statements (0.7, 0.82, ~1.0 bn) disagree on the creditor
            # definition (data caveat 4): kept in the table, not fitted.
            fit = (year is not None and FIT_START <= year <= FIT_END
                   and area in ("kyrgyzstan", "tajikistan") and "2025" not in r.date)
            rows.append(_row(series="china_debt", partner="china", year=year, quarter=q,
                             value=value, unit="USD bn", basis=basis, weight=weight,
                             in_loss=fit, **common))
            m = re.search(r"of total external debt ([\d.]+) bn", r.note)
            if m:
                totals[(area, q)] = (float(m.group(1)), r)
        elif r.indicator == "share of total external debt":
            rows.append(_row(series="china_debt_share", partner="china", year=year,
                             quarter=q, value=value / 100.0, unit="fraction",
                             basis=_KG_BASIS if area == "kyrgyzstan" else _TJ_BASIS,
                             weight=weight,
                             in_loss=year is not None and FIT_START <= year <= FIT_END,
                             **common))
        elif r.indicator == "debt owed to China (estimate)":
            bound = {"exceeds": "lower", "less than": "upper"}
            b = next((v for k, v in bound.items() if k in r.note), "")
            rows.append(_row(series="china_debt_gdp", partner="china", year=2019,
                             quarter="", value=value / 100.0 if not np.isnan(value) else value,
                             unit="fraction of GDP", basis="Horn/Reinhart/Trebesch (Kiel/NBER)",
                             bound=b, weight=0.5, in_loss=False, **common))
        elif r.creditor == "all" and r.unit == "USD bn":
            rows.append(_row(series="external_debt", partner="all", year=year, quarter=q,
                             value=value, unit="USD bn", basis=r.indicator, weight=weight,
                             in_loss=False, **common))
            if area == "tajikistan" and "China accounts for more than half" in r.note:
                rows.append(_row(series="china_debt_share", area=area, partner="china",
                                 year=year, quarter=q, value=0.5, unit="fraction",
                                 basis=_TJ_BASIS, bound="lower", weight=0.5,
                                 in_loss=FIT_START <= year <= FIT_END,
                                 source=r.source, source_url=r.source_url,
                                 note="'China accounts for more than half of external debt': a "
                                      "lower bound"))
    # Shares stated beside a level: "almost half" (Tajikistan 2019) and a level over a
    # total (Kyrgyzstan 2020).
    for r in t.itertuples(index=False):
        if r.country == "Tajikistan" and "almost half" in r.note:
            q, year = _loose_quarter(r.date)
            rows.append(_row(series="china_debt_share", area="tajikistan", partner="china",
                             year=year, quarter=q, value=0.5, unit="fraction", basis=_TJ_BASIS,
                             weight=0.5, in_loss=FIT_START <= year <= FIT_END,
                             source=r.source, source_url=r.source_url,
                             note="'almost half of its external debt' taken as 0.5"))
    for (area, q), (total, r) in totals.items():
        level = _num(r.value)
        rows.append(_row(series="china_debt_share", area=area, partner="china",
                         year=int(q[:4]), quarter=q, value=round(level / total, 4),
                         unit="fraction", basis=_KG_BASIS, weight=0.5,
                         in_loss=FIT_START <= int(q[:4]) <= FIT_END,
                         source=f"derived: {level} / {total} ({r.source})",
                         source_url=r.source_url, note="China Exim debt / total external debt"))
    return rows


def _loose_quarter(text: str) -> tuple[str, int | None]:
    """A quarter for a loosely dated stock.

    `2020 (spring ...)` -> 2020Q2; a publication year -> the end of the year before (the
    latest stock it can describe); `early 2025` -> 2024Q4.
    """
    m = re.match(r"^(early )?(\d{4})", text or "")
    if not m:
        return "", None
    year = int(m.group(2))
    if m.group(1) or "publication" in text:
        return f"{year - 1}Q4", year - 1
    if "spring" in text:
        return f"{year}Q2", year
    return f"{year}Q4", year


# --------------------------------------------------------------------------- macro, security

def _gdp_rows() -> list[dict]:
    t = _data("macro.csv")
    t = t[(t.indicator == "GDP, current USD") & t.country.isin(AREAS) & (t.year != "")]
    return [_row(series="gdp", area=AREAS[r.country], partner="", year=int(r.year),
                 quarter="", value=_num(r.value), unit=r.unit, basis=r.source.split(" via ")[0],
                 weight=0.5 if r.period != "full year" else 1.0, in_loss=False,
                 source=r.source, source_url=r.source_url, note=r.note)
            for r in t.itertuples(index=False)]


_MEMBER = {"member": 1.0, "founding member": 1.0, "not a member": 0.0, "suspended": 0.0,
           "observer": 0.0}


def _security_rows() -> list[dict]:
    t = _data("security.csv")
    rows = []
    for r in t.itertuples(index=False):
        area = AREAS.get(r.country)
        if area is None:
            continue
        partner = r.partner.split(" (")[0].lower().replace(" + ", "+")
        m = re.match(r"^([\d.]+) percent$", r.value)
        if m:
            value, unit = float(m.group(1)) / 100.0, "fraction"
        elif r.value in _MEMBER:
            value, unit = _MEMBER[r.value], "flag"
        else:
            value, unit = 1.0, "flag"  # a base, a lease, a deployment: present
        start = re.match(r"^(\d{4})", r.start or "")
        end = re.match(r"^(\d{4})", r.end or "")
        year = int(end.group(1)) if end else (int(start.group(1)) if start else None)
        rows.append(_row(series="security", area=area, partner=partner, year=year,
                         value=value, unit=unit, basis=r.item, in_loss=False,
                         source=r.source, source_url=r.source_url,
                         note="; ".join(filter(None, [f"{r.value} ({r.start}-{r.end})",
                                                      r.note]))))
    return rows


# --------------------------------------------------------------------------- the table

@functools.cache
def _history() -> pd.DataFrame:
    trade = _trade_rows()
    rows = trade + _derived_trade(trade) + _investment_rows() + _debt_rows() + _gdp_rows() \
        + _security_rows()
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["year"] = df["year"].astype("Int64")
    df["value"] = df["value"].astype(float)
    df["weight"] = df["weight"].astype(float)
    df["in_loss"] = df["in_loss"].astype(bool) & df["value"].notna()
    quarter = df["quarter"].where(df["quarter"] != "", None)
    df["quarter"] = quarter.fillna("")
    order = {s: i for i, s in enumerate(SERIES)}
    df["_o"] = df.series.map(order).fillna(len(order))
    df = df.sort_values(["_o", "area", "partner", "year", "basis"], kind="stable")
    return df.drop(columns="_o").reset_index(drop=True)


def load_history() -> pd.DataFrame:
    """The sourced history as one tidy table (a fresh copy each call).

    Returns:
        One row per figure with columns `series, area, partner, year, quarter, value,
        unit, basis, bound, weight, in_loss, source, source_url, note`. `area` is a state
        or `region` (the five together); `partner` a power, `world`, `all` or blank;
        `quarter` is set for stocks (the quarter whose end is nearest the stock date);
        `in_loss` marks the figures the calibration fits (see docs/calibration.md).
    """
    return _history().copy()


def fit_targets(history: pd.DataFrame | None = None, until: int = FIT_END,
                since: int = FIT_START) -> pd.DataFrame:
    """The figures the calibration fits, in years `since`..`until`."""
    h = load_history() if history is None else history
    y = h.year.astype("float")
    return h[h.in_loss & (y >= since) & (y <= until)].reset_index(drop=True)


def mirror_ratios(history: pd.DataFrame | None = None) -> dict[str, float]:
    """National-basis / GACC turnover with China per state: the mean over the years with both.

    The model's trade with China is on the GACC basis; China's share of a state's trade is
    published on the state's (or the EDB's) basis. The calibration turns the model's GACC
    trade into the national basis with this ratio before comparing shares (an assumption:
    the ratio is constant over time; it is measured in 2022-2024 only).
    """
    h = load_history() if history is None else history
    m = h[h.series == "mirror_ratio"]
    return {a: float(g.value.mean()) for a, g in m.groupby("area")}
