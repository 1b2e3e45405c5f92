"""One quarter of the model on the world arrays, for one run or a batch of runs.

These functions are the single definition of the model's schedule and bookkeeping: the
Mesa agents call them for their own row or column, and the ensemble engine calls them for
a whole batch of runs at once (arrays with a leading batch axis). All behavioural
arithmetic is in `sim.kernels`; here arrays are sliced, combined and stored. Indexing
uses `...` for the batch axis: power arrays `(..., P)`, state arrays `(..., S)`, pair
arrays `(..., J, S)` with J = powers then `other`, sector arrays `(..., P, S, K)`.
No Mesa import, no I/O.
"""

from __future__ import annotations

import numpy as np

from sim import kernels as K
from sim.kernels import QuarterDraws
from sim.vocabulary import CHANNELS

SENTIMENT_KEYS = ("sentiment_jobs", "sentiment_growth", "sentiment_labour", "sentiment_debt")
ALIGN_KEYS = ("align_economy", "align_security", "align_sentiment", "align_dependence",
              "align_hedging")


def _other_col(w, values, param: str):
    """Append `other`'s value (a parameter) to a per-power array: (..., P) -> (..., J)."""
    tail = np.broadcast_to(w.p(param, 1), values.shape[:-1] + (1,))
    return np.concatenate([values, tail], axis=-1)


def prepare_quarter(w) -> dict[str, np.ndarray]:
    """What every power sees this quarter: sector endowments, project risk, economic size."""
    debt_to_gdp = (w.debt.sum(axis=-2) + w.hidden_debt) / w.gdp
    return {
        "endowment": K.sector_endowment(w.oil, w.gas, w.metals, w.uranium, w.transit,
                                        w.labour, w.connectivity, w.local_processing,
                                        w.p("mining_processing_penalty", 1)),
        "risk": K.project_risk(w.fragility, debt_to_gdp, w.p("risk_fragility", 1),
                               w.p("risk_debt", 1)),
        "size": K.economic_size(w.gdp, w.p("size_elasticity", 1)),
    }


def _take(arr: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """Rows `idx` (one per run, shape (...)) of `arr` along the power axis `axis` (< 0)."""
    shape = idx.shape + (1,) * (-axis)
    return np.take_along_axis(arr, idx.reshape(shape), axis=axis)


def _put(arr: np.ndarray, idx: np.ndarray, axis: int, values: np.ndarray) -> None:
    """Write rows `idx` of `arr` along `axis` (the inverse of `_take`)."""
    shape = idx.shape + (1,) * (-axis)
    np.put_along_axis(arr, idx.reshape(shape), values, axis=axis)


def power_step(w, mover: np.ndarray, draws: QuarterDraws, cache: dict) -> None:
    """The mover of each run (power index, shape (...)) grows its budget, spends, offers security.

    Only the mover's rows are computed and stored, so one call moves one power in a
    single run (Mesa) or one power of every run in a batch (a different one per run).
    """
    P = w.n_powers
    idx = np.asarray(mover)
    budget = K.grow_budget(_take(w.budget, idx, -1), _take(w.budget_growth, idx, -1),
                           _take(draws.budget, idx, -1), w.p("budget_shock_sd", 1))
    _put(w.budget, idx, -1, budget)
    budget_q = budget * _take(w.attention, idx, -1) / 4.0
    openness = _take(w.effective_openness()[..., :P, :], idx, -2)
    values = K.project_values(_take(w.priority, idx, -2), cache["endowment"], openness,
                              cache["risk"], cache["size"], w.connectivity,
                              w.p("fdi_connectivity_elasticity", 1),
                              _take(w.strategic_corridor, idx, -1), w.transit)
    signal = _take(K.rival_signal(w.flow_latest, w.flow_avg), idx, -2)
    spend = K.allocate(budget_q, values, signal, _take(w.rival_response, idx, -1),
                       _take(draws.alloc, idx, -3), w.p("allocation_noise", 3),
                       w.p("allocation_temperature", 2))
    # States decline the part of the loans they do not want; the rest is accepted.
    lend = _take(w.lending_share, idx, -1)[..., :, None]
    appetite = w.borrowing_appetite[..., None, :]
    accepted = 1.0 - lend * (1.0 - appetite)  # (..., 1, S)
    flow = spend * accepted[..., None]
    _put(w.flow, idx, -3, flow)
    latest = flow.sum(axis=-1)
    _put(w.flow_latest, idx, -2, latest)
    loans = w.loans[..., :P, :]
    _put(loans, idx, -2, spend.sum(axis=-1) * lend * appetite)
    w.loans[..., :P, :] = loans
    _put(w.engagement, idx, -1, latest.sum(axis=-1))

    capacity = (_take(w.security_capacity, idx, -1) * _take(w.security_credibility, idx, -1)
                * _take(w.attention, idx, -1))
    sec_values = (w.security_demand[..., None, :] * openness
                  + _take(w.security_ties[..., :P, :], idx, -2))
    split = K.security_split(capacity, sec_values, w.p("security_temperature", 2))
    decay = w.p("security_effort_decay", 2)
    effort = w.security_effort[..., :P, :]
    _put(effort, idx, -2, (1.0 - decay) * _take(effort, idx, -2) + decay * split)
    w.security_effort[..., :P, :] = effort


def state_step(w, s: slice, draws: QuarterDraws) -> None:
    """One quarter of the states in column slice `s`: economy, society, alignment.

    A StateAgent passes its own column; the ensemble passes every state of every run.
    """
    P, o = w.n_powers, w.n_partners - 1
    gdp_old = w.gdp[..., s].copy()

    # Economy: investment inflow, growth, connectivity, stocks, debt, trade, remittances.
    inflow_p = 4.0 * w.flow_latest[..., :, s]  # (..., P, s) USD bn/yr
    total_inflow = inflow_p.sum(axis=-2)
    gdp, rate = K.grow_gdp(gdp_old, w.gdp_growth[..., s], total_inflow,
                           w.p("growth_from_investment", 1), draws.gdp[..., s],
                           w.p("gdp_shock_sd", 1))
    w.gdp[..., s], w.growth_rate[..., s] = gdp, rate
    transport = 4.0 * w.flow[..., :, s, K.SECTOR_TRANSPORT].sum(axis=-2)
    w.connectivity[..., s] = K.improve_connectivity(w.connectivity[..., s], transport, gdp,
                                                    w.p("connectivity_gain", 1))
    ratio = gdp / gdp_old
    dep = 1.0 - w.p("investment_depreciation", 2) / 4.0
    w.investment_stock[..., :P, s] = (w.investment_stock[..., :P, s] * dep
                                      + w.p("equity_share", 2) * w.flow_latest[..., :, s])
    w.investment_stock[..., o, s] *= ratio
    repay = 1.0 - w.debt_repayment[..., None, s] / 4.0
    w.debt[..., :P, s] = w.debt[..., :P, s] * repay + w.loans[..., :P, s]
    w.debt[..., o, s] *= ratio ** w.p("other_debt_gdp_elasticity", 1)
    w.inflow[..., :P, s] = inflow_p
    w.inflow[..., o, s] = w.investment_stock[..., o, s] * w.p("investment_depreciation", 1)

    corridor = _other_col(w, w.corridor_trade, "other_corridor_trade")
    eaeu = np.concatenate([w.eaeu_member, np.zeros(w.eaeu_member.shape[:-1] + (1,))], -1)
    bloc = eaeu[..., :, None] * w.eaeu[..., None, s] * w.p("eaeu_trade_bonus", 2)
    for base, level in (("exports", "trade_exports"), ("imports", "trade_imports")):
        arr = getattr(w, level)
        target = K.trade_target(getattr(w, base)[..., :, s], gdp, w.gdp0[..., s],
                                w.p("trade_gdp_elasticity", 1), w.investment_stock[..., :, s],
                                w.investment_stock0[..., :, s],
                                w.p("trade_investment_elasticity", 2), w.connectivity[..., s],
                                corridor, w.p("trade_connectivity_elasticity", 1),
                                w.trade_affinity[..., :, s], bloc)
        arr[..., :, s] = K.relax(arr[..., :, s], target, w.p("trade_adjustment", 2))
    w.remittances[..., :, s] *= (1.0 + w.p("remittance_growth", 2)) ** 0.25

    # Society: sentiment, scandals, protests.
    inflow_share = K.shares(w.inflow[..., :, s])
    debt_share = K.shares(w.debt[..., :, s])
    own = np.concatenate([w.own_labour_share,
                          np.zeros(w.own_labour_share.shape[:-1] + (1,))], -1)[..., :, None]
    jobs = w.inflow[..., :, s] * (1.0 - own)
    target = K.sentiment_target(w.sentiment[..., :, s], jobs, gdp, rate - w.gdp_growth[..., s],
                                inflow_share, own, inflow_share, w.debt[..., :, s],
                                w.hidden_debt[..., s], debt_share, w.pdict(SENTIMENT_KEYS, 2))
    scandal = np.zeros_like(target)
    scandal[..., :P, :] = draws.scandal[..., :, s]
    w.mood[..., :, s] = K.update_sentiment(w.mood[..., :, s], target,
                                           w.p("sentiment_speed", 2), scandal,
                                           w.p("corruption_shock_sd", 2), w.corruption[..., s],
                                           inflow_share)
    presence = np.minimum(1.0, w.p("protest_presence", 2) * inflow_share[..., :P, :])
    prob = K.protest_probability(w.mood[..., :P, s], w.fragility[..., s], presence,
                                 w.p("protest_threshold", 2), w.p("protest_steepness", 2),
                                 w.p("protest_max_probability", 2))
    protests = np.zeros(target.shape, dtype=bool)
    protests[..., :P, :] = draws.protest[..., :, s] < prob
    w.protests[..., :, s] = protests
    w.protest_count[..., :, s] += protests
    w.damage[..., :, s] = K.protest_damage(w.damage[..., :, s], protests,
                                           w.p("protest_openness_drop", 2),
                                           w.p("openness_recovery", 2))
    align_step(w, s)


def security_provided(w, s: slice) -> np.ndarray:
    """Security each partner provides to the states in `s`: credible ties plus effort."""
    P = w.n_powers
    bonus = (w.p("csto_security_bonus", 2) * w.csto_member[..., :, None] * w.csto[..., None, s]
             + w.p("sco_security_bonus", 2) * w.sco_member[..., :, None] * w.sco[..., None, s])
    out = w.security_ties[..., :, s].copy()
    out[..., :P, :] = (w.security_credibility[..., :, None] * (w.security_ties[..., :P, s] + bonus)
                       + w.security_effort[..., :P, s])
    return out


def align_step(w, s: slice, speed: float | None = None) -> None:
    """Score partners and move the tilt of the states in `s` toward the logit choice."""
    trade = w.trade_exports[..., :, s] + w.trade_imports[..., :, s]
    econ = K.shares(trade + w.inflow[..., :, s] + w.remittances[..., :, s])
    w.security_provided[..., :, s] = security_provided(w, s)
    terms = K.alignment_scores(econ, K.shares(w.security_provided[..., :, s]),
                               w.security_demand[..., s], w.mood[..., :, s],
                               K.shares(w.debt[..., :, s]), K.shares(trade), w.hedging[..., s],
                               w.tilt[..., :, s], w.pdict(ALIGN_KEYS, 2))
    target = K.softmax(terms["score"], w.p("alignment_temperature", 2), axis=-2)
    w.tilt[..., :, s] = K.relax(w.tilt[..., :, s], target,
                                w.p("tilt_speed", 2) if speed is None else speed)
    for k, v in terms.items():
        w.terms.setdefault(k, np.zeros_like(w.tilt))[..., :, s] = v


def end_quarter(w) -> None:
    """Close the quarter: update the moving average of engagement and the influence shares."""
    w.flow_avg = 0.75 * w.flow_avg + 0.25 * w.flow_latest
    compute_influence(w)


def compute_influence(w) -> None:
    """Channel shares, influence per state, and regional shares (GDP or population weights)."""
    values = np.stack([w.trade_exports + w.trade_imports, w.investment_stock, w.debt,
                       w.remittances, w.security_provided, w.tilt], axis=-3)
    weights = np.stack([np.broadcast_to(w.p(f"w_{c}", 0), w.gdp.shape[:-1]) for c in CHANNELS],
                       axis=-1)
    w.channel_shares, w.state_influence = K.influence(values, weights)
    weights_s = w.state_weights()
    w.region_influence = K.regional(w.state_influence, weights_s)
    w.region_channels = K.regional(w.channel_shares, weights_s)


def initialise(w) -> None:
    """Start from a consistent state: expected allocations, steady security effort, tilt."""
    P = w.n_powers
    c = prepare_quarter(w)
    openness = w.effective_openness()[..., :P, :]
    values = K.project_values(w.priority, c["endowment"], openness, c["risk"], c["size"],
                              w.connectivity, w.p("fdi_connectivity_elasticity", 1),
                              w.strategic_corridor, w.transit)
    spend = K.allocate(w.budget * w.attention / 4.0, values, np.zeros(values.shape[:-1]),
                       w.rival_response, np.zeros(values.shape), 0.0,
                       w.p("allocation_temperature", 2))
    w.flow_avg = spend.sum(axis=-1)
    w.flow_latest = w.flow_avg.copy()
    capacity = w.security_capacity * w.security_credibility * w.attention
    sec_values = w.security_demand[..., None, :] * openness + w.security_ties[..., :P, :]
    w.security_effort[..., :P, :] = K.security_split(capacity, sec_values,
                                                     w.p("security_temperature", 2))
    w.inflow[..., :P, :] = 4.0 * w.flow_latest
    every = slice(0, w.n_states)
    for _ in range(60):  # tilt at its fixed point under the starting scores
        align_step(w, every, speed=0.5)
    compute_influence(w)
