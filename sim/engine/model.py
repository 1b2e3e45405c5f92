"""`InfluenceModel`: the Mesa model of great-power competition in Central Asia.

Builds a `WorldState` and the agents from a validated `Scenario`, steps one quarter at a
time (events, powers in random order, states, influence, record) and keeps a
DataCollector. Never reads files or parses YAML.
"""

from __future__ import annotations

from collections.abc import Sequence

import mesa
import numpy as np
from mesa.agent import AgentSet

from sim.engine import kernels as K
from sim.engine import reporters
from sim.engine import step as step_rules
from sim.engine.agents import PowerAgent, StateAgent
from sim.world.quarters import format_quarter
from sim.world.state import EventSchedule, WorldState
from sim.world.values import Scenario


class InfluenceModel(mesa.Model):
    """Great powers and Central Asian states, one step per quarter.

    Args:
        scenario: A validated scenario (see `sim.scenario.scenarios.load_scenario`).
        rng: Seed or numpy Generator; passed to `mesa.Model` as `rng`. Every random number
            comes from `self.rng`, the same count each quarter whatever happens.
        record: Reporter names the DataCollector records each quarter (default: all of
            `sim.engine.reporters.MODEL_REPORTERS`); recording changes no number.
    """

    def __init__(self, scenario: Scenario, rng: int | np.random.Generator | None = None,
                 record: Sequence[str] = tuple(reporters.MODEL_REPORTERS)):
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
        step_rules.initialise(self.world)
        w = self.world
        self.draws = K.draw_run(self.rng, scenario.n_quarters, w.n_powers, w.n_states,
                                len(w.sectors))
        self.datacollector = mesa.DataCollector(
            model_reporters={name: reporters.MODEL_REPORTERS[name] for name in record})
        # Mesa 3.3.1 keeps a class-level id counter per model (Agent._ids) that holds every
        # model alive for good. All our agents exist by now, so let the model go when done.
        getattr(mesa.Agent, "_ids", {}).pop(self, None)

    @property
    def quarter_label(self) -> str:
        """The last simulated quarter as YYYYQn (the quarter before the start, before step 1)."""
        return format_quarter(self.quarter)

    @property
    def finished(self) -> bool:
        """True once the scenario's last quarter has been simulated."""
        return self.quarter >= self.scenario.end

    def step(self) -> None:
        """Simulate one quarter: events, powers (random order), states, influence, record."""
        if self.finished:
            raise RuntimeError(f"scenario {self.scenario.name} ended at {self.quarter_label}")
        self.quarter += 1
        w = self.world
        draws = K.split_draws(self.draws[self.quarter - self.scenario.start], w.n_powers,
                              w.n_states, len(w.sectors))
        self.last_draws = draws
        for line in self.schedule_events.apply(w, self.quarter):
            self.event_log.append((self.quarter_label, line))
        self.quarter_cache = step_rules.plan_quarter(w, draws)
        w.protests[:] = False
        ordered = self.powers.sort(key=lambda a: draws.order[a.index], ascending=True)
        self.last_order = [a.name for a in ordered]
        ordered.do("act", draws)
        self.states.do("act", draws)
        step_rules.end_quarter(w)
        self.datacollector.collect(self)

    def run(self, n_quarters: int | None = None) -> None:
        """Step to the end of the period (or `n_quarters` more)."""
        n = self.scenario.end - self.quarter if n_quarters is None else n_quarters
        for _ in range(n):
            self.step()
