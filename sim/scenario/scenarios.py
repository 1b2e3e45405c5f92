"""Scenario, world and event files: YAML in, a frozen, validated `Scenario` out.

All input validation lives here. A scenario names a world file, may extend another
scenario, overrides world values with `set:`, removes inherited events, and adds events
(inline or by id from `scenarios/events/`). Errors raise `sim.errors.InputError`, one line naming
the file, the line and the field. No model logic.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sim.errors import InputError
from sim.scenario.yamlsafe import (
    LocatedDict,
    LocatedList,
    format_loc,
    line_of,
    load_yaml,
    read_text,
)
from sim.world.quarters import parse_quarter
from sim.world.values import (
    TYPE_NOUNS,
    Effect,
    Event,
    Scenario,
    World,
    apply_set,
    check_value,
    expand_target,
    input_note,
    pydantic_message,
)
from sim.world.vocabulary import (
    OTHER,
    PERIOD_END,
    PERIOD_START,
    PairAttrs,
    Params,
    PowerAttrs,
    StateAttrs,
)

EVENT_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
"""Event ids: snake_case, also the file names in scenarios/events/."""
DEFAULT_WORLD = "central_asia"


def scenarios_dir() -> Path:
    """Return the folder of shipped scenarios, `sim/scenarios/` (package data).

    Found next to the installed package, so editable installs and wheels alike find it.
    """
    return Path(__file__).resolve().parents[1] / "scenarios"


# --------------------------------------------------------------------------- file schemas

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EffectSpec(_Strict):
    """One effect of an event on a world attribute."""

    target: str = Field(description="Dotted path into the world, e.g. powers.china.budget.")
    op: Literal["set", "add", "scale"] = Field(description="set, add or scale.")
    value: float = Field(description="The value set, added, or multiplied by.")

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return v


class EventSpec(_Strict):
    """A scheduled event: effects applied at a quarter, for a duration or for good."""

    id: str = Field(pattern=EVENT_ID_RE.pattern, description="Unique snake_case id.")
    at: str = Field(description="Quarter the event fires, YYYYQn.")
    duration: int | None = Field(None, ge=1, le=400,
                                 description="Quarters it lasts; omit for permanent.")
    description: str = Field("", description="What happened, in a sentence.")
    source: str = Field("", description="Where the event and its date come from.")
    effects: list[EffectSpec] = Field(min_length=1)

    @field_validator("at")
    @classmethod
    def _quarter(cls, v: str) -> str:
        parse_quarter(v)
        return v


class PeriodSpec(_Strict):
    """First and last simulated quarter."""

    start: str = PERIOD_START
    end: str = PERIOD_END

    @field_validator("start", "end")
    @classmethod
    def _quarter(cls, v: str) -> str:
        parse_quarter(v)
        return v


class ScenarioFile(_Strict):
    """The fields a scenario YAML file may hold (see docs/scenarios.md)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    description: str = Field(min_length=1)
    extends: str | None = None
    world: str | None = None
    period: PeriodSpec | None = None
    set: dict[str, float | str] = Field(default_factory=dict)
    remove_events: list[str] = Field(default_factory=list)
    events: list[EventSpec | str] = Field(default_factory=list)


# --------------------------------------------------------------------------- helpers

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _data_loc(raw: Any, loc: tuple, missing: bool) -> tuple[tuple, int | None]:
    """Find the part of a pydantic error location that is in the data, and its line.

    Pydantic puts union members and validators (`EventSpec`, `str`, `float`, `[key]`) into
    its locations; they are not keys in the file, so they are dropped. A missing field's
    name (the last element, `missing` true) is kept.
    """
    out: list = []
    cur, line = raw, getattr(raw, "line", None)
    for i, key in enumerate(loc):
        if isinstance(cur, dict):
            if key not in cur:  # pydantic names a bad non-string key by its str()
                key = next((k for k in cur if not isinstance(k, str) and str(k) == key), key)
            if key in cur:
                out.append(key if isinstance(key, str) else str(key))
                line = getattr(cur, "key_lines", {}).get(key, line)
                cur = cur[key]
            elif missing and i == len(loc) - 1:
                out.append(key)
        elif isinstance(cur, list) and isinstance(key, int) and 0 <= key < len(cur):
            out.append(key)
            line = cur.item_lines[key] if isinstance(cur, LocatedList) else line
            cur = cur[key]
        else:
            break
    return tuple(out), line


def _pydantic_error(path: Path, raw: Any, e: ValidationError, prefix: tuple = ()) -> InputError:
    """Turn the first pydantic error into a one-line InputError naming field and line.

    When every branch of a union fails at the same place on the input's type (an event
    that is neither a mapping nor an id), the message lists what each branch expected.
    """
    errors = e.errors()
    first = errors[0]

    def where(err):
        return _data_loc(raw, (*prefix, *err["loc"]), err["type"] == "missing")

    loc, line = where(first)
    same = [err for err in errors if where(err)[0] == loc]
    if len(same) > 1 and all(err["type"] in TYPE_NOUNS for err in same):
        nouns = dict.fromkeys(TYPE_NOUNS[err["type"]] for err in same)
        msg = "expected " + " or ".join(nouns) + input_note(first)
    else:
        msg = pydantic_message(first)
    return InputError(path, msg, line=line, field=format_loc(loc) or None)


def _resolve_path(name: str, base_dir: Path, kind: str) -> Path:
    """Resolve a name in scenarios/<kind>/ or a path relative to `base_dir`."""
    root = scenarios_dir()
    sub = root / kind if kind else root
    if "/" not in name and "\\" not in name and not name.endswith((".yaml", ".yml")):
        return sub / f"{name}.yaml"
    p = Path(name)
    return p if p.is_absolute() else (base_dir / p)


# --------------------------------------------------------------------------- world files

def _unwrap(path: Path, raw: LocatedDict, loc: tuple, node: Any, sources: dict, key: str) -> Any:
    """Return x from a world value `{value: x, source: "..."}` and record the source."""
    where = line_of(raw, loc)
    dotted = ".".join(map(str, loc))
    if not isinstance(node, dict) or "value" not in node or "source" not in node:
        raise InputError(path, "each world value must be a mapping {value: ..., source: ...}",
                         line=where, field=dotted)
    extra = set(node) - {"value", "source", "unit", "note"}
    if extra:
        raise InputError(path, f"unknown field {sorted(extra)[0]!r}", line=where, field=dotted)
    src = node["source"]
    if not isinstance(src, str) or not src.strip():
        raise InputError(path, "source must name where the value comes from, or say "
                         "'assumption: <reason>'", line=where, field=dotted + ".source")
    sources[key] = src.strip()
    value = node["value"]
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(path, f"must be a finite number (got {value!r})", line=where,
                         field=dotted + ".value")
    return value


def _section(path, raw, loc, model, node, sources, key_prefix):
    if not isinstance(node, dict):
        raise InputError(path, "expected a mapping", line=line_of(raw, loc),
                         field=".".join(map(str, loc)))
    values = {}
    for k, v in node.items():
        if k == "toward":
            continue
        if k not in model.model_fields:
            raise InputError(path, "unknown attribute", line=line_of(raw, (*loc, k)),
                             field=".".join(map(str, (*loc, k))))
        values[k] = _unwrap(path, raw, (*loc, k), v, sources, f"{key_prefix}.{k}")
    try:
        return model(**values)
    except ValidationError as e:
        raise _pydantic_error(path, raw, e, prefix=loc) from None


def load_world(path: str | Path) -> tuple[World, dict[str, str]]:
    """Load and validate a world file.

    Returns:
        The world and a {file: sha256} record.

    Raises:
        InputError: on any problem, naming file, line and field.
    """
    path = Path(path)
    raw = load_yaml(path)
    allowed = {"name", "description", "powers", "states", "other"}
    for k in raw:
        if k not in allowed:
            raise InputError(path, "unknown field", line=line_of(raw, (k,)), field=str(k))
    for k in ("name", "powers", "states", "other"):
        if k not in raw:
            raise InputError(path, "required field is missing", line=1, field=k)
    sources: dict[str, str] = {}
    if not isinstance(raw["states"], dict) or not raw["states"]:
        raise InputError(path, "expected a mapping of states", line=line_of(raw, ("states",)),
                         field="states")
    if not isinstance(raw["powers"], dict) or not raw["powers"]:
        raise InputError(path, "expected a mapping of powers", line=line_of(raw, ("powers",)),
                         field="powers")
    states = {
        s: _section(path, raw, ("states", s), StateAttrs, node, sources, f"states.{s}")
        for s, node in raw["states"].items()
    }
    if OTHER in raw["powers"]:
        raise InputError(path, f"'{OTHER}' is the rest-of-world bucket; give it as a top-level "
                         "'other:' section", line=line_of(raw, ("powers", OTHER)),
                         field=f"powers.{OTHER}")
    powers = {
        p: _section(path, raw, ("powers", p), PowerAttrs, node, sources, f"powers.{p}")
        for p, node in raw["powers"].items()
    }
    pairs = {}
    for p in [*powers, OTHER]:
        base = ("other",) if p == OTHER else ("powers", p)
        node = raw["other"] if p == OTHER else raw["powers"][p]
        toward = node.get("toward") if isinstance(node, dict) else None
        if not isinstance(toward, dict):
            raise InputError(path, "missing 'toward:' mapping of states",
                             line=line_of(raw, base), field=".".join(base) + ".toward")
        if p == OTHER and set(node) - {"toward"}:
            extra = sorted(set(node) - {"toward"})[0]
            raise InputError(path, "unknown field", line=line_of(raw, (*base, extra)),
                             field=f"other.{extra}")
        for s in toward:
            if s not in states:
                raise InputError(path, f"unknown state (states are {', '.join(states)})",
                                 line=line_of(raw, (*base, "toward", s)),
                                 field=".".join((*base, "toward", str(s))))
        for s in states:
            if s not in toward:
                raise InputError(path, "missing pair attributes for this state",
                                 line=line_of(raw, (*base, "toward")),
                                 field=".".join((*base, "toward", s)))
            key = f"{'.'.join(base)}.toward.{s}"
            pairs[(p, s)] = _section(path, raw, (*base, "toward", s), PairAttrs, toward[s],
                                     sources, key)
    world = World(
        name=str(raw["name"]),
        description=str(raw.get("description", "")),
        powers=powers,
        states=states,
        pairs=pairs,
        sources=sources,
    )
    return world, {str(path): _sha256(path)}


# --------------------------------------------------------------------------- scenarios

def _load_event_file(event_id: str, hashes: dict[str, str]) -> tuple[EventSpec, Path, LocatedDict]:
    path = scenarios_dir() / "events" / f"{event_id}.yaml"
    if not path.is_file():
        raise FileNotFoundError(event_id)
    raw = load_yaml(path)
    try:
        spec = EventSpec.model_validate(dict(raw))
    except ValidationError as e:
        raise _pydantic_error(path, raw, e) from None
    if spec.id != event_id:
        raise InputError(path, f"id {spec.id!r} must match the file name {event_id!r}",
                         line=line_of(raw, ("id",)), field="id")
    hashes[str(path)] = _sha256(path)
    return spec, path, raw


@dataclass(frozen=True)
class _Origin:
    """Where something was written: a file, its parsed data and the location in it."""

    path: Path
    raw: LocatedDict
    loc: tuple = ()

    def error(self, message: str, *rest: Any) -> InputError:
        """Make an error about `loc + rest` in this file, with its line."""
        loc = (*self.loc, *rest)
        return InputError(self.path, message, line=line_of(self.raw, loc),
                          field=format_loc(loc) or None)


@dataclass(frozen=True)
class _EventEntry:
    """An event with where it is written (`at`) and which scenario added it (`added_by`)."""

    spec: EventSpec
    at: _Origin
    added_by: _Origin


@dataclass
class _Partial:
    """A scenario file's content merged with its ancestors, before the world is applied."""

    world_path: Path
    period: PeriodSpec
    period_origin: _Origin
    overrides: dict[str, Any]
    set_origins: dict[str, _Origin]
    events: dict[str, _EventEntry]
    hashes: dict[str, str]


def _load_partial(path: Path, chain: tuple[Path, ...]
                  ) -> tuple[ScenarioFile, _Partial, LocatedDict]:
    raw = load_yaml(path)
    try:
        spec = ScenarioFile.model_validate(dict(raw))
    except ValidationError as e:
        raise _pydantic_error(path, raw, e) from None
    here = _Origin(path, raw)
    hashes = {str(path): _sha256(path)}
    if spec.extends is not None:
        parent = _resolve_path(spec.extends, path.parent, "").resolve()
        if parent in chain or parent == path.resolve():
            names = " -> ".join(p.stem for p in (*chain, path.resolve(), parent))
            raise here.error(f"circular extends ({names})", "extends")
        if not parent.is_file():
            raise here.error(f"no scenario {spec.extends!r} to extend ({parent} is not a file)",
                             "extends")
        _, base, _ = _load_partial(parent, (*chain, path.resolve()))
        hashes.update(base.hashes)
        world_path = base.world_path
        period, period_origin = base.period, base.period_origin
        overrides, set_origins = dict(base.overrides), dict(base.set_origins)
        events = dict(base.events)
    else:
        world_path = _resolve_path(DEFAULT_WORLD, path.parent, "world")
        period, period_origin = PeriodSpec(), here
        overrides, set_origins, events = {}, {}, {}
    if spec.world is not None:
        world_path = _resolve_path(spec.world, path.parent, "world")
        if not world_path.is_file():
            raise here.error(f"world {spec.world!r} not found ({world_path} is not a file)",
                             "world")
    if spec.period is not None:
        # only the ends given here replace the inherited ones
        period = period.model_copy(
            update={k: getattr(spec.period, k) for k in spec.period.model_fields_set})
        period_origin = here
    for key, value in spec.set.items():
        overrides[key] = value
        set_origins[key] = here
    for i, ev in enumerate(spec.remove_events):
        if ev not in events:
            known = ", ".join(sorted(events)) or "none"
            raise here.error(f"unknown event {ev!r} (inherited events: {known})",
                             "remove_events", i)
        del events[ev]
    own_ids: set[str] = set()
    for i, ev in enumerate(spec.events):
        added_by = _Origin(path, raw, ("events", i))
        if isinstance(ev, str):
            if not EVENT_ID_RE.match(ev):
                raise added_by.error(f"{ev!r} is not an event id (snake_case, like "
                                     "ukraine_war_2022) nor an inline event mapping")
            try:
                espec, epath, eraw = _load_event_file(ev, hashes)
            except FileNotFoundError:
                raise added_by.error(f"unknown event {ev!r}: no file scenarios/events/{ev}.yaml"
                                     ) from None
            entry = _EventEntry(espec, _Origin(epath, eraw), added_by)
        else:
            espec = ev
            entry = _EventEntry(espec, added_by, added_by)
        if espec.id in own_ids:
            raise added_by.error(f"event id {espec.id!r} appears twice in this file",
                                 *(("id",) if entry.at is added_by else ()))
        own_ids.add(espec.id)
        events[espec.id] = entry
    part = _Partial(world_path, period, period_origin, overrides, set_origins, events, hashes)
    return spec, part, raw


def _resolve_events(part: _Partial, world: World, path: Path, start: int, end: int
                    ) -> tuple[Event, ...]:
    """Check each event against the world and period and resolve its targets."""
    events = []
    for entry in part.events.values():
        espec, at = entry.spec, entry.at
        q = parse_quarter(espec.at)
        if entry.added_by.path == path and not start <= q <= end:
            span = f"{part.period.start}-{part.period.end}"
            if at is entry.added_by:
                raise at.error(f"quarter {espec.at} is outside the period {span}", "at")
            raise entry.added_by.error(f"event {espec.id!r} fires at {espec.at}, outside the "
                                       f"period {span}")
        effects = []
        for j, eff in enumerate(espec.effects):
            try:
                paths = expand_target(world, eff.target)
            except ValueError as e:
                raise at.error(str(e), "effects", j, "target") from None
            if any(p == ("params", "regional_weighting") for p in paths):
                raise at.error("regional_weighting cannot be changed by an event",
                               "effects", j, "target")
            if eff.op == "scale" and espec.duration is not None and eff.value == 0:
                raise at.error("a temporary scale by 0 cannot be undone; use set",
                               "effects", j, "value")
            if eff.op == "set":
                for p in paths:
                    try:
                        check_value(p, eff.value)
                    except ValueError as e:
                        raise at.error(f"{e} for {eff.target}", "effects", j, "value") from None
            effects.append(Effect(eff.target, eff.op, eff.value, paths))
        events.append(Event(espec.id, espec.at, q, espec.duration, espec.description,
                            tuple(effects)))
    events.sort(key=lambda e: e.quarter)
    return tuple(events)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name, or a scenario file by path, and validate everything.

    Raises:
        InputError: on any problem, as one line naming the file, the line and the field.
    """
    text = str(name_or_path)
    path = Path(text)
    if not path.exists() and "/" not in text and not text.endswith((".yaml", ".yml")):
        shipped = scenarios_dir() / f"{text}.yaml"
        if not shipped.is_file():
            known = ", ".join(sorted(p.stem for p in scenarios_dir().glob("*.yaml")))
            raise InputError(text, f"no such file, nor a shipped scenario (shipped: {known})")
        path = shipped
    read_text(path)  # clear errors for missing files, directories and binaries first
    spec, part, raw = _load_partial(path, ())
    world, whashes = load_world(part.world_path)
    part.hashes.update(whashes)

    start, end = parse_quarter(part.period.start), parse_quarter(part.period.end)
    if end < start:
        raise part.period_origin.error(f"period ends ({part.period.end}) before it starts "
                                       f"({part.period.start})", "period")
    try:
        world, params = apply_set(world, Params(), part.overrides)
    except InputError as e:
        origin = part.set_origins[e.field]
        raise InputError(origin.path, e.message, line=line_of(origin.raw, ("set", e.field)),
                         field=f"set.{e.field}") from None
    events = _resolve_events(part, world, path, start, end)
    return Scenario(
        name=spec.name,
        description=spec.description.strip(),
        path=str(path),
        world=world,
        params=params,
        start=start,
        end=end,
        events=events,
        overrides=dict(part.overrides),
        file_hashes=dict(sorted(part.hashes.items())),
    )


def list_scenarios() -> list[tuple[str, str]]:
    """Shipped scenarios as (name, first line of description), sorted by name."""
    out = []
    for p in sorted(scenarios_dir().glob("*.yaml")):
        try:
            raw = load_yaml(p)
            desc = str(raw.get("description", "")).strip().split("\n")[0]
        except InputError as e:
            desc = f"(invalid: {e})"
        out.append((p.stem, desc))
    return out
