"""The package's shape: no import cycle among structgen's modules (every import counted, also those
inside functions and under TYPE_CHECKING)."""

from __future__ import annotations

import ast
from pathlib import Path

from datasets import REPO

PACKAGE = REPO / "structgen"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The structgen modules `path` imports (a `from pkg import name` naming a submodule counts as it)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m in modules and m != me}


def test_no_import_cycles():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imports(p, modules) for p in paths}
    # a package's __init__ is where its submodules are found, not a dependency of them
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


# low to high: a module may import its own layer and the layers below it (DESIGN.md §2); the package's
# __init__ (the public API, re-exported lazily) and __main__ stand apart
LAYERS = [
    {"errors", "options", "bitset", "budget"},
    {"tokenizer", "kernels"},
    {"automata"},
    {"frontend"},
    {"runtime"},
    {"maskstore"},
    {"grammar"},
    {"compile_cache", "compiler"},
    {"matcher", "warmup"},  # warmup: every kind of input through compile and masks (DESIGN.md lacks it)
    {"models"},
    {"decoding"},
    {"integrations"},
    {"evaluation"},
    {"cli", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_from_a_layer_above():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    unplaced = sorted({_layer(m) for m in modules} - set(RANK) - {""})
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"
    bad = []
    for p in paths:
        me = module_name(p)
        if _layer(me) == "":
            continue
        for dep in imports(p, modules):
            if _layer(dep) and RANK[_layer(dep)] > RANK[_layer(me)]:
                bad.append(f"{me} -> {dep}")
    assert not bad, "imports from a layer above: " + "; ".join(bad)


def test_no_file_over_600_lines():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long, f"files over 600 lines: {long}"


def _is_kernel(fn: ast.FunctionDef) -> bool:
    return any("jit" in ast.unparse(d) for d in fn.decorator_list)


def test_kernels_take_named_views():
    """No numba kernel takes more than 8 positional parameters: tables travel as named views (automata/views.py)."""
    wide = [f"{p.relative_to(REPO)}:{fn.lineno} {fn.name} ({len(fn.args.args)})"
            for p in PACKAGE.rglob("*.py") for fn in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
            if isinstance(fn, ast.FunctionDef) and _is_kernel(fn) and len(fn.args.args) > 8]
    assert not wide, f"kernels with more than 8 positional parameters: {wide}"


def test_no_writes_into_other_objects_dict():
    """An object's `__dict__` is written only by the object's own methods (`self.__dict__`), never from outside."""
    bad = []
    for p in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "__dict__":
                owner = ast.unparse(node.value)
                if owner not in ("self", "cls"):
                    bad.append(f"{p.relative_to(REPO)}:{node.lineno} {owner}.__dict__")
    assert not bad, "reads or writes of another object's __dict__: " + "; ".join(bad)
