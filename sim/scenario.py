"""Scenario, world and event files: YAML in, a frozen, validated `Scenario` out.

All input validation lives here. A scenario names a world file, may extend another
scenario, overrides world values with `set:`, removes inherited events, and adds events
(inline or by id from `scenarios/events/`). Errors raise `ScenarioError`, one line naming
the file, the line and the field. No model logic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sim.vocabulary import OTHER, PairAttrs, Params, PowerAttrs, StateAttrs
from sim.yamlsafe import InputError, LocatedDict, line_of, load_yaml, read_text

ScenarioError = InputError
"""Raised for any bad scenario, world or event file (a ValueError)."""

QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")
DEFAULT_WORLD = "central_asia"


def scenarios_dir() -> Path:
    """The folder of shipped scenarios: `scenarios/` at the project root."""
    return Path(__file__).resolve().parent.parent / "scenarios"


# --------------------------------------------------------------------------- quarters

def parse_quarter(text: Any) -> int:
    """Turn `2025Q4` into a quarter index (year * 4 + quarter - 1).

    Raises:
        ValueError: the text is not of the form YYYYQn.
    """
    m = QUARTER_RE.match(str(text).strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"expected a quarter like 2025Q4, got {text!r}")
    return int(m.group(1)) * 4 + int(m.group(2)) - 1


def format_quarter(index: int) -> str:
    """Turn a quarter index back into `YYYYQn`."""
    return f"{index // 4}Q{index % 4 + 1}"


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

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Unique snake_case id.")
    at: str = Field(description="Quarter the event fires, YYYYQn.")
    duration: int | None = Field(None, ge=1, le=400, description="Quarters it lasts; omit for permanent.")
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

    start: str = "2015Q1"
    end: str = "2035Q4"

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


# --------------------------------------------------------------------------- resolved objects

@dataclass(frozen=True)
class Effect:
    """A validated effect with its target resolved to concrete paths (no wildcards)."""

    target: str
    op: str
    value: float
    paths: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Event:
    """A validated event with its quarter index."""

    id: str
    at: str
    quarter: int
    duration: int | None
    description: str
    effects: tuple[Effect, ...]


@dataclass(frozen=True)
class World:
    """A world's initial values (plain floats) and where each value comes from."""

    name: str
    description: str
    powers: dict[str, PowerAttrs]
    states: dict[str, StateAttrs]
    pairs: dict[tuple[str, str], PairAttrs]
    sources: dict[str, str]

    @property
    def power_names(self) -> list[str]:
        """Acting powers in file order (without `other`)."""
        return list(self.powers)

    @property
    def partner_names(self) -> list[str]:
        """Acting powers then `other`."""
        return [*self.powers, OTHER]

    @property
    def state_names(self) -> list[str]:
        """States in file order."""
        return list(self.states)


@dataclass(frozen=True)
class Scenario:
    """A fully resolved scenario: world with `set:` applied, parameters, period, events."""

    name: str
    description: str
    path: str
    world: World
    params: Params
    start: int
    end: int
    events: tuple[Event, ...]
    overrides: dict[str, float | str]
    file_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def n_quarters(self) -> int:
        """Number of simulated quarters."""
        return self.end - self.start + 1

    def quarters(self) -> list[str]:
        """Quarter labels of the period."""
        return [format_quarter(q) for q in range(self.start, self.end + 1)]

    def with_end(self, end: str) -> Scenario:
        """The same scenario run to another last quarter.

        Raises:
            ScenarioError: the quarter is malformed or before the start.
        """
        try:
            q = parse_quarter(end)
        except ValueError as e:
            raise ScenarioError(None, str(e), field="--end") from None
        if q < self.start:
            raise ScenarioError(None, f"{end} is before the start {format_quarter(self.start)}",
                                field="--end")
        return _replace(self, end=q)

    def with_params(self, **values: Any) -> Scenario:
        """The same scenario with some model parameters changed (validated)."""
        data = self.params.model_dump() | values
        try:
            params = Params(**data)
        except ValidationError as e:
            err = e.errors()[0]
            raise ScenarioError(None, err["msg"], field="params." + ".".join(map(str, err["loc"])))
        return _replace(self, params=params)


def _replace(obj, **kw):
    from dataclasses import replace

    return replace(obj, **kw)


# --------------------------------------------------------------------------- helpers

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pydantic_error(path: Path, raw: Any, e: ValidationError, prefix: tuple = ()) -> InputError:
    """The first pydantic error as a one-line InputError with the line of the field."""
    err = e.errors()[0]
    loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x in ("EventSpec", "str")))
    loc = tuple(x for x in loc if not (isinstance(x, str) and x.startswith("function-")))
    full = prefix + loc
    line = line_of(raw, full)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif "input" in err and err["type"] not in ("missing",):
        got = err["input"]
        if not isinstance(got, dict | list):
            msg = f"{msg} (got {got!r})"
    return InputError(path, msg, line=line, field=".".join(str(x) for x in full) or None)


def _resolve_path(name: str, base_dir: Path, kind: str) -> Path:
    """A name in scenarios/<kind>/ or a path relative to `base_dir`."""
    root = scenarios_dir()
    sub = root / kind if kind else root
    if "/" not in name and "\\" not in name and not name.endswith((".yaml", ".yml")):
        return sub / f"{name}.yaml"
    p = Path(name)
    return p if p.is_absolute() else (base_dir / p)


# --------------------------------------------------------------------------- world files

def _unwrap(path: Path, raw: LocatedDict, loc: tuple, node: Any, sources: dict, key: str) -> Any:
    """A world value is `{value: x, source: "..."}`; return x and record the source."""
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
    return node["value"]


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
        ScenarioError: on any problem, naming file, line and field.
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


# --------------------------------------------------------------------------- targets

def expand_target(world: World, target: str) -> tuple[tuple[str, ...], ...]:
    """Resolve a dotted target (with `*` wildcards) to concrete paths.

    Grammar: `powers.P.attr`, `powers.P.toward.S.attr`, `other.toward.S.attr`,
    `states.S.attr`, `params.name`; P and S may be `*`.

    Raises:
        ValueError: the target names nothing in the world, with what was expected.
    """
    parts = target.split(".")

    def pick(name, options, what):
        if name == "*":
            return list(options)
        if name not in options:
            raise ValueError(f"unknown {what} {name!r} (expected one of {', '.join(options)}"
                             " or *)")
        return [name]

    def attr(name, model, what):
        if name not in model.model_fields:
            raise ValueError(f"unknown {what} attribute {name!r}")
        return name

    head = parts[0]
    if head == "powers" and len(parts) == 3:
        return tuple(("powers", p, attr(parts[2], PowerAttrs, "power"))
                     for p in pick(parts[1], world.powers, "power"))
    if head == "powers" and len(parts) == 5 and parts[2] == "toward":
        a = attr(parts[4], PairAttrs, "pair")
        return tuple(("pairs", p, s, a) for p in pick(parts[1], world.powers, "power")
                     for s in pick(parts[3], world.states, "state"))
    if head == OTHER and len(parts) == 4 and parts[1] == "toward":
        a = attr(parts[3], PairAttrs, "pair")
        return tuple(("pairs", OTHER, s, a) for s in pick(parts[2], world.states, "state"))
    if head == "states" and len(parts) == 3:
        return tuple(("states", s, attr(parts[2], StateAttrs, "state"))
                     for s in pick(parts[1], world.states, "state"))
    if head == "params" and len(parts) == 2:
        return (("params", attr(parts[1], Params, "model parameter")),)
    raise ValueError(
        "target must look like powers.P.attr, powers.P.toward.S.attr, other.toward.S.attr, "
        "states.S.attr or params.name"
    )


def _apply_set(world: World, params: Params, overrides: dict[str, Any]) -> tuple[World, Params]:
    """Apply `set:` overrides; raises ValueError (with the key) on bad paths or values."""
    powers = {k: v.model_dump() for k, v in world.powers.items()}
    states = {k: v.model_dump() for k, v in world.states.items()}
    pairs = {k: v.model_dump() for k, v in world.pairs.items()}
    pdict = params.model_dump()
    for key, value in overrides.items():
        for path in expand_target(world, key):
            if path[0] == "params":
                pdict[path[1]] = value
            elif isinstance(value, str):
                raise ValueError(f"{key}: expected a number, got {value!r}")
            elif path[0] == "powers":
                powers[path[1]][path[2]] = value
            elif path[0] == "states":
                states[path[1]][path[2]] = value
            else:
                pairs[(path[1], path[2])][path[3]] = value
    new_world = World(
        name=world.name,
        description=world.description,
        powers={k: PowerAttrs(**v) for k, v in powers.items()},
        states={k: StateAttrs(**v) for k, v in states.items()},
        pairs={k: PairAttrs(**v) for k, v in pairs.items()},
        sources=world.sources,
    )
    return new_world, Params(**pdict)


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


@dataclass
class _Partial:
    """A scenario file's content merged with its ancestors, before the world is applied."""

    world_path: Path
    period: PeriodSpec
    overrides: dict[str, Any]
    events: dict[str, tuple[EventSpec, Path, Any, tuple]]  # id -> spec, file, raw, loc
    hashes: dict[str, str]


def _load_partial(path: Path, chain: tuple[Path, ...]) -> tuple[ScenarioFile, _Partial, LocatedDict]:
    raw = load_yaml(path)
    try:
        spec = ScenarioFile.model_validate(dict(raw))
    except ValidationError as e:
        raise _pydantic_error(path, raw, e) from None
    hashes = {str(path): _sha256(path)}
    if spec.extends:
        parent = _resolve_path(spec.extends, path.parent, "").resolve()
        line = line_of(raw, ("extends",))
        if parent in chain or parent == path.resolve():
            names = " -> ".join(p.stem for p in (*chain, path.resolve(), parent))
            raise InputError(path, f"circular extends ({names})", line=line, field="extends")
        if not parent.is_file():
            raise InputError(path, f"extends {spec.extends!r}: no such scenario ({parent})",
                             line=line, field="extends")
        _, base, _ = _load_partial(parent, (*chain, path.resolve()))
        hashes.update(base.hashes)
        world_path = base.world_path
        period = base.period
        overrides = dict(base.overrides)
        events = dict(base.events)
    else:
        world_path = _resolve_path(DEFAULT_WORLD, path.parent, "world")
        period = PeriodSpec()
        overrides, events = {}, {}
    if spec.world:
        world_path = _resolve_path(spec.world, path.parent, "world")
        if not world_path.is_file():
            raise InputError(path, f"world {spec.world!r} not found ({world_path})",
                             line=line_of(raw, ("world",)), field="world")
    if spec.period:
        period = spec.period
    overrides.update(spec.set)
    for i, ev in enumerate(spec.remove_events):
        if ev not in events:
            known = ", ".join(sorted(events)) or "none"
            raise InputError(path, f"unknown event {ev!r} (inherited events: {known})",
                             line=line_of(raw, ("remove_events", i)), field=f"remove_events[{i}]")
        del events[ev]
    own_ids: set[str] = set()
    for i, ev in enumerate(spec.events):
        loc = ("events", i)
        if isinstance(ev, str):
            try:
                espec, epath, eraw = _load_event_file(ev, hashes)
            except FileNotFoundError:
                raise InputError(path, f"unknown event {ev!r}: no file scenarios/events/{ev}.yaml",
                                 line=line_of(raw, loc), field=f"events[{i}]") from None
            entry = (espec, epath, eraw, ())
        else:
            entry = (ev, path, raw, loc)
            espec = ev
        if espec.id in own_ids:
            raise InputError(path, f"event id {espec.id!r} appears twice", line=line_of(raw, loc),
                             field=f"events[{i}].id")
        own_ids.add(espec.id)
        events[espec.id] = entry
    return spec, _Partial(world_path, period, overrides, events, hashes), raw


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name, or a scenario file by path, and validate everything.

    Raises:
        ScenarioError: on any problem, as one line naming the file, the line and the field.
    """
    text = str(name_or_path)
    path = Path(text)
    if not path.exists() and "/" not in text and not text.endswith((".yaml", ".yml")):
        shipped = scenarios_dir() / f"{text}.yaml"
        if not shipped.is_file():
            known = ", ".join(sorted(p.stem for p in scenarios_dir().glob("*.yaml")))
            raise ScenarioError(None, f"no scenario named {text!r} (shipped: {known})")
        path = shipped
    read_text(path)  # clear errors for missing files, directories and binaries first
    spec, part, raw = _load_partial(path, ())
    world, whashes = load_world(part.world_path)
    part.hashes.update(whashes)

    try:
        start, end = parse_quarter(part.period.start), parse_quarter(part.period.end)
    except ValueError as e:  # pragma: no cover - validated by PeriodSpec
        raise InputError(path, str(e), field="period") from None
    if end < start:
        raise InputError(path, f"period ends ({part.period.end}) before it starts "
                         f"({part.period.start})", line=line_of(raw, ("period",)), field="period")

    for key in part.overrides:
        try:
            expand_target(world, key)
        except ValueError as e:
            raise InputError(path, str(e), line=line_of(raw, ("set", key)),
                             field=f"set.{key}") from None
    try:
        world, params = _apply_set(world, Params(), part.overrides)
    except ValidationError as e:
        err = e.errors()[0]
        bad = str(err["loc"][0]) if err["loc"] else ""
        key = next((k for k in part.overrides if k.endswith("." + bad) or k == bad), bad)
        raise InputError(path, f"{err['msg']} (got {err.get('input')!r})",
                         line=line_of(raw, ("set", key)), field=f"set.{key}") from None
    except ValueError as e:
        raise InputError(path, str(e), line=line_of(raw, ("set",)), field="set") from None

    events = []
    for eid, (espec, epath, eraw, loc) in part.events.items():
        q = parse_quarter(espec.at)
        if not start <= q <= end and epath == path:
            raise InputError(epath, f"quarter {espec.at} is outside the period "
                             f"{part.period.start}-{part.period.end}",
                             line=line_of(eraw, (*loc, "at")), field=".".join(
                                 map(str, (*loc, "at"))).replace("events.", "events[", 1)
                             .replace(".at", "].at") if loc else "at")
        effects = []
        for j, eff in enumerate(espec.effects):
            eloc = (*loc, "effects", j, "target")
            try:
                paths = expand_target(world, eff.target)
            except ValueError as e:
                fld = f"events[{loc[1]}].effects[{j}].target" if loc else f"effects[{j}].target"
                raise InputError(epath, str(e), line=line_of(eraw, eloc), field=fld) from None
            if paths[0][0] == "params" and paths[0][1] == "regional_weighting":
                raise InputError(epath, "regional_weighting cannot be changed by an event",
                                 line=line_of(eraw, eloc), field="target")
            if eff.op == "scale" and espec.duration is not None and eff.value == 0:
                raise InputError(epath, "a temporary scale by 0 cannot be undone; use set",
                                 line=line_of(eraw, (*loc, "effects", j, "value")), field="value")
            effects.append(Effect(eff.target, eff.op, eff.value, paths))
        events.append(Event(espec.id, espec.at, q, espec.duration, espec.description,
                            tuple(effects)))
    events.sort(key=lambda e: e.quarter)
    return Scenario(
        name=spec.name,
        description=spec.description.strip(),
        path=str(path),
        world=world,
        params=params,
        start=start,
        end=end,
        events=tuple(events),
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
