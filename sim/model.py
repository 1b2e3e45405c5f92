"""`InfluenceModel`: the Mesa model of great-power competition in Central Asia.

Builds a `WorldState` and the agents from a validated `Scenario`, steps one quarter at a
time (events, powers in random order, states, influence, record) and keeps a
DataCollector. Never reads files or parses YAML.
"""

from __future__ import annotations

import mesa
import numpy as np
from mesa.agent import AgentSet

from sim import kernels as K
from sim import reporters
from sim.agents import PowerAgent, StateAgent, align_step
from sim.scenario import Scenario, format_quarter
from sim.vocabulary import CHANNELS
from sim.world import EventSchedule, WorldState


class InfluenceModel(mesa.Model):
    """Great powers and Central Asian states, one step per quarter.

    Args:
        scenario: A validated scenario (see `sim.scenario.load_scenario`).
        rng: Seed or numpy Generator; passed to `mesa.Model` as `rng`. Every random number
            comes from `self.rng`, the same count each quarter whatever happens.
    """

    def __init__(self, scenario: Scenario, rng: int | np.random.Generator | None = None):
        super().__init__(rng=rng)
        self.scenario = scenario
        self.world = WorldState(scenario)
        self.schedule_events = EventSchedule(scenario.events)
        self.quarter = scenario.start - 1  # index of the last simulated quarter
        self.event_log: list[tuple[str, str]] = []
        self.quarter_cache: dict[str, np.ndarray] = {}
        self.last_order: list[str] = []
        self.powers = AgentSet(
            [PowerAgent(self, i, n) for i, n in enumerate(self.world.powers)], random=self.random)
        self.states = AgentSet(
            [StateAgent(self, i, n) for i, n in enumerate(self.world.states)], random=self.random)
        self._initialise()
        self.datacollector = mesa.DataCollector(model_reporters=reporters.MODEL_REPORTERS)

    @property
    def quarter_label(self) -> str:
        """The last simulated quarter as YYYYQn (the quarter before the start, before step 1)."""
        return format_quarter(self.quarter)

    @property
    def finished(self) -> bool:
        """True once the scenario's last quarter has been simulated."""
        return self.quarter >= self.scenario.end

    def _prepare_quarter(self) -> None:
        w, p = self.world, self.world.params
        debt_to_gdp = (w.debt.sum(axis=0) + w.hidden_debt) / w.gdp
        self.quarter_cache = {
            "endowment": K.sector_endowment(w.oil, w.gas, w.metals, w.uranium, w.transit,
                                            w.labour, w.connectivity, w.local_processing,
                                            p["mining_processing_penalty"]),
            "risk": K.project_risk(w.fragility, debt_to_gdp, p["risk_fragility"],
                                   p["risk_debt"]),
            "size": K.economic_size(w.gdp, p["size_elasticity"]),
        }

    def _initialise(self) -> None:
        """Start from a consistent state: expected allocations, steady security effort, tilt."""
        w, p = self.world, self.world.params
        self._prepare_quarter()
        c = self.quarter_cache
        values = K.project_values(w.priority, c["endowment"], w.effective_openness()[:-1],
                                  c["risk"], c["size"], w.connectivity,
                                  p["fdi_connectivity_elasticity"], w.strategic_corridor,
                                  w.transit)
        spend = K.allocate(w.budget * w.attention / 4.0, values, np.zeros(values.shape[:2]),
                           w.rival_response, np.zeros(values.shape), 0.0,
                           p["allocation_temperature"])
        w.flow_avg = spend.sum(axis=-1)
        w.flow_latest = w.flow_avg.copy()
        capacity = w.security_capacity * w.security_credibility * w.attention
        sec_values = w.security_demand * w.effective_openness()[:-1] + w.security_ties[:-1]
        w.security_effort[:-1] = K.security_split(capacity, sec_values, p["security_temperature"])
        w.inflow[:-1] = 4.0 * w.flow_latest
        all_states = slice(0, w.n_states)
        for _ in range(60):  # tilt at its fixed point under the starting scores
            align_step(w, all_states, speed=0.5)
        self._compute_influence()

    def _compute_influence(self) -> None:
        w, p = self.world, self.world.params
        values = np.stack([
            w.trade_exports + w.trade_imports,
            w.investment_stock,
            w.debt,
            w.remittances,
            w.security_provided,
            w.tilt,
        ])
        weights = np.array([p[f"w_{c}"] for c in CHANNELS])
        w.channel_shares, w.state_influence = K.influence(values, weights)
        w.region_influence = K.regional(w.state_influence, w.state_weights())
        self.region_channels = K.regional(w.channel_shares, w.state_weights())

    def step(self) -> None:
        """Simulate one quarter: events, powers (random order), states, influence, record."""
        if self.finished:
            raise RuntimeError(f"scenario {self.scenario.name} ended at {self.quarter_label}")
        self.quarter += 1
        w = self.world
        draws = K.draw_quarter(self.rng, w.n_powers, w.n_states, len(w.sectors))
        for line in self.schedule_events.apply(w, self.quarter):
            self.event_log.append((self.quarter_label, line))
        self._prepare_quarter()
        w.protests[:] = False
        ordered = self.powers.sort(key=lambda a: draws.order[a.index])
        self.last_order = [a.name for a in ordered]
        ordered.do("act", draws)
        self.states.do("act", draws)
        w.flow_avg = 0.75 * w.flow_avg + 0.25 * w.flow_latest
        self._compute_influence()
        self.datacollector.collect(self)

    def run(self, n_quarters: int | None = None) -> None:
        """Step to the end of the period (or `n_quarters` more)."""
        n = self.scenario.end - self.quarter if n_quarters is None else n_quarters
        for _ in range(n):
            self.step()
