"""The package's layering, checked on the import statements of its sources.

From the bottom: the models (constants, fields, keys, actions, text), the
records (odp.records), the codec and the simulator's parts, the API
(odp.datapath), the backends, and on top odp.backends.connect().  Imports
inside functions count (they are dependencies all the same); imports under
``if TYPE_CHECKING:`` do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import odp

ROOT = Path(odp.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(path: Path, *, lazy: bool) -> set[str]:
    """The odp modules ``path`` imports (``lazy``: also inside functions)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and not lazy:
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in MODULES}


def _graph(*, lazy: bool) -> dict[str, set[str]]:
    return {name: _imports(path, lazy=lazy) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_known_edges() -> None:
    # The checks below are only as good as the graph: a few edges that exist.
    graph = _graph(lazy=True)
    assert "odp.records" in graph["odp.datapath"]
    assert "odp.sim.datapath" in graph["odp.backends"]
    assert "odp.kernel.backend" in graph["odp.backends"]
    assert "odp.records" in graph["odp.netlink.messages"]


def test_module_level_imports_have_no_cycle() -> None:
    assert _cycles(_graph(lazy=False)) == []


def test_only_the_models_and_their_text_form_a_cycle() -> None:
    # keys and actions print themselves through odp.text, which builds them:
    # that lazy circle is the one allowed.
    assert all(c <= {"odp.keys", "odp.actions", "odp.text"} for c in _cycles(_graph(lazy=True)))


def test_records_sit_below_the_api() -> None:
    allowed = {"odp.constants", "odp.errors", "odp.fields", "odp.keys", "odp.actions", "odp.text"}
    assert _imports(MODULES["odp.records"], lazy=True) <= allowed


#: Modules below the API: they build or read records, never the handles or a backend.
BELOW_THE_API = ("odp.records", "odp.kernels", "odp.netlink", "odp.sim.meter", "odp.sim.vport", "odp.sim.network")
API_AND_ABOVE = {"odp.datapath", "odp.backends", "odp.sim.datapath", "odp.kernel.backend", "odp.kernel.upcall"}


def test_codec_and_simulator_parts_do_not_import_the_api() -> None:
    for name, path in MODULES.items():
        if name.startswith(BELOW_THE_API):
            assert not _imports(path, lazy=True) & API_AND_ABOVE, name


def test_only_the_top_opens_backends_by_name() -> None:
    # connect() imports both backends: only the package root and the
    # programs on top (CLI, demo, test support) may use it.
    top = ("odp", "odp.backends", "odp.cli", "odp.demo", "odp.testing")
    users = {name for name, path in MODULES.items() if "odp.backends" in _imports(path, lazy=True)}
    assert users and all(u in top or u.startswith(("odp.testing.", "odp.cli.")) for u in users), users
    assert "odp.backends" not in _imports(MODULES["odp.datapath"], lazy=True)


def _in(package: str, module: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_backends_do_not_import_each_other() -> None:
    for name, path in MODULES.items():
        deps = _imports(path, lazy=True)
        if _in("odp.sim", name):
            assert not any(_in("odp.kernel", d) for d in deps), name
        if _in("odp.kernel", name):
            assert not any(_in("odp.sim", d) for d in deps), name


def test_public_names_are_declared_alike_for_type_checkers_and_at_run_time() -> None:
    # odp/__init__.py imports its public names lazily (_HOMES) and again under
    # TYPE_CHECKING for type checkers: the two, and __all__, must agree, and
    # every name must resolve where _HOMES says.
    tree = ast.parse((ROOT / "__init__.py").read_text())
    static: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom) and imp.module is not None
                static.update((a.name, imp.module) for a in imp.names)
    assert static == odp._HOMES
    assert sorted(odp.__all__) == sorted(static)
    for name in odp.__all__:
        assert getattr(odp, name) is not None
