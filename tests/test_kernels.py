"""Pure decision rules: limits, invariants, and the batch axis."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sim.engine import kernels as K

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
positive = st.floats(0, 100, allow_nan=False, allow_infinity=False)


@given(arrays(float, (4, 3), elements=finite), st.floats(0.06, 10))
def test_softmax_is_a_distribution(x, temp):
    p = K.softmax(x, temp, axis=-1)
    assert np.all(p >= 0) and np.all(p <= 1)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)


def test_softmax_limits():
    x = np.array([1.0, 2.0, 3.0])
    cold = K.softmax(x, 0.001)
    np.testing.assert_allclose(cold, [0, 0, 1], atol=1e-12)
    hot = K.softmax(x, 1e6)
    np.testing.assert_allclose(hot, [1 / 3] * 3, atol=1e-5)
    # temperature 1 on log-values gives shares proportional to the values
    v = np.array([1.0, 3.0, 6.0])
    np.testing.assert_allclose(K.softmax(np.log(v), 1.0), v / v.sum())


def test_softmax_is_stable_for_huge_inputs():
    p = K.softmax(np.array([1e300, 1e300 - 1, 0.0]), 1.0)
    assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1.0)


@given(arrays(float, (5, 3), elements=positive))
def test_shares_sum_to_one_per_state(values):
    sh = K.shares(values, axis=-2)
    assert np.all(sh >= 0) and np.all(sh <= 1)
    np.testing.assert_allclose(sh.sum(axis=-2), 1.0, rtol=1e-12)


def test_shares_of_nothing_go_to_other():
    sh = K.shares(np.zeros((5, 2)))
    np.testing.assert_array_equal(sh[-1], [1, 1])
    np.testing.assert_array_equal(sh[:-1], 0)


def test_shares_ignore_negative_values():
    sh = K.shares(np.array([[-1.0], [1.0], [3.0]]))
    np.testing.assert_allclose(sh[:, 0], [0, 0.25, 0.75])


@given(arrays(float, (6, 5, 4), elements=positive), arrays(float, (6,), elements=positive))
def test_influence_is_a_distribution_for_any_weights(values, weights):
    sh, inf = K.influence(values, weights)
    np.testing.assert_allclose(sh.sum(axis=-2), 1.0, rtol=1e-12)
    np.testing.assert_allclose(inf.sum(axis=-2), 1.0, rtol=1e-12)
    assert np.all(inf >= 0) and np.all(inf <= 1 + 1e-12)


def test_influence_weights_select_channels():
    values = np.zeros((2, 2, 1))
    values[0] = [[1.0], [0.0]]  # channel 0: partner 0 holds everything
    values[1] = [[0.0], [1.0]]  # channel 1: partner 1 (other) holds everything
    _, inf = K.influence(values, np.array([1.0, 0.0]))
    np.testing.assert_allclose(inf[:, 0], [1, 0])
    _, inf = K.influence(values, np.array([1.0, 3.0]))
    np.testing.assert_allclose(inf[:, 0], [0.25, 0.75])


def test_regional_is_weighted_mean():
    per_state = np.array([[0.2, 0.6], [0.8, 0.4]])
    out = K.regional(per_state, np.array([3.0, 1.0]))
    np.testing.assert_allclose(out, [0.3, 0.7])


def test_allocate_spends_the_budget_and_prefers_value():
    rng = np.random.default_rng(0)
    values = rng.random((2, 5, 5)) + 0.01
    values[0, 2, 3] = 5.0  # one clearly best project
    budget = np.array([4.0, 1.0])
    spend = K.allocate(budget, values, np.zeros((2, 5)), np.zeros(2), np.zeros((2, 5, 5)),
                       0.0, 1.0)
    np.testing.assert_allclose(spend.sum(axis=(-2, -1)), budget)
    # temperature 1: proportional to value
    np.testing.assert_allclose(spend[0] / spend[0].sum(), values[0] / values[0].sum())
    # a cold allocation concentrates on the best project
    cold = K.allocate(budget, values, np.zeros((2, 5)), np.zeros(2), np.zeros((2, 5, 5)),
                      0.0, 0.06)
    best = np.unravel_index(np.argmax(values[0]), values[0].shape)
    assert cold[0][best] > 0.5 * budget[0]


def test_rival_surge_raises_effort_there():
    values = np.ones((2, 3, 5))
    avg = np.ones((2, 3))
    latest = avg.copy()
    latest[1, 2] = 3.0  # power 1 triples its effort in state 2
    signal = K.rival_signal(latest, avg)
    assert signal[0, 2] > 0 and signal[0, 0] == 0 and signal[1, 2] == 0
    spend = K.allocate(np.array([1.0, 1.0]), values, signal, np.array([1.0, 1.0]),
                       np.zeros((2, 3, 5)), 0.0, 1.0)
    per_state = spend[0].sum(axis=-1)
    assert per_state[2] > per_state[0]


def test_fdi_elasticity_to_connectivity():
    """A 10% cut in shipment time raises a small state's inflow by about 12% (elasticity 1.2)."""
    args = dict(priority=np.ones((1, 5)), endowment=np.ones((50, 5)), openness=np.ones((1, 50)),
                risk=np.zeros(50), size=np.ones(50), fdi_elasticity=1.2,
                strategic=np.zeros(1), transit=np.zeros(50))
    conn = np.ones(50)
    base = K.project_values(connectivity=conn, **args)
    conn2 = conn.copy()
    conn2[0] = 1 / 0.9  # shipment time down 10%
    after = K.project_values(connectivity=conn2, **args)
    zeros = np.zeros((1, 50, 5))
    s0 = K.allocate(np.ones(1), base, np.zeros((1, 50)), np.zeros(1), zeros, 0.0, 1.0)
    s1 = K.allocate(np.ones(1), after, np.zeros((1, 50)), np.zeros(1), zeros, 0.0, 1.0)
    gain = s1[0, 0].sum() / s0[0, 0].sum() - 1
    assert 0.11 < gain < 0.14


def test_protest_probability_rises_as_sentiment_falls():
    moods = np.array([0.5, 0.0, -0.2, -0.6])
    p = K.protest_probability(moods, 0.6, 1.0, -0.15, 12.0, 0.25)
    assert np.all(np.diff(p) > 0)
    assert p[-1] <= 0.25 * 0.6
    assert K.protest_probability(np.array([-1.0]), 0.0, 1.0, -0.15, 12.0, 0.25)[0] == 0
    assert K.protest_probability(np.array([-1.0]), 0.6, 0.0, -0.15, 12.0, 0.25)[0] == 0


def test_protest_damage_recovers():
    d = K.protest_damage(np.zeros(1), np.array([True]), 0.3, 0.1)
    assert d[0] == pytest.approx(0.3)
    d2 = K.protest_damage(d, np.array([False]), 0.3, 0.1)
    assert d2[0] == pytest.approx(0.27)
    d3 = K.protest_damage(d, np.array([True]), 0.3, 0.1)
    assert d2[0] < d3[0] < 1


@given(arrays(float, (5, 3), elements=st.floats(-1, 1)), arrays(float, (5, 3), elements=finite),
       arrays(float, (5, 3), elements=st.floats(0, 5)))
def test_sentiment_stays_in_bounds(mood, target, scandal):
    out = K.update_sentiment(mood, target, 0.3, scandal, 0.5, np.ones(3), np.full((5, 3), 0.2))
    assert np.all(out >= -1) and np.all(out <= 1)


def test_scandals_only_lower_sentiment():
    mood = np.zeros((2, 1))
    up = K.update_sentiment(mood, mood, 0.1, np.array([[-3.0], [3.0]]), 0.1, np.ones(1),
                            np.ones((2, 1)))
    assert up[0, 0] == 0 and up[1, 0] < 0


def test_trade_target_is_base_at_start_and_grows_with_drivers():
    base = np.array([[2.0], [1.0]])
    args = dict(gdp=np.array([10.0]), gdp0=np.array([10.0]), gdp_elasticity=0.6,
                stock=np.array([[1.0], [1.0]]), stock0=np.array([[1.0], [1.0]]),
                investment_elasticity=0.4, connectivity=np.array([1.0]),
                corridor=np.array([1.0, 0.0]), connectivity_elasticity=0.8,
                affinity=np.ones((2, 1)), bloc_bonus=np.zeros((2, 1)))
    np.testing.assert_allclose(K.trade_target(base, **args), base)
    args["connectivity"] = np.array([1.2])
    t = K.trade_target(base, **args)
    assert t[0, 0] > base[0, 0] and t[1, 0] == pytest.approx(base[1, 0])


def test_alignment_terms_add_up():
    J, S = 3, 2
    rng = np.random.default_rng(1)
    args = [rng.random((J, S)) for _ in range(2)]
    p = {"align_economy": 1.0, "align_security": 1.2, "align_sentiment": 0.6,
         "align_dependence": 0.8, "align_hedging": 1.0, "fragility_sentiment": 1.0}
    terms = K.alignment_scores(args[0], args[1], np.full(S, 0.5), rng.random((J, S)) - 0.5,
                               rng.random((J, S)), rng.random((J, S)), np.full(S, 0.4),
                               np.full((J, S), 1 / J), np.full(S, 0.5), p)
    parts = sum(v for k, v in terms.items() if k != "score")
    np.testing.assert_allclose(terms["score"], parts)
    assert np.all(terms["dependence"] <= 0) and np.all(terms["hedging"] <= 0)


def test_hedging_pulls_tilt_toward_balance():
    J, S = 3, 1
    econ = np.array([[0.8], [0.1], [0.1]])
    zeros = np.zeros((J, S))
    p = {"align_economy": 1.0, "align_security": 0.0, "align_sentiment": 0.0,
         "align_dependence": 0.0, "align_hedging": 2.0, "fragility_sentiment": 0.0}
    tilt = np.array([[0.8], [0.1], [0.1]])
    lean = K.softmax(K.alignment_scores(econ, zeros, np.zeros(S), zeros, zeros, zeros,
                                        np.zeros(S), tilt, np.zeros(S), p)["score"], 0.35,
                     axis=-2)
    hedge = K.softmax(K.alignment_scores(econ, zeros, np.zeros(S), zeros, zeros, zeros,
                                         np.ones(S), tilt, np.zeros(S), p)["score"], 0.35,
                      axis=-2)
    assert hedge[0, 0] < lean[0, 0]


def test_draws_have_fixed_shapes_and_come_from_the_generator():
    a = K.split_draws(K.draw_run(np.random.default_rng(5), 1, 4, 5, 5)[0], 4, 5, 5)
    b = K.split_draws(K.draw_run(np.random.default_rng(5), 1, 4, 5, 5)[0], 4, 5, 5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.alloc.shape == (4, 5, 5) and a.protest.shape == (4, 5) and a.order.shape == (4,)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_kernels_accept_a_leading_batch_axis(seed):
    """Calling a kernel on a batch equals calling it run by run (the ensemble's premise)."""
    rng = np.random.default_rng(seed)
    B, P, S, Kk = 3, 4, 5, 5
    values = rng.random((B, P, S, Kk)) + 0.01
    budget = rng.random((B, P))
    signal = rng.random((B, P, S))
    resp = rng.random((B, P))
    noise = rng.standard_normal((B, P, S, Kk))
    batch = K.allocate(budget, values, signal, resp, noise, 0.2, 0.8)
    single = np.stack([K.allocate(budget[b], values[b], signal[b], resp[b], noise[b], 0.2, 0.8)
                       for b in range(B)])
    np.testing.assert_allclose(batch, single, rtol=1e-13, atol=1e-15)

    pair = rng.random((B, 6, P + 1, S))
    w = rng.random(6)
    sh_b, inf_b = K.influence(pair, w)
    for b in range(B):
        sh, inf = K.influence(pair[b], w)
        np.testing.assert_allclose(inf_b[b], inf, rtol=1e-13)
        np.testing.assert_allclose(sh_b[b], sh, rtol=1e-13)

    latest, avg = rng.random((B, P, S)), rng.random((B, P, S)) + 0.1
    sig_b = K.rival_signal(latest, avg)
    for b in range(B):
        np.testing.assert_allclose(sig_b[b], K.rival_signal(latest[b], avg[b]), rtol=1e-13)

    # a state kernel on one state's column equals the same column of the all-states call
    mood = rng.random((B, P + 1, S)) - 0.5
    target = rng.random((B, P + 1, S)) - 0.5
    scandal = rng.standard_normal((B, P + 1, S))
    corr = rng.random((B, S))
    share = K.shares(rng.random((B, P + 1, S)))
    full = K.update_sentiment(mood, target, 0.1, scandal, 0.1, corr[:, None, :], share)
    col = K.update_sentiment(mood[..., 2:3], target[..., 2:3], 0.1, scandal[..., 2:3], 0.1,
                             corr[:, None, 2:3], share[..., 2:3])
    np.testing.assert_allclose(full[..., 2:3], col, rtol=1e-13)


@pytest.mark.parametrize("shape,axis", [((300, 5, 5), -2), ((300, 6, 5, 5), -3),
                                        ((300, 6, 5, 5), -1), ((300, 25), -1), ((3, 5), -2)])
def test_short_axis_reductions_match_numpy(shape, axis):
    x = np.random.default_rng(3).normal(size=shape)
    for keep in (False, True):
        np.testing.assert_allclose(K.rsum(x, axis, keep), np.sum(x, axis=axis, keepdims=keep),
                                   rtol=1e-14, atol=1e-15)
        np.testing.assert_array_equal(K.rmax(x, axis, keep), np.max(x, axis=axis, keepdims=keep))


def test_drawing_quarters_in_blocks_gives_the_numbers_of_one_draw():
    """The ensemble draws a block of quarters at a time; the Mesa model draws all at once."""
    whole = K.draw_run(np.random.default_rng(5), 30, 4, 5, 5)
    rng = np.random.default_rng(5)
    blocks = np.concatenate([K.draw_run(rng, n, 4, 5, 5) for n in (12, 12, 6)])
    np.testing.assert_array_equal(whole, blocks)


def test_influence_without_channel_shares_is_the_same_influence():
    rng = np.random.default_rng(8)
    values = rng.random((40, 6, 5, 5))
    values[3, 2, :, 1] = 0.0  # a channel nobody holds in a state: it counts for `other`
    values[7, :, :, 4] = 0.0
    weights = rng.random((40, 6))
    shares, full = K.influence(values, weights)
    none, lean = K.influence(values, weights, with_shares=False)
    assert none is None
    np.testing.assert_allclose(lean, full, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(lean.sum(axis=-2), 1.0, rtol=1e-13)
    assert lean[3, -1, 1] > full[3, :-1, 1].max() * 0  # `other` got the empty channel
    np.testing.assert_allclose(shares[3, 2, :, 1], [0, 0, 0, 0, 1])


# --------------------------------------------------------------------------- issue 13 rules

def test_commitment_rises_with_stake_and_threat_and_falls_with_lead():
    base = K.commitment(1.0, 1.0, 0.0, 0.0, 0.3, 0.03)
    assert 0 < base < 1
    assert K.commitment(2.0, 1.0, 0.0, 0.0, 0.3, 0.03) > base  # a higher stake
    assert K.commitment(1.0, 1.0, 2.0, 0.0, 0.3, 0.03) > base  # rivals gained 2 points
    assert K.commitment(1.0, 1.0, 0.0, 10.0, 0.3, 0.03) < base  # a 10-point lead
    assert K.commitment(1.0, 0.5, 0.0, 0.0, 0.3, 0.03) < base  # distracted
    assert K.commitment(0.0, 1.0, 5.0, 0.0, 0.3, 0.03) == 0.0  # no stake, no commitment


def test_rival_pressure_counts_rivals_gains_and_the_leaders_margin():
    now = np.array([0.30, 0.20, 0.10, 0.05])
    ref = np.array([0.30, 0.18, 0.10, 0.06])
    threat, lead = K.rival_pressure(now, ref)
    np.testing.assert_allclose(threat, [2.0, 0.0, 2.0, 2.0])  # only power 1 gained, 2 points
    np.testing.assert_allclose(lead, [10.0, 0.0, 0.0, 0.0])
    batch = K.rival_pressure(np.stack([now, now[::-1]]), np.stack([ref, ref[::-1]]))
    np.testing.assert_allclose(batch[0][1], threat[::-1])
    np.testing.assert_allclose(batch[1][1], lead[::-1])


def test_ties_accumulate_with_effort_and_decay_without():
    ties = np.array([0.5])
    for _ in range(600):
        ties = K.accumulate_ties(ties, 0.4, 0.25, 0.1)
    assert ties[0] == pytest.approx(0.25 * 0.4 / 0.1, rel=1e-3)  # steady state gain e / decay
    faded = K.accumulate_ties(np.array([1.0]), 0.0, 0.25, 0.1)
    for _ in range(39):
        faded = K.accumulate_ties(faded, 0.0, 0.25, 0.1)
    assert faded[0] == pytest.approx((1 - 0.025) ** 40)


def test_fragile_states_demand_more_security():
    calm = K.security_demand(0.5, np.array([0.3, 0.65]), 0.0, 0.8, 0.3)
    assert calm[1] > calm[0]
    assert K.security_demand(0.5, 0.3, 1.0, 0.8, 0.3) > calm[0]  # unrest at home


def test_sanctions_divert_trade_through_open_borders():
    share = np.array([[0.5, 0.5], [0.4, 0.1], [0.1, 0.4]])  # (J, S): china, russia, other
    none = K.trade_diversion(share, np.array([0.0, 0.0]), np.array([1.0, 0.0]), 0.4, 2.0)
    np.testing.assert_allclose(none, 1.0)
    hit = K.trade_diversion(share, np.array([0.0, 1.0]), np.array([1.0, 0.0]), 0.4, 2.0)
    np.testing.assert_allclose(hit, [1 + 2.0 * 1.0 * 0.4, 1 + 2.0 * 0.4 * 0.1])


def test_trade_cap_binds_only_above_the_share_of_gdp():
    ex, im = np.array([[5.0], [1.0]]), np.array([[5.0], [1.0]])
    f = K.trade_cap(ex, im, np.array([[1.0], [1.0]]), np.array([10.0]), 0.8)
    np.testing.assert_allclose(f, [[0.8], [1.0]])
    f = K.trade_cap(ex, im, np.array([[4.0], [1.0]]), np.array([10.0]), 0.8)  # national 2.5
    np.testing.assert_allclose(f, [[1.0], [1.0]])


def test_heavy_debt_lowers_appetite_and_is_swapped_for_assets():
    assert K.borrowing_appetite(0.8, 0.3, 0.5, 2.0) == pytest.approx(0.8)
    assert K.borrowing_appetite(0.8, 0.7, 0.5, 2.0) == pytest.approx(0.8 * 0.6)
    assert K.borrowing_appetite(0.8, 2.0, 0.5, 2.0) == 0.0
    swapped = K.debt_swaps(np.array([[4.0], [1.0]]), np.array([10.0]), 0.25, 0.2)
    np.testing.assert_allclose(swapped, [[0.2 / 4 * 1.5], [0.0]])


def test_a_bigger_offer_scores_higher_despite_dependence():
    """Diminishing returns: sqrt(share) beats the squared dependence cost at the defaults."""
    from sim.world.vocabulary import Params

    p = Params().model_dump()
    econ = np.linspace(0.05, 0.7, 14)
    score = (p["align_economy"] * np.sqrt(econ) - p["align_dependence"] * econ ** 2)
    assert np.all(np.diff(score) > 0)
