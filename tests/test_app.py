"""The classroom page's model factory (sim.app.classroom) and page helpers, without a server.

Sliders come from the vocabulary and map to valid scenarios; bad values and combinations
are caught as problems, never raised; event switches drop events; switching the treaty
off lowers China's share after 2025; the batch path never imports the page.
"""

import math
import subprocess
import sys
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sim.app import classroom as C  # noqa: E402
from sim.scenario.scenarios import load_scenario  # noqa: E402
from sim.world.quarters import parse_quarter  # noqa: E402
from sim.world.values import apply_set  # noqa: E402
from sim.world.vocabulary import Params, PowerAttrs, StateAttrs, field_table  # noqa: E402

TREATY = "event:china_central_asia_treaty_2025"
BASELINE = load_scenario("baseline")
CONTROLS = C.controls(BASELINE)


def _vocab(key):
    if key == C.RUSSIA_LOSS:
        return PowerAttrs, "attention"
    kind, *_, name = key.split(".")
    return {"powers": PowerAttrs, "states": StateAttrs, "params": Params}[kind], name


def _value_in(scenario, key):
    kind, *rest = key.split(".")
    if kind == "powers":
        return getattr(scenario.world.powers[rest[0]], rest[1])
    if kind == "states":
        return getattr(scenario.world.states[rest[0]], rest[1])
    return getattr(scenario.params, rest[0])


def _check_runs(model, quarters=8):
    for _ in range(quarters):
        model.step()
    w = model.world
    assert np.isfinite(w.state_influence).all() and np.isfinite(w.region_influence).all()
    assert np.allclose(w.state_influence.sum(axis=0), 1.0)
    assert math.isclose(float(w.region_influence.sum()), 1.0)


# --------------------------------------------------------------------------- controls

def test_the_sliders_a_teacher_needs_are_there():
    keys = {c.key for c in CONTROLS}
    for p in ("china", "russia", "eu", "us"):
        assert {f"powers.{p}.capacity", f"powers.{p}.capacity_growth"} <= keys
    assert {f"params.w_{c}" for c in ("trade", "investment", "debt", "remittances",
                                      "security", "alignment")} <= keys
    assert {f"states.{s}.hedging" for s in BASELINE.world.states} <= keys
    assert {"params.alignment_temperature", C.RUSSIA_LOSS} <= keys
    assert len(keys) == len(CONTROLS)


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.key)
def test_sliders_are_declared_from_the_vocabulary(control):
    model, name = _vocab(control.key)
    row = next(r for r in field_table(model) if r["name"] == name)
    assert control.unit == row["unit"]
    assert control.min >= row["min"] and control.max <= row["max"]
    assert control.min < control.max and control.step > 0
    if control.key == C.RUSSIA_LOSS:
        war = next(e for e in BASELINE.events if e.id == C.WAR_EVENT)
        scale = next(e.value for e in war.effects if e.target == C.WAR_TARGET)
        assert control.default == pytest.approx(1 - scale)
        return
    assert control.default == _value_in(BASELINE, control.key)
    assert control.doc == row["doc"]
    if not control.key.endswith(".capacity"):  # budgets are narrowed for usability
        assert control.max == pytest.approx(row["max"], abs=control.step)
        assert control.min == pytest.approx(row["min"], abs=control.step)


@pytest.mark.parametrize("end", ["min", "max"])
@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.key)
def test_each_slider_at_either_end_gives_a_valid_model(control, end):
    value = getattr(control, end)
    model = C.ClassroomModel(**{control.key: value})
    assert model.problems == []
    assert model.built.values[control.key] == value
    if control.key != C.RUSSIA_LOSS:
        assert _value_in(model.scenario, control.key) == pytest.approx(value)
    _check_runs(model)


def test_all_sliders_at_their_ends_together_still_run():
    for end in ("min", "max"):
        model = C.ClassroomModel(**{c.key: getattr(c, end) for c in CONTROLS})
        _check_runs(model, quarters=40)


def test_untouched_sliders_change_nothing():
    built = C.build("baseline", {c.key: c.default for c in CONTROLS})
    assert built.problems == []
    assert built.scenario.world == BASELINE.world
    assert built.scenario.params == BASELINE.params
    assert built.scenario.events == BASELINE.events


# --------------------------------------------------------------------------- bad input

def test_zero_channel_weights_are_caught_and_replaced():
    zero = {f"params.w_{c}": 0.0 for c in ("trade", "investment", "debt", "remittances",
                                           "security", "alignment")}
    model = C.ClassroomModel(**zero)
    assert len(model.problems) == 1 and "Channel weights" in model.problems[0]
    assert model.scenario.params == BASELINE.params
    assert all(model.built.values[k] == getattr(BASELINE.params, k[7:]) for k in zero)
    assert model.built.rejected == zero  # the page keeps showing what was asked for
    _check_runs(model)


@pytest.mark.parametrize("settings, fragment", [
    ({"powers.china.capacity": "lots"}, "expected a number"),
    ({"powers.china.capacity": float("nan")}, "finite"),
    ({"powers.china.capacity": None}, "expected a number"),
    ({"powers.china.capacity": 900.0}, "less than or equal to 500"),
    ({"states.kazakhstan.hedging": 1.5}, "less than or equal to 1"),
    ({"params.alignment_temperature": 0.05}, "greater than 0.05"),
    ({"params.w_trade": -0.1}, "greater than or equal to 0"),
    ({C.RUSSIA_LOSS: 1.5}, "between 0 and 1"),
    ({"powers.china.nonsense": 1.0}, "not a setting"),
    ({TREATY: "maybe"}, "expected on or off"),
    ({"scenario": "atlantis"}, "no shipped scenario"),
    ({"replication": 99}, "Random run"),
    ({"replication": "first"}, "Random run"),
])
def test_bad_values_are_reported_not_raised(settings, fragment):
    model = C.ClassroomModel(**settings)
    assert len(model.problems) == 1, model.problems
    assert fragment in model.problems[0]
    assert model.scenario.world == BASELINE.world
    assert model.scenario.params == BASELINE.params
    _check_runs(model, quarters=2)


def test_one_bad_value_does_not_spoil_the_good_ones():
    model = C.ClassroomModel(**{"powers.china.capacity": "x", "powers.russia.capacity": 6.0})
    assert len(model.problems) == 1
    assert model.scenario.world.powers["russia"].capacity == 6.0
    assert model.scenario.overrides == {**BASELINE.overrides, "powers.russia.capacity": 6.0}


# --------------------------------------------------------------------------- events

def test_event_switches_list_the_scenarios_events():
    switches = C.event_switches(BASELINE)
    assert [k for k, _ in switches] == [C.SWITCH_PREFIX + e.id for e in BASELINE.events]
    labels = dict(switches)
    assert labels[TREATY] == "2025Q2 China–Central Asia treaty"
    assert labels["event:ukraine_war_2022"] == "2022Q1 Russia invades Ukraine"
    no_war = C.event_switches(load_scenario("no_ukraine_war"))
    assert "event:ukraine_war_2022" not in dict(no_war)


def test_switching_an_event_off_drops_it():
    model = C.ClassroomModel(**{"event:ukraine_war_2022": False})
    ids = [e.id for e in model.scenario.events]
    assert "ukraine_war_2022" not in ids and len(ids) == len(BASELINE.events) - 1
    while model.quarter < parse_quarter("2023Q1"):
        model.step()
    fired = [line for _, line in model.event_log]
    assert "start ukraine_war_2022" not in fired and "start csto_kazakhstan_2022" in fired
    assert not any("Russia invades Ukraine" in line.text for line in model.log)


def test_switches_of_events_a_scenario_lacks_are_ignored():
    # what the page still holds after switching from the baseline to no_ukraine_war
    built = C.build("no_ukraine_war", {"event:ukraine_war_2022": False, C.RUSSIA_LOSS: 0.4},
                    sliders_from="baseline")
    assert built.problems == []
    assert "event:ukraine_war_2022" not in built.values and C.RUSSIA_LOSS not in built.values


def test_russian_capacity_loss_rewrites_the_war_event():
    model = C.ClassroomModel(**{C.RUSSIA_LOSS: 0.6})
    war = next(e for e in model.scenario.events if e.id == C.WAR_EVENT)
    assert next(e.value for e in war.effects if e.target == C.WAR_TARGET) == pytest.approx(0.4)
    r = model.world.powers.index("russia")
    before = model.world.attention[r]
    while model.quarter < parse_quarter("2022Q1"):
        model.step()
    assert model.world.attention[r] == pytest.approx(before * 0.4)
    assert C.RUSSIA_LOSS not in {c.key for c in C.controls(load_scenario("no_ukraine_war"))}


def _china_by_quarter(**settings):
    model = C.ClassroomModel(**settings)
    china = model.world.partners.index("china")
    out = {}
    while not model.finished:
        model.step()
        out[model.quarter_label] = float(model.world.region_influence[china])
    return out


@pytest.mark.parametrize("replication", [0, 1, 2])
def test_treaty_off_lowers_chinas_share_after_2025(replication):
    on = _china_by_quarter(replication=replication)
    off = _china_by_quarter(replication=replication, **{TREATY: False})
    signed = parse_quarter("2025Q2")
    before = [q for q in on if parse_quarter(q) < signed]
    after = [q for q in on if parse_quarter(q) > signed]
    assert all(on[q] == off[q] for q in before)  # same seed, same history until the treaty
    assert all(off[q] < on[q] for q in after)
    assert np.mean([on[q] - off[q] for q in after]) > 0.002  # a visible 0.2 points or more


# --------------------------------------------------------------------------- scenarios

def test_switching_scenario_keeps_the_new_scenarios_own_values(monkeypatch):
    # a scenario whose `set:` changes a slider's value: values still showing the old
    # scenario's defaults must not undo it; a value the teacher moved carries over
    real = C.load_scenario

    def fake(name):
        s = real(name)
        if name == "us_stays":
            world, params = apply_set(s.world, s.params, {"powers.china.capacity_growth": 0.1})
            s = replace(s, world=world, params=params)
        return s

    monkeypatch.setattr(C, "load_scenario", fake)
    shown = {c.key: c.default for c in CONTROLS} | {"powers.russia.capacity": 5.0}
    built = C.build("us_stays", shown, sliders_from="baseline")
    assert built.problems == []
    assert built.scenario.world.powers["china"].capacity_growth == 0.1
    assert built.values["powers.china.capacity_growth"] == 0.1
    assert built.scenario.world.powers["russia"].capacity == 5.0


@pytest.mark.parametrize("name", C.scenario_names())
def test_every_shipped_scenario_builds_and_runs(name):
    model = C.ClassroomModel(scenario=name)
    assert model.problems == [] and model.scenario.name == name
    _check_runs(model, quarters=4)


def test_the_model_stops_at_the_end_instead_of_raising():
    model = C.ClassroomModel()
    model.run()
    assert model.finished and not model.running
    model.step()  # SolaraViz may ask once more
    assert model.quarters_done == model.scenario.n_quarters
    assert model.quarter_label == "2035Q4"


def test_runs_match_greatgame_runs_replications():
    from sim.runs.runner import derive_seeds
    from sim.world.vocabulary import ROOT_SEED

    assert [C.replication_seed(r) for r in range(3)] == derive_seeds(ROOT_SEED, 3)


# --------------------------------------------------------------------------- notebooks

def test_simulate_is_greatgame_run_when_nothing_is_changed():
    import pandas as pd

    from sim.runs.runner import run_one

    out = C.simulate("baseline", replications=2, end="2016Q4")
    for r in (0, 1):
        ref = run_one(BASELINE.with_end("2016Q4"), C.replication_seed(r), replication=r)
        mine = out.shares[out.shares["replication"] == r].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, ref.shares)
        mine = out.metrics[out.metrics["replication"] == r].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, ref.metrics)


def test_simulate_applies_settings_and_refuses_bad_ones():
    out = C.simulate("baseline", end="2026Q4", label="treaty off", **{TREATY: False})
    assert set(out.shares["scenario"]) == {"treaty off"}
    assert "start china_central_asia_treaty_2025" not in set(out.events["event"])
    with pytest.raises(ValueError, match="Weight of trade"):
        C.simulate("baseline", **{"params.w_trade": 2})
    with pytest.raises(ValueError, match="outside the period"):
        C.simulate("baseline", end="2040Q1")
    with pytest.raises(ValueError, match="replications"):
        C.simulate("baseline", replications=11)


# --------------------------------------------------------------------------- the log

def test_the_log_has_events_tilt_shifts_and_leaders():
    model = C.ClassroomModel()
    model.run()
    kinds = {line.kind for line in model.log}
    assert {"event", "end", "shift"} <= kinds
    war = next(line for line in model.log if line.text.startswith("Russia invades Ukraine"))
    assert war.quarter == "2022Q1" and "Ukraine (24 February 2022)" in war.text
    for line in model.log:
        if line.kind == "shift":
            assert " pts): " in line.text and "\n" not in line.text


def test_the_log_says_when_the_leader_changes():
    model = C.ClassroomModel(**{"powers.china.capacity": 27.0, "powers.china.capacity_growth": 0.3})
    model.run()
    leads = [line for line in model.log if line.kind == "lead"]
    assert any(line.text == "China overtakes Russia in the region" for line in leads)
    assert model.leading()["region"] == "china"


def test_largest_shift_names_the_term_that_moved():
    partners, states = ["china", "russia", "other"], ["kazakhstan"]
    tilt0 = np.array([[0.3], [0.4], [0.3]])
    tilt1 = np.array([[0.3], [0.43], [0.27]])
    zeros = {k: np.zeros((3, 1)) for k in C.TERM_WORDS}
    after = dict(zeros, security=np.array([[0.0], [0.2], [0.0]]))
    key, text = C.largest_shift(tilt0, tilt1, zeros, after, partners, states, n_powers=2)
    assert key == (1, 0, 1)
    assert text == ("Kazakhstan leans toward Russia (+3.0 pts): Russia provides more of its "
                    "security")
    assert C.largest_shift(tilt0, tilt1, zeros, after, partners, states, 2,
                           skip=frozenset({key})) is None
    assert C.largest_shift(tilt0, tilt0, zeros, zeros, partners, states, 2) is None


# --------------------------------------------------------------------------- the page

def test_page_settings_rebuild_the_model():
    from sim.app.page import model_params

    model = C.ClassroomModel(**{"powers.china.capacity": 12.0, TREATY: False})
    params = model_params(model)
    assert params["scenario"] == "baseline" and params["replication"] == 0
    assert params["powers.china.capacity"] == 12.0 and params[TREATY] is False
    assert [k for k in params if k.startswith(C.SWITCH_PREFIX)] == [
        k for k, _ in C.event_switches(BASELINE)]  # switched-off events keep their switch
    refused = model_params(C.ClassroomModel(**{"states.kazakhstan.hedging": 3.0}))
    assert refused["states.kazakhstan.hedging"] == 3.0  # what was asked for stays shown
    again = C.ClassroomModel(**params)
    assert again.problems == [] and again.built.values == model.built.values
    assert again.scenario == model.scenario


@pytest.mark.parametrize("name", C.scenario_names())
def test_slider_stops_hold_the_scenarios_own_values(name):
    # issue 12 item 7: a browser slider over a 0.1 grid showed 0.7 for temperatures of
    # 0.35 and 0.4956, and Reset rebuilt that; the page's sliders move over stops by
    # position, and the first position is the scenario's value itself
    from sim.app.page import stop_index

    for c in C.controls(load_scenario(name)):
        stops = C.slider_stops(c)
        assert list(stops) == sorted(set(stops))
        assert stops[0] == pytest.approx(c.min) and stops[-1] == pytest.approx(c.max)
        assert stops[stop_index(c, c.default)] == c.default  # exactly, not rounded
        assert len(stops) <= 1002


def test_the_temperatures_start_at_the_scenarios_values():
    from sim.app.page import stop_index

    settings = C.initial_settings("baseline")
    assert settings["params.alignment_temperature"] == BASELINE.params.alignment_temperature
    assert settings["params.allocation_temperature"] == \
        BASELINE.params.allocation_temperature
    for c in CONTROLS:
        if c.key.endswith("temperature"):
            assert C.slider_stops(c)[stop_index(c, settings[c.key])] == settings[c.key]


@pytest.mark.parametrize("name", ["baseline", "no_ukraine_war"])
def test_reset_with_nothing_changed_is_greatgame_run(name):
    # what the page's controls hold before anyone touches them, and so what Reset passes
    import pandas as pd

    from sim.runs.runner import from_model, run_one
    from sim.runs.tables import shares_frame

    settings = C.initial_settings(name, replication=1)
    model = C.ClassroomModel(**settings)
    assert model.problems == [] and not model.changed
    assert model.scenario == load_scenario(name)
    while model.quarter < parse_quarter("2016Q2"):
        model.step()
    mine = shares_frame(from_model(model, C.replication_seed(1)), [1])
    mine = mine[mine["step"] > 1].assign(step=lambda f: f["step"] - 1).reset_index(drop=True)
    ref = run_one(load_scenario(name).with_end("2016Q2"), C.replication_seed(1),
                  replication=1).shares
    pd.testing.assert_frame_equal(mine, ref)


def test_an_untouched_war_slider_leaves_the_war_event_as_it_is():
    built = C.build("baseline", {C.RUSSIA_LOSS: 0.25})
    assert built.scenario.events == BASELINE.events and built.scenario == BASELINE


def test_switching_scenario_rebuilds_the_controls():
    # issue 12 item 9: the new scenario's switches and values at once, not after Reset
    settings = C.initial_settings("baseline", replication=3)
    settings |= {"powers.russia.capacity": 5.0, TREATY: False,
                 "event:ukraine_war_2022": False}
    out = C.switch_scenario(settings, "no_ukraine_war")
    assert out["scenario"] == "no_ukraine_war" and out["replication"] == 3
    assert "event:ukraine_war_2022" not in out and C.RUSSIA_LOSS not in out
    assert out[TREATY] is False  # switched off, and the new scenario has it too
    assert out["powers.russia.capacity"] == 5.0  # moved by the teacher: kept
    fresh = C.initial_settings("no_ukraine_war")
    assert {k for k in out} == {k for k in fresh}
    untouched = [k for k in fresh if k not in ("replication", "powers.russia.capacity", TREATY)]
    assert all(out[k] == fresh[k] for k in untouched)
    model = C.ClassroomModel(**out)
    assert model.problems == [] and model.scenario.name == "no_ukraine_war"
    back = C.switch_scenario(out, "baseline")
    assert back["event:ukraine_war_2022"] is True and back["powers.russia.capacity"] == 5.0


def _svg(text):
    import xml.etree.ElementTree as ET

    return ET.fromstring(text)


def _fonts(root):
    return [float(t.get("font-size")) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_charts_are_svg_with_large_text_at_the_start_and_later():
    from sim.app import charts
    from sim.app.page import map_svg, region_summary, region_svg, states_svg

    model = C.ClassroomModel()
    for quarters in (0, 30):
        model.run(quarters)
        for draw, name in ((region_svg, "regional-shares"), (states_svg, "state-shares"),
                           (map_svg, "map")):
            root = _svg(draw(model))
            assert root.get("data-chart") == name
            assert root.get("data-step") == str(model.quarters_done)
            assert root.get("viewBox") == f"0 0 {charts.WIDTH} {charts.HEIGHT}"
            assert min(_fonts(root)) >= charts.MIN_TEXT >= 15
    root = _svg(region_svg(model))
    assert root.get("data-shares") == region_summary(model)
    for end in ("min", "max"):  # extreme settings draw too
        extreme = C.ClassroomModel(**{c.key: getattr(c, end) for c in CONTROLS})
        extreme.run(12)
        for draw in (region_svg, states_svg, map_svg):
            assert min(_fonts(_svg(draw(extreme)))) >= charts.MIN_TEXT


def test_a_changed_run_has_the_unchanged_scenario_as_a_ghost():
    from sim.app.page import ghost, region_svg, states_svg

    same = C.ClassroomModel(**C.initial_settings())
    assert ghost(same) is None
    assert _svg(region_svg(same)).get("data-ghost") == "0"
    off = C.ClassroomModel(**{TREATY: False})
    g = ghost(off)
    assert g is C.unchanged_history("baseline", 0)  # cached: computed once
    full = C.ClassroomModel()
    full.run()
    np.testing.assert_array_equal(g["region"], full.history()["region"])
    while off.quarter < parse_quarter("2027Q1"):
        off.step()
    root = _svg(region_svg(off, g))
    assert root.get("data-ghost") == "1"
    dashed = [e for e in root.iter("{http://www.w3.org/2000/svg}polyline")
              if e.get("stroke-dasharray")]
    assert len(dashed) == len(off.world.partners)
    n = off.quarters_done + 1  # the ghost stops at the current quarter
    assert all(len(e.get("points").split()) == n for e in dashed)
    china = off.world.partners.index("china")
    diff = (off.world.region_influence[china] - g["region"][n - 1, china]) * 100
    texts = {t.get("data-power"): t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert texts["china"].endswith(f"{diff:+.1f} pts".replace("-", "\u2212")) and diff < 0
    assert len([e for e in _svg(states_svg(off, g)).iter(
        "{http://www.w3.org/2000/svg}polyline") if e.get("stroke-dasharray")]) == \
        len(off.world.partners) * len(off.world.states)


def test_the_download_holds_the_runs_shares():
    import io

    import pandas as pd

    model = C.ClassroomModel(replication=2)
    model.run(6)
    table = pd.read_csv(io.StringIO(model.shares_csv()))
    w = model.world
    assert list(table.columns) == ["scenario", "replication", "seed", "quarter", "area",
                                   "power", "share"]
    assert len(table) == 7 * (1 + len(w.states)) * len(w.partners)
    assert set(table["seed"]) == {C.replication_seed(2)}
    now = table[table["quarter"] == model.quarter_label]
    region = now[now["area"] == "region"].set_index("power")["share"]
    np.testing.assert_allclose(region[w.partners].to_numpy(), w.region_influence, atol=1e-6)
    assert np.allclose(table.groupby(["quarter", "area"])["share"].sum(), 1.0, atol=1e-5)


def test_the_batch_path_never_imports_the_page():
    code = ("import sys, sim.cli.main, sim.runs.runner, sim.runs.store, sim.output.plots; "
            "sim.cli.main.build_parser(); sim.cli.main.main(['scenarios']); "
            "bad = [m for m in ('sim.app.page', 'sim.app.classroom', 'solara') "
            "if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_app_command_defaults_to_localhost():
    from sim.cli.main import build_parser

    args = build_parser().parse_args(["app"])
    assert (args.host, args.port) == ("127.0.0.1", 8765)
    args = build_parser().parse_args(["app", "--port", "9000", "--host", "0.0.0.0"])
    assert (args.host, args.port) == ("0.0.0.0", 9000)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["app", "--port", "70000"])


# --------------------------------------------------------------------------- posterior band

SLIDER = next(c for c in CONTROLS if c.key.startswith(("params.", "powers.")))
"""A slider that names a `set:` path, whichever the model's rules call it."""
DRAWN_ONLY = next(f"params.{r['name']}" for r in field_table(Params)
                  if isinstance(getattr(BASELINE.params, r["name"]), float)
                  and getattr(BASELINE.params, r["name"]) > 0
                  and f"params.{r['name']}" not in {c.key for c in CONTROLS})
"""A model parameter with no slider: only the posterior moves it."""


def _posterior(tmp_path):
    from sim.scenario.posterior import load_posterior, write_posterior

    rng = np.random.default_rng(3)
    n = 30
    other = getattr(BASELINE.params, DRAWN_ONLY.split(".")[1])
    values = np.column_stack([rng.uniform(SLIDER.min, SLIDER.max, n),
                              rng.uniform(0.6 * other, 1.4 * other, n)])
    path = write_posterior(tmp_path / "central_asia_posterior.csv", [SLIDER.key, DRAWN_ONLY],
                           values, rng.uniform(0.2, 1.0, n))
    return load_posterior(path)


def test_without_a_posterior_the_band_is_off_with_a_note():
    model = C.ClassroomModel()
    note = C.band_note(model)
    assert note is not None and "No posterior is installed" in note
    assert C.posterior_band(model) is None


def test_the_band_runs_draw_i_with_seed_i_and_the_teachers_slider_wins(tmp_path, monkeypatch):
    from sim.runs import runner
    from sim.runs.runner import simulate

    post = _posterior(tmp_path)
    monkeypatch.setattr(runner, "installed_for", lambda world: post)
    C._band.cache_clear()
    model = C.ClassroomModel()
    assert C.band_note(model) is None
    band = C.posterior_band(model)
    q, j = BASELINE.n_quarters, len(BASELINE.world.partner_names)
    assert band["runs"] == C.BAND_RUNS and band["quarters"] == BASELINE.quarters()
    assert band["low"].shape == band["high"].shape == (q, j)
    assert (band["low"] <= band["high"]).all() and (band["high"] - band["low"]).max() > 0.01
    sets = post.overrides(C.BAND_RUNS, C.ROOT_SEED)
    direct = simulate([BASELINE.with_overrides(s) for s in sets],
                      C.derive_seeds(C.ROOT_SEED, C.BAND_RUNS), engine="ensemble")
    np.testing.assert_allclose(
        band["high"], np.quantile(direct.arrays["region_influence"], 0.95, axis=0),
        rtol=0, atol=1e-12)
    assert C.posterior_band(model) is band  # once per settings
    # a slider the teacher moved wins over the draw for its attribute
    seen = []
    real = C.simulate_runs
    monkeypatch.setattr(C, "simulate_runs", lambda scns, *a, **k: (seen.extend(scns),
                                                                    real(scns, *a, **k))[1])
    stop = next(v for v in C.slider_stops(SLIDER) if v != SLIDER.default)
    moved = C.ClassroomModel(**{SLIDER.key: stop})
    assert not moved.problems
    C.posterior_band(moved)
    assert len(seen) == C.BAND_RUNS
    assert {runner.value_of(s, SLIDER.key) for s in seen} == {(stop,)}
    assert len({runner.value_of(s, DRAWN_ONLY) for s in seen}) > 1  # the rest still drawn


def test_the_regional_chart_draws_the_band_up_to_now(tmp_path, monkeypatch):
    from sim.app import charts
    from sim.app.page import region_svg
    from sim.runs import runner

    post = _posterior(tmp_path)
    monkeypatch.setattr(runner, "installed_for", lambda world: post)
    model = C.ClassroomModel()
    for _ in range(6):
        model.step()
    assert _svg(region_svg(model)).get("data-band") == "0"
    root = _svg(region_svg(model, None, C.posterior_band(model)))
    assert root.get("data-band") == "1"
    areas = [e for e in root.iter("{http://www.w3.org/2000/svg}polygon")
             if e.get("data-band-area")]
    assert len(areas) == len(model.world.partners)
    assert all(len(a.get("points").split()) == 2 * 6 for a in areas)  # six quarters so far
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert f"shaded: {C.BAND_RUNS} runs" in texts and min(_fonts(root)) >= charts.MIN_TEXT
