"""The import contract: the arrows between the package's folders point one way.

Reads every module's imports (top-level and inside functions) with `ast`; runs nothing.
The rules, from docs/architecture.md:

1. kernels and step import no mesa, yaml, pandas or pyarrow (pure numpy rules);
2. the engine imports nothing from runs, output, cli or app;
3. output never runs models: it imports neither the engine nor the runner (directly or
   through any chain of imports);
4. nothing imports cli or app (but cli's own modules and the entry points);
5. no import cycles between modules (imports made only for type annotations, under
   `if TYPE_CHECKING:`, do not count: they import nothing at run time);
6. every folder imports only from folders below it in LAYERS.
"""

import ast
import typing
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[1] / "sim"

LAYERS = ["errors", "world", "scenario", "engine", "analysis", "runs", "calibration", "output",
          "cli", "app"]
"""Folders from the bottom up; `sim/errors.py` is the base every layer may raise."""


def module_name(path: Path, root: Path = SIM) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = SIM) -> set[str]:
    """Every module a file imports, as dotted names (relative imports resolved)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:  # names for annotations only: nothing is imported
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def graph(root: Path = SIM) -> dict[str, set[str]]:
    """Module -> the project modules it imports.

    Imports of the package root (`import sim` for its version) are left out: every import
    of a submodule runs the root first anyway, and the root only names the version and the
    `load_sweep` shortcut.
    """
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    top = root.name
    return {m: {i for i in imports_of(p, root) if i in files and i not in (m, top)}
            for m, p in files.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sim"


def reachable(g: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in g[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(g[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (c := visit(n)):
                return c
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(g):
        if m not in state and (c := visit(m)):
            return c
    return None


def violations(g: dict[str, set[str]], raw: dict[str, set[str]]) -> list[str]:
    """Every broken rule, one line each (empty when the contract holds)."""
    out = []
    for m in ("sim.engine.kernels", "sim.engine.step"):
        for i in raw.get(m, ()):
            if i.split(".")[0] in {"mesa", "yaml", "pandas", "pyarrow"}:
                out.append(f"{m} imports {i}")
    for m, deps in g.items():
        for d in deps:
            if layer(m) == "engine" and layer(d) in {"runs", "output", "cli", "app"}:
                out.append(f"{m} (engine) imports {d}")
            if layer(d) in {"cli", "app"} and layer(m) != layer(d) and m != "sim.__main__":
                out.append(f"{m} imports {d}")
            if (layer(m) in LAYERS and layer(d) in LAYERS
                    and LAYERS.index(layer(d)) > LAYERS.index(layer(m))):
                out.append(f"{m} ({layer(m)}) imports {d} from a layer above")
        if layer(m) == "output":
            runners = {r for r in reachable(g, m)
                       if layer(r) == "engine" or r in {"sim.runs.runner", "sim.runs.gather"}}
            out += [f"{m} (output) can run models through {r}" for r in sorted(runners)]
    cycle = find_cycle(g)
    if cycle:
        out.append("import cycle: " + " -> ".join(cycle))
    return out


def raw_imports(root: Path = SIM) -> dict[str, set[str]]:
    return {module_name(p, root): imports_of(p, root) for p in root.rglob("*.py")}


def test_the_package_keeps_its_import_contract():
    assert violations(graph(), raw_imports()) == []


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("engine/step.py", "import pandas as pd", "sim.engine.step imports pandas"),
    ("engine/kernels.py", "import yaml", "sim.engine.kernels imports yaml"),
    ("engine/model.py", "from sim.runs import store", "sim.engine.model (engine) imports"),
    ("output/maps.py", "from sim.runs.runner import simulate", "can run models through"),
    ("output/maps.py", "from sim.analysis import explain", None),
    ("world/values.py", "from sim.scenario import yamlsafe", "from a layer above"),
    ("runs/store.py", "from sim.cli import main", "sim.runs.store imports sim.cli"),
    ("world/quarters.py", "from sim.world import values", "import cycle"),
])
def test_the_contract_fails_when_a_rule_is_broken(tmp_path, module, line, broken):
    """A copy of the package with one import added: the rule it breaks is reported."""
    import shutil

    copy = tmp_path / "sim"
    shutil.copytree(SIM, copy, ignore=shutil.ignore_patterns("__pycache__", "*.csv", "*.json",
                                                             "*.yaml", "*.md"))
    target = copy / module
    target.write_text(line + "\n" + target.read_text(encoding="utf-8"), encoding="utf-8")
    found = violations(graph(copy), raw_imports(copy))
    if broken is None:  # an allowed import: output may read the analysis' pure tables
        assert not [v for v in found if v.startswith("sim.output.maps")], found
    else:
        assert any(broken in v for v in found), found


def test_the_world_state_declares_every_array_it_holds():
    """Each array is a declared attribute (so an editor can jump to it), none left over."""
    from sim.scenario.scenarios import load_scenario
    from sim.world.state import WorldState
    from sim.world.vocabulary import PairAttrs, PowerAttrs, StateAttrs

    declared = set(typing.get_type_hints(WorldState))
    world = WorldState(load_scenario("baseline"))
    assert set(vars(world)) == declared
    vocabulary = {n for m in (PowerAttrs, StateAttrs, PairAttrs) for n in m.model_fields
                  if not n.startswith("priority_")}
    assert vocabulary <= declared
