"""Pure `model -> value` functions the DataCollector records each quarter.

Each returns a copy (arrays are updated in place by the model). The runner turns the
recorded arrays into tidy DataFrames. No I/O.
"""

from __future__ import annotations

import numpy as np


def quarter(model) -> str:
    """The quarter just simulated, YYYYQn."""
    return model.quarter_label


def state_influence(model) -> np.ndarray:
    """Total influence share, (J, S)."""
    return model.world.state_influence.copy()


def channel_shares(model) -> np.ndarray:
    """Share of each partner in each channel and state, (C, J, S)."""
    return model.world.channel_shares.copy()


def region_influence(model) -> np.ndarray:
    """Regional influence share per partner, (J,)."""
    return model.world.region_influence.copy()


def region_channels(model) -> np.ndarray:
    """Regional share per channel and partner, (C, J)."""
    return model.world.region_channels.copy()


def pair_metrics(model) -> dict[str, np.ndarray]:
    """Per partner and state: the quantities a user checks against published figures."""
    w = model.world
    return {
        "exports": w.trade_exports.copy(),
        "imports": w.trade_imports.copy(),
        "investment_inflow": w.inflow.copy(),
        "investment_stock": w.investment_stock.copy(),
        "debt": w.debt.copy(),
        "remittances": w.remittances.copy(),
        "security": w.security_provided.copy(),
        "sentiment": w.mood.copy(),
        "tilt": w.tilt.copy(),
        "openness": w.effective_openness().copy(),
        "protest": w.protests.astype(float),
    }


def state_metrics(model) -> dict[str, np.ndarray]:
    """Per state: GDP, debt/GDP (incl. hidden debt), connectivity, growth."""
    w = model.world
    return {
        "gdp": w.gdp.copy(),
        "debt_to_gdp": (w.debt.sum(axis=-2) + w.hidden_debt) / w.gdp,
        "connectivity": w.connectivity.copy(),
        "gdp_growth": w.growth_rate.copy(),
    }


def power_metrics(model) -> dict[str, np.ndarray]:
    """Per power: capacity, budget, commitment and engagement.

    Fiscal capacity and the budget spent (USD bn/yr), the share of capacity the power
    decides to commit now, and accepted engagement this quarter (USD bn).
    """
    w = model.world
    return {"capacity": w.capacity.copy(), "budget": w.budget.copy(),
            "commitment": w.commitment.copy(), "engagement": w.engagement.copy()}


def alignment(model) -> dict[str, np.ndarray]:
    """Each state's alignment terms and score per partner, and its tilt after the move, (J, S)."""
    w = model.world
    return {k: v.copy() for k, v in w.terms.items()} | {"tilt": w.tilt.copy()}


MODEL_REPORTERS = {
    "quarter": quarter,
    "state_influence": state_influence,
    "channel_shares": channel_shares,
    "region_influence": region_influence,
    "region_channels": region_channels,
    "pair_metrics": pair_metrics,
    "state_metrics": state_metrics,
    "power_metrics": power_metrics,
    "alignment": alignment,
}
"""Every reporter, by the name results use."""
