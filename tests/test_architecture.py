"""The package's structure, measured from its imports (design/2026-12-03-package-map.md).

Every rule here is read from the code itself: each module of ``src/datamanifest`` is parsed
(AST, nothing is imported) and its ``import`` statements become edges of a graph, at module
level and inside functions alike ("lazy" imports), leaving out only the imports under
``if TYPE_CHECKING:``, which never run. The rules:

* no import circle between our modules, lazy imports included, except the ones listed in
  :data:`LAZY_CIRCLES` with their reason;
* ``spec/`` (the pure rules) imports only ``spec/`` and the foundation, and no I/O library;
* ``store/`` and ``io/`` (where bytes live) import only themselves, ``spec/`` and the
  foundation: never a capability (fetch, virtual, appends, cache, maintain, author, cli,
  conformance, ...);
* no library module imports ``cli/`` (only ``__main__`` does);
* no module is longer than :data:`MAX_LINES` lines.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "datamanifest"
MAX_LINES = 600

#: Below every layer: the error types, the optional-dependency gate, the version, the fault
#: injection points and the interruption (Ctrl-C, pid) helpers. spec/, io/ and store/ may
#: import these and nothing else outside their own layers.
FOUNDATION = {"_version", "errors", "optional", "faults", "interrupt"}

#: Import circles closed by a lazy (function-level) import, each with why it is lazy. A lazy
#: import that keeps an optional dependency optional is the only accepted reason. None today:
#: every optional library (zarr, xarray, h5py, obstore, boto3, fsspec, ...) is imported lazily
#: where it is used, which opens no circle between our own modules. An entry is the set of
#: modules of the circle (names relative to the package) -> the reason.
LAZY_CIRCLES: dict[frozenset[str], str] = {}

#: Modules allowed over MAX_LINES for a while (each with its reason); none today. A module
#: listed here that is back under MAX_LINES fails the test, so the list cannot go stale.
OVERSIZE_ALLOWED_TEMPORARILY: set[str] = set()

#: I/O libraries (standard and third-party) the pure spec/ layer never imports.
IO_LIBRARIES = {
    "socket", "subprocess", "shutil", "http", "urllib.request", "httpx", "requests", "boto3",
    "botocore", "obstore", "fsspec", "gcsfs", "adlfs", "s3fs", "h5py", "zarr", "xarray",
    "netCDF4", "click", "rich",
}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, relative to the package ("fetch.engine", "project")
    target: str  # imported module of the package, or the external module's dotted name
    lazy: bool  # inside a function
    line: int
    internal: bool

    def __str__(self) -> str:
        return (f"{module_file(self.source)}:{self.line}: {self.source} imports {self.target}"
                + (" (lazily)" if self.lazy else ""))


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root / PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def module_file(name: str) -> str:
    path = MODULES[name]
    return str(path.relative_to(SRC / PACKAGE))


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[Edge]:
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    edges: list[Edge] = []

    def internal(dotted: str) -> str | None:
        """The longest module of the package that ``dotted`` (relative to it) names."""
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or ("" if "" in modules else None)

    def add(node: ast.stmt, lazy: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    target = internal(alias.name[len(PACKAGE) + 1:])
                    edges.append(Edge(name, target or "", lazy, node.lineno, True))
                else:
                    edges.append(Edge(name, alias.name, lazy, node.lineno, False))
            return
        assert isinstance(node, ast.ImportFrom)
        if node.level == 0 and not (node.module == PACKAGE
                                    or (node.module or "").startswith(PACKAGE + ".")):
            edges.append(Edge(name, node.module or "", lazy, node.lineno, False))
            return
        if node.level:
            base = here if is_package else here[:-1]
            base = base[:len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module[len(PACKAGE) + 1:] if node.module != PACKAGE else ""
        named_modules = [f"{prefix}.{a.name}".lstrip(".") for a in node.names]
        subs = [m for m in named_modules if m in modules]
        for m in subs:  # `from . import virtual`: the submodule itself
            edges.append(Edge(name, m, lazy, node.lineno, True))
        if len(subs) < len(node.names):  # names defined in the module `prefix`
            target = internal(prefix)
            if target is not None and target != name:
                edges.append(Edge(name, target, lazy, node.lineno, True))

    def walk(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                add(child, lazy)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    walk(other, lazy)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                walk(child, True)
            else:
                walk(child, lazy)

    walk(ast.parse(path.read_text(encoding="utf-8")), False)
    return [e for e in edges if not (e.internal and e.target == name)]


def _graph(root: Path) -> tuple[dict[str, Path], list[Edge]]:
    modules = _modules(root)
    edges = [e for name, path in modules.items() for e in _imports(name, path, modules)]
    return modules, edges


MODULES, EDGES = _graph(SRC)


def _circles(edges: list[Edge]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.internal:
            graph.setdefault(e.source, set()).add(e.target)
            graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def _layer(name: str) -> str:
    return name.split(".")[0]


def _violations(edges: list[Edge], allowed_layers: set[str], sources: set[str]) -> list[str]:
    return [str(e) for e in edges if e.internal and _layer(e.source) in sources
            and _layer(e.target) not in allowed_layers]


# -- the rules ----------------------------------------------------------------------------------
def test_the_graph_is_read_from_the_code():
    assert len(MODULES) > 100 and "spec.manifest" in MODULES and "cli" in MODULES
    assert any(e.source == "project" and e.target == "check" and not e.lazy for e in EDGES)
    assert any(e.source == "operations" and e.target == "fetch" and e.lazy for e in EDGES)


def test_no_import_circle():
    circles = _circles(EDGES)
    unexplained = [c for c in circles if frozenset(c) not in LAZY_CIRCLES]
    assert not unexplained, "import circles (break them, or list a lazy one in LAZY_CIRCLES " \
        "with its reason):\n" + "\n".join(
            "  " + " <-> ".join(sorted(c)) + "\n" + "\n".join(
                f"    {e}" for e in EDGES if e.internal and e.source in c and e.target in c)
            for c in unexplained)
    for members, reason in LAZY_CIRCLES.items():
        assert set(members) in circles, f"LAZY_CIRCLES lists {sorted(members)}, no circle now"
        closing = [e for e in EDGES if e.internal and e.source in members
                   and e.target in members and e.lazy]
        assert closing and reason, f"{sorted(members)}: closed by no lazy import"


def test_spec_is_pure():
    bad = _violations(EDGES, {"spec"} | FOUNDATION, {"spec"})
    bad += [str(e) for e in EDGES if not e.internal and _layer(e.source) == "spec"
            and any(e.target == m or e.target.startswith(m + ".") for m in IO_LIBRARIES)]
    assert not bad, "spec/ imports only spec/ and the foundation, and no I/O:\n" + "\n".join(bad)


def test_store_and_io_import_no_capability():
    bad = _violations(EDGES, {"store", "io", "spec"} | FOUNDATION, {"store", "io"})
    assert not bad, "store/ and io/ import only themselves, spec/ and the foundation:\n" + \
        "\n".join(bad)


def test_no_library_module_imports_the_cli():
    bad = [str(e) for e in EDGES if e.internal and _layer(e.target) == "cli"
           and _layer(e.source) not in ("cli", "__main__")]
    assert not bad, "only cli/ and __main__ import cli/:\n" + "\n".join(bad)


def test_no_module_over_the_line_limit():
    sizes = {str(p.relative_to(SRC / PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
             for p in MODULES.values()}
    over = {f: n for f, n in sizes.items() if n > MAX_LINES}
    assert set(over) <= OVERSIZE_ALLOWED_TEMPORARILY, \
        f"modules over {MAX_LINES} lines: " + ", ".join(
            f"{f} ({n})" for f, n in sorted(over.items()) if f not in OVERSIZE_ALLOWED_TEMPORARILY)
    stale = {f for f in OVERSIZE_ALLOWED_TEMPORARILY if sizes.get(f, 0) <= MAX_LINES}
    assert not stale, f"remove from OVERSIZE_ALLOWED_TEMPORARILY (now short enough): {stale}"


# -- the rules fail on real violations -----------------------------------------------------------
VIOLATIONS = {
    "a circle": ("errors.py", "from .project import Project\n",
                 test_no_import_circle),
    "a lazy circle": ("store/layout.py", "def f():\n    from ..project import Project\n",
                      test_no_import_circle),
    "spec doing I/O": ("spec/keys.py", "import httpx\n", test_spec_is_pure),
    "spec importing a capability": ("spec/checksum.py", "from ..fetch import run\n",
                                    test_spec_is_pure),
    "store importing a capability": ("store/state.py", "from ..virtual import open_virtual\n",
                                     test_store_and_io_import_no_capability),
    "io importing a capability": ("io/http.py", "def f():\n    from ..appends import append\n",
                                  test_store_and_io_import_no_capability),
    "a library importing the cli": ("load.py", "from .cli._common import human\n",
                                    test_no_library_module_imports_the_cli),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_each_rule_fails_on_a_real_violation(case, tmp_path, monkeypatch):
    """Copy the package, add one offending import, rebuild the graph: the rule must fail."""
    import shutil

    file, code, rule = VIOLATIONS[case]
    copy = tmp_path / "src"
    shutil.copytree(SRC / PACKAGE, copy / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / PACKAGE / file, "a", encoding="utf-8") as f:
        f.write("\n" + code)
    modules, edges = _graph(copy)
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "MODULES", modules)
    monkeypatch.setattr(module, "EDGES", edges)
    monkeypatch.setattr(module, "SRC", copy)
    with pytest.raises(AssertionError):
        rule()


def test_the_line_limit_fails_on_a_long_module(tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(SRC / PACKAGE, copy / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / PACKAGE / "long.py").write_text("x = 1\n" * (MAX_LINES + 1), encoding="utf-8")
    modules, edges = _graph(copy)
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "MODULES", modules)
    monkeypatch.setattr(module, "SRC", copy)
    with pytest.raises(AssertionError, match="long.py"):
        test_no_module_over_the_line_limit()


def test_the_readme_lists_every_module_and_subpackage():
    """README's "Project layout" names each top-level module and subpackage, and links the map."""
    readme = (SRC.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Project layout", 1)[1].split("\n## ", 1)[0]
    assert "design/2026-12-03-package-map.md" in section
    tops = {name.split(".")[0] for name in MODULES if name}
    missing = []
    for top in sorted(tops):
        is_package = (SRC / PACKAGE / top / "__init__.py").exists()
        if f"`{top}/`" not in section if is_package else f"`{top}.py`" not in section:
            missing.append(top + ("/" if is_package else ".py"))
    assert not missing, f"README's Project layout does not list: {missing}"
