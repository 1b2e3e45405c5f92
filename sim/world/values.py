"""The typed values a scenario file becomes: `World`, `Event`, `Effect` and `Scenario`.

Frozen dataclasses holding validated values (the vocabulary's pydantic models), with the
rules for changing them safely: dotted targets (`powers.china.capacity`, `states.*.hedging`)
and overrides checked against each attribute's type and range. Reading YAML files is
`sim.scenario`'s job; nothing here touches disk.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from sim.errors import InputError, did_you_mean, shorten
from sim.world.quarters import format_quarter, parse_quarter
from sim.world.vocabulary import OTHER, PairAttrs, Params, PowerAttrs, StateAttrs

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
        """Return the same scenario run to another last quarter.

        Raises:
            InputError: the quarter is malformed or before the start.
        """
        try:
            q = parse_quarter(end)
        except ValueError as e:
            raise InputError(None, str(e), field="--end") from None
        if q < self.start:
            raise InputError(None, f"{end} is before the start {format_quarter(self.start)}",
                                field="--end")
        return replace(self, end=q)

    def with_params(self, **values: Any) -> Scenario:
        """Return the same scenario with some model parameters changed (validated)."""
        data = self.params.model_dump() | values
        try:
            params = Params(**data)
        except ValidationError as e:
            err = e.errors()[0]
            raise InputError(None, pydantic_message(err),
                                field="params." + ".".join(map(str, err["loc"]))) from None
        return replace(self, params=params)


    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        """Return the scenario with world values, parameters or event effect values changed.

        Keys are `set:` paths (`powers.china.capacity_growth`, `states.*.hedging`,
        `params.w_trade`) or event effect values written `events.<id>.effects[<i>].value`
        (for example how hard the 2022 war hits Russia). Used by sweeps and the classroom.

        Raises:
            InputError: a key names nothing, or a value is out of its range.
        """
        world_keys = {k: v for k, v in overrides.items() if not k.startswith("events.")}
        event_keys = {k: v for k, v in overrides.items() if k.startswith("events.")}
        world, params = apply_set(self.world, self.params, world_keys)
        events = list(self.events)
        for key, value in event_keys.items():
            m = re.fullmatch(r"events\.([a-z][a-z0-9_]*)\.effects\[(\d+)\]\.value", key)
            if not m:
                raise InputError(None, "expected events.<id>.effects[<i>].value", field=key)
            eid, idx = m.group(1), int(m.group(2))
            pos = next((i for i, e in enumerate(events) if e.id == eid), None)
            if pos is None:
                known = ", ".join(e.id for e in events) or "none"
                raise InputError(None, f"no event {eid!r} in {self.name} (events: {known})",
                                    field=key)
            ev = events[pos]
            if idx >= len(ev.effects):
                raise InputError(None, f"event {eid} has {len(ev.effects)} effects",
                                    field=key)
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InputError(None, f"expected a number, got {value!r}", field=key) from None
            if number != number or number in (float("inf"), float("-inf")):
                raise InputError(None, "must be a finite number", field=key)
            effects = list(ev.effects)
            effects[idx] = replace(effects[idx], value=number)
            events[pos] = replace(ev, effects=tuple(effects))
        merged = dict(self.overrides) | {k: v for k, v in overrides.items()}
        return replace(self, world=world, params=params, events=tuple(events), overrides=merged)

    def without_events(self, *event_ids: str) -> Scenario:
        """Return the scenario with some events switched off (unknown ids are errors)."""
        known = {e.id for e in self.events}
        for eid in event_ids:
            if eid not in known:
                raise InputError(None, f"no event {eid!r} in {self.name}", field="events")
        return replace(self, events=tuple(e for e in self.events if e.id not in event_ids))





# --------------------------------------------------------------------------- messages

TYPE_NOUNS = {
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "list_type": "a list",
    "string_type": "a string",
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
}
"""Pydantic type errors, as what was expected (their own text can name internal classes)."""


def input_note(err: dict, msg: str = "") -> str:
    """` (got X)` for a scalar input not already quoted in the message (clipped)."""
    if "input" not in err or isinstance(err["input"], dict | list):
        return ""
    value = err["input"]
    got = ("true" if value else "false") if isinstance(value, bool) else shorten(value)
    return "" if repr(value) in msg else f" (got {got})"


def pydantic_message(err: dict, fields: list[str] | None = None) -> str:
    """Say what a pydantic error expected and what was given, briefly."""
    kind = err["type"]
    if kind == "extra_forbidden":
        name = err["loc"][-1] if err["loc"] else None
        return "unknown field" + did_you_mean(name, fields or ())
    if kind == "missing":
        return "required field is missing"
    if kind in TYPE_NOUNS:
        return f"expected {TYPE_NOUNS[kind]}" + input_note(err)
    msg = err["msg"].removeprefix("Value error, ")
    return msg + input_note(err, msg)


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
            hint = did_you_mean(name, options)
            raise ValueError(f"unknown {what} {shorten(name)}" + (hint or (
                f" (expected one of {', '.join(options)} or *)")))
        return [name]

    def attr(name, model, what):
        if name not in model.model_fields:
            raise ValueError(f"unknown {what} attribute {shorten(name)}"
                             + did_you_mean(name, model.model_fields))
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


_MODELS: dict[str, type[BaseModel]] = {
    "powers": PowerAttrs,
    "states": StateAttrs,
    "pairs": PairAttrs,
    "params": Params,
}


@functools.cache
def _field_adapter(model: type[BaseModel], attr: str) -> TypeAdapter:
    info = model.model_fields[attr]
    if not info.metadata:
        return TypeAdapter(info.annotation)
    return TypeAdapter(Annotated[info.annotation, *info.metadata])


def is_flag(model: type[BaseModel], attr: str) -> bool:
    """Whether an attribute is a 0/1 flag (unit `flag`), which may be written true/false."""
    extra = model.model_fields[attr].json_schema_extra
    return isinstance(extra, dict) and extra.get("unit") == "flag"


def check_value(path: tuple[str, ...], value: Any, strict: bool = False) -> Any:
    """Validate one value for the attribute at a resolved path (type, range, finiteness).

    Args:
        path: The resolved attribute path.
        value: The value.
        strict: As written in a file: no `true` or text where a number is expected (a flag,
            unit `flag`, may be `true` or `false`).

    Raises:
        ValueError: the value does not fit the attribute, saying what was expected.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number (got {value!r})")
    if isinstance(value, bool) and is_flag(_MODELS[path[0]], path[-1]):
        value = float(value)
    try:
        out = _field_adapter(_MODELS[path[0]], path[-1]).validate_python(value, strict=strict)
    except ValidationError as e:
        raise ValueError(pydantic_message(e.errors()[0])) from None
    if isinstance(out, float) and not math.isfinite(out):
        raise ValueError(f"must be a finite number (got {value!r})")
    return out


def apply_set(world: World, params: Params, overrides: dict[str, Any],
               errors: list[InputError] | None = None, strict: bool = False
               ) -> tuple[World, Params]:
    """Apply `set:` overrides, checking each key and value on its own.

    Args:
        world: The world the keys name.
        params: The model parameters before the overrides.
        overrides: `set:` keys and values.
        errors: If given, bad entries are collected here and skipped instead of raised.
        strict: Values as written in a file (see `check_value`).

    Raises:
        InputError: a key (the error's field) names nothing in the world, or its value does
            not fit.
    """
    powers = {k: v.model_dump() for k, v in world.powers.items()}
    states = {k: v.model_dump() for k, v in world.states.items()}
    pairs = {k: v.model_dump() for k, v in world.pairs.items()}
    pdict = params.model_dump()
    for key, value in overrides.items():
        try:
            for path in expand_target(world, key):
                checked = check_value(path, value, strict)
                if path[0] == "params":
                    pdict[path[1]] = checked
                elif path[0] == "powers":
                    powers[path[1]][path[2]] = checked
                elif path[0] == "states":
                    states[path[1]][path[2]] = checked
                else:
                    pairs[(path[1], path[2])][path[3]] = checked
        except ValueError as e:
            if errors is None:
                raise InputError(None, str(e), field=key) from None
            errors.append(InputError(None, str(e), field=key))
    new_world = World(
        name=world.name,
        description=world.description,
        powers={k: PowerAttrs(**v) for k, v in powers.items()},
        states={k: StateAttrs(**v) for k, v in states.items()},
        pairs={k: PairAttrs(**v) for k, v in pairs.items()},
        sources=world.sources,
    )
    return new_world, Params(**pdict)
