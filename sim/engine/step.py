"""One quarter of the model on the world arrays, for one run or a batch of runs.

These functions are the single definition of the model's schedule and bookkeeping: the
Mesa agents call them for their own row or column, and the ensemble engine calls them for
a whole batch of runs at once (arrays with a leading batch axis). All behavioural
arithmetic is in `sim.engine.kernels`; here arrays are sliced, combined and stored. Indexing
uses `...` for the batch axis: power arrays `(..., P)`, state arrays `(..., S)`, pair
arrays `(..., J, S)` with J = powers then `other`, sector arrays `(..., P, S, K)`.
No Mesa import, no I/O.
"""

from __future__ import annotations

import numpy as np

from sim.engine import kernels as K
from sim.engine.kernels import QuarterDraws
from sim.world.state import PIPELINE_QUARTERS  # noqa: F401 (documented here too)
from sim.world.vocabulary import CHANNELS

SENTIMENT_KEYS = ("sentiment_jobs", "sentiment_growth", "sentiment_labour", "sentiment_debt")
ALIGN_KEYS = ("align_economy", "align_security", "align_sentiment", "align_dependence",
              "align_hedging", "fragility_sentiment")


def _other_col(w, values, param: str):
    """Append `other`'s value (a parameter) to a per-power array: (..., P) -> (..., J)."""
    tail = np.broadcast_to(w.p(param, 1), values.shape[:-1] + (1,))
    return np.concatenate([values, tail], axis=-1)


def outlook(w) -> dict[str, np.ndarray]:
    """What every power sees of the states: sector endowments, risk, size, openness, values."""
    P = w.n_powers
    debt_to_gdp = (K.rsum(w.debt, axis=-2) + w.hidden_debt) / w.gdp
    endowment = K.sector_endowment(w.oil, w.gas, w.metals, w.uranium, w.transit, w.labour,
                                   w.connectivity, w.local_processing,
                                   w.p("mining_processing_penalty", 1))
    risk = K.project_risk(w.fragility, debt_to_gdp, w.p("risk_fragility", 1),
                          w.p("risk_debt", 1))
    size = K.economic_size(w.gdp, w.p("size_elasticity", 1))
    openness = w.effective_openness()[..., :P, :]
    values = K.project_values(w.priority, endowment, openness, risk, size, w.connectivity,
                              w.p("fdi_connectivity_elasticity", 1), w.strategic_corridor,
                              w.transit)
    return {"openness": openness, "values": values, "burden": debt_to_gdp}


def _security(w, openness) -> np.ndarray:
    """Each power's split of its committed security effort over the states, (..., P, S)."""
    P = w.n_powers
    capacity = w.security_capacity * w.security_credibility * w.committed
    sec_values = (w.demand[..., None, :] * openness + w.security_ties[..., :P, :]
                  + w.p("basing_pull", 2) * w.basing[..., :P, :])
    return K.security_split(capacity, sec_values, w.p("security_temperature", 2))


def choose_engagement(w, fill: bool = False) -> None:
    """Each power decides what share of its capacity to commit, and spends an earlier share.

    It spends the share it decided `PIPELINE_QUARTERS` ago times its capacity now.

    The share rises with its stake and rivals' gains and falls with a secure lead or
    distraction (`kernels.commitment`). `fill` starts the pipeline at today's decision.
    """
    P = w.n_powers
    threat, lead = K.rival_pressure(w.region_influence[..., :P], w.influence_ref[..., :P])
    assets = K.rsum(w.investment_stock[..., :P, :] + w.debt[..., :P, :], axis=-1)
    stake = K.asset_stake(w.stake, assets, w.assets0, w.p("asset_stake_elasticity", 1))
    w.commitment[...] = K.commitment(stake, w.attention, threat, lead,
                                     w.p("threat_response", 1), w.p("lead_discount", 1))
    if fill:
        w.pipeline[...] = w.commitment[..., None, :]
    w.committed[...] = w.pipeline[..., 0, :]
    w.pipeline[..., :-1, :] = w.pipeline[..., 1:, :].copy()
    w.pipeline[..., -1, :] = w.commitment
    w.budget[...] = w.capacity * w.committed


def _security_inputs(w, openness) -> np.ndarray:
    """Security effort per pair this quarter plus what alliances add, (..., P, S)."""
    P = w.n_powers
    decay = w.p("security_effort_decay", 2)
    effort = w.security_effort[..., :P, :]
    w.security_effort[..., :P, :] = (1.0 - decay) * effort + decay * _security(w, openness)
    active = w.committed * np.minimum(w.security_capacity, 1.0)
    return w.security_effort[..., :P, :] + K.alliance_input(
        w.csto_member, w.csto, w.sco_member, w.sco, w.p("csto_security_bonus", 2),
        w.p("sco_security_bonus", 2), active)


def plan_quarter(w, draws: QuarterDraws) -> dict[str, np.ndarray]:
    """The start of a quarter for every power at once: budgets, project utilities, security.

    Capacity grows; each power chooses how much of it to commit (`choose_engagement`) and
    spreads its security effort, which builds ties. None of this depends on the order of
    moves (each power's own rows and the world as it stands), so it is done for all powers
    before anyone moves. What does depend on the order, reacting to rivals who moved
    earlier this quarter, is `power_step`.

    Returns:
        What `power_step` needs: quarterly budget (..., P), project utility (..., P, S, K),
        accepted share of spending, loan rate and rivals' weights per pair (..., P, S).
    """
    P = w.n_powers
    w.demand[...] = K.security_demand(w.security_demand, w.fragility, w.unrest,
                                      w.p("demand_fragility", 1), w.p("demand_unrest", 1))
    seen = outlook(w)
    w.capacity[...] = K.grow_capacity(w.capacity, w.capacity_growth, draws.budget,
                                      w.p("capacity_shock_sd", 1))
    choose_engagement(w)
    inputs = _security_inputs(w, seen["openness"])
    w.security_ties[..., :P, :] = K.accumulate_ties(w.security_ties[..., :P, :], inputs,
                                                    w.p("ties_gain", 2), w.p("ties_decay", 2))
    # States decline the part of the loans they do not want (more as debt mounts).
    lend = w.lending_share[..., :, None]
    appetite = K.borrowing_appetite(w.borrowing_appetite, seen["burden"],
                                    w.p("debt_burden_threshold", 1),
                                    w.p("debt_burden_aversion", 1))[..., None, :]
    return {
        "budget_q": w.budget / 4.0,
        "utility": K.project_utility(seen["values"], draws.alloc, w.p("allocation_noise", 3)),
        "accepted": 1.0 - lend * (1.0 - appetite),
        "loan_rate": lend * appetite,
        "rival_weight": K.rival_weight(w.flow_avg),
    }


def _at(mover) -> tuple:
    """Index of each run's mover: an int for one run, (runs, movers) for a batch."""
    idx = np.asarray(mover)
    if idx.ndim == 0:
        return (int(idx),)
    return (np.arange(idx.shape[0]), idx)


def power_step(w, mover, plan: dict[str, np.ndarray]) -> None:
    """The mover of each run splits its quarterly budget over (state, sector) projects.

    `mover` is a power index (one run, Mesa) or one index per run (a batch, a different
    power in each run). Spending reacts to rivals who already moved this quarter, so this
    is the part of a power's quarter that follows the order of moves; `plan` comes from
    `plan_quarter`. Only the mover's rows are computed and stored.
    """
    at = _at(mover)
    signal = K.rival_signal(w.flow_latest, w.flow_avg, plan["rival_weight"])[at]  # (..., S)
    spend = K.allocate_utility(plan["budget_q"][at], plan["utility"][at], signal,
                               w.rival_response[at], w.p("allocation_temperature", 2))
    flow = spend * plan["accepted"][at][..., None]
    latest = K.rsum(flow, axis=-1)
    w.flow[at] = flow
    w.flow_latest[at] = latest
    w.loans[at] = K.rsum(spend, axis=-1) * plan["loan_rate"][at]
    w.engagement[at] = K.rsum(latest, axis=-1)


def state_step(w, s: slice, draws: QuarterDraws) -> None:
    """One quarter of the states in column slice `s`: economy, society, alignment.

    A StateAgent passes its own column; the ensemble passes every state of every run.
    """
    P, o = w.n_powers, w.n_partners - 1
    gdp_old = w.gdp[..., s].copy()

    # Economy: investment inflow, growth, connectivity, stocks, debt, trade, remittances.
    inflow_p = 4.0 * w.flow_latest[..., :, s]  # (..., P, s) USD bn/yr
    total_inflow = K.rsum(inflow_p, axis=-2)
    gdp, rate = K.grow_gdp(gdp_old, w.gdp_growth[..., s], total_inflow,
                           w.p("growth_from_investment", 1), draws.gdp[..., s],
                           w.p("gdp_shock_sd", 1))
    w.gdp[..., s], w.growth_rate[..., s] = gdp, rate
    transport = 4.0 * K.rsum(w.flow[..., :, s, K.SECTOR_TRANSPORT], axis=-2)
    w.connectivity[..., s] = K.improve_connectivity(w.connectivity[..., s], transport, gdp,
                                                    w.p("connectivity_gain", 1))
    ratio = gdp / gdp_old
    dep = 1.0 - w.p("investment_depreciation", 2) / 4.0
    w.investment_stock[..., :P, s] = (w.investment_stock[..., :P, s] * dep
                                      + w.p("equity_share", 2) * w.flow_latest[..., :, s])
    w.investment_stock[..., o, s] *= ratio
    repay = 1.0 - w.debt_repayment[..., None, s] / 4.0
    w.debt[..., :P, s] = w.debt[..., :P, s] * repay + w.loans[..., :P, s]
    # Heavy debt to one creditor is renegotiated: part becomes its assets (ports, mines, land).
    swapped = K.debt_swaps(w.debt[..., :P, s], gdp, w.p("debt_swap_threshold", 2),
                           w.p("debt_swap_rate", 2))
    w.debt[..., :P, s] -= swapped
    w.investment_stock[..., :P, s] += swapped
    w.swapped[..., :P, s] = swapped
    w.debt[..., o, s] *= ratio ** w.p("other_debt_gdp_elasticity", 1)
    w.inflow[..., :P, s] = inflow_p
    w.inflow[..., o, s] = w.investment_stock[..., o, s] * w.p("investment_depreciation", 1)

    corridor = _other_col(w, w.corridor_trade, "other_corridor_trade")
    eaeu = np.concatenate([w.eaeu_member, np.zeros(w.eaeu_member.shape[:-1] + (1,))], -1)
    bloc = eaeu[..., :, None] * w.eaeu[..., None, s] * w.p("eaeu_trade_bonus", 2)
    drivers = K.trade_drivers(gdp, w.gdp0[..., s], w.p("trade_gdp_elasticity", 1),
                              w.investment_stock[..., :, s], w.investment_stock0[..., :, s],
                              w.p("trade_investment_elasticity", 2), w.connectivity[..., s],
                              corridor, w.p("trade_connectivity_elasticity", 1),
                              w.trade_affinity[..., :, s], bloc)
    # Trade policy, and goods rerouted around sanctions through open borders.
    policy = (w.trade_openness[..., s] / w.trade_openness0[..., s]) \
        ** w.p("trade_policy_elasticity", 1)
    divert = K.trade_diversion(w.base_trade_share[..., :, s], w.sanctioned, w.eaeu[..., s],
                               w.p("diversion_non_member", 1), w.p("sanction_diversion", 1))
    # Protests also raise informal barriers to the partner's goods while they last.
    barrier = 1.0 - w.p("protest_trade_barrier", 2) * w.damage[..., :, s]
    drivers = drivers * policy[..., None, :] * barrier
    drivers[..., :P, :] *= divert[..., None, :]
    exports_t = w.exports[..., :, s] * drivers
    imports_t = w.imports[..., :, s] * drivers
    cap = K.trade_cap(exports_t, imports_t, w.reporting_ratio[..., :, s], gdp,
                      w.p("trade_gdp_cap", 2))
    speed = w.p("trade_adjustment", 2)
    w.trade_exports[..., :, s] = K.relax(w.trade_exports[..., :, s], exports_t * cap, speed)
    w.trade_imports[..., :, s] = K.relax(w.trade_imports[..., :, s], imports_t * cap, speed)
    # Remittances follow each host's demand for labour and its migration policy.
    w.remittance_trend[..., :P, s] *= (1.0 + w.labour_demand_growth[..., :, None]) ** 0.25
    w.remittance_trend[..., o, s] *= (1.0 + w.p("remittance_growth", 1)) ** 0.25
    start = w.migration_policy0
    policy_m = np.where(start > 0, w.migration_policy / np.where(start > 0, start, 1.0), 1.0)
    target_r = w.remittance_trend[..., :, s].copy()
    target_r[..., :P, :] *= policy_m[..., :, None]
    w.remittances[..., :, s] = K.relax(w.remittances[..., :, s], target_r,
                                       w.p("remittance_adjustment", 2))

    # Society: sentiment, scandals, protests.
    inflow_share = K.shares(w.inflow[..., :, s])
    debt_share = K.shares(w.debt[..., :, s])
    own = np.concatenate([w.own_labour_share,
                          np.zeros(w.own_labour_share.shape[:-1] + (1,))], -1)[..., :, None]
    jobs = w.inflow[..., :, s] * (1.0 - own)
    target = K.sentiment_target(w.sentiment[..., :, s], jobs, gdp, rate - w.gdp_growth[..., s],
                                inflow_share, own, inflow_share, w.debt[..., :, s],
                                w.hidden_debt[..., s], debt_share, w.pdict(SENTIMENT_KEYS, 2))
    target = target - w.p("debt_swap_sentiment", 2) * 4.0 * w.swapped[..., :, s] / gdp[..., None, :]
    scandal = np.zeros_like(target)
    scandal[..., :P, :] = draws.scandal[..., :, s]
    volatile = 1.0 + w.p("fragility_volatility", 1) * w.fragility[..., s]  # (..., s)
    w.mood[..., :, s] = K.update_sentiment(w.mood[..., :, s], target,
                                           np.minimum(1.0, w.p("sentiment_speed", 1) * volatile
                                                      )[..., None, :], scandal,
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
    w.unrest[..., s] = K.relax(w.unrest[..., s], K.rmax(protests, axis=-2).astype(float), 0.25)
    w.damage[..., :, s] = K.protest_damage(w.damage[..., :, s], protests,
                                           w.p("protest_openness_drop", 2),
                                           w.p("openness_recovery", 2))
    align_step(w, s)


def security_provided(w, s: slice) -> np.ndarray:
    """Security each partner provides to the states in `s`: credible ties plus effort."""
    P = w.n_powers
    out = w.security_ties[..., :, s].copy()
    out[..., :P, :] = (w.security_credibility[..., :, None] * w.security_ties[..., :P, s]
                       + w.security_effort[..., :P, s])
    return out


def align_step(w, s: slice, speed: float | None = None) -> None:
    """Score partners and move the tilt of the states in `s` toward the logit choice.

    Fragile states move faster (fragility_volatility): the same shock bites harder.
    """
    trade = national_trade(w, s)
    # Economic benefit: trade, investment and remittances each count alike (shares of each).
    econ = (K.shares(trade) + K.shares(w.inflow[..., :, s])
            + K.shares(w.remittances[..., :, s])) / 3.0
    w.security_provided[..., :, s] = security_provided(w, s)
    terms = K.alignment_scores(econ, K.shares(w.security_provided[..., :, s]),
                               w.demand[..., s], w.mood[..., :, s],
                               K.shares(w.debt[..., :, s]), K.shares(trade), w.hedging[..., s],
                               w.tilt[..., :, s], w.fragility[..., s], w.pdict(ALIGN_KEYS, 2))
    target = K.softmax(terms["score"], w.p("alignment_temperature", 2), axis=-2)
    if speed is None:
        speed = np.minimum(1.0, w.p("tilt_speed", 1) * (
            1.0 + w.p("fragility_volatility", 1) * w.fragility[..., s]))[..., None, :]
    w.tilt[..., :, s] = K.relax(w.tilt[..., :, s], target, speed)
    for k, v in terms.items():
        w.terms.setdefault(k, np.zeros_like(w.tilt))[..., :, s] = v


def national_trade(w, s: slice) -> np.ndarray:
    """Each partner's trade with the states in `s` on the state's national basis, (..., J, S)."""
    return (w.trade_exports[..., :, s] + w.trade_imports[..., :, s]) / w.reporting_ratio[..., :, s]


def end_quarter(w, channels: bool = True) -> None:
    """Close the quarter: moving averages of engagement and of shares, the influence shares."""
    w.flow_avg = 0.75 * w.flow_avg + 0.25 * w.flow_latest
    w.influence_ref = K.relax(w.influence_ref, w.region_influence, w.p("threat_memory", 1))
    compute_influence(w, channels)


def compute_influence(w, channels: bool = True) -> None:
    """Channel shares, influence per state, and regional shares (GDP or population weights).

    `channels=False` leaves the per-channel shares (per state and regional) as they were,
    for runs that record only the influence.
    """
    values = np.stack([national_trade(w, slice(None)), w.investment_stock, w.debt,
                       w.remittances, w.security_provided, w.tilt], axis=-3)
    weights = np.stack([np.broadcast_to(w.p(f"w_{c}", 0), w.gdp.shape[:-1]) for c in CHANNELS],
                       axis=-1)
    shares, w.state_influence = K.influence(values, weights, with_shares=channels)
    weights_s = w.state_weights()
    w.region_influence = K.regional(w.state_influence, weights_s)
    if channels:
        w.channel_shares = shares
        w.region_channels = K.regional(w.channel_shares, weights_s)


def initialise(w) -> None:
    """Start from a consistent state: commitments, expected allocations, steady effort, tilt.

    Two passes: the first finds the starting shares with no lead discount, the second
    commits with the leads those shares give, so the first quarter does not jump.
    """
    P = w.n_powers
    w.demand[...] = K.security_demand(w.security_demand, w.fragility, w.unrest,
                                      w.p("demand_fragility", 1), w.p("demand_unrest", 1))
    seen = outlook(w)
    values = seen["values"]
    every = slice(0, w.n_states)
    for _ in range(2):
        w.influence_ref = w.region_influence.copy()
        choose_engagement(w, fill=True)
        spend = K.allocate(w.budget / 4.0, values, np.zeros(values.shape[:-1]),
                           w.rival_response, np.zeros(values.shape), 0.0,
                           w.p("allocation_temperature", 3))
        w.flow_avg = K.rsum(spend, axis=-1)
        w.flow_latest = w.flow_avg.copy()
        w.security_effort[..., :P, :] = _security(w, seen["openness"])
        w.inflow[..., :P, :] = 4.0 * w.flow_latest
        for _ in range(60):  # tilt at its fixed point under the starting scores
            align_step(w, every, speed=0.5)
        compute_influence(w)
    w.influence_ref = w.region_influence.copy()
