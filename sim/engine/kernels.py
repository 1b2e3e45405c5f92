"""Pure numpy decision rules and influence arithmetic.

Arrays in, arrays out; randomness only from a `numpy.random.Generator` passed in. No mesa
import, no I/O. Axis convention, with any number of leading batch axes (`...`):

- power arrays `(..., P)`; state arrays `(..., S)`;
- pair arrays `(..., J, S)` with partners J = the P acting powers then `other`;
- sector arrays `(..., P, S, K)`.

A state-level function reduces over the partner axis (-2) and works element-wise over the
state axis (-1), so a StateAgent can pass its own column as `[..., :, s:s+1]` and the
ensemble engine can pass every state of every run at once: the arithmetic is the same.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

EPS = 1e-12
SECTOR_TRANSPORT = 2  # index of "transport" in vocabulary.SECTORS


class QuarterDraws(NamedTuple):
    """All random numbers one quarter uses, drawn in a fixed order whatever happens."""

    order: np.ndarray  # (..., P) uniform keys: powers act in ascending key order
    alloc: np.ndarray  # (..., P, S, K) standard normal taste shocks on project values
    gdp: np.ndarray  # (..., S) standard normal GDP growth shocks
    scandal: np.ndarray  # (..., P, S) standard normal corruption-scandal shocks
    protest: np.ndarray  # (..., P, S) uniform draws for protests
    budget: np.ndarray  # (..., P) standard normal shocks to fiscal capacity


def draw_size(n_powers: int, n_states: int, n_sectors: int) -> int:
    """How many random numbers one quarter uses."""
    P, S, K = n_powers, n_states, n_sectors
    return P + P * S * K + S + P * S + P * S + P


def draw_run(rng: np.random.Generator, n_quarters: int, n_powers: int, n_states: int,
             n_sectors: int, out: np.ndarray | None = None) -> np.ndarray:
    """Draw every random number a run will use: (n_quarters, draw_size) standard normals.

    One call per run: each quarter then takes its own row, so every quarter uses the same
    count of numbers in the same order whatever happens, and a shorter run uses the first
    rows of a longer one. `out`, if given, is a C-contiguous array of that shape to fill.
    """
    size = draw_size(n_powers, n_states, n_sectors)
    return rng.standard_normal((n_quarters, size), out=out)


def split_draws(z: np.ndarray, n_powers: int, n_states: int, n_sectors: int) -> QuarterDraws:
    """One quarter's draws from its row of normals, (..., draw_size).

    Uniforms (move order, protests) are the normal CDF of their normals, so they are exactly
    uniform on (0, 1).
    """
    from scipy.special import ndtr

    P, S, K = n_powers, n_states, n_sectors
    lead = z.shape[:-1]
    cuts = np.cumsum([P, P * S * K, S, P * S, P * S])
    order, alloc, gdp, scandal, protest, budget = np.split(z, cuts, axis=-1)
    return QuarterDraws(
        order=ndtr(order),
        alloc=alloc.reshape(*lead, P, S, K),
        gdp=gdp,
        scandal=scandal.reshape(*lead, P, S),
        protest=ndtr(protest).reshape(*lead, P, S),
        budget=budget,
    )


# --------------------------------------------------------------------------- generic

SHORT_REDUCE_MIN_SIZE = 512
"""Arrays from this many elements up reduce short axes by element-wise chains (`rsum`)."""


def _chain(op, x, axis: int, keepdims: bool):
    lead = (slice(None),) * (axis % x.ndim)
    if keepdims:  # slices i:i+1 keep the axis
        parts = [x[(*lead, slice(i, i + 1))] for i in range(x.shape[axis])]
    else:
        parts = [x[(*lead, i)] for i in range(x.shape[axis])]
    out = op(parts[0], parts[1])
    for part in parts[2:]:
        op(out, part, out=out)
    return out


def rsum(x, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """`np.sum` along `axis`, fast on batches when the axis is short (partners, states).

    numpy's reduction over a 5-long axis of a large batch runs several times slower than
    element-wise arithmetic; adding the slices in turn gives the same sequential sum.
    """
    x = np.asarray(x)
    n = x.shape[axis]
    if x.size < SHORT_REDUCE_MIN_SIZE or not 2 <= n <= 8:
        return np.sum(x, axis=axis, keepdims=keepdims)
    return _chain(np.add, x, axis, keepdims)


def rmax(x, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """`np.max` along `axis`, fast on batches when the axis is short (see `rsum`)."""
    x = np.asarray(x)
    n = x.shape[axis]
    if x.size < SHORT_REDUCE_MIN_SIZE or not 2 <= n <= 8:
        return np.max(x, axis=axis, keepdims=keepdims)
    return _chain(np.maximum, x, axis, keepdims)


def _st(x):
    """A per-state array (..., S) lifted to broadcast against pair arrays (..., J, S)."""
    x = np.asarray(x)
    return x if x.ndim == 0 else x[..., None, :]


def softmax(x: np.ndarray, temperature: float | np.ndarray = 1.0,
            axis: int | tuple[int, ...] = -1) -> np.ndarray:
    """Logit choice probabilities exp(x/T) / sum exp(x/T) along `axis` (numerically stable).

    A tuple of axes makes one choice over all their combinations (e.g. state x sector).
    """
    axes = axis if isinstance(axis, tuple) else (axis,)
    z = np.asarray(x, dtype=float) / temperature
    top = z
    for a in axes:
        top = rmax(top, axis=a, keepdims=True)
    e = np.exp(z - top)
    total = e
    for a in axes:
        total = rsum(total, axis=a, keepdims=True)
    return e / total


def shares(values: np.ndarray, axis: int = -2) -> np.ndarray:
    """Each entry's share of the total along `axis`; an all-zero total goes to the last entry.

    The last entry along the partner axis is `other`, so influence no one holds stays with
    the rest of the world and shares always sum to 1.
    """
    v = np.maximum(np.asarray(values, dtype=float), 0.0)
    total = rsum(v, axis=axis, keepdims=True)
    if (total > EPS).all():
        return v / total
    out = np.divide(v, total, out=np.zeros_like(v), where=total > EPS)
    empty = np.broadcast_to(total <= EPS, v.shape)
    if np.any(empty):
        idx = [slice(None)] * v.ndim
        idx[axis] = slice(-1, None)
        last = np.zeros_like(v)
        last[tuple(idx)] = 1.0
        out = np.where(empty, last, out)
    return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


# --------------------------------------------------------------------------- powers

def grow_capacity(capacity, growth, shock, shock_sd):
    """One quarter of fiscal capacity: the trend plus a persistent (random-walk) shock."""
    return capacity * (1.0 + growth) ** 0.25 * np.exp(shock_sd * shock - 0.5 * shock_sd ** 2)


def rival_pressure(influence, reference) -> tuple[np.ndarray, np.ndarray]:
    """What each power sees of its rivals, in percentage points of regional share, (..., P) each.

    threat[p] = sum over rivals q != p of max(0, influence[q] - reference[q]): the ground
    rivals gained over their recent average; lead[p] = max(0, influence[p] - the largest
    rival's influence): how secure the power's first place is.

    Args:
        influence: (..., P) regional shares of the acting powers now.
        reference: (..., P) their moving average (`relax` with threat_memory).
    """
    x = np.asarray(influence, dtype=float)
    gain = 100.0 * np.maximum(x - reference, 0.0)
    threat = rsum(gain, axis=-1, keepdims=True) - gain
    top = rmax(x, axis=-1, keepdims=True)
    first = np.argmax(x, axis=-1)[..., None]
    is_first = np.arange(x.shape[-1]) == first
    second = rmax(np.where(is_first, -np.inf, x), axis=-1, keepdims=True)
    best_rival = np.where(is_first, second, top)
    lead = 100.0 * np.maximum(x - best_rival, 0.0)
    return threat, lead


def commitment(stake, attention, threat, lead, threat_response, lead_discount):
    """Share of its capacity a power commits to the region, in [0, 1), shape (..., P).

    1 - exp(-x) with x = stake x attention x (1 + threat_response x threat)
    / (1 + lead_discount x lead): a higher stake commits more with diminishing returns;
    rivals' gains raise it, a secure lead lowers it; a distracted power commits less.
    """
    x = stake * attention * (1.0 + threat_response * threat) / (1.0 + lead_discount * lead)
    return 1.0 - np.exp(-x)


def alliance_input(csto_member, csto, sco_member, sco, csto_bonus, sco_bonus,
                   active) -> np.ndarray:
    """Security effort alliances add to each power's ties with each state, (..., P, S).

    CSTO: csto_bonus where the power leads the CSTO and the state is a member; SCO likewise;
    times `active` (..., P), how far the power engages (commitment x capped security
    capacity): an alliance with a leader that does not act adds nothing.
    """
    return ((csto_bonus * csto_member[..., :, None] * csto[..., None, :]
             + sco_bonus * sco_member[..., :, None] * sco[..., None, :])
            * active[..., :, None])


def accumulate_ties(ties, effort, gain, decay):
    """One quarter of security ties: grow with effort (gain/yr per unit), decay at decay/yr."""
    return ties * (1.0 - decay / 4.0) + gain / 4.0 * effort


def security_demand(threat, fragility, unrest, demand_fragility, demand_unrest):
    """Security demand of each state, (..., S): threat x (1 + k x fragility) + unrest term."""
    return threat * (1.0 + demand_fragility * fragility) + demand_unrest * unrest


def sector_endowment(oil, gas, metals, uranium, transit, labour, connectivity,
                     local_processing, mining_penalty: float) -> np.ndarray:
    """What each state offers each sector, shape (..., S, K), from its endowment indexes.

    energy = max(oil, gas); mining = max(metals, uranium) x (1 - penalty x local_processing);
    transport = transit; digital = labour x min(connectivity, 2) / 2 + 0.1;
    manufacturing = labour.
    """
    energy = np.maximum(oil, gas)
    mining = np.maximum(metals, uranium) * (1.0 - mining_penalty * local_processing)
    digital = labour * np.minimum(connectivity, 2.0) / 2.0 + 0.1
    return np.stack([energy, mining, transit, digital, labour], axis=-1)


def project_values(priority, endowment, openness, risk, size, connectivity, fdi_elasticity,
                   strategic, transit) -> np.ndarray:
    """Expected value of each (state, sector) project for each power, shape (..., P, S, K).

    value = priority[p,k] x endowment[s,k] x openness[p,s] x (1 - risk[s]) x size[s]
            x connectivity[s]^fdi_elasticity, plus strategic[p] x transit[s] on transport.

    With allocation temperature 1 a power's spending in a state is proportional to this
    value, so a 10% cut in shipment time (connectivity up ~11%) raises inflows by about
    fdi_elasticity x 10%.
    """
    state = (1.0 - risk) * size * connectivity ** fdi_elasticity
    base = (openness * _st(state))[..., None]
    val = priority[..., :, None, :] * endowment[..., None, :, :] * base
    corridor = strategic[..., :, None] * transit[..., None, :] * base[..., 0]
    val[..., SECTOR_TRANSPORT] += corridor
    return val


def project_risk(fragility, debt_to_gdp, w_fragility, w_debt):
    """Risk that discounts project values: fragility and debt burden, clipped to [0, 0.95]."""
    return np.clip(w_fragility * fragility + w_debt * np.minimum(debt_to_gdp, 1.0), 0.0, 0.95)


def economic_size(gdp, elasticity):
    """Relative economic size (gdp / mean gdp over states)^elasticity, shape (..., S)."""
    return (gdp / (rsum(gdp, axis=-1, keepdims=True) / gdp.shape[-1])) ** elasticity


def rival_weight(avg_flow) -> np.ndarray:
    """Each power's share of recent engagement in each state, shape (..., P, S)."""
    return avg_flow / (rsum(avg_flow, axis=-2, keepdims=True) + 1e-9)


def rival_signal(latest_flow, avg_flow, weight=None) -> np.ndarray:
    """How far rivals' engagement in each state runs above its recent average, shape (..., P, S).

    For power p and state s: the sum over rivals q != p of max(0, latest/avg - 1) for q in s,
    weighted by q's share of recent engagement in s (`rival_weight`, which may be passed in:
    it stays the same all quarter). Powers that already acted this quarter show their new
    flow; the rest show last quarter's, so the order of moves matters.
    """
    if weight is None:
        weight = rival_weight(avg_flow)
    pull = np.maximum(latest_flow / (avg_flow + 1e-9) - 1.0, 0.0) * weight
    return rsum(pull, axis=-2, keepdims=True) - pull


def project_utility(values, noise, noise_sd) -> np.ndarray:
    """Utility of each (state, sector) project before rivals: log(value) + noise_sd x noise.

    Args:
        values: (..., S, K) project values (zero means nothing to buy).
        noise: standard normal taste shocks, same shape.
        noise_sd: taste-shock scale.
    """
    return np.log(values + 1e-9) + noise_sd * noise


def allocate_utility(budget_q, utility, signal, rival_response, temperature) -> np.ndarray:
    """Split each power's quarterly budget over (state, sector) by a logit choice.

    The weights are softmax((utility + rival_response x rival signal) / temperature) over
    all (state, sector) pairs of the power.

    Args:
        budget_q: (...) budget to spend this quarter, USD bn.
        utility: (..., S, K) project utility (`project_utility`).
        signal: (..., S) rival signal.
        rival_response: (...).
        temperature: logit temperature, broadcasting against (..., S, K).

    Returns:
        (..., S, K) spending, USD bn per quarter; sums to budget_q over (S, K).
    """
    util = utility + (rival_response[..., None] * signal)[..., None]
    return softmax(util, temperature, axis=(-1, -2)) * budget_q[..., None, None]


def allocate(budget_q, values, signal, rival_response, noise, noise_sd, temperature) -> np.ndarray:
    """`allocate_utility` on `project_utility(values, noise, noise_sd)`.

    Utility = log(value) + noise_sd x noise + rival_response x rival signal; the weights are
    softmax(utility / temperature) over all (state, sector) pairs of the power.

    Args:
        budget_q: (..., P) budget to spend this quarter, USD bn.
        values: (..., P, S, K) project values (zero means nothing to buy).
        signal: (..., P, S) rival signal.
        rival_response: (..., P).
        noise: (..., P, S, K) standard normal draws.
        noise_sd: taste-shock scale.
        temperature: logit temperature.

    Returns:
        (..., P, S, K) spending, USD bn per quarter; sums to budget_q over (S, K).
    """
    return allocate_utility(budget_q, project_utility(values, noise, noise_sd), signal,
                            rival_response, temperature)


def security_split(capacity, values, temperature) -> np.ndarray:
    """Split each power's security effort over states by a logit on `values`, shape (..., P, S).

    Args:
        capacity: (..., P) effort available this quarter.
        values: (..., P, S) threat x openness plus standing ties.
        temperature: logit temperature.
    """
    return softmax(values, temperature, axis=-1) * capacity[..., None]


# --------------------------------------------------------------------------- states

def grow_gdp(gdp, growth, inflow_annual, growth_from_investment, shock, shock_sd):
    """One quarter of nominal GDP growth: trend, plus investment inflow, plus a shock.

    Returns:
        (new gdp, annualised growth rate used).
    """
    rate = growth + growth_from_investment * inflow_annual / gdp + shock_sd * 2.0 * shock
    return gdp * (1.0 + rate / 4.0), rate


def improve_connectivity(connectivity, transport_annual, gdp, gain):
    """Connectivity rises with the square root of transport investment relative to GDP."""
    return connectivity + gain * np.sqrt(np.maximum(transport_annual, 0.0) / gdp) / 4.0


def trade_drivers(gdp, gdp0, gdp_elasticity, stock, stock0, investment_elasticity,
                  connectivity, corridor, connectivity_elasticity, affinity, bloc_bonus):
    """How far a pair's trade has moved from its base level, shape (..., J, S).

    (gdp/gdp0)^e_gdp x ((stock + 1% gdp) / (stock0 + 1% gdp0))^e_inv
    x connectivity^(e_conn x corridor[j]) x affinity x (1 + bloc bonus); exports and
    imports share it.
    """
    inv = ((stock + 0.01 * _st(gdp)) / (stock0 + 0.01 * _st(gdp0))) ** investment_elasticity
    conn = _st(connectivity) ** (connectivity_elasticity * corridor)[..., :, None]
    return _st((gdp / gdp0) ** gdp_elasticity) * inv * conn * affinity * (1.0 + bloc_bonus)


def trade_target(base, *args, **kwargs):
    """Where a pair's trade heads: its base level times `trade_drivers(...)`."""
    return base * trade_drivers(*args, **kwargs)


def trade_diversion(base_share, sanctioned, eaeu, non_member, strength) -> np.ndarray:
    """Multiplier on the named powers' trade with each state from sanctions, (..., S).

    1 + strength x border x exposure, where exposure = sum over powers k of sanctioned[k] x
    k's share of the state's starting trade, and border is 1 for EAEU members and
    `non_member` otherwise: the more a state traded with a partner now cut off, and the
    more open its border to it, the more goods are rerouted through it.

    Args:
        base_share: (..., J, S) partners' shares of each state's starting trade.
        sanctioned: (..., P) sanctions on each acting power.
        eaeu: (..., S) EAEU membership.
        non_member: border openness of states outside the EAEU.
        strength: `sanction_diversion`.
    """
    P = sanctioned.shape[-1]
    exposure = rsum(sanctioned[..., :, None] * base_share[..., :P, :], axis=-2)
    border = eaeu + (1.0 - eaeu) * non_member
    return 1.0 + strength * border * exposure


def trade_cap(exports, imports, ratio, gdp, cap) -> np.ndarray:
    """Factor (<= 1) keeping a pair's national-basis trade within `cap` x GDP, (..., J, S)."""
    national = (exports + imports) / ratio
    limit = cap * _st(gdp)
    return np.where(national > limit, limit / np.maximum(national, EPS), 1.0)


def borrowing_appetite(appetite, burden, threshold, aversion):
    """Share of offered loans a state accepts, (..., S): falls with debt/GDP above the threshold."""
    return appetite * np.clip(1.0 - aversion * np.maximum(burden - threshold, 0.0), 0.0, 1.0)


def debt_swaps(debt, gdp, threshold, rate):
    """Debt swapped for assets this quarter, (..., J, S): rate/yr of debt above threshold x GDP."""
    return rate / 4.0 * np.maximum(debt - threshold * _st(gdp), 0.0)


def relax(current, target, speed):
    """Move part of the way (speed in [0, 1]) from current toward target."""
    return current + speed * (target - current)


def sentiment_target(anchor, jobs_annual, gdp, growth_excess, engaged, own_labour,
                     inflow_share, debt, hidden_debt, debt_share, p):
    """Sentiment each state's public heads toward for each partner, shape (..., J, S).

    anchor + jobs x local-job inflow/GDP + growth x growth above trend x engaged
    - labour x own_labour_share x share of inflows - debt x (debt + hidden share)/GDP.
    `p` holds the weights (sentiment_jobs, sentiment_growth, sentiment_labour, sentiment_debt).
    """
    return (anchor
            + p["sentiment_jobs"] * jobs_annual / _st(gdp)
            + p["sentiment_growth"] * _st(growth_excess) * engaged
            - p["sentiment_labour"] * own_labour * inflow_share
            - p["sentiment_debt"] * (debt + _st(hidden_debt) * debt_share) / _st(gdp))


def update_sentiment(mood, target, speed, scandal, scandal_sd, corruption, engagement_share):
    """Relax mood toward target, then apply corruption scandals (only ever negative).

    A scandal hits partner j in state s with size scandal_sd x corruption[s] x j's share of
    engagement in s x max(draw, 0). Returns mood clipped to [-1, 1].
    """
    hit = scandal_sd * _st(corruption) * engagement_share * np.maximum(scandal, 0.0)
    return np.clip(relax(mood, target, speed) - hit, -1.0, 1.0)


def protest_probability(mood, fragility, presence, threshold, steepness, p_max):
    """Quarterly chance of protests against a partner.

    Protests need a fragile state, sentiment below the threshold, and a visible presence
    (`presence` in [0, 1], e.g. a scaled share of inflows).
    """
    return p_max * _st(fragility) * presence * sigmoid(steepness * (threshold - mood))


def protest_damage(damage, protests, drop, recovery):
    """Openness lost to protests: recovers geometrically, jumps by `drop` on a new protest."""
    healed = damage * (1.0 - recovery)
    return np.where(protests, 1.0 - (1.0 - healed) * (1.0 - drop), healed)


def alignment_scores(econ_share, security_share, security_demand, mood, debt_share, trade_share,
                     hedging, tilt, fragility, p):
    """Each state's score of each partner, with its terms, shape (..., J, S) each.

    economy = align_economy x sqrt(economic share) (diminishing returns: a bigger offer
    attracts more, less than in proportion); security = align_security x demand x security
    share; sentiment = align_sentiment x (1 + fragility_sentiment x fragility) x mood;
    dependence = -align_dependence x (debt share^2 + trade share^2); hedging =
    -align_hedging x hedging x tilt.

    Returns:
        A dict of the terms (economy, security, sentiment, dependence, hedging) and their
        sum under "score". Terms enter with their sign.
    """
    feel = p["align_sentiment"] * (1.0 + p["fragility_sentiment"] * _st(fragility))
    terms = {
        "economy": p["align_economy"] * np.sqrt(econ_share),
        "security": p["align_security"] * _st(security_demand) * security_share,
        "sentiment": feel * mood,
        "dependence": -p["align_dependence"] * (debt_share ** 2 + trade_share ** 2),
        "hedging": -p["align_hedging"] * _st(hedging) * tilt,
    }
    terms["score"] = sum(terms.values())
    return terms


def influence(channel_values: np.ndarray, weights: np.ndarray,
              with_shares: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """Channel shares and weighted influence per partner and state.

    influence(j, s) = sum over channels c of weight(c) x share of j in channel c and s;
    a channel nobody holds in a state counts for the last partner (`other`), as in
    `shares`.

    Args:
        channel_values: (..., C, J, S) raw values per channel.
        weights: (..., C) channel weights (need not sum to 1; per run in a batch).
        with_shares: Also return the channel shares; without them the influence is
            computed in fewer passes over the (..., C, J, S) array.

    Returns:
        (channel shares (..., C, J, S) or None, influence (..., J, S)); both sum to 1
        over J.
    """
    w = np.asarray(weights, dtype=float)
    total_w = w.sum(axis=-1, keepdims=True)
    w = np.where(total_w > 0, w / np.where(total_w > 0, total_w, 1.0), 1.0 / w.shape[-1])
    wc = w[..., :, None, None]
    if with_shares:
        sh = shares(channel_values, axis=-2)
        return sh, rsum(wc * sh, axis=-3)
    v = np.maximum(np.asarray(channel_values, dtype=float), 0.0)
    total = rsum(v, axis=-2, keepdims=True)  # (..., C, 1, S)
    held = total > EPS
    if held.all():
        return None, rsum(v * (wc / total), axis=-3)
    out = rsum(v * np.where(held, wc / np.where(held, total, 1.0), 0.0), axis=-3)
    out[..., -1, :] += rsum(np.where(held, 0.0, wc), axis=-3)[..., 0, :]
    return None, out


def regional(values: np.ndarray, state_weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the state axis (-1): the regional figure."""
    w = state_weights / rsum(state_weights, axis=-1, keepdims=True)
    w = w.reshape(w.shape[:-1] + (1,) * (values.ndim - w.ndim) + w.shape[-1:])
    return rsum(values * w, axis=-1)
