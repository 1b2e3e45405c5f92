"""The classroom page's model factory: a scenario plus slider and switch values -> a model.

Pure Python, no Solara: `sim.app.page` (the page) and the tests call it alike. It holds

- `controls(scenario)`: the sliders a teacher may move, each declared from the vocabulary
  (`sim.world.vocabulary.field_table`: unit, range, meaning) with the scenario's own value as
  its default, so no range or default is written twice;
- `event_switches(scenario)`: one on/off switch per scripted event;
- `slider_stops(control)`, `initial_settings(name)`, `switch_scenario(settings, name)`:
  what the page's controls hold (sliders start at the scenario's own value exactly, so
  Reset with nothing touched is `greatgame run`'s model) and how they follow the picker;
- `unchanged_history(name, replication)`: the unchanged run the page draws as a ghost;
- `build(name, settings)`: applies the values to the shipped scenario, catching every bad
  value or combination as a one-line problem instead of an exception;
- `ClassroomModel`: an `InfluenceModel` built from keyword settings (as Mesa's
  ModelController rebuilds models on Reset) that also keeps a classroom log: events as
  they fire, the largest quarterly tilt shift with a one-line reason, and changes of the
  leading power;
- `posterior_band(model)`: the 5-95% band of the regional shares over `BAND_RUNS` runs of
  the same settings with posterior draws (the ensemble engine, once per settings), drawn
  behind the live run when a posterior is installed (`band_note` says why not otherwise).

No file writing, no plotting.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, TypeAdapter, ValidationError

from sim.engine.model import InfluenceModel
from sim.errors import InputError
from sim.runs import runner as runs
from sim.runs.runner import Uncertainty, derive_seeds, replicate
from sim.runs.runner import simulate as simulate_runs
from sim.runs.tables import RunResult, run_result
from sim.scenario.scenarios import list_scenarios, load_cached, load_scenario
from sim.world.quarters import parse_quarter
from sim.world.values import Event, Scenario, apply_set
from sim.world.vocabulary import (
    CHANNELS,
    DEFAULT_REPLICATIONS,
    ROOT_SEED,
    Params,
    PowerAttrs,
    StateAttrs,
    field_table,
)

DEFAULT_SCENARIO = "baseline"
N_RUNS = DEFAULT_REPLICATIONS
"""Runs a teacher can pick from: run r on the page is replication r of `greatgame run`."""

SWITCH_PREFIX = "event:"
"""Settings key of an event switch: `event:<event id>` -> True (on) or False (off)."""
RUSSIA_LOSS = "russia_capacity_loss"
"""Settings key of the share of Russia's regional capacity lost to the war in Ukraine."""
WAR_EVENT = "ukraine_war_2022"
WAR_TARGET = "powers.russia.attention"

BUDGET_SPAN = 3.0
"""Capacity sliders run from the schema's minimum to this many times the largest starting
capacity (the schema allows up to 500 USD bn/yr, too coarse a slider for values of 3-15)."""
SHIFT_THRESHOLD = 0.002
"""Smallest quarterly tilt shift (share) the log reports: 0.2 percentage points."""

EVENT_LABELS: dict[str, str] = {
    "eaeu_kyrgyzstan_2015": "Kyrgyzstan joins the EAEU",
    "china_pamir_facility_2016": "Chinese post in the Pamirs",
    "uzbek_opening_2017": "Uzbekistan opens up",
    "us_afghanistan_withdrawal_2021": "US leaves Afghanistan",
    "csto_kazakhstan_2022": "CSTO troops in Kazakhstan",
    "ukraine_war_2022": "Russia invades Ukraine",
    "xian_summit_2023": "Xi'an China–Central Asia summit",
    "c5plus1_summit_2023": "C5+1 summit with the US",
    "cku_railway_2024": "China–Kyrgyzstan–Uzbekistan railway",
    "eu_central_asia_summit_2025": "EU–Central Asia summit",
    "china_central_asia_treaty_2025": "China–Central Asia treaty",
    "anti_china_backlash_2026": "Anti-Chinese backlash",
    "china_security_push_2026": "China's security push",
    "eu_corridor_push_2026": "EU Middle Corridor push",
    "kyrgyz_debt_crisis": "Kyrgyz debt crisis",
    "russia_turns_back_2027": "Russia re-engages",
    "us_minerals_push_2026": "US critical-minerals push",
}
"""Short names of the shipped events for switches and chart marks (others: from the id)."""

PARTNER_NAMES: dict[str, str] = {
    "china": "China", "russia": "Russia", "eu": "the EU", "us": "the US",
    "other": "the rest of the world",
}

GROUPS = ("Fiscal capacity", "Capacity growth", "Channel weights", "Hedging", "Decisions",
          "War in Ukraine")


# --------------------------------------------------------------------------- controls

@dataclass(frozen=True)
class Control:
    """One slider: a settings key, its label and range, and the scenario's value."""

    key: str
    group: str
    label: str
    unit: str
    doc: str
    min: float
    max: float
    step: float
    default: float


def _row(model: type[BaseModel], name: str) -> dict:
    return next(r for r in field_table(model) if r["name"] == name)


def _accepts(model: type[BaseModel], name: str, value: float) -> bool:
    info = model.model_fields[name]
    adapter = TypeAdapter(Annotated[info.annotation, *info.metadata])
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def _nice_step(span: float) -> float:
    """A 1-2-5 step giving about 100 positions over `span`."""
    raw = span / 100.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)


def _control(model: type[BaseModel], name: str, key: str, group: str, label: str,
             default: float, hi: float | None = None, doc: str | None = None) -> Control:
    """A slider from a vocabulary field: its unit, range and meaning; `hi` may narrow it."""
    row = _row(model, name)
    lo = float(row["min"]) if row["min"] is not None else 0.0
    top = float(row["max"]) if row["max"] is not None else max(1.0, 4 * default)
    if hi is not None:
        top = min(top, hi)
    step = _nice_step(top - lo)
    top = lo + step * math.floor(round((top - lo) / step, 9))
    # open bounds (gt/lt) are not valid values themselves: start one step inside
    while not _accepts(model, name, lo):
        lo = round(lo + step, 12)
    while not _accepts(model, name, top):
        top = round(top - step, 12)
    return Control(key=key, group=group, label=label, unit=row["unit"],
                   doc=doc or row["doc"], min=lo, max=top, step=step,
                   default=float(min(max(default, lo), top)))


def _war_effect(scenario: Scenario) -> tuple[Event, int] | None:
    """The war event and the index of its scale effect on Russia's attention, if present."""
    for ev in scenario.events:
        if ev.id != WAR_EVENT:
            continue
        for i, eff in enumerate(ev.effects):
            if eff.target == WAR_TARGET and eff.op == "scale":
                return ev, i
    return None


def power_name(partner: str) -> str:
    """Display name of a partner, as in sentences ('the EU')."""
    return PARTNER_NAMES.get(partner, partner.replace("_", " ").title())


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _title(partner: str) -> str:
    name = power_name(partner)
    return name[4:] if name.startswith("the ") and partner in ("eu", "us") else name


def controls(scenario: Scenario) -> list[Control]:
    """The sliders for a scenario, in display order, defaults taken from the scenario.

    Ranges, units and meanings come from `sim.world.vocabulary`; budget sliders stop at
    `BUDGET_SPAN` times the largest starting budget (within the schema's range).
    """
    w = scenario.world
    out = []
    top_budget = BUDGET_SPAN * max(p.capacity for p in w.powers.values())
    for p, attrs in w.powers.items():
        out.append(_control(PowerAttrs, "capacity", f"powers.{p}.capacity", GROUPS[0],
                            f"{_title(p)}: fiscal capacity in 2015 (USD bn/yr)", attrs.capacity,
                            hi=max(top_budget, 1.0)))
    for p, attrs in w.powers.items():
        out.append(_control(PowerAttrs, "capacity_growth", f"powers.{p}.capacity_growth",
                            GROUPS[1], f"{_title(p)}: capacity growth (per year)",
                            attrs.capacity_growth))
    for c in CHANNELS:
        name = f"w_{c}"
        out.append(_control(Params, name, f"params.{name}", GROUPS[2], f"Weight of {c}",
                            getattr(scenario.params, name)))
    for s, attrs in w.states.items():
        out.append(_control(StateAttrs, "hedging", f"states.{s}.hedging", GROUPS[3],
                            f"Hedging: {s.capitalize()}", attrs.hedging))
    out.append(_control(Params, "alignment_temperature", "params.alignment_temperature",
                        GROUPS[4], "States' decision temperature",
                        scenario.params.alignment_temperature))
    out.append(_control(Params, "allocation_temperature", "params.allocation_temperature",
                        GROUPS[4], "Powers' investment temperature",
                        scenario.params.allocation_temperature))
    war = _war_effect(scenario)
    if war is not None:
        ev, i = war
        out.append(_control(
            PowerAttrs, "attention", RUSSIA_LOSS, GROUPS[5],
            "Russian capacity lost to the war", 1.0 - ev.effects[i].value,
            doc="Share of Russia's regional attention (the share of its capacity the region "
                "gets) that the invasion of Ukraine takes away; the event scales attention "
                "by one minus this."))
    return out


def slider_stops(control: Control) -> tuple[float, ...]:
    """The values a slider can take: its grid from min to max, and the scenario's own value.

    The page's sliders move over these stops by position, so the value a slider starts at
    is the scenario's value exactly (a browser slider over the grid alone would round, say,
    0.4956 to 0.5 and Reset would rebuild a different model).
    """
    n = int(round((control.max - control.min) / control.step))
    grid = [round(control.min + i * control.step, 10) for i in range(n + 1)]
    grid = [v for v in grid if abs(v - control.default) > control.step * 1e-6]
    return tuple(sorted([*grid, control.default]))


def shipped(scenario: str) -> Scenario:
    """A shipped scenario, loaded once per process (a load takes a few tenths of a second)."""
    return load_cached(scenario)


def initial_settings(scenario: str = DEFAULT_SCENARIO, replication: int = 0) -> dict[str, Any]:
    """What the page's controls hold for a scenario before anyone touches them.

    Every event on, every slider at the scenario's own value: `ClassroomModel(**settings)`
    is then the model `greatgame run SCENARIO` runs as replication `replication`.
    """
    base = shipped(scenario)
    out: dict[str, Any] = {"scenario": scenario, "replication": replication}
    out |= {key: True for key, _ in event_switches(base)}
    out |= {c.key: c.default for c in controls(base)}
    return out


def switch_scenario(settings: Mapping[str, Any], scenario: str) -> dict[str, Any]:
    """The controls for another scenario, keeping what the teacher changed.

    Sliders still at the old scenario's value take the new scenario's value; a slider the
    teacher moved keeps its value; events switched off stay off where the new scenario has
    them; the run (seed) is kept.
    """
    old = settings.get("scenario", DEFAULT_SCENARIO)
    before = initial_settings(old) if old in scenario_names() else {}
    out = initial_settings(scenario, settings.get("replication", 0))
    for key, value in settings.items():
        if key in ("scenario", "replication") or key not in out:
            continue
        if key not in before or value != before[key]:
            out[key] = value
    return out


@functools.lru_cache(maxsize=16)
def unchanged_history(scenario: str, replication: int) -> dict[str, Any]:
    """The whole history (`ClassroomModel.history`) of a scenario with nothing changed.

    The page draws it as a ghost under a run whose settings differ; cached, as one run
    takes about half a second.
    """
    model = ClassroomModel(scenario, replication=replication)
    model.run()
    return model.history()


def event_label(event: Event) -> str:
    """Short name of an event: the shipped label, else its id in words."""
    return EVENT_LABELS.get(event.id, event.id.replace("_", " ").capitalize())


def event_switches(scenario: Scenario) -> list[tuple[str, str]]:
    """(settings key, label) of each of the scenario's events, in time order."""
    return [(SWITCH_PREFIX + ev.id, f"{ev.at} {event_label(ev)}") for ev in scenario.events]


def scenario_names() -> list[str]:
    """The shipped scenarios, baseline first."""
    names = [n for n, _ in list_scenarios()]
    return sorted(names, key=lambda n: (n != DEFAULT_SCENARIO, n))


# --------------------------------------------------------------------------- build

@dataclass(frozen=True)
class Built:
    """A scenario with the classroom settings applied.

    Attributes:
        scenario: The scenario to run.
        values: The value in force for every control and switch (key -> float or bool).
        problems: One line per setting that could not be used, saying what was done instead.
        base: The shipped scenario before the settings: the sliders' ranges and defaults
            and the event switches are its own, whatever the settings.
        rejected: Numbers given for sliders that could not be used (key -> number), so a
            page can keep showing what was asked for beside the problem it caused.
    """

    scenario: Scenario
    values: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    base: Scenario | None = None
    rejected: dict[str, float] = field(default_factory=dict)
    changed: dict[str, float] = field(default_factory=dict)
    """Slider values applied as `set:` paths (those the teacher moved from the scenario's)."""


def _number(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | np.number):
        raise ValueError(f"expected a number, got {raw!r}")
    try:
        v = float(raw)
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {raw!r}")
    return v


def _switch(raw: Any) -> bool:
    if isinstance(raw, bool | np.bool_):
        return bool(raw)
    if raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("on", "off", "true", "false"):
        return raw.strip().lower() in ("on", "true")
    raise ValueError(f"expected on or off, got {raw!r}")


def _load(name: str, problems: list[str]) -> Scenario:
    if name in scenario_names():
        return load_scenario(name)
    problems.append(f"scenario: no shipped scenario {name!r}; showing {DEFAULT_SCENARIO}")
    return load_scenario(DEFAULT_SCENARIO)


def build(scenario: str = DEFAULT_SCENARIO, settings: Mapping[str, Any] | None = None, *,
          sliders_from: str | None = None) -> Built:
    """Apply slider and switch values to a shipped scenario; never raises on bad values.

    Args:
        scenario: A shipped scenario name (`scenario_names()`).
        settings: Control keys (`controls`) -> numbers, switch keys (`event_switches`) ->
            on/off, and `russia_capacity_loss`. Missing keys keep the scenario's value;
            switches of events the scenario does not have are ignored.
        sliders_from: The scenario whose defaults the sliders showed when the values were
            set. A value equal to that scenario's default counts as untouched and gives way
            to this scenario's own default (so switching scenario keeps its `set:` values).

    Returns:
        The scenario to run, the values in force and the problems found. A bad value (not a
        number, outside the schema's range) keeps the scenario's value; channel weights
        that add up to zero are replaced by the scenario's weights.
    """
    problems: list[str] = []
    base = _load(scenario, problems)
    ctrl = {c.key: c for c in controls(base)}
    untouched: dict[str, float] = {}
    if sliders_from and sliders_from != base.name and sliders_from in scenario_names():
        untouched = {c.key: c.default for c in controls(load_scenario(sliders_from))}
    world, params = base.world, base.params
    values: dict[str, Any] = {k: c.default for k, c in ctrl.items()}
    values |= {k: True for k, _ in event_switches(base)}
    changed: dict[str, float] = {}
    rejected: dict[str, float] = {}
    for key, raw in (settings or {}).items():
        if key.startswith(SWITCH_PREFIX):
            if key in values:
                try:
                    values[key] = _switch(raw)
                except ValueError as e:
                    problems.append(f"{key}: {e}; left on")
            continue
        if key not in ctrl:
            if key != RUSSIA_LOSS:  # the war's slider, for a scenario without the war: moot
                problems.append(f"{key}: not a setting of the page; ignored")
            continue
        c = ctrl[key]
        try:
            v = _number(raw)
        except ValueError as e:
            problems.append(f"{c.label}: {e}; using {c.default:g}")
            continue
        rejected[key] = v  # until accepted below
        if key in untouched and v == untouched[key]:
            rejected.pop(key)
            continue
        if v == c.default:  # the scenario's own value: nothing to apply, so nothing changes
            rejected.pop(key)
            continue
        if key == RUSSIA_LOSS:
            if not 0.0 <= v <= 1.0:
                problems.append(f"{c.label}: must be between 0 and 1 (got {v:g}); "
                                f"using {c.default:g}")
                continue
            values[key] = v
            rejected.pop(key)
            continue
        try:
            world, params = apply_set(world, params, {key: v})
        except ValueError as e:
            problems.append(f"{c.label}: {e}; using {c.default:g}")
            continue
        values[key] = v
        changed[key] = v
        rejected.pop(key)
    weights = [getattr(params, f"w_{ch}") for ch in CHANNELS]
    if sum(weights) <= 0:
        problems.append("Channel weights: all six are 0, so influence would be undefined; "
                        "using the scenario's weights")
        restore = {f"params.w_{ch}": getattr(base.params, f"w_{ch}") for ch in CHANNELS}
        world, params = apply_set(world, params, restore)
        for k, v in restore.items():
            rejected[k] = values[k]
            values[k] = v
            changed.pop(k, None)
    events = []
    for ev in base.events:
        if not values[SWITCH_PREFIX + ev.id]:
            continue
        if ev.id == WAR_EVENT and RUSSIA_LOSS in values and \
                values[RUSSIA_LOSS] != ctrl[RUSSIA_LOSS].default:
            effects = tuple(
                replace(e, value=1.0 - values[RUSSIA_LOSS])
                if e.target == WAR_TARGET and e.op == "scale" else e
                for e in ev.effects)
            ev = replace(ev, effects=effects)
        events.append(ev)
    out = replace(base, world=world, params=params, events=tuple(events),
                  overrides={**base.overrides, **changed})
    return Built(out, values, problems, base, rejected, changed)


def replication_seed(replication: int) -> int:
    """The seed of replication r of `greatgame run` (root seed `ROOT_SEED`)."""
    return derive_seeds(ROOT_SEED, replication + 1)[replication]


def simulate(scenario: str = DEFAULT_SCENARIO, *, replications: int = 1,
             end: str | None = None, label: str | None = None, **settings: Any) -> RunResult:
    """Run the page's model from a notebook, with the page's slider and switch settings.

    Args:
        scenario: A shipped scenario name.
        replications: Runs 0 .. replications-1 (the seeds of `greatgame run`), at most 10.
        end: Last quarter to simulate (default: the scenario's last).
        label: Name for the `scenario` column (default: the scenario's name).
        **settings: Slider and switch values, as on the page (see `controls`,
            `event_switches`), e.g. `**{"event:ukraine_war_2022": False}`.

    Returns:
        Tidy shares, metrics and events, as `greatgame run` writes them.

    Raises:
        ValueError: a setting could not be used (the page would show it as a problem), or
            `end` is not a quarter of the period.
    """
    if not 1 <= replications <= N_RUNS:
        raise ValueError(f"replications must be 1 to {N_RUNS}, got {replications}")
    built = build(scenario, settings)
    if built.problems:
        raise ValueError("; ".join(built.problems))
    scn = built.scenario
    if end is not None and not scn.start <= parse_quarter(end) <= scn.end:
        raise ValueError(f"end {end} is outside the period {scn.quarters()[0]}"
                         f"-{scn.quarters()[-1]}")
    seeds = [replication_seed(r) for r in range(replications)]
    sim_out = simulate_runs([scn] * replications, seeds, engine="mesa",
                            record=("shares", "channels", "metrics"), until=end)
    if label is not None:
        sim_out = replace(sim_out, names=[label] * sim_out.size)
    return run_result(sim_out)


# --------------------------------------------------------------------------- posterior band

BAND_RUNS = 24
"""Runs behind the posterior band: enough for a 5-95% band, one ensemble batch (well under a
second), computed once per settings when the teacher turns the band on."""


def posterior_for(scenario: Scenario) -> Uncertainty | None:
    """Posterior draws for a scenario's world, when a posterior is installed for it."""
    post = runs.installed_for(scenario.world.name)
    if post is None:
        return None
    return Uncertainty("posterior", post)


def band_note(model: ClassroomModel) -> str | None:
    """Why the page cannot show a posterior band for this model (None when it can)."""
    if posterior_for(model.scenario) is not None:
        return None
    return (f"No posterior is installed for the world {model.scenario.world.name}, so there is "
            "no band of parameter uncertainty to show (greatgame calibrate --method abc "
            "installs one).")


def posterior_band(model: ClassroomModel) -> dict[str, Any] | None:
    """The regional shares' 5-95% band over `BAND_RUNS` runs with posterior draws.

    The runs use the model's settings (scenario, switches, sliders) with replication i's
    posterior draw and seed i of `greatgame run` (root seed `ROOT_SEED`); a slider the
    teacher moved wins over the draw for its attribute, as a swept parameter does. None
    when no posterior is installed.

    Returns:
        {"quarters": labels of the simulated quarters, "low": (T, J), "high": (T, J),
        "runs": BAND_RUNS, "posterior": the file}.
    """
    if posterior_for(model.scenario) is None:
        return None
    return _band(model.built.base.name, tuple(sorted(model_settings(model).items())))


def model_settings(model: ClassroomModel) -> dict[str, Any]:
    """The values in force that make the model (switches and sliders), for caching."""
    return dict(model.built.values)


@functools.lru_cache(maxsize=8)
def _band(scenario: str, settings: tuple) -> dict[str, Any]:
    built = build(scenario, dict(settings))
    unc = posterior_for(built.scenario)
    sets = unc.parameter_sets(BAND_RUNS, ROOT_SEED)
    war = _war_effect(built.scenario)
    loss = next((c.default for c in controls(built.base) if c.key == RUSSIA_LOSS), None)
    if war is not None and built.values.get(RUSSIA_LOSS) != loss:
        moved = f"events.{WAR_EVENT}.effects[{war[1]}].value"  # the teacher's war slider wins
        sets = [{k: v for k, v in p.items() if k != moved} for p in sets]
    scns = replicate(built.scenario, sets, built.changed, source=unc.path)
    out = simulate_runs(scns, derive_seeds(ROOT_SEED, BAND_RUNS), engine="ensemble",
                        record=("shares",))
    low, high = np.quantile(out.arrays["region_influence"], [0.05, 0.95], axis=0)
    return {"quarters": list(out.quarters), "low": low, "high": high, "runs": BAND_RUNS,
            "posterior": unc.path}


# --------------------------------------------------------------------------- the log

@dataclass(frozen=True)
class LogLine:
    """One line of the classroom log: a quarter, a kind and a sentence."""

    quarter: str
    kind: str  # "event", "end", "shift", "lead"
    text: str


TERM_WORDS: dict[str, tuple[str, str]] = {
    "economy": ("its trade, investment and remittances with {p} grew relative to the others",
                "its trade, investment and remittances with {p} fell behind the others"),
    "security": ("{p} provides more of its security", "{p} provides less of its security"),
    "sentiment": ("public mood toward {p} warmed", "public mood toward {p} soured"),
    "dependence": ("its dependence on {p} (debt, trade) weighs less",
                   "its dependence on {p} (debt, trade) weighs more"),
    "hedging": ("hedging pulls it away from other partners",
                "hedging pulls it back from leaning on {p}"),
}
"""How a rise (first) or fall (second) of each alignment score term reads in a sentence."""

LEVEL_WORDS: dict[str, str] = {
    "economy": "trade, investment and remittances",
    "security": "security",
    "sentiment": "public mood",
    "dependence": "light dependence",
}


def shift_reason(j: int, s: int, direction: float, tilt0: np.ndarray, tilt1: np.ndarray,
                 terms0: Mapping[str, np.ndarray], terms1: Mapping[str, np.ndarray],
                 partner: str) -> str:
    """One line saying why state s's tilt toward partner j moved in `direction`.

    The tilt moves toward a logit choice over alignment scores, so what matters is each
    score term of j relative to the tilt-weighted mean over partners. The reason is the
    term whose relative change this quarter pushed most in the direction of the move; if
    none changed noticeably, the tilt is still closing an older gap and the reason is the
    term that puts j furthest above (or below) the average partner.
    """
    sign = 1.0 if direction >= 0 else -1.0
    p = power_name(partner)
    names = [k for k in TERM_WORDS if k in terms0 and k in terms1]
    rel = {k: (terms1[k][j, s] - terms0[k][j, s])
           - float(np.sum(tilt0[:, s] * (terms1[k][:, s] - terms0[k][:, s]))) for k in names}
    if rel:
        best = max(rel, key=lambda k: sign * rel[k])
        if sign * rel[best] >= 1e-3:
            return TERM_WORDS[best][0 if rel[best] > 0 else 1].format(p=p)
    level = {k: terms1[k][j, s] - float(np.sum(tilt1[:, s] * terms1[k][:, s])) for k in names}
    if not level:
        return "still adjusting to earlier changes"
    best = max(level, key=lambda k: sign * level[k])
    if best == "hedging":
        return ("still adjusting: it leans little on {p}, and hedging favours that" if
                level[best] > 0 else "still adjusting: it already leans on {p}, and hedges"
                ).format(p=p)
    word = "above" if level[best] > 0 else "below"
    return (f"still adjusting: {p} scores {word} the average partner on "
            f"{LEVEL_WORDS[best]}")


def largest_shift(tilt0: np.ndarray, tilt1: np.ndarray, terms0: Mapping[str, np.ndarray],
                  terms1: Mapping[str, np.ndarray], partners: list[str], states: list[str],
                  n_powers: int, threshold: float = SHIFT_THRESHOLD,
                  skip: frozenset[tuple[int, int, int]] = frozenset()
                  ) -> tuple[tuple[int, int, int], str] | None:
    """The quarter's largest tilt shift toward or away from a power, as a sentence.

    Args:
        tilt0: Tilt (J, S) before the quarter.
        tilt1: Tilt after it.
        terms0: Alignment score terms (each (J, S)) before the quarter.
        terms1: The terms after it.
        partners: Partner names along J.
        states: State names along S.
        n_powers: Shifts toward the first n_powers partners count (not `other`).
        threshold: Smallest shift reported (share).
        skip: (power, state, sign) triples to pass over (e.g. reported a moment ago).

    Returns:
        ((power, state, sign), sentence), the sentence e.g. "Kazakhstan leans toward Russia
        (+0.6 pts): Russia provides more of its security"; None when no shift qualifies.
    """
    delta = (tilt1 - tilt0)[:n_powers]
    if delta.size == 0 or not terms0:
        return None
    for flat in np.argsort(-np.abs(delta), axis=None):
        j, s = (int(i) for i in np.unravel_index(int(flat), delta.shape))
        d = float(delta[j, s])
        if abs(d) < threshold:
            return None
        key = (j, s, 1 if d > 0 else -1)
        if key in skip:
            continue
        verb = "leans toward" if d > 0 else "turns away from"
        reason = shift_reason(j, s, d, tilt0, tilt1, terms0, terms1, partners[j])
        return key, (f"{states[s].capitalize()} {verb} {power_name(partners[j])} "
                     f"({d * 100:+.1f} pts): {reason}")
    return None


# --------------------------------------------------------------------------- the model

class ClassroomModel(InfluenceModel):
    """The model behind the classroom page, built from keyword settings.

    Mesa's ModelController rebuilds the model on Reset as `ClassroomModel(**values)`, so every
    input is a keyword; bad values never raise (they are listed in `problems`). The
    DataCollector also records the starting state, so charts have a first point.

    Args:
        scenario: A shipped scenario name.
        replication: Which of `greatgame run`'s seeded replications to run (0-9).
        sliders_from: See `build`.
        **kwargs: Control and switch values (see `build`); Mesa requires this name.
    """

    def __init__(self, scenario: str = DEFAULT_SCENARIO, replication: int = 0,
                 sliders_from: str | None = None, **kwargs: Any):
        problems: list[str] = []
        try:
            rep = int(_number(replication))
            if not 0 <= rep < N_RUNS:
                raise ValueError(f"must be 0 to {N_RUNS - 1} (got {rep})")
        except ValueError as e:
            problems.append(f"Random run: {e}; using run 0")
            rep = 0
        try:
            built = build(str(scenario), kwargs, sliders_from=sliders_from)
        except InputError as e:  # a broken shipped file: say so, show the baseline
            built = build(DEFAULT_SCENARIO)
            problems.append(f"scenario {scenario!r} could not be loaded: {e}")
        super().__init__(built.scenario, rng=replication_seed(rep))
        self.built = replace(built, problems=problems + built.problems)
        self.replication = rep
        self.log: list[LogLine] = []
        self._shifts: list[tuple[int, tuple[int, int, int]]] = []
        self._leaders = self.leading()
        self.datacollector.collect(self)

    @property
    def quarters_done(self) -> int:
        """Quarters simulated so far (Mesa's `steps` also counts calls past the end)."""
        return self.quarter - self.scenario.start + 1

    @property
    def problems(self) -> list[str]:
        """Settings that could not be used, one line each."""
        return self.built.problems

    def leading(self) -> dict[str, str]:
        """The leading power (of the acting powers, not `other`) in the region and each state."""
        w = self.world
        P = w.n_powers
        out = {"region": w.partners[int(np.argmax(w.region_influence[:P]))]}
        for s, name in enumerate(w.states):
            out[name] = w.partners[int(np.argmax(w.state_influence[:P, s]))]
        return out

    def step(self) -> None:
        """Simulate one quarter and extend the log; past the end, stop (`running` False)."""
        if self.finished:
            self.running = False
            return
        w = self.world
        tilt0 = w.tilt.copy()
        terms0 = {k: v.copy() for k, v in w.terms.items()}
        seen = len(self.event_log)
        super().step()
        q = self.quarter_label
        events = {e.id: e for e in self.scenario.events}
        for _, line in self.event_log[seen:]:
            kind, eid = line.split(" ", 1)
            ev = events.get(eid)
            label = event_label(ev) if ev else eid
            if kind == "start":
                text = f"{label}: {ev.description}" if ev and ev.description else label
                self.log.append(LogLine(q, "event", text))
            else:
                self.log.append(LogLine(q, "end", f"{label} ends"))
        recent = frozenset(k for quarter, k in self._shifts if quarter > self.quarter - 4)
        shift = largest_shift(tilt0, w.tilt, terms0, w.terms, w.partners, w.states,
                              w.n_powers, skip=recent)
        if shift:
            self._shifts.append((self.quarter, shift[0]))
            self.log.append(LogLine(q, "shift", shift[1]))
        leaders = self.leading()
        for area, lead in leaders.items():
            before = self._leaders.get(area)
            if before is not None and lead != before:
                where = "the region" if area == "region" else area.capitalize()
                self.log.append(LogLine(q, "lead", f"{_cap(power_name(lead))} overtakes "
                                                   f"{power_name(before)} in {where}"))
        self._leaders = leaders
        self.running = not self.finished

    @property
    def changed(self) -> bool:
        """Whether the settings differ from the scenario's own (an event off, a slider moved)."""
        return self.built.base is not None and self.built.scenario != self.built.base

    def shares_csv(self) -> str:
        """The run's shares so far as CSV: one row per quarter, area (region or state), power.

        Columns: scenario, replication, seed, quarter, area, power, share.
        """
        h = self.history()
        w = self.world
        out = io.StringIO()
        out.write("scenario,replication,seed,quarter,area,power,share\n")
        head = f"{self.scenario.name},{self.replication},{replication_seed(self.replication)}"
        for t, q in enumerate(h["quarters"]):
            for j, p in enumerate(w.partners):
                out.write(f"{head},{q},region,{p},{h['region'][t, j]:.6f}\n")
            for s, state in enumerate(w.states):
                for j, p in enumerate(w.partners):
                    out.write(f"{head},{q},{state},{p},{h['states'][t, j, s]:.6f}\n")
        return out.getvalue()

    def history(self) -> dict[str, Any]:
        """What the charts need: quarters, regional (T, J) and state (T, J, S) shares."""
        rec = self.datacollector.model_vars
        return {
            "quarters": list(rec["quarter"]),
            "region": np.array(rec["region_influence"]),
            "states": np.array(rec["state_influence"]),
        }
