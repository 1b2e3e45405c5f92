"""The world's public vocabulary: every power, state and pair attribute, and every model parameter.

Each name is defined once here, as a pydantic field with its type, allowed range, unit and
meaning. The world file, scenario `set:` paths, event targets, the model's arrays, the
classroom sliders and `docs/scenarios.md` all use these names. Nothing here reads files or
runs the model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SECTORS: tuple[str, ...] = ("energy", "mining", "transport", "digital", "manufacturing")
"""Sectors a power can invest in, in array order."""

CHANNELS: tuple[str, ...] = (
    "trade",
    "investment",
    "debt",
    "remittances",
    "security",
    "alignment",
)
"""Influence channels, in array order. Each has a weight parameter `w_<channel>`."""

OTHER = "other"
"""Name of the rest-of-world bucket that holds the influence no named power holds."""

ALIGNMENT_TERMS: tuple[str, ...] = ("economy", "security", "sentiment", "dependence", "hedging")
"""The terms of a partner's alignment score (`sim.engine.kernels.alignment_scores`), in the
order they are shown; dependence and hedging are costs (zero or negative)."""

# --------------------------------------------------------------------------- run settings

ROOT_SEED = 20250617
"""Root seed of every command's replications (a date written as a number; any fixed value
would do).

Replication i's seed is derived from it (`sim.runs.runner.derive_seeds`), the same in every
scenario, so scenarios are compared run by run."""

DEFAULT_REPLICATIONS = 10
"""Replications of `greatgame run` and `validate`, and the runs the classroom page offers."""

PERIOD_START = "2015Q1"
PERIOD_END = "2035Q4"
"""The simulated period when a scenario file gives none."""

HISTORY_END = "2025Q4"
"""The last quarter of recorded history; charts mark what follows as projection."""

REGION = "region"
"""The `area` of the regional (GDP-weighted) rows in every results table."""

POWERS: tuple[str, ...] = ("china", "russia", "eu", "us")
STATES: tuple[str, ...] = ("kazakhstan", "kyrgyzstan", "tajikistan", "turkmenistan", "uzbekistan")
"""The shipped world's actors: the names the sourced history and the stylized facts speak of.
The model itself takes its actors from the world file."""


def _f(default: float | None = None, *, ge=None, le=None, unit: str, doc: str, **kw):
    """A float field carrying its unit and meaning (the one definition of a parameter)."""
    extra = {"unit": unit}
    if default is None:
        return Field(..., ge=ge, le=le, description=doc, json_schema_extra=extra, **kw)
    return Field(default, ge=ge, le=le, description=doc, json_schema_extra=extra, **kw)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class PowerAttrs(_Strict):
    """Attributes of one acting great power (china, russia, eu, us)."""

    capacity: float = _f(ge=0, le=500, unit="USD bn/yr", doc="Fiscal capacity for the region at the start: the most the power could offer the five states in a year as investment and loans. The power chooses how much of it to commit (its engagement budget) from its stake and its rivals' moves; with no capacity it cannot engage.")
    capacity_growth: float = _f(ge=-0.5, le=0.5, unit="1/yr", doc="Yearly trend growth of the fiscal capacity (shocks add a random walk around it).")
    stake: float = _f(1.0, ge=0, le=5, unit="index", doc="What influence in Central Asia is worth to the power (its strategic stake). With attention it sets the share of capacity committed, 1 - exp(-stake x attention x pressure); summits and doctrines change it.")
    priority_energy: float = _f(ge=0, le=1, unit="index", doc="Weight the power gives to energy projects (oil, gas).")
    priority_mining: float = _f(ge=0, le=1, unit="index", doc="Weight given to mining and critical minerals (metals, uranium).")
    priority_transport: float = _f(ge=0, le=1, unit="index", doc="Weight given to transport corridors (rail, road, logistics).")
    priority_digital: float = _f(ge=0, le=1, unit="index", doc="Weight given to digital infrastructure.")
    priority_manufacturing: float = _f(ge=0, le=1, unit="index", doc="Weight given to manufacturing and processing.")
    lending_share: float = _f(ge=0, le=1, unit="fraction", doc="Share of engagement given as loans (adds to the state's debt to the power).")
    own_labour_share: float = _f(ge=0, le=1, unit="fraction", doc="Share of project jobs filled by the power's own nationals; lowers local sentiment.")
    security_capacity: float = _f(ge=0, le=5, unit="index", doc="Security effort the power could offer the region per quarter (training, arms, exercises) at full commitment; it commits the same share as of its fiscal capacity.")
    security_credibility: float = _f(ge=0, le=1, unit="index", doc="How far states believe the power's security commitments; scales both its ties and its effort.")
    attention: float = _f(ge=0, le=1, unit="fraction", doc="How far other theatres leave the power free to act in the region (1 undistracted); multiplies the stake in the commitment rule.")
    strategic_corridor: float = _f(ge=0, le=2, unit="index", doc="Extra value the power sees in transport corridors toward Europe (added to transport projects by state transit).")
    corridor_trade: float = _f(ge=0, le=2, unit="index", doc="How much the power's trade with a state grows as the state's connectivity improves.")
    rival_response: float = _f(ge=0, le=5, unit="index", doc="How strongly the power moves its spending toward states where rivals' engagement is rising (where, not how much: see threat_response).")
    csto_member: float = _f(ge=0, le=1, unit="flag", doc="The power leads or belongs to the CSTO (its ties with CSTO states gain csto_security_bonus).")
    eaeu_member: float = _f(ge=0, le=1, unit="flag", doc="The power leads or belongs to the EAEU (its trade with EAEU states gains eaeu_trade_bonus).")
    sco_member: float = _f(ge=0, le=1, unit="flag", doc="The power belongs to the SCO (its ties with SCO states gain sco_security_bonus).")
    sanctioned: float = _f(0.0, ge=0, le=1, unit="index", doc="How far Western sanctions cut the power off from world trade (0 none, 1 complete); its trade is diverted through open neighbours (sanction_diversion).")
    labour_demand_growth: float = _f(0.04, ge=-0.5, le=0.5, unit="1/yr", doc="Yearly nominal growth of the power's economy's demand for migrant labour from the region; remittances from it follow.")
    migration_policy: float = _f(1.0, ge=0, le=2, unit="index", doc="How open the power is to migrant workers from the region (1 as at the start); remittances from it scale with it.")


class StateAttrs(_Strict):
    """Attributes of one Central Asian state."""

    gdp: float = _f(gt=0, unit="USD bn", doc="Nominal GDP at the start.")
    gdp_growth: float = _f(ge=-0.3, le=0.5, unit="1/yr", doc="Underlying nominal GDP growth, before the effect of foreign investment.")
    population: float = _f(gt=0, unit="million", doc="Population at the start (used for population-weighted regional shares).")
    oil: float = _f(ge=0, le=1, unit="index", doc="Oil endowment relative to the region's richest.")
    gas: float = _f(ge=0, le=1, unit="index", doc="Natural gas endowment relative to the region's richest.")
    metals: float = _f(ge=0, le=1, unit="index", doc="Metals and critical minerals endowment relative to the region's richest.")
    uranium: float = _f(ge=0, le=1, unit="index", doc="Uranium endowment relative to the region's richest.")
    labour: float = _f(ge=0, le=1, unit="index", doc="Size and cost advantage of the workforce, for manufacturing and digital projects.")
    transit: float = _f(ge=0, le=1, unit="index", doc="Position on land corridors between China and Europe.")
    connectivity: float = _f(gt=0, le=10, unit="index", doc="Inverse of shipment time to markets; 1.0 at the start.")
    fragility: float = _f(ge=0, le=1, unit="index", doc="State fragility: how readily low sentiment turns into protest.")
    hedging: float = _f(ge=0, le=1, unit="index", doc="Multi-vector (hedging) propensity: penalty on leaning toward any one power.")
    security_demand: float = _f(ge=0, le=1, unit="index", doc="Threat level (borders, Afghanistan, extremism): how much the state values security partners, before fragility (demand_fragility) and unrest at home (demand_unrest) raise it.")
    local_processing: float = _f(ge=0, le=1, unit="fraction", doc="Local-processing policy: keeps value added at home but makes mining projects less attractive.")
    corruption: float = _f(ge=0, le=1, unit="index", doc="Exposure to corruption scandals around foreign projects (scales sentiment shocks).")
    hidden_debt: float = _f(ge=0, unit="USD bn", doc="Debt not in official statistics; counts in the debt burden that lowers sentiment.")
    borrowing_appetite: float = _f(ge=0, le=1, unit="fraction", doc="Share of a power's offered loans the state accepts (the rest it declines).")
    debt_repayment: float = _f(ge=0, le=1, unit="1/yr", doc="Share of outstanding official external debt repaid each year.")
    csto: float = _f(ge=0, le=1, unit="flag", doc="Membership of the Russian-led Collective Security Treaty Organization (1 member, 0 not).")
    eaeu: float = _f(ge=0, le=1, unit="flag", doc="Membership of the Eurasian Economic Union (1 member, 0 not).")
    sco: float = _f(ge=0, le=1, unit="flag", doc="Membership of the Shanghai Cooperation Organisation (1 member, 0 not).")
    trade_openness: float = _f(1.0, ge=0.05, le=2, unit="index", doc="Trade policy: tariffs, licences, currency controls (1 normal, lower closed). Trade moves with (trade_openness / its start value)^trade_policy_elasticity.")


class PairAttrs(_Strict):
    """Attributes of a (power, state) pair, written `powers.P.toward.S.attr` (or `other.toward.S.attr`)."""

    exports: float = _f(ge=0, unit="USD bn/yr", doc="The state's goods exports to the power at the start.")
    imports: float = _f(ge=0, unit="USD bn/yr", doc="The state's goods imports from the power at the start.")
    investment_stock: float = _f(ge=0, unit="USD bn", doc="Stock of the power's investment in the state.")
    debt: float = _f(ge=0, unit="USD bn", doc="The state's official external debt owed to the power.")
    remittances: float = _f(ge=0, unit="USD bn/yr", doc="Migrant remittances from the power into the state.")
    security_ties: float = _f(ge=0, le=2, unit="index", doc="Standing security ties at the start (alliance, bases, arms supply; 1 = the deepest in the region). They then accumulate from security effort and alliances and decay without them (ties_gain, ties_decay).")
    basing: float = _f(0.0, ge=0, le=1, unit="index", doc="A standing presence in the state: a base, facility or deployed force (1 a full base). Draws the power's security effort there (basing_pull) while it engages.")
    reporting_ratio: float = _f(1.0, ge=1, le=10, unit="ratio", doc="The partner's customs figure for the pair's trade divided by the state's national figure (goods in transit declared as bound for the state). Trade is modelled on the partner's customs basis; the trade channel and the trade cap use the national figure.")
    sentiment: float = _f(ge=-1, le=1, unit="index", doc="Public sentiment toward the power, from -1 (hostile) to +1 (warm).")
    openness: float = _f(ge=0, le=2, unit="index", doc="The state's openness to the power's projects (1 normal; protests lower it for a while).")
    trade_affinity: float = _f(gt=0, le=10, unit="multiplier", doc="Fixed intensity of the pair's trade (distance, language, history) relative to the starting level; a structural constant, which no shipped event changes (sanctions and trade policy act through their own rules).")


class Params(_Strict):
    """Model parameters: behaviour rules and channel weights, the same for every actor."""

    w_trade: float = _f(0.25, ge=0, le=1, unit="weight", doc="Weight of the trade channel in influence.")
    w_investment: float = _f(0.15, ge=0, le=1, unit="weight", doc="Weight of the investment-stock channel in influence.")
    w_debt: float = _f(0.10, ge=0, le=1, unit="weight", doc="Weight of the debt-held channel in influence.")
    w_remittances: float = _f(0.10, ge=0, le=1, unit="weight", doc="Weight of the remittances channel in influence.")
    w_security: float = _f(0.20, ge=0, le=1, unit="weight", doc="Weight of the security-ties channel in influence.")
    w_alignment: float = _f(0.20, ge=0, le=1, unit="weight", doc="Weight of the alignment (tilt) channel in influence.")
    regional_weighting: Literal["gdp", "population"] = Field("gdp", description="How state shares are averaged into the regional share: by GDP or by population.", json_schema_extra={"unit": "choice"})
    allocation_temperature: float = _f(1.0, gt=0.05, le=10, unit="index", doc="Logit temperature of powers' budget allocation; 1 gives shares proportional to expected value, lower concentrates effort.")
    risk_fragility: float = _f(0.4, ge=0, le=1, unit="weight", doc="Project risk per unit of state fragility (value x (1 - risk)).")
    risk_debt: float = _f(0.3, ge=0, le=1, unit="weight", doc="Project risk per unit of total external debt to GDP (capped at 1).")
    capacity_shock_sd: float = _f(0.04, ge=0, le=0.5, unit="sd per quarter", doc="Standard deviation of quarterly shocks to each power's fiscal capacity, in log units; the shocks persist (a random walk), so projections fan out.")
    threat_response: float = _f(0.5, ge=0, le=2, unit="per point", doc="Rise in a power's effective stake per percentage point of regional share its rivals gained over their recent average (threat_memory): rivals' gains draw it in.")
    asset_stake_elasticity: float = _f(1.0, ge=0, le=3, unit="elasticity", doc="How the stake grows with what the power holds in the region (investment stock plus loans) relative to the start: stake x (holdings ratio)^this. Sunk investments make the region worth more.")
    lead_discount: float = _f(0.03, ge=0, le=2, unit="per point", doc="A secure lead lowers the effective stake: divided by 1 + this x the power's lead over its nearest rival, in points.")
    threat_memory: float = _f(0.1, gt=0, le=1, unit="1/quarter", doc="Speed of the moving average of regional shares that rivals' gains are measured against.")
    allocation_noise: float = _f(0.15, ge=0, le=2, unit="sd", doc="Standard deviation of the random taste shock on each (state, sector) project value, in log units.")
    security_temperature: float = _f(0.3, gt=0.05, le=10, unit="index", doc="Logit temperature of powers' split of security effort across states.")
    alignment_temperature: float = _f(0.8, gt=0.05, le=10, unit="index", doc="Logit temperature of states' alignment choice over powers' scores.")
    tilt_speed: float = _f(0.08, ge=0, le=1, unit="1/quarter", doc="Share of the gap to the logit target that a state's tilt closes each quarter.")
    fdi_connectivity_elasticity: float = _f(1.2, ge=0, le=5, unit="elasticity", doc="Elasticity of investment attractiveness to connectivity: a 10% cut in shipment time raises inflows by about 12% (the seed article's figure).")
    connectivity_gain: float = _f(0.15, ge=0, le=10, unit="per sqrt(USD bn/yr per USD bn GDP)", doc="Yearly rise in connectivity per unit of the square root of transport investment relative to GDP (diminishing returns).")
    equity_share: float = _f(0.42, ge=0, le=1, unit="fraction", doc="Share of accepted engagement that becomes investment stock (the rest is construction contracts and services). Default derived from Griffith/GFDC 2024 BRI totals: 51 bn investment of 121.7 bn engagement.")
    investment_depreciation: float = _f(0.06, ge=0, le=1, unit="1/yr", doc="Yearly depreciation of investment stocks.")
    growth_from_investment: float = _f(0.1, ge=0, le=5, unit="1/yr per (inflow/GDP)", doc="Extra GDP growth per unit of foreign investment inflow relative to GDP.")
    gdp_shock_sd: float = _f(0.01, ge=0, le=0.2, unit="sd per quarter", doc="Standard deviation of quarterly GDP growth shocks.")
    trade_adjustment: float = _f(0.25, ge=0, le=1, unit="1/quarter", doc="Share of the gap to target trade closed each quarter.")
    trade_gdp_elasticity: float = _f(0.6, ge=0, le=3, unit="elasticity", doc="Elasticity of a pair's trade to the state's nominal GDP.")
    trade_investment_elasticity: float = _f(0.5, ge=0, le=5, unit="elasticity", doc="Elasticity of a pair's trade to the power's investment stock.")
    other_corridor_trade: float = _f(0.3, ge=0, le=2, unit="index", doc="corridor_trade of the rest-of-world bucket.")
    other_debt_gdp_elasticity: float = _f(0.5, ge=0, le=2, unit="elasticity", doc="Elasticity of the debt owed to the rest of the world (multilateral lenders, bonds) to the state's GDP.")
    remittance_growth: float = _f(0.04, ge=-0.5, le=0.5, unit="1/yr", doc="Yearly nominal growth of remittances from the rest of the world (each power's follow its labour_demand_growth).")
    remittance_adjustment: float = _f(0.25, ge=0, le=1, unit="1/quarter", doc="Share of the gap to the remittance level set by the host's labour demand and migration policy closed each quarter.")
    size_elasticity: float = _f(0.5, ge=0, le=2, unit="elasticity", doc="How much a state's economic size (GDP) raises the value of projects there.")
    trade_connectivity_elasticity: float = _f(0.8, ge=0, le=5, unit="elasticity", doc="Elasticity of trade to connectivity, scaled by each power's corridor_trade.")
    eaeu_trade_bonus: float = _f(0.15, ge=0, le=2, unit="fraction", doc="Extra trade with Russia for EAEU members.")
    csto_security_bonus: float = _f(0.15, ge=0, le=2, unit="effort", doc="Security effort a CSTO leader's alliance adds to its ties with each CSTO member every quarter, times its commitment.")
    sco_security_bonus: float = _f(0.05, ge=0, le=2, unit="effort", doc="Security effort SCO membership adds to a member power's ties with each SCO state every quarter, times its commitment.")
    ties_gain: float = _f(0.25, ge=0, le=5, unit="1/yr per effort", doc="Yearly growth of security ties per unit of security effort (and alliance input) in the state.")
    ties_decay: float = _f(0.1, ge=0, le=1, unit="1/yr", doc="Yearly decay of security ties without effort (a steady effort e holds ties at ties_gain x e / ties_decay).")
    basing_pull: float = _f(1.0, ge=0, le=10, unit="index", doc="Added to the value of a state in a power's split of security effort per unit of basing there.")
    demand_fragility: float = _f(0.8, ge=0, le=5, unit="per fragility", doc="Fragile states demand more security: demand = threat x (1 + this x fragility) + demand_unrest x recent unrest.")
    demand_unrest: float = _f(0.3, ge=0, le=5, unit="index", doc="Security demand added by unrest at home (the moving share of recent quarters with protests).")
    fragility_volatility: float = _f(1.5, ge=0, le=10, unit="per fragility", doc="Fragile states are more volatile: the speeds at which public feeling and the tilt move are multiplied by 1 + this x fragility (capped at 1 per quarter).")
    fragility_sentiment: float = _f(1.0, ge=0, le=10, unit="per fragility", doc="Public feeling weighs more in fragile states: the weight of sentiment in alignment is multiplied by 1 + this x fragility.")
    trade_policy_elasticity: float = _f(1.0, ge=0, le=5, unit="elasticity", doc="Elasticity of trade to the state's trade_openness (trade policy).")
    trade_gdp_cap: float = _f(0.8, gt=0, le=2, unit="fraction of GDP", doc="Most a state's trade with one partner (national basis, exports plus imports) can reach, as a share of its GDP; targets above are scaled down.")
    sanction_diversion: float = _f(1.0, ge=0, le=10, unit="multiplier", doc="Trade rerouted to a sanctioned partner through a state, relative to the state's trade: each named power's trade with the state rises by this x the state's border openness x the sanctioned partners' share of its trade x their sanctions.")
    diversion_non_member: float = _f(0.4, ge=0, le=1, unit="fraction", doc="Border openness for rerouted trade of a state outside the EAEU (EAEU members 1).")
    debt_burden_threshold: float = _f(0.5, ge=0, le=3, unit="debt/GDP", doc="External debt to GDP (including hidden debt) above which a state's appetite for new loans falls.")
    debt_burden_aversion: float = _f(2.0, ge=0, le=20, unit="per (debt/GDP)", doc="Fall in borrowing appetite per unit of debt/GDP above the threshold.")
    debt_swap_threshold: float = _f(0.25, ge=0, le=3, unit="debt/GDP", doc="Debt to one creditor, relative to GDP, above which part of it is renegotiated into assets (debt-for-asset swaps).")
    debt_swap_rate: float = _f(0.2, ge=0, le=1, unit="1/yr", doc="Yearly share of the debt above the swap threshold swapped for assets (it becomes the creditor's investment stock).")
    debt_swap_sentiment: float = _f(2.0, ge=0, le=20, unit="per (swap/GDP)", doc="Sentiment lost toward the creditor per unit of swapped debt relative to GDP (ceded mines and land).")
    mining_processing_penalty: float = _f(0.4, ge=0, le=1, unit="fraction", doc="Fall in the attractiveness of mining projects under a full local-processing policy.")
    security_effort_decay: float = _f(0.15, ge=0, le=1, unit="1/quarter", doc="Quarterly decay of accumulated security effort (exercises, training, arms deliveries).")
    sentiment_speed: float = _f(0.1, ge=0, le=1, unit="1/quarter", doc="Share of the gap to target sentiment closed each quarter.")
    sentiment_jobs: float = _f(2.0, ge=0, le=20, unit="per (inflow/GDP)", doc="Sentiment gain per unit of the power's local-job-creating inflow relative to GDP.")
    sentiment_growth: float = _f(1.0, ge=0, le=20, unit="per (1/yr)", doc="Sentiment gain toward engaged powers per unit of GDP growth above trend.")
    sentiment_labour: float = _f(0.3, ge=0, le=5, unit="index", doc="Sentiment loss per unit of own_labour_share times the power's share of the state's inflows.")
    sentiment_debt: float = _f(0.6, ge=0, le=10, unit="per (debt/GDP)", doc="Sentiment loss per unit of the state's debt to the power (including hidden debt) relative to GDP.")
    corruption_shock_sd: float = _f(0.08, ge=0, le=1, unit="sd", doc="Standard deviation of quarterly corruption-scandal shocks to sentiment, scaled by engagement and the state's corruption.")
    protest_threshold: float = _f(-0.15, ge=-1, le=1, unit="index", doc="Sentiment below which protests against a power become likely.")
    protest_steepness: float = _f(12.0, ge=0, le=100, unit="1/index", doc="How fast protest probability rises as sentiment falls below the threshold.")
    protest_max_probability: float = _f(0.25, ge=0, le=1, unit="probability per quarter", doc="Quarterly protest probability in a fully fragile state far below the threshold.")
    protest_presence: float = _f(3.0, ge=0, le=100, unit="multiplier", doc="Protests need a visible presence: the probability is scaled by min(1, this x the power's share of the state's inflows).")
    protest_openness_drop: float = _f(0.3, ge=0, le=1, unit="fraction", doc="Fall in openness to a power when a protest against it breaks out.")
    protest_trade_barrier: float = _f(0.5, ge=0, le=1, unit="fraction", doc="Share of the openness lost to protests that also cuts the partner's trade (informal barriers, boycotts) until it recovers.")
    openness_recovery: float = _f(0.1, ge=0, le=1, unit="1/quarter", doc="Share of the gap back to normal openness recovered each quarter after a protest.")
    align_economy: float = _f(1.5, ge=0, le=10, unit="weight", doc="Weight of economic benefit in a state's score of a power: this x the square root of the mean of the power's shares of the state's trade, inflows and remittances (diminishing returns).")
    align_security: float = _f(1.2, ge=0, le=10, unit="weight", doc="Weight of security provided times the state's security demand.")
    align_sentiment: float = _f(0.6, ge=0, le=10, unit="weight", doc="Weight of public sentiment toward the power.")
    align_dependence: float = _f(0.3, ge=0, le=10, unit="weight", doc="Weight of the cost of dependence: the squares of the power's shares of the state's debt and trade (small shares cost little, a dominant one much).")
    align_hedging: float = _f(2.0, ge=0, le=10, unit="weight", doc="Penalty, times the state's hedging propensity, on the current tilt toward a power.")


def field_table(model: type[BaseModel]) -> list[dict]:
    """List a vocabulary model's fields as rows: name, unit, range, default, meaning.

    Args:
        model: One of PowerAttrs, StateAttrs, PairAttrs, Params.

    Returns:
        One dict per field, in declaration order.
    """
    rows = []
    for name, info in model.model_fields.items():
        lo = hi = None
        for m in info.metadata:
            lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
            lo = getattr(m, "gt", None) if getattr(m, "gt", None) is not None else lo
            hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
        extra = info.json_schema_extra or {}
        rows.append(
            {
                "name": name,
                "unit": extra.get("unit", ""),
                "min": lo,
                "max": hi,
                "default": None if info.is_required() else info.default,
                "doc": info.description or "",
            }
        )
    return rows
