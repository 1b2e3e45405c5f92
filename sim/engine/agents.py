"""Mesa agents: thin wrappers that hold an actor's index and call the shared step rules.

A `PowerAgent` spends its quarterly budget, reacting to rivals who moved before it; a
`StateAgent` updates its economy, society and alignment. Both act on the model's
`WorldState` arrays (their own row or column) through `sim.engine.step`, whose arithmetic lives
in `sim.engine.kernels`; the ensemble engine calls the same functions for whole batches of runs.
No file access, no printing.
"""

from __future__ import annotations

import mesa

from sim.engine import step
from sim.engine.kernels import QuarterDraws


class PowerAgent(mesa.Agent):
    """A great power (china, russia, eu, us): row `index` of the power and pair arrays."""

    def __init__(self, model: mesa.Model, index: int, name: str):
        super().__init__(model)
        self.index = index
        self.name = name

    def act(self, draws: QuarterDraws) -> None:
        """Split this quarter's budget over (state, sector) projects, reacting to rivals.

        The budget, project utilities and security effort were set for every power at the
        start of the quarter (`sim.engine.step.plan_quarter`): they do not depend on who moves
        first.
        """
        step.power_step(self.model.world, self.index, self.model.quarter_cache)


class StateAgent(mesa.Agent):
    """A Central Asian state: column `index` of the state and pair arrays."""

    def __init__(self, model: mesa.Model, index: int, name: str):
        super().__init__(model)
        self.index = index
        self.name = name

    def act(self, draws: QuarterDraws) -> None:
        """Economy, then society (sentiment, protests), then alignment, for this state."""
        step.state_step(self.model.world, slice(self.index, self.index + 1), draws)
