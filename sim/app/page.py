"""The classroom page: Mesa's SolaraViz around `ClassroomModel`, served by `greatgame app`.

Run with `greatgame app` (or `solara run sim/app.py --production`). The page has a
scenario picker, a switch per event and sliders in the sidebar (declared by
`sim.app.classroom.controls` from the vocabulary), Reset / play / Step with a speed control,
the current quarter in large type in the app bar, and four tiles: regional shares, a map
coloured by leading power, shares by state, and a log of events and tilt shifts.

Each browser tab gets its own model (built inside `Page`). Slider, switch and scenario
changes apply when Reset rebuilds the model, as everywhere in SolaraViz. The batch path
(`sim.runs.runner`, `sim.cli.main` other than `app`) never imports this module.
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from collections.abc import Callable

import numpy as np
import solara
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.text import Annotation
from matplotlib.ticker import MultipleLocator, PercentFormatter

from sim.app.classroom import (
    DEFAULT_SCENARIO,
    N_RUNS,
    ClassroomModel,
    controls,
    event_label,
    event_switches,
    scenario_names,
)
from sim.output.maps import CAPITALS, plot_region_map
from sim.output.plots import power_colour, power_label
from sim.world.quarters import parse_quarter
from sim.world.vocabulary import HISTORY_END

with warnings.catch_warnings():  # Solara's hook linter flags Mesa 3.3.1's ComponentsView
    warnings.filterwarnings("ignore", message=".*despite early return", category=UserWarning)
    from mesa.visualization import SolaraViz
    from mesa.visualization.utils import update_counter

TITLE = "Great Game: influence in Central Asia"
PLAY_INTERVAL_MS = 150
MARKED_EVENTS = ("us_afghanistan_withdrawal_2021", "ukraine_war_2022",
                 "china_engagement_surge_2024", "china_central_asia_treaty_2025")
"""Events marked on the regional chart when they fire (plus any event after 2025)."""
TILE_HEIGHT_PX = 380
"""Height of a tile's content: SolaraViz's grid tiles are 10 rows of 30 px plus margins."""
DPI = 110
FIGSIZE = (7.2, 4.4)
"""Inches: the shape of a tile (about 600 x 380 px at 1600 px wide), so charts fill it."""


# --------------------------------------------------------------------------- inputs

def model_params(model: ClassroomModel) -> dict:
    """SolaraViz inputs for a model: picker, run, event switches, sliders, in force values.

    Every slider's range, step and meaning come from `sim.app.classroom.controls` (and so from
    `sim.world.vocabulary`) for the shipped scenario; its value is the one the current model runs
    with, or the value asked for if it was refused (the log tile says why). Switches list
    all the shipped scenario's events, the ones switched off too.
    """
    scenario, values, rejected = model.built.base, model.built.values, model.built.rejected
    params: dict = {
        "scenario": {"type": "Select", "label": "Scenario", "value": scenario.name,
                     "values": scenario_names()},
        # SolaraViz reads fixed values and the sliders' first values once, when the page
        # opens (always on the baseline), and afterwards only what the teacher moves: a
        # slider still at the baseline's value is untouched (see `sim.app.classroom.build`).
        "sliders_from": DEFAULT_SCENARIO,
        "replication": {"type": "SliderInt", "label": "Random run (seed)",
                        "value": model.replication, "min": 0, "max": N_RUNS - 1, "step": 1},
    }
    for key, label in event_switches(scenario):
        params[key] = {"type": "Checkbox", "label": label, "value": bool(values[key])}
    for c in controls(scenario):
        value = rejected.get(c.key, values[c.key])  # a refused value stays where it was put
        params[c.key] = {"type": "SliderFloat", "label": c.label, "value": value,
                         "min": c.min, "max": c.max, "step": c.step}
    return params


# --------------------------------------------------------------------------- charts

def _years(quarters: list[str]) -> np.ndarray:
    return np.array([parse_quarter(q) / 4.0 for q in quarters]) + 0.25


def _period(model: ClassroomModel) -> tuple[float, float]:
    return model.scenario.start / 4.0, (model.scenario.end + 1) / 4.0


def _marks(model: ClassroomModel) -> list[tuple[float, str]]:
    """(decimal year, label) of the marked events that have fired so far."""
    events = {e.id: e for e in model.scenario.events}
    out = []
    for quarter, line in model.event_log:
        kind, eid = line.split(" ", 1)
        ev = events.get(eid)
        if kind == "start" and ev and (eid in MARKED_EVENTS or ev.quarter > parse_quarter(
                HISTORY_END)):
            out.append((parse_quarter(quarter) / 4.0 + 0.125, event_label(ev)))
    return out


def _time_axis(ax, first: float, last: float, ticks: int) -> None:
    ax.set_xlim(first, last)
    ax.xaxis.set_major_locator(MultipleLocator(ticks))
    ax.xaxis.set_major_formatter(lambda x, _pos: f"{x:.0f}")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def _projection(ax, first: float, last: float) -> None:
    x = parse_quarter(HISTORY_END) / 4.0 + 0.25
    if first < x < last:
        ax.axvline(x, color="0.2", lw=0.8, ls=":", zorder=3)


def region_figure(model: ClassroomModel) -> Figure:
    """Stacked regional shares from the start to the current quarter, on the whole period."""
    h = model.history()
    w = model.world
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.subplots()
    first, last = _period(model)
    x, region = _years(h["quarters"]), h["region"]
    if len(x) == 1:  # only the start: show it as a thin slab
        x, region = np.append(x, x + 0.25), np.repeat(region, 2, axis=0)
    order = list(range(w.n_partners))
    ax.stackplot(x, region.T[order], colors=[power_colour(w.partners[j]) for j in order],
                 labels=[power_label(w.partners[j]) for j in order], alpha=0.9,
                 edgecolor="white", linewidth=0.4)
    _time_axis(ax, first, last, 5)
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_locator(MultipleLocator(0.25))
    ax.axvline(x[-1], color="black", lw=1.2)
    _projection(ax, first, last)
    for xm, label in _marks(model):
        ax.axvline(xm, color="black", lw=0.7, ls=(0, (4, 3)), alpha=0.6)
        ax.text(xm - 0.12, 0.98, label, fontsize=7.5, va="top", ha="right", rotation=90,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                      "alpha": 0.75})
    shares = h["region"][-1]
    ax.set_title(f"Central Asia: share of influence, {model.quarter_label}", loc="left",
                 fontsize=11)
    handles = [Patch(color=power_colour(w.partners[j]),
                     label=f"{power_label(w.partners[j])} {shares[j]:.0%}")
               for j in reversed(order)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8.5,
              frameon=False)
    ax.tick_params(labelsize=8.5)
    return fig


def states_figure(model: ClassroomModel) -> Figure:
    """Small multiples: each state's shares by power, start to the current quarter."""
    h = model.history()
    w = model.world
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    axes = fig.subplots(2, 3, sharex=True, sharey=True).ravel()
    first, last = _period(model)
    x, shares = _years(h["quarters"]), h["states"]
    if len(x) == 1:  # only the start: show it as a short segment
        x, shares = np.append(x, x + 0.25), np.repeat(shares, 2, axis=0)
    top = min(1.0, np.ceil(float(shares.max()) * 10 + 0.5) / 10)
    for s, (ax, state) in enumerate(zip(axes, w.states, strict=False)):
        for j, partner in enumerate(w.partners):
            ax.plot(x, shares[:, j, s], color=power_colour(partner), lw=1.6,
                    label=power_label(partner))
        ax.set_title(state.capitalize(), fontsize=9.5, pad=3)
        _time_axis(ax, first, last, 10)
        ax.set_ylim(0, top)
        ax.grid(axis="y", color="0.9", lw=0.6)
        ax.axvline(x[-1], color="black", lw=0.8)
        _projection(ax, first, last)
        ax.tick_params(labelsize=7.5)
    for ax in axes[len(w.states):]:
        ax.set_axis_off()
    if len(w.states) < len(axes):
        axes[-1].legend(*axes[0].get_legend_handles_labels(), loc="center", fontsize=8.5,
                        frameon=False, title=f"Share by state, {model.quarter_label}",
                        title_fontsize=8.5)
    return fig


SHORT_CORRIDORS: dict[str, str] = {
    "China-Europe rail via Kazakhstan": "China–Europe rail",
    "Middle Corridor (Trans-Caspian)": "Middle Corridor",
    "China-Kyrgyzstan-Uzbekistan railway": "China–Kyrg.–Uzb. railway",
    "Central Asia-China gas pipeline": "Gas pipeline to China",
}
"""Corridor names of `sim.output.maps`, shortened for the map legend."""

LABEL_SIDE: dict[str, str] = {
    "kazakhstan": "below", "kyrgyzstan": "right", "uzbekistan": "left",
    "tajikistan": "right", "turkmenistan": "below",
}
"""Where each state's label goes around its capital (the three southern capitals are close)."""


def map_figure(model: ClassroomModel) -> Figure:
    """The region, each state coloured by its leading power, discs sized by GDP."""
    w = model.world
    leaders = {s: lead for s, lead in model.leading().items() if s != "region"}
    colours = {p: power_colour(p) for p in w.partners}
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.subplots()
    sizes = dict(zip(w.states, w.gdp, strict=True))
    plot_region_map(leaders, colours, ax=ax, sizes=sizes, corridors=True)
    for text in list(ax.texts):  # replace the capitals' labels with compact ones
        if isinstance(text, Annotation):
            text.remove()
    total = float(sum(sizes.values()))
    for s, state in enumerate(w.states):
        if state not in CAPITALS:
            continue
        _, lat, lon = CAPITALS[state]
        j = w.partners.index(leaders[state])
        r = (250 + 2500 * sizes[state] / total) ** 0.5 / 2 + 3  # disc radius, points
        dx, dy, ha, va = {"below": (0, -r, "center", "top"), "right": (r, 0, "left", "center"),
                          "left": (-r, 0, "right", "center")}[LABEL_SIDE.get(state, "below")]
        ax.annotate(f"{state.capitalize()}\n{power_label(leaders[state])} "
                    f"{w.state_influence[j, s]:.0%}", (lon, lat), xytext=(dx, dy),
                    textcoords="offset points", ha=ha, va=va, fontsize=8, zorder=4,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                          "alpha": 0.75})
    ax.set_xticks([])
    ax.set_yticks([])
    legend = ax.get_legend()
    if legend is not None:  # the same entries, with display names and shorter corridor names
        handles, names = legend.legend_handles, [x.get_text() for x in legend.get_texts()]
        names = [("led by " + power_label(n[7:])) if n.startswith("led by ") else
                 SHORT_CORRIDORS.get(n, n) for n in names]
        legend.remove()
        ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5,
                  frameon=False, borderaxespad=0)
    ax.set_title(f"Leading power by state, {model.quarter_label} (disc: GDP)", loc="left",
                 fontsize=11)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.tick_params(labelsize=7)
    return fig


def png(fig: Figure) -> bytes:
    """A figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


# --------------------------------------------------------------------------- components

def region_summary(model: ClassroomModel) -> str:
    """Regional shares now, as `china=0.2431 russia=...` (a data attribute for tests)."""
    w = model.world
    return " ".join(f"{p}={v:.4f}" for p, v in zip(w.partners, w.region_influence, strict=True))


@solara.component
def Chart(model: ClassroomModel, draw: Callable[[ClassroomModel], Figure], name: str):
    """A figure as an image scaled to its tile, redrawn when the model steps."""
    update_counter.get()
    data = solara.use_memo(lambda: png(draw(model)), [model, model.quarters_done])
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    solara.HTML(tag="div", unsafe_innerHTML=(
        f'<img src="{src}" alt="{html.escape(name)}" data-chart="{name}" data-step='
        f'"{model.quarters_done}" data-shares="{region_summary(model)}" style="width:100%;'
        f'max-height:{TILE_HEIGHT_PX}px;object-fit:contain;object-position:left top;'
        'display:block">'),
        style="width:100%")


KIND_STYLE = {
    "event": ("event", "#2f5fa8"),
    "end": ("ends", "#777777"),
    "shift": ("tilt", "#4a8a3a"),
    "lead": ("lead", "#d1352b"),
}


@solara.component
def LogPanel(model: ClassroomModel):
    """Scenario, problems with the settings, and the log, newest first."""
    update_counter.get()
    rows = []
    for line in reversed(model.log[-40:]):
        tag, colour = KIND_STYLE.get(line.kind, (line.kind, "#444"))
        rows.append(
            f'<tr><td style="white-space:nowrap;vertical-align:top;padding:1px 6px 1px 0">'
            f'{line.quarter}</td><td style="vertical-align:top;padding:1px 6px 1px 0">'
            f'<span style="background:{colour};color:white;border-radius:3px;'
            f'padding:0 4px;font-size:11px">{tag}</span></td>'
            f'<td style="padding:1px 0">{html.escape(line.text)}</td></tr>')
    if not rows:
        rows.append('<tr><td style="color:#666">Press Step or ▶ to start: events and the '
                    'largest shifts in alignment will appear here.</td></tr>')
    problems = "".join(
        f'<div style="background:#fff3cd;border-left:4px solid #e0a800;padding:2px 6px;'
        f'margin:2px 0">{html.escape(p)}</div>' for p in model.problems)
    head = (f'<div style="font-size:13px;color:#333;margin-bottom:4px"><b>'
            f'{html.escape(model.scenario.name)}</b>: '
            f'{html.escape(model.scenario.description)}</div>')
    solara.HTML(tag="div", unsafe_innerHTML=(
        head + problems + '<div style="font-weight:600;font-size:13px;margin:6px 0 2px">'
        'Log: events, '
        'largest tilt shift of each quarter, changes of leader</div>'
        '<table data-log="1" style="font-size:12.5px;border-collapse:collapse;width:100%">'
        + "".join(rows) + "</table>"),
        style=f"height:{TILE_HEIGHT_PX}px;overflow-y:auto;padding:4px 8px;"
              "background:white")


@solara.component
def QuarterBadge(model: ClassroomModel):
    """The current quarter, large, for the back of the room."""
    update_counter.get()
    q = model.quarter_label
    n = model.scenario.n_quarters
    label = "start" if model.quarters_done == 0 else f"{q[:4]} Q{q[-1]}"
    solara.HTML(tag="div", unsafe_innerHTML=(
        f'<span data-quarter="{q}" style="font-size:34px;font-weight:700;'
        f'letter-spacing:1px">{label}</span>'
        f'<span style="font-size:14px;margin-left:10px;opacity:0.85">quarter '
        f'{model.quarters_done} of {n}</span>'),
        style="color:white;margin-left:24px;white-space:nowrap")


def RegionalShares(model: ClassroomModel):
    """Tile 1: stacked regional shares."""
    return Chart(model, region_figure, "regional-shares")


def RegionMap(model: ClassroomModel):
    """Tile 2: the map coloured by leading power."""
    return Chart(model, map_figure, "map")


def StateShares(model: ClassroomModel):
    """Tile 3: shares by state."""
    return Chart(model, states_figure, "state-shares")


def Log(model: ClassroomModel):
    """Tile 4: the log."""
    return LogPanel(model)


CSS = """
.v-navigation-drawer .v-input--checkbox { margin-top: 0 !important; padding-top: 0 !important; }
.v-navigation-drawer .v-input--checkbox .v-messages { display: none; }
.v-navigation-drawer .v-input--checkbox .v-input__slot { margin-bottom: 2px; }
.v-navigation-drawer .v-input--checkbox label { font-size: 14px; }
.v-navigation-drawer .v-input__slider .v-input__slot { flex-wrap: wrap; }
.v-navigation-drawer .v-input__slider .v-input__slot > .v-label {
  flex: 0 0 100%; max-width: 100%; white-space: normal; font-size: 13.5px; margin-bottom: 30px;
}
.v-navigation-drawer .v-input__slider .v-slider { flex: 0 0 auto; width: calc(100% - 20px);
  margin: 0 10px; }
.v-navigation-drawer .v-slider__thumb-label-container { display: block !important; }
.v-navigation-drawer .v-slider__thumb-label { font-size: 10.5px; }
.v-navigation-drawer .v-input__slider { margin-bottom: 4px; }
.solara-autorouter-content .v-tabs-bar { display: none; }
"""
"""Tighter event switches, slider labels above their sliders with the value always shown, and
no tab bar over the single page of tiles."""


@solara.component
def Page():
    """The page: one model per browser tab, rebuilt by SolaraViz's Reset."""
    initial = solara.use_memo(lambda: ClassroomModel(DEFAULT_SCENARIO), [])
    model = solara.use_reactive(initial)
    m = model.value
    solara.Title("Great Game classroom")
    solara.Style(CSS)
    with solara.AppBar():
        QuarterBadge(m)
    with solara.Sidebar(), solara.Card("How to use"):
        # HTML, not Markdown: solara's Markdown fetches KaTeX from a CDN (offline here)
        solara.HTML(tag="div", unsafe_innerHTML=(
            "Press <b>Step</b> or <b>▶</b>. Pick a scenario, switch events off or move "
            "sliders, then press <b>Reset</b>: changes apply when the model is rebuilt."),
            style="font-size:14px")
    SolaraViz(model, components=[(RegionalShares, 0), (RegionMap, 0), (StateShares, 0),
                                 (Log, 0)],
              model_params=model_params(m), name=TITLE, play_interval=PLAY_INTERVAL_MS)
