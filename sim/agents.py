"""Mesa agents: thin wrappers that hold an actor's index and call the kernels.

A `PowerAgent` spends its quarterly budget and security effort; a `StateAgent` updates its
economy, society and alignment. Both read and write the shared `WorldState` arrays of the
model (their own row or column); all arithmetic is in `sim.kernels`. No file access, no
printing.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim import kernels as K
from sim.kernels import QuarterDraws


class PowerAgent(mesa.Agent):
    """A great power (china, russia, eu, us): row `index` of the power and pair arrays."""

    def __init__(self, model: mesa.Model, index: int, name: str):
        super().__init__(model)
        self.index = index
        self.name = name

    def act(self, draws: QuarterDraws) -> None:
        """Grow the budget, split it over (state, sector) projects, then split security effort."""
        w, p, i = self.model.world, self.model.world.params, self.index
        sl = slice(i, i + 1)
        w.budget[i] = K.grow_budget(w.budget[i], w.budget_growth[i], draws.budget[i],
                                    p["budget_shock_sd"])
        budget_q = w.budget[sl] * w.attention[sl] / 4.0
        cache = self.model.quarter_cache
        values = K.project_values(
            w.priority[sl], cache["endowment"], w.effective_openness()[sl], cache["risk"],
            cache["size"], w.connectivity, p["fdi_connectivity_elasticity"],
            w.strategic_corridor[sl], w.transit)
        signal = K.rival_signal(w.flow_latest, w.flow_avg)[sl]
        spend = K.allocate(budget_q, values, signal, w.rival_response[sl], draws.alloc[sl],
                           p["allocation_noise"], p["allocation_temperature"])
        # States decline the part of the loans they do not want; the rest is accepted.
        lend = w.lending_share[i]
        accepted = 1.0 - lend * (1.0 - w.borrowing_appetite)
        w.flow[i] = spend[0] * accepted[:, None]
        w.flow_latest[i] = w.flow[i].sum(axis=-1)
        w.loans[i] = spend[0].sum(axis=-1) * lend * w.borrowing_appetite
        w.engagement[i] = w.flow_latest[i].sum()

        capacity = (w.security_capacity[sl] * w.security_credibility[sl] * w.attention[sl])
        sec_values = w.security_demand * w.effective_openness()[sl] + w.security_ties[sl]
        split = K.security_split(capacity, sec_values, p["security_temperature"])
        decay = p["security_effort_decay"]
        w.security_effort[i] = (1.0 - decay) * w.security_effort[i] + decay * split[0]


class StateAgent(mesa.Agent):
    """A Central Asian state: column `index` of the state and pair arrays."""

    def __init__(self, model: mesa.Model, index: int, name: str):
        super().__init__(model)
        self.index = index
        self.name = name

    def act(self, draws: QuarterDraws) -> None:
        """Economy, then society (sentiment, protests), then alignment, for this state."""
        state_step(self.model.world, slice(self.index, self.index + 1), draws)


def state_step(w, s: slice, draws: QuarterDraws) -> None:
    """One quarter of the states in column slice `s` (all arithmetic through kernels).

    Works on one state (a StateAgent passes its own column) or on all of them at once.
    """
    p = w.params
    P, o = w.n_powers, w.other_index()
    gdp_old = w.gdp[s].copy()

    # Economy: investment inflow, growth, connectivity, stocks, debt, trade, remittances.
    inflow_p = 4.0 * w.flow_latest[:, s]  # (P, s) USD bn/yr
    total_inflow = inflow_p.sum(axis=0)
    gdp, rate = K.grow_gdp(gdp_old, w.gdp_growth[s], total_inflow, p["growth_from_investment"],
                           draws.gdp[s], p["gdp_shock_sd"])
    w.gdp[s], w.growth_rate[s] = gdp, rate
    transport = 4.0 * w.flow[:, s, K.SECTOR_TRANSPORT].sum(axis=0)
    w.connectivity[s] = K.improve_connectivity(w.connectivity[s], transport, gdp,
                                               p["connectivity_gain"])
    ratio = gdp / gdp_old
    dep = 1.0 - p["investment_depreciation"] / 4.0
    w.investment_stock[:P, s] = (w.investment_stock[:P, s] * dep
                                 + p["equity_share"] * w.flow_latest[:, s])
    w.investment_stock[o, s] *= ratio
    w.debt[:P, s] = w.debt[:P, s] * (1.0 - w.debt_repayment[s] / 4.0) + w.loans[:P, s]
    w.debt[o, s] *= ratio ** p["other_debt_gdp_elasticity"]
    w.inflow[:P, s] = inflow_p
    w.inflow[o, s] = w.investment_stock[o, s] * p["investment_depreciation"]

    corridor = np.append(w.corridor_trade, p["other_corridor_trade"])
    bloc = np.append(w.eaeu_member, 0.0)[:, None] * w.eaeu[s] * p["eaeu_trade_bonus"]
    conn = w.connectivity[s]
    for base, level in ((w.exports, w.trade_exports), (w.imports, w.trade_imports)):
        target = K.trade_target(base[:, s], gdp, w.gdp0[s], p["trade_gdp_elasticity"],
                                w.investment_stock[:, s],
                                w.investment_stock0[:, s], p["trade_investment_elasticity"],
                                conn, corridor, p["trade_connectivity_elasticity"],
                                w.trade_affinity[:, s], bloc)
        level[:, s] = K.relax(level[:, s], target, p["trade_adjustment"])
    w.remittances[:, s] *= (1.0 + p["remittance_growth"]) ** 0.25

    # Society: sentiment, scandals, protests.
    inflow_share = K.shares(w.inflow[:, s])
    debt_share = K.shares(w.debt[:, s])
    own_labour = np.append(w.own_labour_share, 0.0)[:, None]
    jobs = w.inflow[:, s] * (1.0 - own_labour)
    target = K.sentiment_target(w.sentiment[:, s], jobs, gdp, rate - w.gdp_growth[s],
                                inflow_share, own_labour, inflow_share, w.debt[:, s],
                                w.hidden_debt[s], debt_share, p)
    scandal = np.zeros_like(target)
    scandal[:P] = draws.scandal[:, s]
    w.mood[:, s] = K.update_sentiment(w.mood[:, s], target, p["sentiment_speed"], scandal,
                                      p["corruption_shock_sd"], w.corruption[s], inflow_share)
    presence = np.minimum(1.0, p["protest_presence"] * inflow_share[:P])
    prob = K.protest_probability(w.mood[:P, s], w.fragility[s], presence, p["protest_threshold"],
                                 p["protest_steepness"], p["protest_max_probability"])
    protests = np.zeros((w.n_partners, gdp.shape[-1]), dtype=bool)
    protests[:P] = draws.protest[:, s] < prob
    w.protests[:, s] = protests
    w.protest_count[:, s] += protests
    w.damage[:, s] = K.protest_damage(w.damage[:, s], protests, p["protest_openness_drop"],
                                      p["openness_recovery"])

    # Alignment: score each partner, move the tilt toward the logit choice.
    align_step(w, s)


def security_provided(w, s: slice) -> np.ndarray:
    """Security each partner provides to the states in `s`: credible ties plus effort, (J, s)."""
    p = w.params
    P = w.n_powers
    bonus = (p["csto_security_bonus"] * w.csto_member[:, None] * w.csto[s]
             + p["sco_security_bonus"] * w.sco_member[:, None] * w.sco[s])
    out = w.security_ties[:, s].copy()
    out[:P] = (w.security_credibility[:, None] * (w.security_ties[:P, s] + bonus)
               + w.security_effort[:P, s])
    return out


def align_step(w, s: slice, speed: float | None = None) -> None:
    """Score partners and move the tilt of the states in `s` toward the logit choice."""
    p = w.params
    trade = w.trade_exports[:, s] + w.trade_imports[:, s]
    econ = K.shares(trade + w.inflow[:, s] + w.remittances[:, s])
    w.security_provided[:, s] = security_provided(w, s)
    terms = K.alignment_scores(econ, K.shares(w.security_provided[:, s]),
                               w.security_demand[s], w.mood[:, s], K.shares(w.debt[:, s]),
                               K.shares(trade), w.hedging[s], w.tilt[:, s], p)
    target = K.softmax(terms["score"], p["alignment_temperature"], axis=-2)
    w.tilt[:, s] = K.relax(w.tilt[:, s], target, p["tilt_speed"] if speed is None else speed)
    for k, v in terms.items():
        w.terms.setdefault(k, np.zeros_like(w.tilt))[:, s] = v
