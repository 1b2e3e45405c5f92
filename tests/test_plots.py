"""sim.output.plots: each chart returns what it drew on, draws what it should, writes nothing."""

import os

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sim.output import plots  # noqa: E402
from sim.runs.runner import derive_seeds, run_batch  # noqa: E402
from sim.scenario.scenarios import load_scenario  # noqa: E402


@pytest.fixture(scope="module")
def result():
    return run_batch(load_scenario("baseline").with_end("2026Q4"), derive_seeds(7, 2))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def fit():
    return pd.DataFrame({
        "area": ["kazakhstan", "region", "region", "tajikistan"],
        "year": [2024, 2024, 2025, 2024],
        "sourced": [43.8, 94.8, 106.3, 3.9],
        "model": [40.0, 92.0, 105.0, 3.0],
        "model_p05": [39.0, 91.0, 104.0, 2.9],
        "model_p95": [41.0, 93.0, 106.0, 3.1],
        "error": [-3.8, -2.8, -1.3, -0.9],
        "relative_error": [-0.087, -0.030, -0.012, -0.23],
        "source": "GACC",
    })


@pytest.fixture
def facts():
    return pd.DataFrame({"number": [1, 2, 3], "fact": ["a", "b", "c" * 80],
                         "expected": "x", "observed": "y",
                         "share_of_runs": [1.0, 0.4, 0.8], "passed": [True, False, True]})


def test_colours_are_fixed_and_distinct():
    c = plots.POWER_COLOURS
    assert set(c) == {"china", "russia", "eu", "us", "other"}
    assert len(set(c.values())) == 5
    assert plots.power_colour("china") == c["china"]
    assert plots.power_colour("india") == plots.power_colour("india")  # stable fallback


def test_regional_shares_draws_stack_and_bands(result):
    shares = result.shares
    n_powers = shares.power.nunique()
    ax = plots.plot_regional_shares(shares)
    assert isinstance(ax, Axes)
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(polys) == n_powers + (n_powers - 1)  # layers + a band per boundary
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[:n_powers] == ["Rest of world", "US", "EU", "Russia", "China"]
    assert "5–95% range over 2 runs" in texts
    assert "baseline" in ax.get_title(loc="left") and "2 runs" in ax.get_title(loc="left")
    assert ax.get_ylim() == (0, 1)
    assert "%" in ax.get_ylabel() and ax.get_xlabel() == "Year"
    ax.figure.canvas.draw()
    shown = [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)
             if 0 <= v <= 1]
    assert shown[0] == "0%" and shown[-1] == "100%"
    years = [t.get_text() for t, v in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True)
             if ax.get_xlim()[0] <= v <= ax.get_xlim()[1]]
    assert years[:2] == ["2015", "2016"] and years[-1] == "2026"


def test_regional_shares_uses_given_axes_and_marks(result):
    fig, ax = plt.subplots()
    marks = plots.event_marks(result.events)
    assert marks == {"2022Q1": "Russia invades Ukraine", "2025Q2": "China–Central Asia treaty"}
    out = plots.plot_regional_shares(result.shares, ax=ax, marks=marks)
    assert out is ax and len(fig.axes) == 1
    labels = [t.get_text() for t in ax.texts]
    assert "Russia invades Ukraine (2022Q1)" in labels
    assert "projection →" in labels  # history ends 2025Q4, the run goes on to 2026Q4


def test_state_shares_one_panel_per_state(result):
    shares = result.shares
    states = [a for a in shares.area.unique() if a != "region"]
    fig = plots.plot_state_shares(shares)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == [s.title() for s in states]
    labels = {plots.power_label(p) for p in shares.power.unique()}
    for ax in panels:
        lines = [ln for ln in ax.lines if ln.get_label() in labels]
        assert len(lines) == len(labels)
        assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == len(labels)
        assert ax.get_ylim() == panels[0].get_ylim()  # shared y
    legend_axes = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert len(legend_axes) == 1


def test_state_shares_on_given_figure(result):
    fig = Figure()
    assert plots.plot_state_shares(result.shares, fig) is fig
    assert len(fig.axes) == 6  # five states and the legend cell


def test_trade_fit(fit):
    ax = plots.plot_trade_fit(fit)
    assert isinstance(ax, Axes)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "Central Asia (5) 2024"  # the region first
    assert len(labels) == len(fit)
    diamonds = [c for c in ax.collections if len(c.get_offsets()) == len(fit)
                and not isinstance(c, PolyCollection)]
    assert diamonds  # one marker per sourced figure
    assert "GACC" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert "USD bn" in ax.get_xlabel()
    assert "MAPE 9%" in ax.get_title(loc="left")


def test_facts(facts):
    ax = plots.plot_facts(facts)
    assert len(ax.patches) == 3
    colours = [p.get_facecolor()[:3] for p in ax.patches]
    assert colours[0] != colours[1]
    assert {t.get_text() for t in ax.texts} == {"PASS 100%", "FAIL 40%", "PASS 80%"}


def test_plots_write_nothing(result, fit, facts, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(os.listdir(tmp_path))
    plots.plot_regional_shares(result.shares, marks=plots.event_marks(result.events))
    plots.plot_state_shares(result.shares)
    plots.plot_trade_fit(fit)
    plots.plot_facts(facts)
    plt.gcf().canvas.draw()
    assert set(os.listdir(tmp_path)) == before
    assert os.getcwd() == str(tmp_path)


def test_single_replication_and_single_state():
    rows = []
    for q, (y, c) in enumerate([("2020Q1", 0.2), ("2020Q2", 0.3)]):
        for area in ("region", "kazakhstan"):
            rows += [{"scenario": "t", "replication": 0, "quarter": y, "step": q + 1,
                      "area": area, "power": "china", "share": c},
                     {"scenario": "t", "replication": 0, "quarter": y, "step": q + 1,
                      "area": area, "power": "other", "share": 1 - c}]
    df = pd.DataFrame(rows)
    ax = plots.plot_regional_shares(df)
    assert "1 run" in ax.get_title(loc="left") and "runs" not in ax.get_title(loc="left")
    fig = plots.plot_state_shares(df)
    assert len(fig.axes) == 1
    assert np.isfinite(fig.axes[0].get_ylim()).all()


def test_mixed_scenarios_are_refused(result):
    both = pd.concat([result.shares, result.shares.assign(scenario="other_one")])
    with pytest.raises(ValueError, match="one scenario"):
        plots.plot_regional_shares(both)
    with pytest.raises(ValueError, match="one scenario"):
        plots.plot_state_shares(both)


# --------------------------------------------------------------------------- tick labels

def _diffs(scale: float) -> pd.DataFrame:
    """Paired differences of two powers over 2015-2020, peaking at `scale` (fractions)."""
    rows = []
    for q in range(24):
        year = 2015 + q / 4
        for power, sign in (("china", 1.0), ("russia", -1.0)):
            m = sign * scale * q / 23
            rows.append({"scenario": "what_if", "reference": "baseline", "area": "region",
                         "power": power, "quarter": f"{2015 + q // 4}Q{q % 4 + 1}",
                         "year": year, "n": 4, "mean": m, "sd": 0.0,
                         "ci_low": m - scale / 20, "ci_high": m + scale / 20,
                         "distinct": True})
    for state in ("kazakhstan", "kyrgyzstan"):
        for r in list(rows):
            if r["area"] == "region":
                rows.append(r | {"area": state})
    return pd.DataFrame(rows)


def _labels(axis) -> list[tuple[float, str]]:
    lo, hi = sorted(axis.get_view_interval())
    return [(t.get_loc(), t.label1.get_text()) for t in axis.get_major_ticks()
            if lo - 1e-9 <= t.get_loc() <= hi + 1e-9]


def _value(text: str) -> float:
    return float(text.replace("\u2212", "-").replace("+", "").rstrip("%"))


@pytest.mark.parametrize("peak", [0.003, 0.0004, 0.03])  # 0.3, 0.04 and 3 points
def test_difference_ticks_have_the_decimals_the_scale_needs(peak):
    fig = plots.plot_difference_lines(_diffs(peak), Figure())
    fig.draw_without_rendering()
    ax = fig.axes[0]
    labels = _labels(ax.yaxis)
    texts = [t for _, t in labels]
    assert len(labels) >= 3 and len(set(texts)) == len(texts), texts
    for loc, text in labels:
        assert _value(text) == pytest.approx(loc, abs=1e-9), (loc, text)
        assert not text.startswith("-") and (loc == 0 or text[0] in "+\u2212"), text
    lo, hi = ax.get_ylim()  # the scale follows the effect instead of a floor of 1 point
    assert peak * 100 < hi <= 2.2 * peak * 100 * 1.1 and lo == -hi


def test_heatmap_shows_small_effects_with_their_decimals():
    d = _diffs(0.003)
    last = d["quarter"].max()
    fig = plots.plot_difference_heatmap(d, [last], Figure())
    fig.draw_without_rendering()
    cells = [t.get_text() for t in fig.axes[0].texts]
    means = d[d["quarter"] == last]
    assert "+0.30" in cells and "\u22120.30" in cells, cells
    assert len(cells) == len(means)
    bar = fig.axes[-1]
    labels = _labels(bar.yaxis)
    texts = [t for _, t in labels]
    assert len(set(texts)) == len(texts) >= 3, texts
    assert all(_value(t) == pytest.approx(loc) for loc, t in labels)


def test_tick_helpers():
    assert plots.tick_decimals([-1, -0.5, 0, 0.5, 1]) == 1
    assert plots.tick_decimals([0, 0.25, 0.5]) == 2
    assert plots.tick_decimals([0, 10, 20]) == 0
    assert plots.number_text(-0.25, 2) == "\u22120.25"
    assert plots.number_text(0.0001, 2) == "0.00" and plots.number_text(3, 0) == "+3"
    assert plots.number_text(12.5, 1, signed=False) == "12.5"
    assert [plots.nice_limit(x) for x in (3.2, 0.33, 0.044, 1.0)] == pytest.approx(
        [4, 0.4, 0.05, 1.0])


# --------------------------------------------------------------------------- sweeps, sensitivity

def _band(by_point: bool) -> pd.DataFrame:
    rows = []
    for scen in ("baseline", "no_treaty"):
        for point in range(3) if by_point else [None]:
            for q in range(8):
                for k, power in enumerate(("china", "russia", "other")):
                    m = 0.2 + 0.1 * k + 0.01 * q * (point or 0)
                    row = {"scenario": scen, "quarter": f"{2015 + q // 4}Q{q % 4 + 1}",
                           "step": q, "power": power, "mean": m, "p05": m - 0.01,
                           "p95": m + 0.01, "n": 4}
                    rows.append(row if point is None else row | {"point": point})
    return pd.DataFrame(rows)


def _legend_below_and_axes_wide(fig: Figure) -> None:
    fig.draw_without_rendering()
    r = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(r)
    boxes = [a.get_window_extent(r) for a in fig.axes if a.get_visible() and a.has_data()]
    assert legend.y1 <= min(b.y0 for b in boxes)  # under the panels, not beside them
    width = fig.get_window_extent(r).width
    assert (max(b.x1 for b in boxes) - min(b.x0 for b in boxes)) / width > 0.85


def test_sweep_bands_keep_parameter_points_apart():
    from sim.output.sweep_plots import plot_sweep_bands

    points = pd.DataFrame({"point": [0, 1, 2],
                           "powers.china.capacity_growth": [0.0, 0.05, 0.1]})
    fig = plot_sweep_bands(_band(True), "s", points)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 3 * 3  # a line per power and point
    ends = sorted(round(line.get_ydata()[-1], 6) for line in ax.get_lines()[:3])
    assert ends == [0.2, 0.27, 0.34]  # China's three points end apart, none pooled
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "capacity_growth 0.05" in labels and "China" in labels
    assert "each parameter point" in fig.get_suptitle()
    _legend_below_and_axes_wide(fig)
    pooled = plot_sweep_bands(_band(False), "s")
    assert len(pooled.axes[0].get_lines()) == 3 and "pooled" in pooled.get_suptitle()
    _legend_below_and_axes_wide(pooled)


def test_outcome_vs_parameters_leaves_the_width_to_the_panel():
    from sim.output.sweep_plots import plot_outcome_vs_parameters

    final = pd.DataFrame({"scenario": "baseline", "quarter": "2035Q4",
                          "power": np.repeat(["china", "russia"], 6),
                          "share": np.linspace(0.2, 0.3, 12),
                          "powers.china.capacity_growth": np.tile([0.0, 0.05, 0.1], 4)})
    fig = plot_outcome_vs_parameters(final, ["powers.china.capacity_growth"])
    _legend_below_and_axes_wide(fig)


def test_sensitivity_prints_saves_and_charts_one_unit(tmp_path, capsys):
    from sim.analysis import sensitivity as SA
    from sim.cli.main import main

    sweep = tmp_path / "sa.yaml"
    sweep.write_text("name: sa\ndescription: d\nscenarios: [baseline]\nreplications: 1\n"
                     "seed: 3\nend: 2018Q4\ndesign: lhs\nsamples: 4\nparameters:\n"
                     "  params.w_trade: {min: 0.05, max: 0.6}\n"
                     "  params.w_security: {min: 0.05, max: 0.6}\n")
    out = tmp_path / "out"
    assert main(["sensitivity", str(sweep), "--method", "morris", "--samples", "3",
                 "--outcome", "china.region.2018Q4", "--out", str(out),
                 "--executor", "serial"]) == 0
    text = capsys.readouterr().out
    table = pd.read_csv(out / "indices.csv")
    assert set(table["unit"]) == {"percentage points"}
    assert "in percentage points of the share" in text and "sd " in text and " points)" in text
    for r in table.itertuples():  # the printed row is the saved row, in the same unit
        line = next(x for x in text.splitlines() if x.strip().startswith(r.parameter))
        assert line.split()[1:] == [f"{v:.2f}" for v in (r.mu_star, r.mu_star_conf, r.mu,
                                                         r.sigma)]
    assert table["mu_star"].max() > 0.5  # points, not fractions of one
    raw = pd.DataFrame({"parameter": ["a"], "mu_star": [0.04], "mu_star_conf": [0.01],
                        "mu": [-0.04], "sigma": [0.02]})
    shown = SA.display_indices(raw, "morris")
    assert shown.loc[0, ["mu_star", "mu", "sigma"]].tolist() == pytest.approx([4, -4, 2])
    from sim.output.sweep_plots import plot_sensitivity

    ax = plot_sensitivity(raw, "morris", "china.region.2018Q4")
    ax.figure.draw_without_rendering()
    assert "percentage points" in ax.get_xlabel()
    assert max(_value(t.get_text()) for t in ax.get_xticklabels() if t.get_text()) >= 4
