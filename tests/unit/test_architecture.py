"""The layout's rules, checked on the source: imports only run down the data flow (ARCHITECTURE.md), no private
name crosses a package, functions fit on a screen, the CLI stays thin."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "cnnkit"

# The floors of ARCHITECTURE.md, lowest first: a module may import its own package and anything on a lower floor.
FLOORS = {
    "cnnkit._version": 0, "cnnkit.errors": 0,
    "cnnkit._io": 1, "cnnkit.progress": 1,
    "cnnkit.options": 2, "cnnkit.plots": 2, "cnnkit.weights": 2,
    "cnnkit.config": 3, "cnnkit.data": 3, "cnnkit.models": 3,
    "cnnkit.augment": 4, "cnnkit.onnx_graph": 4,
    "cnnkit.run": 5, "cnnkit.feature_cache": 5,
    "cnnkit.baselines": 6,
    "cnnkit.inference": 7,
    "cnnkit.training": 8, "cnnkit.latent": 8, "cnnkit.export": 8, "cnnkit.inspection": 8,
    "cnnkit.evaluation": 9, "cnnkit.scan": 9, "cnnkit.recipes": 9, "cnnkit.audit": 9,
    "cnnkit.anomaly": 9, "cnnkit.suggest": 9,
    "cnnkit.classifier": 10, "cnnkit.patches": 10, "cnnkit.serve": 10, "cnnkit.label": 10,
    "cnnkit.cli": 11,
    "cnnkit": 12,  # the package's lazy exports
}


@lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    """Every module of the package and its file (found once per test session: the tree does not change)."""
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def unit(module: str) -> str:
    """The FLOORS entry a module belongs to (its longest matching prefix)."""
    matches = [k for k in FLOORS if module == k or module.startswith(k + ".")]
    return max(matches, key=len)


@lru_cache(maxsize=None)
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def imports(path: Path, module: str) -> list[tuple[str, list[str], int]]:
    """(imported cnnkit module, names taken from it, line) for every import, lazy ones inside functions included."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("cnnkit")]
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                target = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [target])
            if target.startswith("cnnkit"):
                names = [a.name for a in node.names]
                submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules()]
                out += [(s, [], node.lineno) for s in submodules] or [(target, names, node.lineno)]
    return out


def test_every_module_has_a_floor():
    assert all(unit(m) for m in modules())


def test_imports_only_run_down_the_data_flow():
    wrong = []
    for module, path in modules().items():
        if module == "cnnkit":
            continue
        mine = unit(module)
        for target, _, line in imports(path, module):
            theirs = unit(target)
            if theirs != mine and FLOORS[theirs] >= FLOORS[mine]:
                wrong.append(f"{path.relative_to(SRC)}:{line} {module} (floor {FLOORS[mine]}) imports {target} "
                             f"(floor {FLOORS[theirs]})")
    assert not wrong, "\n".join(wrong)


def test_no_private_name_crosses_a_package():
    wrong = []
    for module, path in modules().items():
        for target, names, line in imports(path, module):
            same = unit(target) == unit(module)
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            private_module = any(p.startswith("_") and p not in ("__init__", "_version", "_io")
                                 for p in target.split("."))
            if not same and (private or private_module):
                wrong.append(f"{path.relative_to(SRC)}:{line} imports {target} {private}")
    assert not wrong, "\n".join(wrong)


def test_functions_fit_on_a_screen():
    long = [f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
            for path in sorted(SRC.rglob("*.py"))
            for node in ast.walk(parsed(path))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60]
    assert not long, "Functions longer than 60 lines (split them):\n" + "\n".join(long)


def test_the_command_line_is_thin():
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in (SRC / "cli").glob("*.py")}
    assert max(sizes.values()) < 300, sizes


def test_library_messages_name_parameters_not_flags():
    """Errors raised below the CLI say `lr`, not --lr: a Python user never typed a flag."""
    wrong = []
    for module, path in modules().items():
        if unit(module) == "cnnkit.cli":
            continue
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = ast.unparse(node.exc)
                if " --" in text and "cnnkit " not in text:
                    wrong.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not wrong, wrong


def import_graph() -> dict[str, dict[str, str]]:
    """module -> {cnnkit module it imports: where}, every import counted, lazy ones inside functions included."""
    found = modules()
    return {module: {target: f"{path.relative_to(SRC)}:{line}" for target, _, line in imports(path, module)
                     if target in found and target != module}
            for module, path in found.items()}


def circles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """The strongly connected parts of ``graph`` with more than one member (Tarjan): each holds an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = []
            while not part or part[-1] != node:
                part.append(stack.pop())
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles_between_modules():
    """Not even through a lazy import inside a function: a circle hides which module comes first."""
    graph = import_graph()
    wrong = [" <-> ".join(part) + ": " + ", ".join(f"{graph[a][b]} imports {b}" for a in part for b in part
                                                    if b in graph[a])
             for part in circles(graph)]
    assert not wrong, "\n".join(wrong)


def test_no_import_circles_between_packages():
    packages: dict[str, dict[str, str]] = {}
    for module, targets in import_graph().items():
        for target, where in targets.items():
            if unit(target) != unit(module):
                packages.setdefault(unit(module), {})[unit(target)] = where
    assert not circles(packages), circles(packages)


def module_names(path: Path, module: str) -> dict[str, str]:
    """The names a module binds to cnnkit modules (``import cnnkit.x as y``, ``from cnnkit import x``) -> module."""
    found = modules()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = {}
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            names.update({a.asname or a.name: a.name for a in node.names if a.name in found})
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                target = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [target])
            names.update({a.asname or a.name: f"{target}.{a.name}" for a in node.names
                          if f"{target}.{a.name}" in found})
    return names


def test_no_private_name_is_taken_from_another_module():
    """``from cnnkit.x import _helper`` or ``x._helper`` from outside ``x``: a private helper another module needs is
    public, or lives where both can reach it. Private modules (``_io``, ``_registry``) are fine as modules."""
    wrong = []
    for module, path in modules().items():
        for target, names, line in imports(path, module):
            taken = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if taken and target != module:
                wrong.append(f"{path.relative_to(SRC)}:{line} imports {taken} from {target}")
        aliases = module_names(path, module)
        for node in ast.walk(parsed(path)):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and aliases.get(ast.unparse(node.value), module) != module):
                wrong.append(f"{path.relative_to(SRC)}:{node.lineno} uses {ast.unparse(node)}")
    assert not wrong, "\n".join(wrong)
