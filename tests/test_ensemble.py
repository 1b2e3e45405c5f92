"""The ensemble engine gives the Mesa model's numbers, run by run, to within 1e-12."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine import reporters
from sim.engine.ensemble import Ensemble
from sim.engine.model import InfluenceModel
from sim.scenario.scenarios import list_scenarios, load_scenario
from sim.world.vocabulary import Params, field_table

ALL = tuple(reporters.MODEL_REPORTERS)
TOL = 1e-12


def mesa_records(scenario, seed):
    model = InfluenceModel(scenario, rng=seed)
    model.run()
    return model.datacollector.model_vars, model


def assert_same(ens, b, rec):
    assert list(ens.records["quarter"]) == list(rec["quarter"])
    for name in ALL:
        if name == "quarter":
            continue
        for t, (mine, theirs) in enumerate(zip(ens.records[name], rec[name], strict=True)):
            if isinstance(theirs, dict):
                for k in theirs:
                    np.testing.assert_allclose(mine[k][b], theirs[k], rtol=0, atol=TOL,
                                               err_msg=f"{name}.{k} quarter {t}")
            else:
                np.testing.assert_allclose(mine[b], theirs, rtol=0, atol=TOL,
                                           err_msg=f"{name} quarter {t}")


@pytest.mark.parametrize("name", [n for n, _ in list_scenarios()])
def test_every_shipped_scenario_matches_mesa(name):
    scn = load_scenario(name)
    seeds = [7, 123456789]
    ens = Ensemble([scn, scn], seeds, record=ALL)
    ens.run()
    for b, seed in enumerate(seeds):
        rec, model = mesa_records(scn, seed)
        assert_same(ens, b, rec)
        assert ens.event_log[b] == model.event_log


def test_a_batch_of_different_scenarios_and_event_values_matches_mesa():
    base = load_scenario("baseline").with_end("2024Q4")
    mild = base.with_overrides({"events.ukraine_war_2022.effects[0].value": 0.95,
                                "params.w_security": 0.35})
    other = load_scenario("no_treaty").with_end("2024Q4")
    us = load_scenario("us_stays").with_end("2024Q4")
    runs = [base, mild, other, us]
    seeds = [1, 2, 3, 4]
    ens = Ensemble(runs, seeds, record=ALL)
    assert ens.shared_schedule is None  # different events: one schedule per run
    ens.run()
    for b, (scn, seed) in enumerate(zip(runs, seeds, strict=True)):
        assert_same(ens, b, mesa_records(scn, seed)[0])
    same = Ensemble([base, mild], [1, 2], record=ALL)
    assert same.shared_schedule is not None  # same events, other values: one schedule
    same.run()
    assert_same(same, 1, mesa_records(mild, 2)[0])


RANGED = {r["name"]: r for r in field_table(Params)
          if r["min"] is not None and r["max"] is not None}
PARAM = st.sampled_from(sorted(RANGED))


@st.composite
def param_point(draw):
    names = draw(st.lists(PARAM, min_size=1, max_size=5, unique=True))
    out = {}
    for n in names:
        lo, hi = float(RANGED[n]["min"]), float(RANGED[n]["max"])
        out[f"params.{n}"] = draw(st.floats(lo + 1e-6 * (hi - lo) + 1e-9, hi,
                                            allow_nan=False))
    if draw(st.booleans()):
        out["powers.china.capacity_growth"] = draw(st.floats(-0.2, 0.3))
    if draw(st.booleans()):
        out["states.*.hedging"] = draw(st.floats(0, 1))
    return out


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points=st.lists(param_point(), min_size=1, max_size=3),
       seeds=st.lists(st.integers(0, 2**63 - 1), min_size=3, max_size=3))
def test_hypothesis_points_and_seeds_match_mesa(points, seeds):
    base = load_scenario("baseline").with_end("2019Q4")
    runs = [base.with_overrides(points[i % len(points)]) for i in range(3)]
    ens = Ensemble(runs, seeds, record=ALL)
    ens.run()
    for b in range(3):
        assert_same(ens, b, mesa_records(runs[b], seeds[b])[0])


def test_batches_refuse_runs_that_cannot_share_a_period():
    a = load_scenario("baseline")
    with pytest.raises(ValueError):
        Ensemble([a, a.with_end("2020Q4")], [1, 2])
    with pytest.raises(ValueError):
        Ensemble([a], [1, 2])
