"""Scenario, world and event files: YAML in, a frozen, validated `Scenario` out.

All input validation lives here. A scenario names a world file, may extend another
scenario, overrides world values with `set:`, removes inherited events, and adds events
(inline or by id from `scenarios/events/`). Errors raise `InputError`, one line naming
the file, the line and the field; `load_scenario` collects as many as reading can find (an
`InputErrors`, listed one per line by `greatgame check`), with "did you mean" for misspelt
names. Quarters are limited to the years `FIRST_YEAR`-`LAST_YEAR`. No model logic.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sim.errors import InputError, InputErrors, did_you_mean, shorten
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
    is_flag,
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

MAX_EXTENDS = 32
"""Most scenario files in one `extends` chain (the shipped ones use 3)."""
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

    target: str = Field(description="Dotted path into the world, e.g. powers.china.capacity.")
    op: Literal["set", "add", "scale"] = Field(description="set, add or scale.")
    value: float = Field(strict=True, description="The value set, added, or multiplied by.")

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
    duration: int | None = Field(None, ge=1, le=400, strict=True,
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
    set: dict[str, float | str | bool] = Field(default_factory=dict)  # checked per target
    remove_events: list[str] = Field(default_factory=list)
    events: list[EventSpec | str] = Field(default_factory=list)


# --------------------------------------------------------------------------- helpers

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (`list[EventSpec | str]` -> [EventSpec])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _fields_at(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The field names valid at `loc` (a data location) inside `model`, for suggestions."""
    models = [model] if model is not None else []
    for key in loc[:-1]:
        if isinstance(key, int):
            continue
        models = [m2 for m in models if key in m.model_fields
                  for m2 in _models_in(m.model_fields[key].annotation)]
    return [f for m in models for f in m.model_fields]


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


def _pydantic_errors(path: Path, raw: Any, e: ValidationError, prefix: tuple = (),
                     model: type[BaseModel] | None = None) -> InputErrors:
    """Turn pydantic's errors into one-line InputErrors naming field and line, one per place.

    When every branch of a union fails at the same place on the input's type (an event
    that is neither a mapping nor an id), the message lists what each branch expected.
    An unknown field of `model` (at `prefix`) gets a "did you mean" when one is close.
    """
    errors = e.errors()

    def where(err):
        return _data_loc(raw, (*prefix, *err["loc"]), err["type"] == "missing")

    places: dict[tuple, list[dict]] = {}
    lines: dict[tuple, int | None] = {}
    for err in errors:
        loc, line = where(err)
        places.setdefault(loc, []).append(err)
        lines.setdefault(loc, line)
    out = []
    unknown = {loc[:-1] + (did_you_mean(loc[-1], _fields_at(model, loc[len(prefix):])),)
               for loc, same in places.items() if loc and same[0]["type"] == "extra_forbidden"}
    for loc, same in places.items():
        if any(other[:len(loc)] == loc and len(other) > len(loc) for other in places):
            continue  # a union's other branch (`str` for an event mapping): the deeper one
        if (same[0]["type"] == "missing" and loc
                and loc[:-1] + (f" (did you mean {loc[-1]!r}?)",) in unknown):
            continue  # `descripton: ...` says it: "unknown field (did you mean 'description'?)"
        first = same[0]
        if len(same) > 1 and all(err["type"] in TYPE_NOUNS for err in same):
            nouns = dict.fromkeys(TYPE_NOUNS[err["type"]] for err in same)
            msg = "expected " + " or ".join(nouns) + input_note(first)
        else:
            msg = pydantic_message(first, _fields_at(model, loc[len(prefix):]))
        out.append(InputError(path, msg, line=lines[loc], field=format_loc(loc) or None))
    out.sort(key=lambda err: err.line or 0)
    return InputErrors(out)


def _pydantic_error(path: Path, raw: Any, e: ValidationError, prefix: tuple = (),
                    model: type[BaseModel] | None = None) -> InputErrors:
    """All of pydantic's errors as one `InputErrors` (its `str` is the first, on one line)."""
    return _pydantic_errors(path, raw, e, prefix, model)


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
        name = sorted(map(str, extra))[0]
        raise InputError(path, f"unknown field {shorten(name)}"
                         + did_you_mean(name, ("value", "source", "unit", "note")),
                         line=where, field=dotted)
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
            raise InputError(path, "unknown attribute" + did_you_mean(k, model.model_fields),
                             line=line_of(raw, (*loc, k)), field=".".join(map(str, (*loc, k))))
        values[k] = _unwrap(path, raw, (*loc, k), v, sources, f"{key_prefix}.{k}")
        if isinstance(values[k], bool) and is_flag(model, k):
            values[k] = float(values[k])
    try:  # strict: `true` or text where a number is expected is an error, not 1 or a parse
        return model.model_validate(values, strict=True)
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
            raise InputError(path, "unknown field" + did_you_mean(k, sorted(allowed)),
                             line=line_of(raw, (k,)), field=str(k))
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
        raise _pydantic_error(path, raw, e, model=EventSpec) from None
    if spec.id != event_id:
        raise InputError(path, f"id {spec.id!r} must match the file name {event_id!r}",
                         line=line_of(raw, ("id",)), field="id")
    hashes[str(path)] = _sha256(path)
    return spec, path, raw


def _exists(path: Path) -> bool:
    """`path.exists()`, false for a name the system refuses (too long, bad bytes)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _shipped_event_ids() -> list[str]:
    return sorted(p.stem for p in (scenarios_dir() / "events").glob("*.yaml"))


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


def _load_partial(path: Path, chain: tuple[Path, ...], errors: list[InputError]
                  ) -> tuple[ScenarioFile, _Partial, LocatedDict]:
    """Read a scenario file and its ancestors, merged.

    Problems that do not stop the reading (an unknown event id, a bad `remove_events`
    entry) are added to `errors`.

    Raises:
        InputError: a problem after which the file cannot be read further.
    """
    raw = load_yaml(path)
    try:
        spec = ScenarioFile.model_validate(dict(raw))
    except ValidationError as e:
        raise _pydantic_error(path, raw, e, model=ScenarioFile) from None
    here = _Origin(path, raw)
    hashes = {str(path): _sha256(path)}
    if spec.extends is not None:
        parent = _resolve_path(spec.extends, path.parent, "").resolve()
        if parent in chain or parent == path.resolve():
            names = " -> ".join(p.stem for p in (*chain, path.resolve(), parent))
            raise here.error(f"circular extends ({names})", "extends")
        if len(chain) + 1 >= MAX_EXTENDS:
            start = chain[0].name if chain else path.name
            raise here.error(f"extends chain longer than {MAX_EXTENDS} files (from {start} to "
                             f"{path.name} -> {parent.name})", "extends")
        if not _exists(parent):
            raise here.error(f"no scenario {shorten(spec.extends)} to extend "
                             f"({shorten(str(parent), 80)} is not a file)", "extends")
        try:  # a file that is no scenario at all (.env, a FIFO) is this line's mistake
            load_yaml(parent)
        except InputError as e:
            if e.field is None:
                where = f" (its line {e.line})" if e.line is not None else ""
                raise here.error(f"cannot extend {shorten(spec.extends, 120)}: {e.message}{where}",
                                 "extends") from None
        _, base, _ = _load_partial(parent, (*chain, path.resolve()), errors)
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
        if not _exists(world_path):
            raise here.error(f"world {shorten(spec.world)} not found "
                             f"({shorten(str(world_path), 80)} is not a file)", "world")
        try:
            read_text(world_path)
        except InputError as e:
            raise here.error(f"cannot read world {shorten(spec.world)}: {e.message}",
                             "world") from None
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
            errors.append(here.error(f"unknown event {shorten(ev)}"
                                     + (did_you_mean(ev, events)
                                        or f" (inherited events: {known})"),
                                     "remove_events", i))
            continue
        del events[ev]
    own_ids: set[str] = set()
    for i, ev in enumerate(spec.events):
        added_by = _Origin(path, raw, ("events", i))
        if isinstance(ev, str):
            if not EVENT_ID_RE.match(ev):
                errors.append(added_by.error(f"{shorten(ev)} is not an event id (snake_case, "
                                             "like ukraine_war_2022) nor an inline event "
                                             "mapping"))
                continue
            try:
                espec, epath, eraw = _load_event_file(ev, hashes)
            except FileNotFoundError:
                errors.append(added_by.error(
                    f"unknown event {ev!r}: no file scenarios/events/{ev}.yaml"
                    + did_you_mean(ev, _shipped_event_ids())))
                continue
            entry = _EventEntry(espec, _Origin(epath, eraw), added_by)
        else:
            espec = ev
            entry = _EventEntry(espec, added_by, added_by)
        if espec.id in own_ids:
            errors.append(added_by.error(f"event id {espec.id!r} appears twice in this file",
                                         *(("id",) if entry.at is added_by else ())))
            continue
        own_ids.add(espec.id)
        events[espec.id] = entry
    part = _Partial(world_path, period, period_origin, overrides, set_origins, events, hashes)
    return spec, part, raw


def _resolve_events(part: _Partial, world: World, path: Path, start: int, end: int,
                    errors: list[InputError]) -> tuple[Event, ...]:
    """Check each event against the world and period and resolve its targets.

    Events with a bad effect are left out and their problems added to `errors`.
    """
    events = []
    for entry in part.events.values():
        espec, at = entry.spec, entry.at
        q = parse_quarter(espec.at)
        if entry.added_by.path == path and not start <= q <= end:
            span = f"{part.period.start}-{part.period.end}"
            if at is entry.added_by:
                errors.append(at.error(f"quarter {espec.at} is outside the period {span}",
                                       "at"))
            else:
                errors.append(entry.added_by.error(f"event {espec.id!r} fires at {espec.at}, "
                                                   f"outside the period {span}"))
        effects, bad = [], False
        for j, eff in enumerate(espec.effects):
            problems = []
            try:
                paths = expand_target(world, eff.target)
            except ValueError as e:
                errors.append(at.error(str(e), "effects", j, "target"))
                bad = True
                continue
            if any(p == ("params", "regional_weighting") for p in paths):
                problems.append(("regional_weighting cannot be changed by an event", "target"))
            if eff.op == "scale" and espec.duration is not None and eff.value == 0:
                problems.append(("a temporary scale by 0 cannot be undone; use set", "value"))
            if eff.op == "set":
                for p in paths:
                    try:
                        check_value(p, eff.value)
                    except ValueError as e:
                        problems.append((f"{e} for {eff.target}", "value"))
                        break
            for message, key in problems:
                errors.append(at.error(message, "effects", j, key))
            bad = bad or bool(problems)
            effects.append(Effect(eff.target, eff.op, eff.value, paths))
        if not bad:
            events.append(Event(espec.id, espec.at, q, espec.duration, espec.description,
                                tuple(effects)))
    events.sort(key=lambda e: e.quarter)
    return tuple(events)


def _raise_all(errors: list[InputError]) -> None:
    """Raise the collected problems, if any, as one `InputErrors` in file and line order."""
    if not errors:
        return
    order = {}
    for err in errors:
        order.setdefault(err.path, len(order))
    flat = [x for err in errors for x in getattr(err, "errors", [err])]
    unique = list(dict.fromkeys(flat))
    unique.sort(key=lambda err: (order.get(err.path, len(order)), err.line or 0))
    raise InputErrors(unique)


def scenario_path(name_or_path: str | Path) -> Path:
    """The file a scenario name (shipped) or path stands for.

    Raises:
        InputError: neither a file nor a shipped scenario's name (with a "did you mean").
    """
    text = str(name_or_path)
    path = Path(text)
    if not _exists(path) and "/" not in text and not text.endswith((".yaml", ".yml")):
        shipped = scenarios_dir() / f"{text}.yaml"
        if not _exists(shipped):
            names = sorted(p.stem for p in scenarios_dir().glob("*.yaml"))
            raise InputError(shorten(text).strip("'"), "no such file, nor a shipped scenario"
                             + (did_you_mean(text, names)
                                or f" (shipped: {', '.join(names)})"))
        path = shipped
    return path


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name, or a scenario file by path, and validate everything.

    Problems are collected as far as reading can go, so that the error (an `InputErrors`)
    lists all of them (`errors`); its `str` is the first, on one line.

    Raises:
        InputError: on any problem, as one line naming the file, the line and the field.
    """
    path = scenario_path(name_or_path)
    read_text(path)  # clear errors for missing files, directories and binaries first
    errors: list[InputError] = []
    spec, part, raw = _load_partial(path, (), errors)
    world, whashes = load_world(part.world_path)
    part.hashes.update(whashes)

    start, end = parse_quarter(part.period.start), parse_quarter(part.period.end)
    if end < start:
        errors.append(part.period_origin.error(f"period ends ({part.period.end}) before it "
                                               f"starts ({part.period.start})", "period"))
    set_errors: list[InputError] = []
    world, params = apply_set(world, Params(), part.overrides, set_errors, strict=True)
    for e in set_errors:
        origin = part.set_origins[e.field]
        errors.append(InputError(origin.path, e.message,
                                 line=line_of(origin.raw, ("set", e.field)),
                                 field=f"set.{e.field}"))
    events = _resolve_events(part, world, path, start, end, errors)
    _raise_all(errors)
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


def load_cached(name_or_path: str | Path, end: str | None = None) -> Scenario:
    """`load_scenario`, run to `end` if given, read once per process while its file is unchanged.

    Scenarios are frozen, so one copy serves every caller (sweep workers, calibration tasks,
    the classroom page). The copy is keyed by the file's resolved path and modification time
    (a file it extends, its world or events edited meanwhile are not noticed).
    """
    path = scenario_path(name_or_path).resolve()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None  # let load_scenario say what is wrong with it
    return _load_cached(str(path), stamp, end)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, stamp: int | None, end: str | None) -> Scenario:
    scenario = load_scenario(path)
    return scenario.with_end(end) if end else scenario


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
