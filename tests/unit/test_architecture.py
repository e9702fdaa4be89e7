"""The layout's rules, checked on the source: imports only run down the data flow (ARCHITECTURE.md), no private
name crosses a package, functions fit on a screen, the CLI stays thin."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "cnnkit"

# The floors of ARCHITECTURE.md, lowest first: a module may import its own package and anything on a lower floor.
FLOORS = {
    "cnnkit._version": 0, "cnnkit.errors": 0,
    "cnnkit._io": 1, "cnnkit.progress": 1,
    "cnnkit.options": 2, "cnnkit.plots": 2, "cnnkit.weights": 2, "cnnkit.augment.spec": 2,
    "cnnkit.config": 3, "cnnkit.data": 3, "cnnkit.models": 3,
    "cnnkit.augment": 4,
    "cnnkit.run": 5, "cnnkit.feature_cache": 5,
    "cnnkit.baselines": 6,
    "cnnkit.inference": 7,
    "cnnkit.training": 8, "cnnkit.latent": 8, "cnnkit.export": 8, "cnnkit.inspection": 8,
    "cnnkit.evaluation": 9, "cnnkit.scan": 9, "cnnkit.recipes": 9, "cnnkit.audit": 9,
    "cnnkit.anomaly": 9,
    "cnnkit.classifier": 10, "cnnkit.patches": 10, "cnnkit.serve": 10,
    "cnnkit.cli": 11,
    "cnnkit": 12,  # the package's lazy exports
}


def modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def unit(module: str) -> str:
    """The FLOORS entry a module belongs to (its longest matching prefix)."""
    matches = [k for k in FLOORS if module == k or module.startswith(k + ".")]
    return max(matches, key=len)


def imports(path: Path, module: str) -> list[tuple[str, list[str], int]]:
    """(imported cnnkit module, names taken from it, line) for every import, lazy ones inside functions included."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
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
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and node.exc is not None:
                text = ast.unparse(node.exc)
                if " --" in text and "cnnkit " not in text:
                    wrong.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not wrong, wrong
