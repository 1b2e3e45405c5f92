"""Scenario-file validation: every bad input gives one line naming file, line and field.

Files are written into tmp_path; a scenario there may `extends: baseline` by name or
another tmp file by relative path.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from pathlib import Path

import annotated_types
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim.scenario.scenarios as scenario_mod
from sim.errors import InputError
from sim.scenario.scenarios import list_scenarios, load_scenario, scenarios_dir
from sim.world.values import expand_target
from sim.world.vocabulary import PowerAttrs, StateAttrs, field_table

SHIPPED = sorted(scenarios_dir().glob("*.yaml"))
EVENT_FILES = sorted((scenarios_dir() / "events").glob("*.yaml"))

# A scenario head: lines 1-3. The case's own lines start at line 4.
HEAD = "name: t\ndescription: a test scenario\nextends: baseline\n"


def event(*effects: str, at: str = "2020Q1", extra: str = "") -> str:
    """An inline event under `events:` starting at line 4 (id line 5, at line 6, then extra).

    Effects follow `effects:`; with no extra lines the first effect is on line 8.
    """
    lines = ["events:", "  - id: e", f"    at: {at}"]
    lines += [f"    {x}" for x in extra.splitlines()]
    lines.append("    effects:")
    lines += [f"      - {eff}" for eff in effects]
    return HEAD + "\n".join(lines) + "\n"


EFF = "{target: powers.china.capacity, op: add, value: 1}"


def write(tmp_path: Path, text: str | bytes, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def check_error(err: InputError, path: Path | str, line: int | None, field: str | None,
                words: str) -> None:
    """One line, naming the file, the line (if any) and the field, and saying what is wrong."""
    msg = str(err)
    name = Path(path).name
    assert isinstance(err, ValueError)
    assert "\n" not in msg and "\r" not in msg, msg
    assert name in msg, msg
    assert err.path is not None and Path(err.path).name == name, msg
    assert err.line == line, msg
    if line is not None:
        assert f"{name}:{line}: " in msg, msg
    assert err.field == field, msg
    if field is not None:
        assert f": {field}: " in msg, msg
    assert words in msg, msg


def raises(path: Path | str) -> InputError:
    with pytest.raises(InputError) as info:
        load_scenario(path)
    return info.value


# --------------------------------------------------------------------------- one-file cases

CASES = [
    # id, text, line, field, words in the message
    ("yaml_unclosed_bracket", HEAD + "set: {powers.china.capacity: 3\n", 5, None,
     "started at line 4"),
    ("yaml_unclosed_list", HEAD + "remove_events: [ukraine_war_2022\nset: {}\n", 5, None,
     "invalid YAML"),
    ("yaml_bad_indentation",
     HEAD + "set:\n  powers.china.capacity: 3\n    states.kazakhstan.gdp: 4\n", 6, None,
     "invalid YAML"),
    ("yaml_tab_indent", HEAD + "set:\n\tpowers.china.capacity: 3\n", 5, None, "invalid YAML"),
    ("yaml_two_documents", HEAD + "---\nname: u\n", 4, None, "single document"),
    ("unknown_top_level_field", HEAD + "colour: red\n", 4, "colour", "unknown field"),
    ("missing_name", "description: d\nextends: baseline\n", 1, "name", "required"),
    ("missing_description", "name: t\nextends: baseline\n", 1, "description", "required"),
    ("empty_description", "name: t\ndescription: ''\nextends: baseline\n", 2, "description",
     "at least 1 character"),
    ("name_not_string", "name: 5\ndescription: d\n", 1, "name", "expected a string"),
    ("period_is_number", HEAD + "period: 5\n", 4, "period", "expected a mapping"),
    ("set_is_list", HEAD + "set: [1, 2]\n", 4, "set", "expected a mapping"),
    ("events_is_mapping", HEAD + "events: {a: 1}\n", 4, "events", "expected a list"),
    ("event_is_number", HEAD + "events:\n  - 5\n", 5, "events[0]",
     "expected a mapping or a string (got 5)"),
    ("extends_is_list", "name: t\ndescription: d\nextends: [baseline]\n", 3, "extends",
     "expected a string"),
    ("effect_value_abc", event("{target: powers.china.capacity, op: add, value: abc}"), 8,
     "events[0].effects[0].value", "expected a number (got 'abc')"),
    ("effect_value_nan", event("{target: powers.china.capacity, op: add, value: .nan}"), 8,
     "events[0].effects[0].value", "finite"),
    ("effect_unknown_field", event("{target: powers.china.capacity, op: add, value: 1, x: 2}"),
     8, "events[0].effects[0].x", "unknown field"),
    ("event_unknown_field", event(EFF, extra="colour: red"), 7, "events[0].colour",
     "unknown field"),
    ("event_bad_id", HEAD + "events:\n  - id: Bad-Id\n    at: 2020Q1\n    effects:\n      - "
     + EFF + "\n", 5, "events[0].id", "pattern"),
    ("event_at_not_string", event(EFF, at="2020"), 6, "events[0].at", "expected a string"),
    ("remove_unknown_event", HEAD + "remove_events: [ukraine_war_2022, nope]\n", 4,
     "remove_events[1]", "unknown event 'nope'"),
    ("remove_unknown_event_block", HEAD + "remove_events:\n  - ukraine_war_2022\n  - nope\n",
     6, "remove_events[1]", "unknown event 'nope'"),
    ("set_unknown_power", HEAD + "set:\n  powers.india.capacity: 3\n", 5,
     "set.powers.india.capacity", "unknown power 'india'"),
    ("set_unknown_state", HEAD + "set:\n  states.mongolia.gdp: 3\n", 5,
     "set.states.mongolia.gdp", "unknown state 'mongolia'"),
    ("set_unknown_attribute", HEAD + "set:\n  states.kazakhstan.colour: 3\n", 5,
     "set.states.kazakhstan.colour", "unknown state attribute 'colour'"),
    ("set_unknown_pair_attribute", HEAD + "set:\n  powers.china.toward.kazakhstan.gdp: 3\n", 5,
     "set.powers.china.toward.kazakhstan.gdp", "unknown pair attribute 'gdp'"),
    ("set_bad_shape", HEAD + "set:\n  powers.china: 3\n", 5, "set.powers.china",
     "target must look like"),
    ("set_unknown_param", HEAD + "set:\n  params.speed_of_light: 3\n", 5,
     "set.params.speed_of_light", "unknown model parameter"),
    ("effect_unknown_target_shape", event("{target: powers.china, op: add, value: 1}"), 8,
     "events[0].effects[0].target", "target must look like"),
    ("effect_bad_op", event("{target: powers.china.capacity, op: multiply, value: 2}"), 8,
     "events[0].effects[0].op", "'set', 'add' or 'scale'"),
    ("quarter_q5", event(EFF, at="2025Q5"), 6, "events[0].at", "2025Q5"),
    ("quarter_dash", HEAD + "period: {start: 2015Q1, end: 2025-06}\n", 4, "period.end",
     "expected a quarter like 2025Q4"),
    ("quarter_two_digit_year", HEAD + "period:\n  start: 25Q1\n", 5, "period.start",
     "expected a quarter like 2025Q4"),
    ("quarter_is_date", HEAD + "period: {start: 2015-01-01}\n", 4, "period.start", "dates"),
    ("event_outside_period", event(EFF, at="2040Q1"), 6, "events[0].at",
     "outside the period 2015Q1-2035Q4"),
    ("event_before_narrowed_period", HEAD + "period: {start: 2020Q1}\n" + event(
        EFF, at="2019Q4")[len(HEAD):], 7, "events[0].at", "outside the period"),
    ("period_ends_before_start", HEAD + "period:\n  start: 2030Q1\n  end: 2020Q1\n", 4,
     "period", "before it starts"),
    ("duration_zero", event(EFF, extra="duration: 0"), 7, "events[0].duration",
     "greater than or equal to 1"),
    ("duration_negative", event(EFF, extra="duration: -3"), 7, "events[0].duration",
     "greater than or equal to 1"),
    ("duration_fraction", event(EFF, extra="duration: 2.5"), 7, "events[0].duration",
     "whole number"),
    ("extends_missing", "name: t\ndescription: d\nextends: no_such_parent\n", 3, "extends",
     "no scenario 'no_such_parent'"),
    ("extends_self", "name: t\ndescription: d\nextends: scenario.yaml\n", 3, "extends",
     "circular extends"),
    ("world_missing", HEAD + "world: nowhere\n", 4, "world", "world 'nowhere' not found"),
    ("yaml_list_not_mapping", "- name: t\n- description: d\n", 1, None,
     "top level must be a mapping"),
    ("yaml_scalar_not_mapping", "just some text\n", 1, None, "top level must be a mapping"),
    ("duplicate_key", HEAD + "name: u\n", 4, "name", "duplicate key (first given at line 1)"),
    ("duplicate_nested_key",
     HEAD + "set:\n  powers.china.capacity: 1\n  powers.china.capacity: 2\n",
     6, "set.powers.china.capacity", "duplicate key"),
    ("non_string_key", HEAD + "1: 2\n", 4, "1", "Keys should be strings"),
    ("merge_key", HEAD + "set:\n  <<: {powers.china.capacity: 1}\n", 5, "set", "merge keys"),
    ("set_out_of_range", HEAD + "set:\n  states.kazakhstan.fragility: 0.5\n"
     "  states.kyrgyzstan.fragility: 3\n", 6, "set.states.kyrgyzstan.fragility",
     "less than or equal to 1 (got 3"),
    ("set_wildcard_out_of_range", HEAD + "set:\n  states.*.hedging: -1\n", 5,
     "set.states.*.hedging", "greater than or equal to 0"),
    ("set_pair_out_of_range", HEAD + "set:\n  other.toward.kyrgyzstan.sentiment: 2\n", 5,
     "set.other.toward.kyrgyzstan.sentiment", "less than or equal to 1"),
    ("set_param_out_of_range", HEAD + "set:\n  params.w_trade: 3\n", 5, "set.params.w_trade",
     "less than or equal to 1"),
    ("set_param_bad_choice", HEAD + "set:\n  params.regional_weighting: cities\n", 5,
     "set.params.regional_weighting", "'gdp' or 'population'"),
    ("set_not_a_number", HEAD + "set:\n  states.kyrgyzstan.fragility: high\n", 5,
     "set.states.kyrgyzstan.fragility", "expected a number (got 'high')"),
    ("set_null", HEAD + "set:\n  states.kyrgyzstan.fragility:\n", 5,
     "set.states.kyrgyzstan.fragility", "got None"),
    ("set_infinite", HEAD + "set:\n  states.kazakhstan.hidden_debt: .inf\n", 5,
     "set.states.kazakhstan.hidden_debt", "finite"),
    ("set_nan", HEAD + "set:\n  powers.china.capacity: .nan\n", 5, "set.powers.china.capacity",
     "finite"),
    ("unknown_event_id", HEAD + "events:\n  - xian_summit_2023\n  - nosuch_event\n", 6,
     "events[1]", "unknown event 'nosuch_event'"),
    ("event_id_is_a_path", HEAD + "events:\n  - ../baseline\n", 5, "events[0]",
     "is not an event id"),
    ("event_id_twice", HEAD + "events:\n  - xian_summit_2023\n  - xian_summit_2023\n", 6,
     "events[1]", "appears twice"),
    ("effect_unknown_target", event(EFF, "{target: powers.india.capacity, op: add, value: 1}"),
     9, "events[0].effects[1].target", "unknown power 'india'"),
    ("effect_unknown_state_block", event(EFF, EFF, "target: states.mongolia.gdp\n"
                                         "        op: add\n        value: 1"),
     10, "events[0].effects[2].target", "unknown state 'mongolia'"),
    ("effect_on_regional_weighting",
     event("{target: params.regional_weighting, op: set, value: 1}"), 8,
     "events[0].effects[0].target", "regional_weighting"),
    ("effect_set_out_of_range",
     event(EFF, "{target: states.kyrgyzstan.fragility, op: set, value: 5}"), 9,
     "events[0].effects[1].value", "less than or equal to 1"),
    ("temporary_scale_by_zero",
     event(EFF, "{target: powers.china.capacity, op: scale, value: 0}", extra="duration: 4"), 10,
     "events[0].effects[1].value", "scale by 0"),
    ("event_no_effects", HEAD + "events:\n  - id: e\n    at: 2020Q1\n    effects: []\n", 7,
     "events[0].effects", "at least 1 item"),
    ("event_effects_missing", HEAD + "events:\n  - id: e\n    at: 2020Q1\n", 5,
     "events[0].effects", "required"),
    ("deep_nesting", HEAD + "x: " + "[" * 200 + "]" * 200 + "\n", 4, None, "nested"),
    ("control_character", HEAD + "set: {}\x07\n", 4, None, "(character 0x0007)"),
    ("explicit_int_tag_on_text", HEAD + "x: !!int abc\n", 4, "x", "'abc' is not a valid !!int"),
    ("explicit_bool_tag_on_text", HEAD + "x: !!bool maybe\n", 4, "x", "not a valid !!bool"),
    ("explicit_float_tag_on_text", HEAD + "set:\n  powers.china.capacity: !!float x\n", 5,
     "set.powers.china.capacity", "not a valid !!float"),
    ("str_tag_on_list", HEAD + "x: !!str [1]\n", 4, "x", "'!!str' is not allowed"),
    ("map_tag_on_list", HEAD + "x: !!map [1]\n", 4, "x", "'!!map' is not allowed"),
    ("empty_file", "", None, None, "empty"),
    ("whitespace_only", "  \n\n", None, None, "empty"),
    ("comments_only", "# a scenario\n\n   # to be written\n", None, None, "empty"),
]


@pytest.mark.parametrize(("text", "line", "field", "words"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_scenario_gives_one_clear_line(tmp_path, text, line, field, words):
    path = write(tmp_path, text)
    check_error(raises(path), path, line, field, words)


TAGS = [
    ("object_apply", 'set: !!python/object/apply:os.system ["touch {marker}"]\n', 4, "set",
     "!!python/object/apply:os.system"),
    ("object_apply_nested", 'set:\n  powers.china.capacity: !!python/object/apply:os.system '
     '["touch {marker}"]\n', 5, "set.powers.china.capacity", "!!python/object/apply:os.system"),
    ("name", "description2: !!python/name:os.system\n", 4, "description2",
     "!!python/name:os.system"),
    ("object_new", 'x: !!python/object/new:subprocess.Popen [["touch", "{marker}"]]\n', 4, "x",
     "!!python/object/new:subprocess.Popen"),
    ("in_event", 'events:\n  - id: e\n    at: !!python/object/apply:os.system ["touch {marker}"]'
     '\n', 6, "events[0].at", "!!python/object/apply:os.system"),
    ("binary", "x: !!binary aGVsbG8=\n", 4, "x", "!!binary"),
    ("custom", "x: !shell touch {marker}\n", 4, "x", "'!shell'"),
]


@pytest.mark.parametrize(("text", "line", "field", "words"), [t[1:] for t in TAGS],
                         ids=[t[0] for t in TAGS])
def test_yaml_tags_are_refused_and_never_run(tmp_path, text, line, field, words):
    marker = tmp_path / "pwned"
    path = write(tmp_path, HEAD + text.replace("{marker}", str(marker)))
    err = raises(path)
    check_error(err, path, line, field, words)
    assert "not allowed" in str(err)
    assert not marker.exists()


def test_alias_bomb_fails_fast_without_expanding(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    path = write(tmp_path, "\n".join(lines) + "\n")  # 9**10 strings if expanded
    t0 = time.perf_counter()
    err = raises(path)
    assert time.perf_counter() - t0 < 0.5
    check_error(err, path, 2, None, "anchors and aliases are not allowed")


def test_single_alias_is_refused(tmp_path):
    path = write(tmp_path, "name: &n t\ndescription: *n\n")
    check_error(raises(path), path, 2, None, "aliases")


@pytest.mark.parametrize(("data", "words"), [
    (b"name: t\x00\x01\x02\ndescription: d\n", "binary file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    (b"name: t\ndescription: caf\xe9\n", "not UTF-8"),
    (b"\xff\xfe\xfd", "not UTF-8"),
], ids=["nul_bytes", "png", "latin1", "garbage"])
def test_binary_file(tmp_path, data, words):
    path = write(tmp_path, data)
    check_error(raises(path), path, None, None, words)


def test_directory_as_scenario(tmp_path):
    path = tmp_path / "looks_like.yaml"
    path.mkdir()
    check_error(raises(path), path, None, None, "is a directory")


@pytest.mark.parametrize("name", ["missing.yaml", "sub/missing.yaml"])
def test_missing_file(tmp_path, name):
    path = tmp_path / name
    check_error(raises(path), path, None, None, "file not found")
    check_error(raises(str(path)), path, None, None, "file not found")


def test_unknown_scenario_name():
    err = raises("no_such_scenario_name")
    assert "\n" not in str(err)
    assert "no_such_scenario_name" in str(err)
    assert "baseline" in str(err)  # lists the shipped ones


def test_too_large_file(tmp_path):
    path = write(tmp_path, HEAD + "# " + "x" * 1_100_000 + "\n")
    check_error(raises(path), path, None, None, "limited to")


# --------------------------------------------------------------------------- several files

def test_circular_extends_two_files(tmp_path):
    a = write(tmp_path, "name: a\ndescription: d\nextends: b.yaml\n", "a.yaml")
    b = write(tmp_path, "name: b\ndescription: d\n\nextends: a.yaml\n", "b.yaml")
    err = raises(a)
    check_error(err, b, 4, "extends", "circular extends (a -> b -> a)")
    check_error(raises(b), a, 3, "extends", "circular extends (b -> a -> b)")


def test_circular_extends_three_files_by_relative_path(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, "name: a\ndescription: d\nextends: sub/b.yaml\n", "a.yaml")
    write(tmp_path, "name: b\ndescription: d\nextends: ../c.yaml\n", "sub/b.yaml")
    c = write(tmp_path, "name: c\ndescription: d\nextends: a.yaml\n", "c.yaml")
    check_error(raises(tmp_path / "a.yaml"), c, 3, "extends", "circular extends (a -> b -> c -> a)")


def test_missing_parent_by_relative_path(tmp_path):
    path = write(tmp_path, "name: t\ndescription: d\nextends: ./gone.yaml\n")
    check_error(raises(path), path, 3, "extends", "'./gone.yaml'")


def test_error_in_parent_names_the_parent_file(tmp_path):
    write(tmp_path, HEAD + "set:\n  powers.china.capacity: 5\n  states.kyrgyzstan.fragility: 3\n",
          "parent.yaml")
    child = write(tmp_path, "name: c\ndescription: d\nextends: parent.yaml\n"
                  "set:\n  powers.china.capacity: 6\n", "child.yaml")
    check_error(raises(child), tmp_path / "parent.yaml", 6, "set.states.kyrgyzstan.fragility",
                "less than or equal to 1")


def test_bad_event_in_parent_names_the_parent_file(tmp_path):
    write(tmp_path, event(EFF, "{target: states.atlantis.gdp, op: add, value: 1}"),
          "parent.yaml")
    child = write(tmp_path, "name: c\ndescription: d\nextends: parent.yaml\n", "child.yaml")
    check_error(raises(child), tmp_path / "parent.yaml", 9, "events[0].effects[1].target",
                "unknown state 'atlantis'")


def test_period_error_names_the_file_that_set_it(tmp_path):
    write(tmp_path, HEAD + "period: {start: 2020Q1, end: 2030Q4}\n", "parent.yaml")
    child = write(tmp_path, "name: c\ndescription: d\nextends: parent.yaml\n"
                  "period: {start: 2031Q1}\n", "child.yaml")
    check_error(raises(child), child, 4, "period", "period ends (2030Q4) before it starts (2031Q1)")


def test_event_by_id_outside_the_period_points_at_the_reference(tmp_path):
    path = write(tmp_path, "name: t\ndescription: d\nperiod: {start: 2024Q1}\nevents:\n"
                 "  - cku_railway_2024\n  - eaeu_kyrgyzstan_2015\n")
    check_error(raises(path), path, 6, "events[1]", "outside the period")


@pytest.fixture
def tmp_scenarios(tmp_path, monkeypatch):
    """A copy of the shipped world in a tmp scenarios folder, with an empty events folder."""
    root = tmp_path / "scenarios"
    shutil.copytree(scenarios_dir() / "world", root / "world")
    (root / "events").mkdir()
    monkeypatch.setattr(scenario_mod, "scenarios_dir", lambda: root)
    return root


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("id: bad_event\nat: 2020Q1\neffects:\n  - {target: powers.china.capacity, op: add, value: 1}"
     "\n  - {target: powers.chna.capacity, op: add, value: 1}\n", 5, "effects[1].target",
     "unknown power 'chna'"),
    ("id: bad_event\nat: 2020Q1\neffects:\n  - {target: powers.china.capacity, op: mul, value: 1}"
     "\n", 4, "effects[0].op", "'set', 'add' or 'scale'"),
    ("id: other_name\nat: 2020Q1\neffects:\n  - {target: powers.china.capacity, op: add, value: 1}"
     "\n", 1, "id", "must match the file name"),
    ("id: bad_event\nat: 2020Q9\neffects:\n  - {target: powers.china.capacity, op: add, value: 1}"
     "\n", 2, "at", "2020Q9"),
    ("id: bad_event\nat: 2020Q1\nduration: 2\neffects:\n  - {target: states.*.gdp, op: scale, "
     "value: 0}\n", 5, "effects[0].value", "scale by 0"),
    ("id: bad_event\nat: 2020Q1\nwhen: later\neffects:\n  - {target: powers.china.capacity, op: "
     "add, value: 1}\n", 3, "when", "unknown field"),
], ids=["target", "op", "id_mismatch", "quarter", "scale0", "unknown_field"])
def test_bad_event_file_names_the_event_file(tmp_scenarios, tmp_path, text, line, field, words):
    ev = write(tmp_scenarios / "events", text, "bad_event.yaml")
    path = write(tmp_path, "name: t\ndescription: d\nevents: [bad_event]\n")
    check_error(raises(path), ev, line, field, words)


def test_bad_world_file_names_the_world_file(tmp_scenarios, tmp_path):
    world = tmp_scenarios / "world" / "central_asia.yaml"
    text = world.read_text().replace("capacity: {value: 22.87,", "capacity: {value: .inf,", 1)
    world.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "value: .inf" in ln)
    path = write(tmp_path, "name: t\ndescription: d\n")
    check_error(raises(path), world, line, "powers.china.capacity.value", "finite")


# --------------------------------------------------------------------------- good files

@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_loads(path):
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert sc.description
    assert sc.start < sc.end
    assert sc == load_scenario(path.stem)  # by name too
    ids = [e.id for e in sc.events]
    assert len(ids) == len(set(ids))
    assert all(sc.start <= e.quarter <= sc.end for e in sc.events)


def test_every_event_file_is_used():
    used: set[str] = set()
    for path in SHIPPED:
        used.update(e.id for e in load_scenario(path).events)
    unused = {p.stem for p in EVENT_FILES} - used
    assert not unused, f"event files no scenario uses: {sorted(unused)}"
    baseline = {e.id for e in load_scenario("baseline").events}
    assert baseline <= {p.stem for p in EVENT_FILES}


def test_file_hashes_cover_world_and_events():
    sc = load_scenario("no_treaty")
    hashes = sc.file_hashes
    root = scenarios_dir()
    expected = [root / "no_treaty.yaml", root / "baseline.yaml",
                root / "world" / "central_asia.yaml",
                *(root / "events" / f"{e.id}.yaml" for e in sc.events)]
    for p in expected:
        assert hashes[str(p)] == hashlib.sha256(p.read_bytes()).hexdigest(), p
    # the removed event was read through baseline, so it counts too
    assert str(root / "events" / "china_central_asia_treaty_2025.yaml") in hashes
    assert "china_central_asia_treaty_2025" not in {e.id for e in sc.events}


def test_list_scenarios():
    listed = dict(list_scenarios())
    assert set(listed) == {p.stem for p in SHIPPED}
    for name, desc in listed.items():
        assert desc.strip(), name
        assert not desc.startswith("(invalid"), (name, desc)
        assert "\n" not in desc


def test_extends_chain_merges(tmp_path):
    write(tmp_path, """\
name: parent
description: the parent
extends: baseline
period: {start: 2016Q1, end: 2034Q4}
set:
  powers.china.capacity: 20
  states.kyrgyzstan.fragility: 0.9
events:
  - id: parent_event
    at: 2026Q1
    effects:
      - {target: powers.us.attention, op: add, value: 0.1}
  - id: parent_other
    at: 2027Q1
    effects:
      - {target: powers.eu.attention, op: add, value: 0.1}
""", "parent.yaml")
    child = write(tmp_path, """\
name: child
description: the child
extends: parent.yaml
period: {end: 2030Q4}
set:
  powers.china.capacity: 30
remove_events: [ukraine_war_2022, parent_other]
events:
  - id: child_event
    at: 2028Q3
    duration: 4
    effects:
      - {target: "states.*.fragility", op: add, value: 0.05}
""", "child.yaml")
    sc = load_scenario(child)
    base = load_scenario("baseline")
    ids = [e.id for e in sc.events]
    assert sc.name == "child" and sc.description == "the child"
    assert sc.world.powers["china"].capacity == 30  # child overrides parent
    assert sc.world.states["kyrgyzstan"].fragility == 0.9  # parent kept
    assert sc.overrides == {**base.overrides, "powers.china.capacity": 30,
                            "states.kyrgyzstan.fragility": 0.9}
    assert sc.world.states["kazakhstan"].fragility == base.world.states["kazakhstan"].fragility
    assert "ukraine_war_2022" not in ids and "parent_other" not in ids
    assert {"parent_event", "child_event", "xian_summit_2023"} <= set(ids)
    assert set(ids) == ({e.id for e in base.events} - {"ukraine_war_2022"}
                        | {"parent_event", "child_event"})
    assert [e.quarter for e in sc.events] == sorted(e.quarter for e in sc.events)
    assert sc.quarters()[0] == "2016Q1" and sc.quarters()[-1] == "2030Q4"  # end only replaced
    assert str(tmp_path / "parent.yaml") in sc.file_hashes
    assert str(child) in sc.file_hashes


def test_child_can_remove_and_re_add_by_id(tmp_path):
    path = write(tmp_path, HEAD + "remove_events: [xian_summit_2023]\n"
                 "events: [xian_summit_2023]\n")
    assert "xian_summit_2023" in {e.id for e in load_scenario(path).events}


def test_wildcard_targets_expand_to_all_states_and_powers(tmp_path):
    path = write(tmp_path, HEAD + """\
set:
  "states.*.hedging": 0.3
  "powers.*.attention": 0.7
events:
  - id: e
    at: 2030Q1
    effects:
      - {target: "states.*.fragility", op: add, value: 0.1}
      - {target: "powers.*.toward.*.openness", op: scale, value: 0.9}
      - {target: "other.toward.*.sentiment", op: set, value: 0}
      - {target: "powers.*.toward.kazakhstan.sentiment", op: add, value: 0.1}
""")
    sc = load_scenario(path)
    w = sc.world
    assert all(s.hedging == 0.3 for s in w.states.values())
    assert all(p.attention == 0.7 for p in w.powers.values())
    (ev,) = [e for e in sc.events if e.id == "e"]
    frag, openness, other, kz = ev.effects
    assert frag.paths == tuple(("states", s, "fragility") for s in w.state_names)
    assert openness.paths == tuple(("pairs", p, s, "openness") for p in w.power_names
                                   for s in w.state_names)
    assert other.paths == tuple(("pairs", "other", s, "sentiment") for s in w.state_names)
    assert kz.paths == tuple(("pairs", p, "kazakhstan", "sentiment") for p in w.power_names)
    assert len(w.state_names) == 5 and len(w.power_names) == 4
    assert expand_target(w, "params.w_trade") == (("params", "w_trade"),)


def test_set_params_and_unquoted_exponent(tmp_path):
    # 1e2 is a number (YAML 1.2); a flag (csto) may be written true.
    path = write(tmp_path, HEAD + "set:\n  params.w_trade: 0.5\n  powers.china.capacity: 1e2\n"
                 "  params.regional_weighting: population\n  states.kazakhstan.csto: true\n")
    sc = load_scenario(path)
    assert sc.params.w_trade == 0.5
    assert sc.params.regional_weighting == "population"
    assert sc.world.powers["china"].capacity == 100.0
    assert sc.world.states["kazakhstan"].csto == 1.0


def test_with_end_and_with_params_errors():
    sc = load_scenario("baseline")
    assert sc.with_end("2020Q4").n_quarters == 24
    for bad in ("2020Q5", "2014Q4"):
        with pytest.raises(InputError) as info:
            sc.with_end(bad)
        assert info.value.field == "--end" and "\n" not in str(info.value)
    with pytest.raises(InputError) as info:
        sc.with_params(w_trade=2)
    assert info.value.field == "params.w_trade"
    assert "less than or equal to 1" in str(info.value)


# --------------------------------------------------------------------------- property tests

_FUZZ_BASE = """\
name: t
description: d
period: {start: 2016Q1, end: 2030Q4}
set:
  powers.china.capacity: 3
remove_events: []
events:
  - id: e
    at: 2020Q1
    duration: 3
    effects:
      - {target: 'states.*.fragility', op: scale, value: 0.5}
"""
_FUZZ_TOKENS = ["{", "}", "[", "]", ":", "- ", "&a ", "*a", "!!int ", "!!python/none ", "? ",
                "|", "#", "'", '"', "\t", "\n", "  ", "~", ".nan", "-1", "2040Q4", "*", ".",
                "<<: ", "---", "%YAML 1.1\n", "\x85", "\u2028", "\x07", "2001-01-01", "!x "]


@st.composite
def mutated(draw):
    text = _FUZZ_BASE
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:k] + draw(st.sampled_from(_FUZZ_TOKENS)) + text[k:]
        else:
            text = text[:k] + text[k + draw(st.integers(1, 6)):]
    return text


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated())
def test_mangled_file_loads_or_gives_one_line(tmp_path, text):
    path = write(tmp_path, text)
    try:
        load_scenario(path)
    except InputError as err:
        msg = str(err)
        assert len(msg.splitlines()) == 1, msg
        assert path.name in msg, msg


def _ranges(model) -> list[tuple[str, float, float | None, bool]]:
    """(name, min, max, min excluded) per field, ranges from field_table."""
    out = []
    for row in field_table(model):
        info = model.model_fields[row["name"]]
        exclusive = any(isinstance(m, annotated_types.Gt) for m in info.metadata)
        out.append((row["name"], row["min"], row["max"], exclusive))
    return out


_WORLD = load_scenario("baseline").world
TARGETS = (
    [(f"powers.{p}", "powers", p, r) for p in _WORLD.power_names for r in _ranges(PowerAttrs)]
    + [(f"states.{s}", "states", s, r) for s in _WORLD.state_names for r in _ranges(StateAttrs)]
)


def _scenario_text(key: str, value: float) -> str:
    doc = {"name": "prop", "description": "property test", "set": {key: value}}
    return yaml.safe_dump(doc, sort_keys=False)  # `set:` on line 3, the key on line 4


@st.composite
def in_range(draw):
    prefix, section, who, (name, lo, hi, exclusive) = draw(st.sampled_from(TARGETS))
    value = draw(st.floats(min_value=lo, max_value=hi if hi is not None else lo + 1e4,
                           exclude_min=exclusive, allow_nan=False, allow_infinity=False))
    return f"{prefix}.{name}", section, who, name, value


@st.composite
def out_of_range(draw):
    prefix, _, _, (name, lo, hi, exclusive) = draw(st.sampled_from(TARGETS))
    below = st.floats(max_value=lo, exclude_max=not exclusive, min_value=lo - 1e6)
    options = [below]
    if hi is not None:
        options.append(st.floats(min_value=hi, exclude_min=True, max_value=hi + 1e6))
    value = draw(st.one_of(options))
    return f"{prefix}.{name}", value


_FAST = settings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FAST
@given(case=in_range())
def test_set_in_range_is_applied(tmp_path, case):
    key, section, who, name, value = case
    path = write(tmp_path, _scenario_text(key, value))
    sc = load_scenario(path)
    got = getattr(getattr(sc.world, section)[who], name)
    assert got == value
    assert sc.overrides == {key: value}


@_FAST
@given(case=out_of_range())
def test_set_out_of_range_names_the_key(tmp_path, case):
    key, value = case
    assert math.isfinite(value)
    path = write(tmp_path, _scenario_text(key, value))
    err = raises(path)
    check_error(err, path, 4, f"set.{key}", "than")
