"""The folders are the pipeline: no import cycles, and no stage imports a stage after it.

Every import counts, including those inside functions and under `if TYPE_CHECKING:`
(docs/architecture.md).
"""

import ast
from pathlib import Path

import shop_loadtest

PACKAGE = Path(shop_loadtest.__file__).parent
# Lowest first. `errors` (the one exception tree) and the package root sit under everything;
# `safety` (the allowlist rule and the secret mask) is what every stage's requests and
# outputs pass; `shapes` and `journeys` are the languages the scenario file is written in (the
# models validate with them); `run` orchestrates a run, so it calls results, judge and report.
STAGES = ["errors", "safety", "demo_shop", "shapes", "journeys", "scenario", "generate",
          "runtime",
          "results", "judge", "report", "run", "capacity", "compare", "cli"]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = ["shop_loadtest", *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str:
    part = (module.split(".") + [""])[1]
    return {"": "errors", "__main__": "cli"}.get(part, part)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports (a `from x import y` names x.y if y is one)."""
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                edges |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                          for a in node.names}
        graph[module] = {e for e in edges if e in files and e != module}
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    rank = {stage: i for i, stage in enumerate(STAGES)}
    return sorted(f"{src} -> {dst}" for src, dsts in graph.items() for dst in dsts
                  if rank[stage_of(dst)] > rank[stage_of(src)])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first walk closes (at least one for every cycle there is)."""
    found, done = [], set()
    for start in sorted(graph):
        stack, path, on_path = [(start, iter(sorted(graph[start])))], [start], {start}
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                found.append(path[path.index(child):] + [child])
            elif child not in done:
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
                on_path.add(child)
    return found


def test_every_folder_is_a_known_stage():
    assert {stage_of(m) for m in import_graph()} <= set(STAGES)


def test_no_stage_imports_a_stage_after_it():
    assert upward_imports(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_check_sees_a_violation_inside_a_function(tmp_path):
    root = tmp_path / "shop_loadtest"
    for folder, text in {"scenario": "def f():\n    from shop_loadtest.judge import rules\n",
                         "judge": "from ..scenario import model\n"}.items():
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
        (root / folder / ("model.py" if folder == "scenario" else "rules.py")).write_text(text)
    (root / "__init__.py").write_text("")
    graph = import_graph(root)
    assert upward_imports(graph) == ["shop_loadtest.scenario.model -> shop_loadtest.judge.rules"]
    assert cycles(graph) == [["shop_loadtest.judge.rules", "shop_loadtest.scenario.model",
                              "shop_loadtest.judge.rules"]]
