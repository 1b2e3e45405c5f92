"""The world as numpy arrays, and scheduled events applied to it.

`WorldState` turns a validated `Scenario` into arrays (powers `(P,)`, states `(S,)`, pairs
`(J, S)` with J = powers then `other`) plus the dynamic quantities the model updates each
quarter. `EventSchedule` applies and undoes event effects. No file access, no Mesa.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.world.values import Effect, Event, Scenario
from sim.world.vocabulary import SECTORS, PairAttrs, Params, PowerAttrs, StateAttrs, field_table

PIPELINE_QUARTERS = 4
"""Quarters between a power's decision to commit more (or less) of its capacity and the
money reaching projects: deals are signed, then disbursed (an assumption: about a year)."""

PRIORITY_FIELDS = tuple(f"priority_{k}" for k in SECTORS)


def _bounds() -> dict[str, tuple[float, float]]:
    """Allowed range of every attribute and parameter, from the vocabulary."""
    out = {}
    for model in (PowerAttrs, StateAttrs, PairAttrs, Params):
        for row in field_table(model):
            if isinstance(row["default"], str):
                continue
            lo = -np.inf if row["min"] is None else float(row["min"])
            hi = np.inf if row["max"] is None else float(row["max"])
            out[row["name"]] = (lo, hi)
    return out


BOUNDS = _bounds()


class WorldState:
    """All arrays of one run. Attribute names follow the vocabulary; see docs/ODD.md.

    Pair attributes hold anchors (exports, imports, security_ties, sentiment, openness,
    trade_affinity) or stocks (investment_stock, debt, remittances); the dynamic trade
    levels, mood, protest damage, tilt and security effort live in their own arrays.
    """

    # The actors and their counts.
    powers: list[str]
    partners: list[str]  # the powers, then `other`
    states: list[str]
    sectors: list[str]
    n_powers: int
    n_partners: int
    n_states: int
    batch: int | None  # runs in a batch (a leading axis on every array), None for one run
    params: dict[str, Any]  # model parameters (floats; (B,) arrays in a batch)

    # Power attributes (PowerAttrs), (P,) (see the vocabulary).
    capacity: np.ndarray
    capacity_growth: np.ndarray
    stake: np.ndarray
    lending_share: np.ndarray
    own_labour_share: np.ndarray
    security_capacity: np.ndarray
    security_credibility: np.ndarray
    attention: np.ndarray
    strategic_corridor: np.ndarray
    corridor_trade: np.ndarray
    rival_response: np.ndarray
    csto_member: np.ndarray
    eaeu_member: np.ndarray
    sco_member: np.ndarray
    sanctioned: np.ndarray
    labour_demand_growth: np.ndarray
    migration_policy: np.ndarray
    priority: np.ndarray  # (P, sectors): the priority_<sector> attributes

    # State attributes (StateAttrs), (S,) (see the vocabulary).
    gdp: np.ndarray
    gdp_growth: np.ndarray
    population: np.ndarray
    oil: np.ndarray
    gas: np.ndarray
    metals: np.ndarray
    uranium: np.ndarray
    labour: np.ndarray
    transit: np.ndarray
    connectivity: np.ndarray
    fragility: np.ndarray
    hedging: np.ndarray
    security_demand: np.ndarray
    local_processing: np.ndarray
    corruption: np.ndarray
    hidden_debt: np.ndarray
    borrowing_appetite: np.ndarray
    debt_repayment: np.ndarray
    csto: np.ndarray
    eaeu: np.ndarray
    sco: np.ndarray
    trade_openness: np.ndarray

    # Pair attributes (PairAttrs): anchors and stocks, (J, S) (see the vocabulary).
    exports: np.ndarray
    imports: np.ndarray
    investment_stock: np.ndarray
    debt: np.ndarray
    remittances: np.ndarray
    security_ties: np.ndarray
    sentiment: np.ndarray
    openness: np.ndarray
    trade_affinity: np.ndarray
    basing: np.ndarray
    reporting_ratio: np.ndarray

    # References at the start of the run.
    gdp0: np.ndarray  # (S,)
    investment_stock0: np.ndarray  # (J, S)
    trade_openness0: np.ndarray  # (S,)
    migration_policy0: np.ndarray  # (P,)
    base_trade_share: np.ndarray  # (J, S) each partner's share of the state's starting trade
    # Dynamic state, updated each quarter.
    budget: np.ndarray  # (P,) chosen engagement budget, USD bn/yr (capacity x commitment)
    commitment: np.ndarray  # (P,) share of capacity the power decides to commit now
    committed: np.ndarray  # (P,) share decided a pipeline ago, spent now
    pipeline: np.ndarray  # (PIPELINE, P) decisions not yet disbursed, oldest first
    influence_ref: np.ndarray  # (J,) moving average of regional shares (rivals' gains)
    demand: np.ndarray  # (S,) security demand after fragility and unrest
    unrest: np.ndarray  # (S,) moving share of recent quarters with protests
    remittance_trend: np.ndarray  # (J, S) remittances at the start's migration policy, USD bn/yr
    swapped: np.ndarray  # (J, S) debt swapped for assets this quarter, USD bn
    trade_exports: np.ndarray  # (J, S) USD bn/yr
    trade_imports: np.ndarray  # (J, S) USD bn/yr
    mood: np.ndarray  # (J, S) sentiment now
    damage: np.ndarray  # (J, S) protest damage to openness
    tilt: np.ndarray  # (J, S) share of each state's alignment
    security_effort: np.ndarray  # (J, S)
    security_provided: np.ndarray  # (J, S)
    flow: np.ndarray  # (P, S, sectors) this quarter's spending, USD bn
    flow_latest: np.ndarray  # (P, S) latest quarterly engagement per pair
    flow_avg: np.ndarray  # (P, S) its moving average (the rival signal)
    inflow: np.ndarray  # (J, S) accepted inflow, USD bn/yr
    loans: np.ndarray  # (J, S) new loans this quarter, USD bn
    engagement: np.ndarray  # (P,) accepted engagement this quarter, USD bn
    growth_rate: np.ndarray  # (S,)
    protests: np.ndarray  # (J, S) bool
    protest_count: np.ndarray  # (J, S) int
    terms: dict[str, np.ndarray]  # alignment terms of the last move, (J, S) each
    channel_shares: np.ndarray  # (channels, J, S)
    state_influence: np.ndarray  # (J, S)
    region_influence: np.ndarray  # (J,)
    region_channels: np.ndarray  # (channels, J)

    def __init__(self, scenario: Scenario):
        w = scenario.world
        self.powers = w.power_names
        self.partners = w.partner_names
        self.states = w.state_names
        self.sectors = list(SECTORS)
        self.params = scenario.params.model_dump()
        self.batch: int | None = None
        P, J, S = len(self.powers), len(self.partners), len(self.states)
        self.n_powers, self.n_partners, self.n_states = P, J, S

        for name in PowerAttrs.model_fields:
            if name not in PRIORITY_FIELDS:
                setattr(self, name, np.array([getattr(w.powers[p], name) for p in self.powers],
                                             dtype=float))
        self.priority = np.array([[getattr(w.powers[p], f) for f in PRIORITY_FIELDS]
                                  for p in self.powers], dtype=float)
        for name in StateAttrs.model_fields:
            setattr(self, name, np.array([getattr(w.states[s], name) for s in self.states],
                                         dtype=float))
        for name in PairAttrs.model_fields:
            setattr(self, name, np.array([[getattr(w.pairs[(j, s)], name) for s in self.states]
                                          for j in self.partners], dtype=float))

        # Start-of-run references.
        self.gdp0 = self.gdp.copy()
        self.investment_stock0 = self.investment_stock.copy()
        self.trade_openness0 = self.trade_openness.copy()
        self.migration_policy0 = self.migration_policy.copy()
        base = self.exports + self.imports
        self.base_trade_share = base / np.maximum(base.sum(axis=0, keepdims=True), 1e-12)
        # Dynamic state.
        self.trade_exports = self.exports.copy()
        self.trade_imports = self.imports.copy()
        self.mood = self.sentiment.copy()
        self.budget = np.zeros(P)
        self.commitment = np.zeros(P)
        self.committed = np.zeros(P)
        self.pipeline = np.zeros((PIPELINE_QUARTERS, P))
        self.influence_ref = np.zeros(J)
        self.demand = self.security_demand.copy()
        self.unrest = np.zeros(S)
        self.remittance_trend = self.remittances.copy()
        self.swapped = np.zeros((J, S))
        self.damage = np.zeros((J, S))
        self.tilt = np.full((J, S), 1.0 / J)
        self.security_effort = np.zeros((J, S))
        self.security_provided = np.zeros((J, S))
        self.flow = np.zeros((P, S, len(SECTORS)))  # this quarter's spending, USD bn
        self.flow_latest = np.zeros((P, S))  # latest quarterly engagement per pair
        self.flow_avg = np.zeros((P, S))  # moving average of it (rival signal)
        self.inflow = np.zeros((J, S))  # accepted inflow, USD bn/yr
        self.loans = np.zeros((J, S))  # new loans this quarter, USD bn
        self.engagement = np.zeros(P)  # accepted engagement this quarter, USD bn
        self.growth_rate = self.gdp_growth.copy()
        self.protests = np.zeros((J, S), dtype=bool)
        self.protest_count = np.zeros((J, S), dtype=int)
        self.terms: dict[str, np.ndarray] = {}
        self.channel_shares = np.zeros((6, J, S))
        self.state_influence = np.zeros((J, S))
        self.region_influence = np.zeros(J)
        self.region_channels = np.zeros((6, J))

    _SHARED = ("powers", "partners", "states", "sectors", "n_powers", "n_partners", "n_states",
               "batch", "params", "terms")

    @classmethod
    def stack(cls, worlds: list[WorldState]) -> WorldState:
        """One batch world from several runs' worlds: every array gains a leading run axis.

        Parameters become arrays of shape (B,); all runs must share the world's actors and
        the regional weighting.

        Raises:
            ValueError: the worlds do not have the same actors or weighting.
        """
        first = worlds[0]
        for w in worlds[1:]:
            if (w.powers, w.states) != (first.powers, first.states):
                raise ValueError("a batch needs worlds with the same powers and states")
            if w.params["regional_weighting"] != first.params["regional_weighting"]:
                raise ValueError("a batch needs one regional_weighting")
        # Runs that share a world object (replications of one point) are built once.
        uniq = list({id(w): w for w in worlds}.values())
        pos = {id(w): i for i, w in enumerate(uniq)}
        inverse = np.array([pos[id(w)] for w in worlds])
        out = cls.__new__(cls)
        for key in vars(first):
            if key in cls._SHARED:
                continue
            setattr(out, key, np.stack([getattr(w, key) for w in uniq])[inverse])
        for key in ("powers", "partners", "states", "sectors", "n_powers", "n_partners",
                    "n_states"):
            setattr(out, key, getattr(first, key))
        out.batch = len(worlds)
        out.terms = {}
        out.params = {k: (v if isinstance(v, str) else
                          np.array([float(w.params[k]) for w in uniq])[inverse])
                      for k, v in first.params.items()}
        return out

    def p(self, name: str, rank: int):
        """A parameter, shaped to broadcast against arrays with `rank` non-batch axes.

        One run: the float itself. A batch: the (B,) values reshaped to (B, 1, ..., 1).
        """
        v = self.params[name]
        if self.batch is None:
            return v
        return v.reshape((-1,) + (1,) * rank)

    def pdict(self, names, rank: int) -> dict:
        """Several parameters at once, shaped as by `p`."""
        return {n: self.p(n, rank) for n in names}

    def other_index(self) -> int:
        """Row of `other` in pair arrays."""
        return self.n_partners - 1

    def state_weights(self) -> np.ndarray:
        """Weights of the regional average: GDP or population."""
        return self.population if self.params["regional_weighting"] == "population" else self.gdp

    def effective_openness(self) -> np.ndarray:
        """Openness after protest damage, (..., J, S)."""
        return np.maximum(self.openness, 0.0) * (1.0 - self.damage)

    def locate(self, path: tuple[str, ...]) -> tuple[str, tuple]:
        """The array name and index an effect path refers to."""
        kind = path[0]
        if kind == "params":
            return "params", (path[1],)
        if kind == "powers":
            p = self.powers.index(path[1])
            if path[2] in PRIORITY_FIELDS:
                return "priority", (p, PRIORITY_FIELDS.index(path[2]))
            return path[2], (p,)
        if kind == "states":
            return path[2], (self.states.index(path[1]),)
        return path[3], (self.partners.index(path[1]), self.states.index(path[2]))

    def get(self, path: tuple[str, ...], run: int | None = None):
        """Current value at a path: a float, or every run's values (B,) in a batch.

        In a batch, `run=None` means every run at once.
        """
        name, idx = self.locate(path)
        if name == "params":
            v = self.params[idx[0]]
            if self.batch is None or run is None:
                return v if self.batch is None else v.copy()
            return float(v[run])
        arr = getattr(self, name)
        if self.batch is None:
            return float(arr[idx])
        if run is None:
            return arr[(slice(None), *idx)].copy()
        return float(arr[(run, *idx)])

    def put(self, path: tuple[str, ...], value, run: int | None = None):
        """Write a value at a path, clipped to the attribute's allowed range.

        In a batch, `run=None` writes every run's value at once.

        Returns:
            The value written.
        """
        lo, hi = BOUNDS[path[-1]]
        value = np.clip(value, lo, hi)
        value = float(value) if np.ndim(value) == 0 else value
        name, idx = self.locate(path)
        if name == "params":
            if self.batch is None:
                self.params[idx[0]] = value
            elif run is None:
                self.params[idx[0]][:] = value
            else:
                self.params[idx[0]][run] = value
            return value
        arr = getattr(self, name)
        if self.batch is None:
            arr[idx] = value
        elif run is None:
            arr[(slice(None), *idx)] = value
        else:
            arr[(run, *idx)] = value
        return value


_OPS = {
    "set": lambda old, v: v,
    "add": lambda old, v: old + v,
    "scale": lambda old, v: old * v,
}


@dataclass
class _Undo:
    quarter: int
    event_id: str
    path: tuple[str, ...]
    op: str
    old: float | np.ndarray  # value before the event (per run in a batch)
    new: float | np.ndarray  # value the event wrote (after clipping)


class EventSchedule:
    """Fires scenario events at their quarter and undoes temporary ones when they end.

    Works on one run, one run of a batch (`run=b`), or every run of a batch at once
    (`run=None`), in which case `values` may give each effect a value per run:
    {(event index, effect index): array (B,)}.
    """

    def __init__(self, events: tuple[Event, ...],
                 values: dict[tuple[int, int], np.ndarray] | None = None):
        self.events = events
        self._values = values or {}
        self._index = {id(ev): i for i, ev in enumerate(events)}
        self._by_quarter: dict[int, list[Event]] = {}
        for ev in events:
            self._by_quarter.setdefault(ev.quarter, []).append(ev)
        self._pending: dict[int, list[_Undo]] = {}

    def apply(self, world: WorldState, quarter: int, run: int | None = None) -> list[str]:
        """End the events due to end, then fire those due now.

        Returns:
            Log lines, e.g. "start ukraine_war_2022", "end kyrgyz_debt_crisis".
        """
        log = []
        due = self._pending.pop(quarter, [])
        for u in reversed(due):  # undo in reverse order of application
            cur = world.get(u.path, run)
            if u.op == "set":
                world.put(u.path, u.old, run)
            elif u.op == "add":
                world.put(u.path, cur - (u.new - u.old), run)
            else:
                nz = np.asarray(u.new) != 0
                safe = np.where(nz, u.new, 1.0)
                world.put(u.path, np.where(nz, cur * u.old / safe, u.old), run)
        for eid in dict.fromkeys(u.event_id for u in due):
            log.append(f"end {eid}")
        for ev in self._by_quarter.get(quarter, ()):
            for j, eff in enumerate(ev.effects):
                value = self._values.get((self._index[id(ev)], j), eff.value)
                self._fire(world, ev, eff, value, quarter, run)
            log.append(f"start {ev.id}")
        return log

    def _fire(self, world: WorldState, ev: Event, eff: Effect, value, quarter: int,
              run: int | None) -> None:
        for path in eff.paths:
            old = world.get(path, run)
            new = world.put(path, _OPS[eff.op](old, value), run)
            if ev.duration is not None:
                end = quarter + ev.duration
                self._pending.setdefault(end, []).append(
                    _Undo(end, ev.id, path, eff.op, old, new))
