"""The model earns its outcomes: one test per behavioural property (issue 13).

Each test runs a few seeded replications of the shipped baseline and of scenario files of
its own (tests/scenarios/behaviour/), which change *conditions* only (capacity, fragility,
sentiment, events removed), and checks a property the decision rules must produce. Means
over the same seeds in every scenario, so differences are paired. `python -m
tests.test_behaviour` prints every figure the tests check.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from sim.runs.runner import derive_seeds, simulate
from sim.scenario.scenarios import load_scenario, scenarios_dir
from sim.world.vocabulary import ROOT_SEED

HERE = Path(__file__).parent / "scenarios" / "behaviour"
RUNS = 12
"""Replications per scenario: enough that paired means settle (protests are rare draws)."""
OVERRIDES: dict[str, float] = {}
"""Parameter overrides for every scenario, from the command line when run as a script
(`python -m tests.test_behaviour params.threat_response=0.2`): for exploring, never in tests."""


@functools.cache
def _run(name: str):
    """Mean regional shares, per-state shares, tilt and power metrics of a scenario (cached)."""
    path = HERE / f"{name}.yaml"
    scn = load_scenario(path if path.is_file() else name)
    if OVERRIDES:  # exploring: the behaviour files' own settings still win
        own = {k: v for k, v in scn.overrides.items()
               if path.is_file() and k in path.read_text(encoding="utf-8")}
        scn = scn.with_overrides(OVERRIDES | own)
    out = simulate([scn] * RUNS, derive_seeds(ROOT_SEED, RUNS), engine="ensemble",
                   record=("shares", "metrics"))
    a = out.arrays
    return {
        "quarters": out.quarters,
        "partners": out.partners,
        "states": out.states,
        "region": a["region_influence"].mean(axis=0),  # (T, J)
        "state": a["state_influence"].mean(axis=0),  # (T, J, S)
        "tilt": a["pair_metrics"]["tilt"].mean(axis=0),  # (T, J, S)
        "budget": a["power_metrics"]["budget"].mean(axis=0),  # (T, P)
        "trade": (a["pair_metrics"]["exports"] + a["pair_metrics"]["imports"]).mean(axis=0),
        "gdp": a["state_metrics"]["gdp"].mean(axis=0),  # (T, S)
    }


def region(name: str, power: str, quarter: str) -> float:
    """A power's mean regional share in a quarter, in percentage points."""
    r = _run(name)
    return 100.0 * float(r["region"][r["quarters"].index(quarter), r["partners"].index(power)])


def in_state(name: str, power: str, state: str, quarter: str) -> float:
    """A power's mean share of influence in one state, in percentage points."""
    r = _run(name)
    t, j, s = (r["quarters"].index(quarter), r["partners"].index(power),
               r["states"].index(state))
    return 100.0 * float(r["state"][t, j, s])


# --------------------------------------------------------------------------- properties

def zero_capacity(power: str) -> dict[str, float]:
    """A power without capacity from 2015: its 2035 share, the baseline's, its own in 2015."""
    name = f"{power}_no_capacity"
    return {"no_capacity_2035": region(name, power, "2035Q4"),
            "baseline_2035": region("baseline", power, "2035Q4"),
            "own_2015": region(name, power, "2015Q1")}


def belt_and_road() -> dict[str, float]:
    """China's 2030 share with every event removed: baseline capacity growth vs none."""
    return {"growth": region("no_events", "china", "2030Q4"),
            "no_growth": region("no_events_flat_china", "china", "2030Q4")}


def rivals_respond() -> dict[str, float]:
    """Each rival's largest chosen budget over 2026-2027 relative to the baseline's, minus 1."""
    base, dbl = _run("baseline"), _run("china_capacity_doubles")
    q = base["quarters"]
    window = slice(q.index("2026Q1"), q.index("2027Q4") + 1)
    ratio = dbl["budget"][window] / base["budget"][window] - 1.0  # (8, P)
    return {p: float(ratio[:, i].max()) for i, p in enumerate(base["partners"][:-1])
            if p != "china"}


def fragility_bite(state: str = "kyrgyzstan") -> dict[str, float]:
    """The most a two-year anti-China shock moves China's share in the state over 2026-2029,
    in points, at low and at high fragility (paired runs with and without the shock)."""
    out = {}
    for level in ("low", "high"):
        calm, hit = _run(f"kyrgyz_fragility_{level}"), _run(f"kyrgyz_fragility_{level}_shock")
        q = calm["quarters"]
        t = slice(q.index("2026Q1"), q.index("2029Q4") + 1)
        j, s = calm["partners"].index("china"), calm["states"].index(state)
        out[level] = 100.0 * float((calm["state"][t, j, s] - hit["state"][t, j, s]).max())
    return out


def top_tilt_2025() -> dict[str, float]:
    """Each state's largest tilt toward one partner in the baseline, 2025Q4."""
    r = _run("baseline")
    t = r["tilt"][r["quarters"].index("2025Q4")]
    return {s: float(t[:, i].max()) for i, s in enumerate(r["states"])}


def tilt_change_tripled(quarter: str = "2025Q4") -> dict[str, float]:
    """China's tilt in each state with its offer tripled, minus the baseline's."""
    base, big = _run("baseline"), _run("china_offer_tripled")
    t, j = base["quarters"].index(quarter), base["partners"].index("china")
    return {s: float(big["tilt"][t, j, i] - base["tilt"][t, j, i])
            for i, s in enumerate(base["states"])}


def what_ifs() -> dict[str, float]:
    """The shipped what-ifs' promised differences from the baseline in 2035Q4, in points."""
    return {
        "no_ukraine_war: russia": region("no_ukraine_war", "russia", "2035Q4")
        - region("baseline", "russia", "2035Q4"),
        "us_stays: us": region("us_stays", "us", "2035Q4") - region("baseline", "us", "2035Q4"),
        "no_treaty: china": region("no_treaty", "china", "2035Q4")
        - region("baseline", "china", "2035Q4"),
    }


def max_trade_to_gdp() -> float:
    """The largest bilateral trade (national basis) to GDP ratio in any baseline quarter."""
    from sim.world.state import WorldState

    r = _run("baseline")
    ratio = WorldState(load_scenario("baseline")).reporting_ratio  # (J, S)
    return float((r["trade"] / ratio[None] / r["gdp"][:, None, :]).max())


# --------------------------------------------------------------------------- tests

@pytest.mark.slow
@pytest.mark.parametrize("power", ["china", "russia"])
def test_zero_capacity_fades(power):
    f = zero_capacity(power)
    assert f["no_capacity_2035"] <= f["baseline_2035"] - 5.0, f
    assert f["no_capacity_2035"] < f["own_2015"], f


@pytest.mark.slow
def test_belt_and_road_matters_by_itself():
    f = belt_and_road()
    assert f["growth"] >= f["no_growth"] + 4.0, f


@pytest.mark.slow
def test_rivals_respond_to_china_doubling():
    f = rivals_respond()
    assert max(f.values()) >= 0.10, f


@pytest.mark.slow
def test_fragility_bites():
    f = fragility_bite()
    assert f["low"] > 0, f
    assert f["high"] >= 1.5 * f["low"], f


@pytest.mark.slow
def test_states_hedge():
    assert max(top_tilt_2025().values()) <= 0.75, top_tilt_2025()
    assert min(tilt_change_tripled().values()) > 0, tilt_change_tripled()


@pytest.mark.slow
def test_what_ifs_keep_their_promises():
    f = what_ifs()
    assert f["no_ukraine_war: russia"] > 0, f
    assert f["us_stays: us"] > 0, f
    assert f["no_treaty: china"] < 0, f


@pytest.mark.slow
def test_trade_stays_plausible():
    assert max_trade_to_gdp() <= 0.8 + 1e-9


CONDITIONS = {
    # a power's means, priorities and policies
    "capacity", "capacity_growth", "stake", "attention", "security_capacity",
    "security_credibility", "sanctioned", "labour_demand_growth", "migration_policy",
    "lending_share", "own_labour_share", "strategic_corridor", "corridor_trade",
    "priority_energy", "priority_mining", "priority_transport", "priority_digital",
    "priority_manufacturing",
    # a state's threats, policies, memberships and geography
    "security_demand", "fragility", "hedging", "trade_openness", "borrowing_appetite",
    "local_processing", "transit", "eaeu", "csto", "sco",
    # a pair's policy, presence and public feeling
    "openness", "basing", "sentiment",
}
"""What an event may change: conditions the agents respond to, never an outcome level."""
UNIT_CHANGES = {("uzbek_opening_2017", "gdp")}
"""The 2017 float revalues Uzbekistan's GDP in dollars: a change of the unit the model counts
in (the exchange rate), not an outcome of anyone's choice."""


def _shipped_events():
    from sim.scenario.scenarios import scenarios_dir

    seen = {}
    for path in sorted(scenarios_dir().glob("*.yaml")):
        for ev in load_scenario(path).events:
            seen[ev.id] = ev
    return list(seen.values())


def test_shipped_events_change_conditions_not_outcomes():
    events = _shipped_events()
    assert len(events) >= 15
    for ev in events:
        for eff in ev.effects:
            for path in eff.paths:
                field = path[-1]
                assert field in CONDITIONS or (ev.id, field) in UNIT_CHANGES, (ev.id, path)
        assert "Condition" in ev.description or "condition" in ev.description, ev.id


def test_behaviour_files_change_conditions_only():
    """The test scenarios set capacities, growth, fragility and sentiment: no outcome levels."""
    allowed = {"capacity", "capacity_growth", "security_capacity", "fragility", "sentiment"}
    for path in sorted(HERE.glob("*.yaml")):
        scn = load_scenario(path)
        base = set(load_scenario("baseline").overrides)
        keys = {k.rsplit(".", 1)[-1] for k in scn.overrides if k not in base}
        touched = {p[-1] for e in scn.events if e.id.endswith(("2026", "2015"))
                   and not e.id.startswith(("eaeu", "china_pamir"))
                   for f in e.effects for p in f.paths}
        assert keys <= allowed, (path, keys)
        assert touched <= allowed, (path, touched)
    assert scenarios_dir().is_dir()


if __name__ == "__main__":  # print the figures
    import sys

    OVERRIDES.update({k: float(v) for k, v in (a.split("=") for a in sys.argv[1:])})
    for power in ("china", "russia"):
        print(f"zero capacity {power}:", {k: round(v, 1) for k, v in zero_capacity(power).items()})
    print("belt and road:", {k: round(v, 1) for k, v in belt_and_road().items()})
    print("rivals respond:", {k: round(v, 3) for k, v in rivals_respond().items()})
    print("fragility bite:", {k: round(v, 2) for k, v in fragility_bite().items()})
    print("top tilt 2025:", {k: round(v, 3) for k, v in top_tilt_2025().items()})
    print("tilt change, China x3:", {k: round(v, 3) for k, v in tilt_change_tripled().items()})
    print("what-ifs:", {k: round(v, 2) for k, v in what_ifs().items()})
    print("max trade/GDP:", round(max_trade_to_gdp(), 3))
