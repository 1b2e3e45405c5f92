"""Docs stay in step with the code: generated tables are current and name every attribute."""

import importlib.util
from pathlib import Path

from sim.world.vocabulary import PairAttrs, Params, PowerAttrs, StateAttrs

DOCS = Path(__file__).parent.parent / "docs"


def test_generated_tables_are_current():
    spec = importlib.util.spec_from_file_location("make_tables", DOCS / "make_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name in mod.FILES:
        text = (DOCS / name).read_text(encoding="utf-8")
        assert mod.render(text) == text, f"docs/{name} is stale: run python docs/make_tables.py"


def test_every_name_is_documented():
    scen = (DOCS / "scenarios.md").read_text(encoding="utf-8")
    odd = (DOCS / "ODD.md").read_text(encoding="utf-8")
    for model in (PowerAttrs, StateAttrs, PairAttrs, Params):
        for name, info in model.model_fields.items():
            assert f"`{name}`" in scen, name
            assert f"`{name}`" in odd, name
            assert info.description, name
