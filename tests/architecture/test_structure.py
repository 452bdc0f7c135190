"""The structure the code keeps: no import cycle, no `global`, no mutable state at module level.

A process's shared objects live in one application object (atedash/core/app.py); storage/ is a plain
library whose callers pass in what it shares. These tests read the source (ast), so they hold for
every module, imported by a test or not.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("atedash", "storage")
GENERATED = {"storage.ateapi_pb2"}


def _modules():
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if name not in GENERATED:
                out[name] = path
    return out


MODULES = _modules()


@functools.cache
def _tree(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once for all the tests here (none of them changes it)."""
    return ast.parse(path.read_text(), filename=str(path))


def _imports(name: str, path: Path) -> set[str]:
    """Every project module `name` imports, at any depth (function-level imports count too)."""
    tree = _tree(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # The deepest project module the import names
            # (`from atedash.background import counts` -> atedash.background.counts).
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _graph():
    graph = {}
    for name, path in MODULES.items():
        # A package's __init__ re-exporting its modules is not a cycle through them.
        graph[name] = {t for t in _imports(name, path) if not name.startswith(t + ".") and t not in PACKAGES}
    return graph


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_atedash_or_storage():
    assert len(MODULES) > 30
    assert _cycles(_graph()) == []


def _imported_roots(path: Path) -> set[str]:
    """The top-level packages a module imports, at any depth (function-level imports count too)."""
    roots = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            roots.add((node.module or "").split(".")[0])
    return roots


def _importers(package: str, forbidden: set[str]) -> dict[str, set[str]]:
    """The modules of ``package`` that import one of ``forbidden``, with what they import of it."""
    found = {name: _imported_roots(path) & forbidden for name, path in MODULES.items()}
    return {name: roots for name, roots in found.items() if roots and name.split(".")[0] == package}


def test_the_import_finder_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from redis.cluster import RedisCluster\n    import django.http\n")
    assert _imported_roots(module) == {"os", "redis", "django"}


def test_storage_never_imports_django_or_atedash():
    assert _importers("storage", {"django", "atedash"}) == {}


def test_atedash_never_imports_redis():
    """storage/ is the only door to the store: atedash asks it (storage.is_store_unavailable,
    storage.StoreUnreachable, storage.connect, storage.answers_ping...) and never uses redis-py itself."""
    assert _importers("atedash", {"redis"}) == {}


def test_atedash_never_reaches_through_to_the_redis_client():
    """Nor through Persistence: no `persistence.client` / `p.client.mget(...)` in atedash/ (storage
    offers read_records, close, ...)."""
    offenders = [
        f"{name}:{node.lineno}"
        for name, path in MODULES.items()
        if name.startswith("atedash")
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Attribute) and node.attr == "client"
    ]
    assert offenders == []


def test_no_global_statement():
    offenders = [
        f"{name}:{node.lineno}"
        for name, path in MODULES.items()
        for node in ast.walk(_tree(path))
        if isinstance(node, (ast.Global, ast.Nonlocal))
    ]
    assert offenders == []


# Module-level objects that are not process state: loggers, template libraries, URL tables, the WSGI
# entry point, a context variable (per request by construction), and gunicorn's config module.
ALLOWED_CALLS = {
    "logging.getLogger",
    "template.Library",
    "get_wsgi_application",
    "contextvars.ContextVar",
    "path",
    "include",
    "frozenset",
    "tuple",
    "re.compile",
    "Path",
    "TypeVar",
    "range",
    "namedtuple",
    "object",
}
# Constructors of state: never at module level, whatever the name says.
STATEFUL_CALLS = {
    "threading.Lock",
    "threading.RLock",
    "Lock",
    "RLock",
    "ThreadPoolExecutor",
    "dict",
    "list",
    "set",
    "defaultdict",
    "OrderedDict",
    "Counter",
    "deque",
    "CollectorRegistry",
    "Histogram",
    "Gauge",
    "weakref.WeakValueDictionary",
    "WeakValueDictionary",
}
SKIPPED_MODULES = {"atedash.settings", "atedash.gunicorn.conf", "atedash.gunicorn"}


def _call_name(node: ast.Call) -> str:
    func = node.func
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _mutable_module_state(tree: ast.Module) -> list[str]:
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        if names in (["urlpatterns"], ["__all__"]):
            continue
        constant = all(n.isupper() or n.lstrip("_").isupper() for n in names)
        if isinstance(value, ast.Call) and _call_name(value) not in ALLOWED_CALLS:
            # An upper-case name bound to a call is a constant (a frozen dataclass, a compiled
            # decoder...) unless the call makes state.
            if not constant or _call_name(value) in STATEFUL_CALLS:
                found.append(f"{','.join(names)} = {_call_name(value)}(...) at line {node.lineno}")
        elif isinstance(value, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)) and not constant:
            found.append(f"{','.join(names)}: a mutable {type(value).__name__.lower()} at line {node.lineno}")
    return found


def test_the_state_finder_finds_state():
    tree = ast.parse(
        "cache = Cache()\n_LOCK = threading.Lock()\n_seen = {}\nLIMITS = {'a': 1}\n"
        "log = logging.getLogger(__name__)\nKIND = Kind('a')\n"
    )
    assert [f.split(" ")[0] for f in _mutable_module_state(tree)] == ["cache", "_LOCK", "_seen:"]


@pytest.mark.parametrize("name", sorted(set(MODULES) - SKIPPED_MODULES))
def test_no_mutable_state_at_module_level(name):
    assert _mutable_module_state(_tree(MODULES[name])) == []


# The views and templates written once for every record kind: a kind's differences live in its
# RecordPages (atedash/records/kinds.py), so a third kind is a definition, not a branch here.
KIND_AGNOSTIC = (
    "atedash/records/matches.py",
    "atedash/records/bulk.py",
    "templates/matches/_table.html",
    "templates/matches/_filter_inputs.html",
    "templates/matches/_show_all.html",
    "templates/matches/page.html",
    "templates/bulk/confirm.html",
)


@pytest.mark.parametrize("path", KIND_AGNOSTIC)
def test_pages_for_every_kind_never_branch_on_a_kind_name(path):
    text = (REPO / path).read_text()
    for name in ("actors", "workers", "actor_", "worker_"):
        assert f'"{name}' not in text and f"'{name}" not in text, f"{path} names the kind {name!r}"
    assert "[:-1]" not in text and '":-1"' not in text, f"{path} makes a name from a kind's plural"


# Where there is no request to carry the application object: the middleware that sets
# request.app, the module that defines current_app(), and the management commands.
CURRENT_APP_CALLERS = {
    "atedash.core.app",
    "atedash.core.middleware",
    "atedash.management.commands.ate",
    "atedash.management.commands.operators",
    "atedash.management.commands.seed_demo",
}


def test_views_and_helpers_get_the_application_object_passed_in():
    callers = set()
    for name, path in MODULES.items():
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "current_app":
                callers.add(name)
    assert callers <= CURRENT_APP_CALLERS, sorted(callers - CURRENT_APP_CALLERS)
    assert "atedash.core.middleware" in callers  # the one place a request gets it
