"""The shape of the code, so it stays the way the redesign left it: no import cycles in `labkit`
and `app` (module-level and function-level imports alike, read with `ast`), no import from a
lower pipeline stage to a higher one, no module over 450 lines, no function over 120 lines.

Run: .venv/bin/python -m pytest tests/test_structure.py -q
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("labkit", "app")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 120

# The pipeline's floors, lowest first: a module may import its own floor or lower ones only.
# A module's floor is that of the longest prefix listed (labkit.store.queries -> labkit.store).
FLOORS = [
    # ground: the metric, letters, prompts, JSONL, parsing a completion
    ["labkit.metrics", "labkit.prompts", "labkit.jsonl", "labkit.verdicts", "labkit.completions"],
    # data: the schema, dimensions and their words, storage, conversions to model inputs, the paper's numbers
    ["labkit.data", "labkit.conversions", "labkit.paper", "labkit.validate"],
    # models and inference; the synthetic world and generation; the annotation store
    ["labkit.models", "labkit.infer", "labkit.synth", "labkit.segment", "labkit.flux", "labkit.diffusion_models",
     "labkit.generate", "labkit.compose", "labkit.store", "labkit.perception", "labkit.mc", "labkit.rewards", "labkit.dynamic_sampling"],
    # annotation: judges, the annotate stage, interop with other tools
    ["labkit.judge_base", "labkit.judges", "labkit.annotate", "labkit.oracle", "labkit.model_card", "labkit.viz"],
    # tasks and the one evaluation loop; screening the user's work, their data in and out
    ["labkit.tasks", "labkit.evaluate", "labkit.screen", "labkit.interop"],
    # training
    ["labkit.train", "labkit.recipes", "labkit.training", "labkit.sft", "labkit.grpo", "labkit.hcm",
     "labkit.baseline", "labkit.pretrain", "labkit.pretrain_vision", "labkit.stages"],
    # runs of many stages and what reads them
    ["labkit.ablate", "labkit.report", "labkit.seeds", "labkit.pipeline", "labkit.notebooks", "labkit.notebook_pairs"],
    # the front doors
    ["labkit.app", "app", "labkit.cli", "labkit.__main__"],
]


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The first-party modules ``name`` imports anywhere in its file (a package's own
    ``__init__`` counts as the package)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" for a in node.names] + [mod]
        for t in targets:
            # the longest known module the name lies in (a name imported from a module is that module)
            parts = t.split(".")
            for i in range(len(parts), 0, -1):
                cand = ".".join(parts[:i])
                if cand in known:
                    if cand != name:
                        out.add(cand)
                    break
    return out


@pytest.fixture(scope="module")
def graph():
    mods = _modules()
    return mods, {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _without_package_faces(edges):
    # A package's __init__ re-exporting its own submodules is not a cycle of the design: drop
    # edges from a package to modules inside it.
    return {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in edges.items()}


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles(graph):
    _, edges = graph
    assert _cycles(_without_package_faces(edges)) == []


def _floor(module: str) -> int | None:
    best, floor = -1, None
    for i, names in enumerate(FLOORS):
        for n in names:
            if (module == n or module.startswith(n + ".")) and len(n) > best:
                best, floor = len(n), i
    return floor


def test_every_module_has_a_floor(graph):
    mods, _ = graph
    assert [m for m in mods if m != "labkit" and _floor(m) is None] == []


def test_no_import_from_a_lower_floor_to_a_higher_one(graph):
    _, edges = graph
    upward = [(m, t) for m, ts in _without_package_faces(edges).items() for t in sorted(ts)
              if _floor(m) is not None and _floor(t) is not None and _floor(t) > _floor(m)]
    assert upward == []


def test_modules_and_functions_stay_small(graph):
    mods, _ = graph
    big = {m: n for m, p in mods.items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}
    long = []
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{m}.{node.name}: {n} lines")
    assert long == []


def test_the_readme_layout_matches_the_tree():
    # Every module and subpackage of labkit is named in the README's Layout section, and every
    # name there exists.
    import re

    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    layout = layout[:layout.index("\n## ", 3)]
    layout = layout[:layout.index("Beside it:")]  # the table of labkit's modules
    named = set(re.findall(r"`([a-z_]+(?:\.py|/))`", layout))
    tree = {p.name for p in (ROOT / "labkit").glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    tree |= {p.name + "/" for p in (ROOT / "labkit").iterdir() if (p / "__init__.py").exists()}
    assert sorted(tree - named) == []
    assert sorted(named - tree) == []
    for pkg in (p for p in (ROOT / "labkit").iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((pkg / "__init__.py").read_text()))
        assert doc and len(doc) > 80, f"{pkg.name}/__init__.py needs a docstring saying what it holds"
