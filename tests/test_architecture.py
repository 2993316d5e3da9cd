"""The layer order of docs/architecture.md holds in the code: every import (lazy ones inside functions and
`importlib.import_module("<constant>")` included) goes to a module of the same layer or a lower one, and no
module reaches itself through its imports (no import circle)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tgpo", "baselines", "eval", "figures", "bench")
LAYER_ROW = re.compile(r"^\|\s*(\d+)\s*\|[^|]*\|([^|]*)\|\s*$")


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def layers() -> dict[str, int]:
    """Module prefix -> layer number, from the table under '## Layers' of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("\n## Layers", 1)[1].split("\n## ", 1)[0]
    prefixes = {}
    for line in section.splitlines():
        match = LAYER_ROW.match(line)
        if match:
            for prefix in re.findall(r"`([\w.]+)`", match.group(2)):
                assert prefix not in prefixes, f"docs/architecture.md: {prefix} is in two layers"
                prefixes[prefix] = int(match.group(1))
    assert prefixes, "docs/architecture.md: no layer table under '## Layers'"
    return prefixes


EXACT = ("tgpo", "eval")  # these packages stand for their __init__.py alone


def layer_of(module: str, prefixes: dict[str, int]) -> int | None:
    """The floor of the longest listed prefix of `module`."""
    name = module
    while name:
        if name in prefixes and (name == module or name not in EXACT):
            return prefixes[name]
        name = name.rpartition(".")[0]
    return None


def imported_modules(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module of PACKAGES that `path` imports, at the top or inside a function."""

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names = [node.args[0].value]
        for name in names:
            if name.split(".")[0] in PACKAGES and (target := resolve(name)):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {module: imported_modules(path, known) - {module} for module, path in known.items()}


def test_every_module_has_a_layer():
    prefixes = layers()
    missing = [module for module in modules() if layer_of(module, prefixes) is None]
    assert not missing, f"modules in no layer of docs/architecture.md: {missing}"


def test_imports_go_down_the_layers():
    prefixes = layers()
    upward = [
        f"{module} (layer {layer_of(module, prefixes)}) imports {target} (layer {layer_of(target, prefixes)})"
        for module, targets in import_graph().items()
        for target in sorted(targets)
        if layer_of(target, prefixes) > layer_of(module, prefixes)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_circles():
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not circles, f"import circles: {circles}"
