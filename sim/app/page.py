"""The classroom page: `ClassroomModel` behind Mesa's run controls, served by `greatgame app`.

Run with `greatgame app` (or `solara run sim/app/page.py --production`). The sidebar has
Mesa's Reset / ▶ / Step (`mesa.visualization.solara_viz.ModelController`) with a speed and
a step size in plain words, a download of the run's shares, the scenario picker, the run
(seed), a switch per event and the sliders (declared by `sim.app.classroom.controls` from the
vocabulary). The quarter shows in large type in the app bar; four tiles fill the window:
regional shares, a map coloured by leading power, shares by state, and the log. When a
posterior is installed for the world, a switch shows the band of parameter uncertainty
behind the regional chart (`sim.app.classroom.posterior_band`: a small batch of runs with
posterior draws on the ensemble engine, once per settings); otherwise the switch is
disabled and a note says why.

Built on Mesa's ModelController rather than the whole SolaraViz because SolaraViz's own
inputs round a slider's first value to the slider's grid (so Reset with nothing touched
changed the model), keep the controls of the scenario the page opened with, and lay the
charts out in fixed 300 px tiles beside technical controls (play interval in ms, render
interval, threads) that mean nothing in a classroom.

Each browser tab gets its own model and settings (built inside `Page`). Settings apply
when Reset rebuilds the model; the controls follow the scenario picker at once. The batch
path (`sim.runs.runner`, `sim.cli.main` other than `app`) never imports this module.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from typing import Any

import solara

from sim.app import charts
from sim.app.classroom import (
    DEFAULT_SCENARIO,
    GROUPS,
    N_RUNS,
    ClassroomModel,
    Control,
    band_note,
    controls,
    event_label,
    event_switches,
    initial_settings,
    posterior_band,
    scenario_names,
    shipped,
    slider_stops,
    switch_scenario,
    unchanged_history,
)
from sim.world.quarters import parse_quarter
from sim.world.vocabulary import HISTORY_END

with warnings.catch_warnings():  # Solara's hook linter flags Mesa 3.3.1's ComponentsView
    warnings.filterwarnings("ignore", message=".*despite early return", category=UserWarning)
    from mesa.visualization.solara_viz import ModelController
    from mesa.visualization.utils import update_counter

try:  # no "This website runs on Solara" banner over the log tile
    from solara.server import settings as _server_settings

    _server_settings.theme.show_banner = False
    _server_settings.theme.title = "Great Game classroom"  # the tab's name while loading
except ImportError:  # pragma: no cover - solara without its server (a notebook)
    pass

TITLE = "Great Game: influence in Central Asia"
MARKED_EVENTS = ("us_afghanistan_withdrawal_2021", "ukraine_war_2022",
                 "xian_summit_2023", "china_central_asia_treaty_2025")
"""Events marked on the regional chart when they fire (plus any event after 2025)."""
MARK_LABELS: dict[str, str] = {
    "us_afghanistan_withdrawal_2021": "US leaves",
    "ukraine_war_2022": "Ukraine war",
    "xian_summit_2023": "Xi'an summit",
    "china_central_asia_treaty_2025": "Treaty",
    "anti_china_backlash_2026": "Backlash",
    "china_security_push_2026": "China security",
    "eu_corridor_push_2026": "EU corridor",
    "kyrgyz_debt_crisis": "Debt crisis",
    "russia_turns_back_2027": "Russia returns",
    "us_minerals_push_2026": "US minerals",
}
"""Short names of marked events: a label on the chart runs down from the top, so it must
stay above the lines (the log has the full names)."""
SPEEDS: dict[str, int] = {"Slow": 800, "Normal": 300, "Fast": 60}
"""Play speed -> milliseconds between frames (Mesa's play interval)."""
STEP_SIZES: dict[str, int] = {"1 quarter": 1, "1 year": 4}
"""What one Step (or one frame of play) advances -> quarters (Mesa's render interval)."""
LOG_LINES = 40


# --------------------------------------------------------------------------- inputs

def model_params(model: ClassroomModel) -> dict[str, Any]:
    """The settings that rebuild `model` (`ClassroomModel(**model_params(model))`).

    The scenario, the run, every switch and every slider's value in force, except that a
    slider whose value was refused keeps the value asked for (the log tile says why).
    """
    values, rejected = model.built.values, model.built.rejected
    out: dict[str, Any] = {"scenario": model.built.base.name, "replication": model.replication}
    out |= {k: rejected.get(k, v) for k, v in values.items()}
    return out


def stop_index(control: Control, value: float) -> int:
    """Position of `value` among the slider's stops (the nearest one if it is not a stop)."""
    stops = slider_stops(control)
    return min(range(len(stops)), key=lambda i: (abs(stops[i] - value), i))


def value_text(value: float) -> str:
    """A slider's value as the page shows it (four significant digits)."""
    return f"{value:.4g}"


# --------------------------------------------------------------------------- charts

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
            out.append((parse_quarter(quarter) / 4.0 + 0.125,
                        MARK_LABELS.get(eid, event_label(ev)[:14])))
    return out


def ghost(model: ClassroomModel) -> dict | None:
    """The unchanged scenario's history (same seed) when the model's settings differ."""
    if not model.changed:
        return None
    return unchanged_history(model.built.base.name, model.replication)


def region_svg(model: ClassroomModel, unchanged: dict | None = None,
               band: dict | None = None) -> str:
    """The regional chart of `model` now.

    With the unchanged scenario as a ghost and the posterior band (`posterior_band`)
    behind the lines, when given.
    """
    w = model.world
    return charts.region_chart(model.history(), w.partners, _period(model), model.quarter_label,
                               model.quarters_done, _marks(model), unchanged, band)


def states_svg(model: ClassroomModel, unchanged: dict | None = None) -> str:
    """The chart of shares by state of `model` now."""
    w = model.world
    return charts.states_chart(model.history(), w.partners, w.states, _period(model),
                               model.quarter_label, model.quarters_done, unchanged)


def map_svg(model: ClassroomModel) -> str:
    """The map of `model` now: states coloured by their leading power."""
    w = model.world
    leaders = {s: lead for s, lead in model.leading().items() if s != "region"}
    shares = {s: float(w.state_influence[w.partners.index(leaders[s]), i])
              for i, s in enumerate(w.states)}
    gdp = {s: float(g) for s, g in zip(w.states, w.gdp, strict=True)}
    return charts.map_chart(leaders, shares, gdp, model.quarter_label, model.quarters_done)


def region_summary(model: ClassroomModel) -> str:
    """Regional shares now, as `china=0.2431 russia=...` (a data attribute for tests)."""
    w = model.world
    return " ".join(f"{p}={v:.4f}" for p, v in zip(w.partners, w.region_influence, strict=True))


# --------------------------------------------------------------------------- tiles

@solara.component
def Chart(model: ClassroomModel, draw: Callable[..., str], tick: int, with_ghost: bool = True,
          band: dict | None = None):
    """One chart tile, redrawn when the model steps (and only then) or its band changes.

    `tick` (Mesa's update counter) changes on every Step, so the tile renders again.
    """
    unchanged = solara.use_memo(lambda: ghost(model) if with_ghost else None, [model])

    def svg_now() -> str:
        if not with_ghost:
            return draw(model)
        return draw(model, unchanged, band) if band is not None else draw(model, unchanged)

    svg = solara.use_memo(svg_now, [model, model.quarters_done, band is not None])
    solara.HTML(tag="div", unsafe_innerHTML=svg, classes=["gg-tile"])


KIND_STYLE = {
    "event": ("event", "#2f5fa8"),
    "end": ("ends", "#666666"),
    "shift": ("tilt", "#3f7a30"),
    "lead": ("lead", "#c22f26"),
}


@solara.component
def LogPanel(model: ClassroomModel, tick: int = 0):
    """Scenario, problems with the settings, and the log, newest first (`tick`: see Chart)."""
    rows = []
    for line in reversed(model.log[-LOG_LINES:]):
        tag, colour = KIND_STYLE.get(line.kind, (line.kind, "#444"))
        rows.append(
            f'<tr><td class="gg-q">{line.quarter}</td><td class="gg-k">'
            f'<span style="background:{colour}">{tag}</span></td>'
            f'<td>{html.escape(line.text)}</td></tr>')
    if not rows:
        rows.append('<tr><td class="gg-hint">Press Step or ▶ to start: events and the '
                    'largest shifts in alignment will appear here.</td></tr>')
    problems = "".join(f'<div class="gg-problem">{html.escape(p)}</div>'
                       for p in model.problems)
    head = (f'<div class="gg-head"><b>{html.escape(model.scenario.name)}</b>: '
            f'{html.escape(model.scenario.description)}</div>')
    solara.HTML(tag="div", unsafe_innerHTML=(
        head + problems + '<div class="gg-logtitle">Log: events, the largest tilt shift of '
        'each quarter, changes of leader</div><table data-log="1">' + "".join(rows)
        + "</table>"), classes=["gg-tile", "gg-log"])


@solara.component
def QuarterBadge(model: ClassroomModel, tick: int = 0):
    """The current quarter, large, for the back of the room (`tick`: see Chart)."""
    q = model.quarter_label
    n = model.scenario.n_quarters
    label = "start" if model.quarters_done == 0 else f"{q[:4]} Q{q[-1]}"
    solara.HTML(tag="div", unsafe_innerHTML=(
        f'<span data-quarter="{q}" style="font-size:36px;font-weight:700;'
        f'letter-spacing:1px">{label}</span>'
        f'<span style="font-size:16px;margin-left:10px;opacity:0.9">quarter '
        f'{model.quarters_done} of {n}</span>'),
        style="color:white;margin-left:24px;white-space:nowrap")


@solara.component
def Live(model: ClassroomModel, side: solara.Reactive[bool], band_on: bool = False):
    """Everything a Step changes: the bar with the quarter, and the four tiles.

    The one component that listens to Mesa's update counter, so a Step is one render pass
    (with each tile listening, a Step took one pass per tile, each over the whole page).
    """
    tick = update_counter.get()
    with solara.Div(classes=["gg-live"]):
        with solara.Div(classes=["gg-bar"]):
            solara.Button(icon_name="mdi-menu", text=True, classes=["gg-menu"],
                          on_click=lambda: side.set(not side.value), style={"color": "white"})
            solara.HTML(tag="div", unsafe_innerHTML=html.escape(TITLE), classes=["gg-title"])
            QuarterBadge(model, tick)
        with solara.Div(classes=["gg-main"]):
            Tiles(model, tick, band_on)


@solara.component
def Tiles(model: ClassroomModel, tick: int = 0, band_on: bool = False):
    """The four tiles, filling the window below the app bar.

    With `band_on`, the regional chart shows the posterior band, computed once per model
    (a fraction of a second, cached by settings) and not again on each Step.
    """
    band = solara.use_memo(lambda: posterior_band(model) if band_on else None,
                           [model, band_on])
    with solara.Div(classes=["gg-grid"]):
        Chart(model, region_svg, tick, band=band)
        Chart(model, map_svg, tick, with_ghost=False)
        Chart(model, states_svg, tick)
        LogPanel(model, tick)


# --------------------------------------------------------------------------- sidebar

@solara.component
def ScenarioControls(settings: solara.Reactive[dict]):
    """Event switches and sliders of the scenario picked now (rebuilt when it changes)."""
    values = settings.value
    base = shipped(values["scenario"])

    def setter(key: str, convert: Callable[[Any], Any] = lambda v: v):
        return lambda v: settings.set({**settings.value, key: convert(v)})

    with solara.Card("Events"):
        solara.HTML(tag="div", unsafe_innerHTML="Untick an event to take it out of history.",
                    classes=["gg-help"])
        for key, label in event_switches(base):
            solara.Checkbox(label=label, value=bool(values.get(key, True)),
                            on_value=setter(key, bool))
    by_group: dict[str, list[Control]] = {}
    for c in controls(base):
        by_group.setdefault(c.group, []).append(c)
    for group in GROUPS:
        if group in by_group:
            SliderGroup(group, by_group[group], values, setter)


@solara.component
def SliderGroup(title: str, group: list[Control], values: dict, setter: Callable):
    """A card of sliders, folded until opened.

    Every control on the page costs time on each Step (Solara re-sends the whole widget
    tree, about a millisecond a control), so only opened groups exist.
    """
    open_ = solara.use_reactive(False)
    moved = sum(values.get(c.key, c.default) != c.default for c in group)
    with solara.Card(classes=["gg-fold"]):
        solara.Button(f"{'▾' if open_.value else '▸'} {title}"
                      + (f" ({moved} changed)" if moved else ""), text=True,
                      on_click=lambda: open_.set(not open_.value), classes=["gg-foldbtn"])
        if not open_.value:
            return
        for c in group:
            stops = slider_stops(c)
            value = values.get(c.key, c.default)
            solara.SliderInt(
                f"{c.label}: {value_text(value)}", value=stop_index(c, value), min=0,
                max=len(stops) - 1, step=1, thumb_label=False,
                on_value=setter(c.key, lambda i, stops=stops: stops[int(i)]))


@solara.component
def UncertaintySwitch(model: ClassroomModel, band_on: solara.Reactive[bool]):
    """The switch for the posterior band, disabled with a note when there is no posterior."""
    note = band_note(model)
    with solara.Card("Parameter uncertainty"):
        solara.Checkbox(label="Show the band of parameter uncertainty",
                        value=band_on.value and note is None, disabled=note is not None,
                        on_value=band_on.set)
        text = note or (
            "The shaded band: 5–95% of the regional shares over a batch of runs with these "
            "settings, each with its own parameter values drawn from the calibrated posterior. "
            "It shows how much the result depends on parameters history cannot pin down.")
        solara.HTML(tag="div", unsafe_innerHTML=html.escape(text), classes=["gg-help"])


@solara.component
def Pending(model: ClassroomModel, settings: dict, applied: dict):
    """A note when the controls differ from what the model runs: press Reset to apply."""
    if settings == applied:
        return
    what = ("the scenario " + settings["scenario"]
            if settings["scenario"] != applied["scenario"] else "your changes")
    solara.HTML(tag="div", unsafe_innerHTML=f"Press <b>Reset</b> to run {html.escape(what)}.",
                classes=["gg-pending"])


@solara.component
def Layout(children: list | None = None):
    """The page's own frame instead of Solara's AppLayout (`solara run` picks this up).

    AppLayout re-renders its app bar and sidebar portals whenever anything in them does, so
    every Step re-sent the 60 sidebar controls to the browser; here a Step redraws only the
    charts, the log and the quarter.
    """
    return solara.Div(children=children or [], classes=["gg-root"])


@solara.component
def Page():
    """The page: one model and one set of controls per browser tab."""
    start = solara.use_memo(lambda: initial_settings(DEFAULT_SCENARIO), [])
    initial = solara.use_memo(lambda: ClassroomModel(**start), [])
    model = solara.use_reactive(initial)
    settings = solara.use_reactive(start)
    speed = solara.use_reactive("Normal")
    size = solara.use_reactive("1 quarter")
    play_ms = solara.use_reactive(SPEEDS["Normal"])
    per_step = solara.use_reactive(1)
    threads = solara.use_reactive(False)
    side = solara.use_reactive(True)
    band_on = solara.use_reactive(False)
    m = model.value
    applied = solara.use_memo(lambda: dict(settings.value), [m])
    solara.Title("Great Game classroom")
    solara.Style(CSS)
    with solara.Div(classes=["gg-app"] + ([] if side.value else ["gg-noside"])):
        with solara.Div(classes=["gg-side"]):
            with solara.Card("Run"):
                ModelController(model, model_parameters=settings, play_interval=play_ms,
                                render_interval=per_step, use_threads=threads)
                Pending(m, settings.value, applied)
                solara.HTML(tag="div", unsafe_innerHTML="Speed of ▶", classes=["gg-help"])
                solara.ToggleButtonsSingle(speed.value, values=list(SPEEDS),
                                           on_value=lambda v: (speed.set(v),
                                                               play_ms.set(SPEEDS[v])))
                solara.HTML(tag="div", unsafe_innerHTML="Each Step moves", classes=["gg-help"])
                solara.ToggleButtonsSingle(size.value, values=list(STEP_SIZES),
                                           on_value=lambda v: (size.set(v),
                                                               per_step.set(STEP_SIZES[v])))
                solara.FileDownload(lambda: model.value.shares_csv(),
                                    filename=f"greatgame_{m.scenario.name}_run"
                                             f"{m.replication}_shares.csv",
                                    label="Download shares (CSV)", mime_type="text/csv")
            with solara.Card("Scenario"):
                solara.Select("Scenario", value=settings.value["scenario"],
                              values=scenario_names(),
                              on_value=lambda v: settings.set(switch_scenario(settings.value,
                                                                              v)))
                solara.SliderInt("Random run (seed)", value=settings.value["replication"],
                                 min=0, max=N_RUNS - 1,
                                 on_value=lambda v: settings.set({**settings.value,
                                                                  "replication": int(v)}))
                solara.HTML(tag="div", unsafe_innerHTML=(
                    "Changes apply when you press <b>Reset</b>. Dashed lines on the charts "
                    "show the scenario unchanged, with the same random run."),
                    classes=["gg-help"])
            UncertaintySwitch(m, band_on)
            ScenarioControls(settings).key(settings.value["scenario"])
        Live(m, side, band_on.value and band_note(m) is None)


CSS = """
.gg-root { height: 100vh; overflow: hidden; }
.gg-bar { display: flex; align-items: center; height: 64px; padding: 0 16px 0 6px;
  background: #1976d2; color: white; box-shadow: 0 2px 4px rgba(0,0,0,0.25); }
.gg-bar .gg-title { font-size: 22px; font-weight: 500; margin-left: 6px; flex: 1 1 auto;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.gg-app { display: grid; grid-template-columns: 360px minmax(0, 1fr);
  grid-template-rows: 64px calc(100vh - 64px); grid-template-areas: "bar bar" "side main"; }
.gg-app.gg-noside { grid-template-columns: 0 minmax(0, 1fr); }
.gg-noside .gg-side { display: none; }
.gg-live { display: contents; }
.gg-bar { grid-area: bar; }
.gg-side { grid-area: side; overflow-y: auto; padding: 10px; background: #f5f5f5;
  border-right: 1px solid #ddd; }
.gg-side .v-card { margin-bottom: 10px; }
.gg-main { grid-area: main; min-width: 0; min-height: 0; padding: 10px; }
.gg-grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr);
  grid-template-rows: minmax(0, 1fr) minmax(0, 1fr); gap: 10px; height: 100%; }
.gg-tile { min-width: 0; min-height: 0; height: 100%; overflow: hidden; background: white;
  border: 1px solid #ddd; border-radius: 4px; }
.gg-log { overflow-y: auto; padding: 6px 10px; font-size: 16px; line-height: 1.35; }
.gg-log .gg-head { font-size: 16px; color: #222; margin-bottom: 4px; }
.gg-log .gg-logtitle { font-weight: 600; font-size: 16px; margin: 8px 0 4px; }
.gg-log table { border-collapse: collapse; width: 100%; font-size: 16px; }
.gg-log td { vertical-align: top; padding: 2px 8px 2px 0; }
.gg-log td.gg-q { white-space: nowrap; }
.gg-log td.gg-k span { color: white; border-radius: 3px; padding: 0 5px; font-size: 14px; }
.gg-log .gg-hint { color: #555; }
.gg-problem { background: #fff3cd; border-left: 4px solid #e0a800; padding: 3px 8px;
  margin: 3px 0; }
.gg-pending { background: #fff3cd; border-left: 4px solid #e0a800; padding: 4px 8px;
  margin: 8px 0 2px; font-size: 15px; }
.gg-help { font-size: 14px; color: #444; margin: 8px 0 2px; }
.gg-side .v-card__title { font-size: 18px; padding-bottom: 4px; }
.gg-side .v-input--checkbox { margin-top: 0 !important; padding-top: 0 !important; }
.gg-side .v-input--checkbox .v-messages { display: none; }
.gg-side .v-input--checkbox .v-input__slot { margin-bottom: 2px; }
.gg-side .v-input--checkbox label { font-size: 15px; color: #222 !important; }
.gg-side .v-input__slider .v-input__slot { flex-wrap: wrap; }
.gg-side .v-input__slider .v-input__slot > .v-label {
  flex: 0 0 100%; max-width: 100%; white-space: normal; font-size: 15px; margin-bottom: 4px;
  color: #222 !important; }
.gg-side .v-input__slider .v-slider { flex: 0 0 auto; width: calc(100% - 20px);
  margin: 0 10px; }
.gg-side .v-input__slider { margin-bottom: 6px; }
.gg-side .v-btn-toggle .v-btn { font-size: 14px; text-transform: none; }
.gg-side .v-btn { font-size: 15px; }
.gg-side .gg-fold { padding: 0; }
.gg-side .gg-fold > .v-card__text { padding: 2px 8px 6px; }
.gg-side .gg-foldbtn .v-btn__content { justify-content: flex-start; }
.gg-side .gg-foldbtn { font-size: 17px !important; text-transform: none; font-weight: 500;
  width: 100%; justify-content: flex-start; }
"""
"""Tiles filling the window, a log legible from the back, sidebar labels above sliders."""
