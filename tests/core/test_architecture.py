"""The core's import graph has no cycle: every module of core/ can be read (and imported) on its
own, lower layers never import higher ones. Module-level imports count, including those inside
functions; imports under ``if TYPE_CHECKING:`` (annotations only) do not."""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The core modules ``path`` imports (relative imports resolved; type-checking-only left out)."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
        target = ".".join([*base, *(node.module.split(".") if node.module else [])])
        names = [target] if node.module else []
        names += [f"{target}.{alias.name}".strip(".") for alias in node.names]
        found.update(n for n in names if (CORE / Path(*n.split("."))).with_suffix(".py").is_file()
                     or (CORE / Path(*n.split(".")) / "__init__.py").is_file())
    return found - {module_name(path)}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_core_imports_have_no_cycle():
    graph = {module_name(p): imports_of(p) for p in CORE.rglob("*.py")}
    graph = {k: {v for v in vs if not (k.startswith(v + ".") or v == "")} for k, vs in graph.items()}
    assert find_cycle(graph) is None, f"import cycle in core/: {' → '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
