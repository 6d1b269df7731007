"""The architecture, enforced: layers only point down, and no module imports itself in a circle.

Every import statement of every module of the `epochbot` package (the folders ``core/``, ``app/``,
``widgets/``) is read with `ast` (module level and inside functions alike: a lazy import is still
a dependency), resolved to the epochbot module it names, and checked against the layer table
below. The table is one row per package, so the folders are the map of the house; a module
outside every row is reported by name.

    model        the vocabulary: exact numbers, events, records, trading events, the capture
                 format, the mode names, the one clock: imports nothing of epochbot
    book         the order book and its C fast path
    engine       the sans-I/O kernel: sessions, book repair, liveness, telemetry, confidence,
                 the trader known only through `epochbot.engine.trader_port`
    views        the read model: immutable snapshots of the engine and the reports built from them
    trading      strategy API and examples, orders, risk, portfolio: on the engine's published view
    persistence  storage, writer, journal: on plain records only
    venues       Binance wire formats and clients: speak `epochbot.model.trade_events`, never import
                 epochbot.trading
    runtime      the live I/O shell: the loop, transport, gateway, REST, storage, start-up, shutdown
    offline      the same engine over recorded input: replay, backtest, timeline
    sim          the simulator is a separate product (an exchange): it uses nothing of the
                 strategy core but the exact-decimal helpers and the capture format
    widgets      Textual widgets: read views, nothing else of the core
    app          the command line, configuration, daemon, dashboard: on top of everything
    api          the package root: the public plug-in API, re-exported lazily
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("epochbot",)
FOLDERS = {"core": "epochbot", "app": "epochbot.app", "widgets": "epochbot.widgets"}

# Package prefix -> layer, in the order they stack (lowest first).
LAYERS = {
    "epochbot.model": "model",
    "epochbot.book": "book",
    "epochbot.engine": "engine",
    "epochbot.views": "views",
    "epochbot.trading": "trading",
    "epochbot.persistence": "persistence",
    "epochbot.venues": "venues",
    "epochbot.runtime": "runtime",
    "epochbot.offline": "offline",
    "epochbot.sim": "sim",
    "epochbot.widgets": "widgets",
    "epochbot.app": "app",
}

# What each layer may import (besides itself).
ALLOWED = {
    "model": set(),
    "book": {"model"},
    "engine": {"model", "book"},
    "views": {"model", "book", "engine"},
    "trading": {"model", "engine", "views"},
    "persistence": {"model"},
    # Venues speak the trading vocabulary (`epochbot.model.trade_events`), not the trading package: a
    # decoder must not depend on how the trader decides.
    "venues": {"model", "book", "engine"},
    "runtime": {"model", "book", "engine", "views", "trading", "persistence", "venues"},
    "offline": {"model", "book", "engine", "views", "trading", "persistence", "venues", "runtime"},
    "sim": set(),
    "widgets": {"model", "views"},
    "app": {
        "model",
        "book",
        "engine",
        "views",
        "trading",
        "persistence",
        "venues",
        "runtime",
        "offline",
        "sim",
        "widgets",
        "api",
    },
    "api": {"model", "engine", "trading"},
}
# The simulator's only allowed reach into the core: exact decimals and the capture file format.
SIM_MAY_USE = {"epochbot.model.numeric", "epochbot.model.capture"}
# No I/O below the runtime: the kernel and the trading half take events and a clock.
PURE_LAYERS = {"model", "book", "engine", "views", "trading"}
IO_MODULES = {
    "asyncio",
    "aiohttp",
    "websockets",
    "socket",
    "sqlite3",
    "threading",
    "subprocess",
    "selectors",
    "ssl",
    "urllib",
    "http",
    "requests",
    "textual",
    "rich",
}


def layer_of(module: str) -> str | None:
    if module == "epochbot":
        return "api"
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return None


@lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = (package, *path.relative_to(ROOT / folder).with_suffix("").parts)
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    found["epochbot.book._fastbook"] = ROOT / "core" / "book" / "_fastbook.c"  # a C extension: imports nothing of ours
    return found


def _import_nodes(tree: ast.AST, type_only: bool):
    """Every import node, including those inside functions; with ``type_only=False`` the ones
    under ``if TYPE_CHECKING:`` are left out (they are not imported at run time)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        for child in ast.iter_child_nodes(node):
            if not type_only and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)


@lru_cache(maxsize=2)
def imports(type_only: bool = True) -> dict[str, set[str]]:
    """module -> the epochbot modules it imports (resolved: ``from epochbot.x import Y`` is epochbot.x,
    or epochbot.x.Y when Y is itself a module), and the top-level names of everything else.
    ``type_only``: count imports made for type checkers only (the layer and cycle tests do: a
    cycle through a type-only import is still two modules that cannot be read apart)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        deps: set[str] = set()
        if path.suffix == ".py":
            is_package = path.name == "__init__.py"
            for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path)), type_only):
                if isinstance(node, ast.Import):
                    deps.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = name.split(".") if is_package else name.split(".")[:-1]
                        base = base[: len(base) - (node.level - 1)]
                        target = ".".join(base + ([node.module] if node.module else []))
                    else:
                        target = node.module
                    deps.add(target)
                    deps.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known)
        graph[name] = {d for d in deps if d in known} | {
            d.split(".")[0] for d in deps if d.split(".")[0] not in PACKAGES
        }
    return graph


def ours(deps: set[str]) -> set[str]:
    return {d for d in deps if d.split(".")[0] in PACKAGES}


def test_every_module_has_a_place_in_the_layers():
    unplaced = sorted(m for m in modules() if layer_of(m) is None)

    assert not unplaced, f"place these modules in a layer of tests/core/test_layers.py: {unplaced}"


def test_layers_only_point_down():
    violations = []
    for module, deps in imports().items():
        layer = layer_of(module)
        if layer is None:
            continue  # reported by test_every_module_has_a_place_in_the_layers
        for dep in sorted(ours(deps)):
            target = layer_of(dep)
            if target == layer or target in ALLOWED[layer]:
                continue
            if layer == "sim" and dep in SIM_MAY_USE:
                continue
            violations.append(f"{module} ({layer}) imports {dep} ({target})")

    assert not violations, "\n".join(violations)


def test_the_engine_knows_the_trader_only_through_its_protocol():
    engine_deps = set().union(*(ours(imports()[m]) for m in modules() if layer_of(m) == "engine"))

    assert not {d for d in engine_deps if d.startswith("epochbot.trading")}, engine_deps
    assert "epochbot.engine.trader_port" in ours(imports()["epochbot.engine.engine"])


def test_persistence_depends_on_plain_records_only():
    for module in (m for m in modules() if layer_of(m) == "persistence"):
        reach = {d for d in ours(imports()[module]) if layer_of(d) != "persistence"}
        assert reach <= {"epochbot.model.records", "epochbot.model.trade_events", "epochbot.model.capture"}, (
            module,
            reach,
        )


def test_the_simulator_uses_nothing_of_the_strategy_core():
    for module in (m for m in modules() if layer_of(m) == "sim"):
        reach = {d for d in ours(imports()[module]) if layer_of(d) != "sim"}
        assert reach <= SIM_MAY_USE, (module, reach)


def test_the_kernel_and_the_trading_half_import_no_io():
    offenders = {
        m: sorted(imports()[m] & IO_MODULES)
        for m in modules()
        if layer_of(m) in PURE_LAYERS and imports()[m] & IO_MODULES
    }

    assert not offenders, offenders


def test_no_module_of_the_core_reaches_the_application_or_textual():
    for module in (m for m in modules() if layer_of(m) not in ("app", "widgets")):
        deps = imports()[module]
        assert not {d for d in deps if d.split(".")[0] == "textual" or layer_of(d) in ("app", "widgets")}, module


def test_there_are_no_import_cycles():
    graph = {m: ours(d) - {m} for m, d in imports(type_only=True).items()}
    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))

    assert not cycles, f"import cycles: {cycles}"


def test_the_venues_use_the_trading_vocabulary_not_the_trading_package():
    reach = {
        (m, d)
        for m in modules()
        if layer_of(m) == "venues"
        for d in ours(imports()[m])
        if d.startswith("epochbot.trading")
    }

    assert not reach, reach


def test_the_client_id_rule_is_the_same_for_the_order_manager_and_the_venue_decoders():
    from epochbot.model.trade_events import CLIENT_ID_PATTERN as VOCABULARY
    from epochbot.trading.orders import CLIENT_ID_PATTERN as ORDERS

    assert ORDERS is VOCABULARY  # one rule, defined once


# Reading the wall clock: any use of these (called or passed as a default clock).
WALL_CLOCK = {("time", "time"), ("time", "time_ns")}
# These read the wall clock only when called without a time to convert.
WALL_CLOCK_WITHOUT_ARGUMENT = {("time", "localtime"), ("time", "gmtime"), ("time", "ctime"), ("time", "asctime")}
# datetime.now() / .utcnow() / .today(), and date.today(), on whatever names the class.
WALL_CLOCK_METHODS = {"now", "utcnow", "today"}
# The one place in the core (the simulator aside, an exchange with a clock of its own) where the
# wall clock is read: everything else is handed a clock (the runtime's, replay's, a test's).
WALL_CLOCK_ALLOWED = {"epochbot.model.clock"}


def wall_clock_reads(tree: ast.AST) -> list[str]:
    """Where a module reads the wall clock directly, as ``line: source``."""
    names: dict[str, tuple[str, str]] = {}  # local name -> (module, attribute) for from-imports
    modules_as: dict[str, str] = {}  # local name -> module, for `import time as t`
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules_as[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module in ("time", "datetime"):
            for alias in node.names:
                names[alias.asname or alias.name] = (node.module, alias.name)
    found = []
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = (modules_as.get(node.value.id, node.value.id), node.attr)
        elif isinstance(node, ast.Name) and node.id in names:
            target = names[node.id]
        if target in WALL_CLOCK:
            found.append(node)
        elif isinstance(node, ast.Call):
            func = node.func
            called = None
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                called = (modules_as.get(func.value.id, func.value.id), func.attr)
            elif isinstance(func, ast.Name) and func.id in names:
                called = names[func.id]
            if called in WALL_CLOCK_WITHOUT_ARGUMENT and not node.args:
                found.append(node)
            elif isinstance(func, ast.Attribute) and func.attr in WALL_CLOCK_METHODS:
                owner = ast.unparse(func.value).split(".")[-1]
                if owner in ("datetime", "date") or names.get(owner, ("", ""))[1] in ("datetime", "date"):
                    found.append(node)
    return sorted({f"{n.lineno}: {ast.unparse(n)}" for n in found})


def test_no_module_of_the_core_reads_the_wall_clock_but_the_one_clock():
    offenders = {}
    for module, path in modules().items():
        if layer_of(module) in ("app", "widgets", "sim") or module in WALL_CLOCK_ALLOWED or path.suffix != ".py":
            continue
        reads = wall_clock_reads(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        if reads:
            offenders[module] = reads

    assert not offenders, f"take a clock instead (epochbot.model.clock.wall_ns is the real one): {offenders}"


def test_the_wall_clock_check_sees_every_way_of_reading_it():
    samples = {
        "import time\nx = time.time()": 1,
        "import time\ndef f(clock=time.time_ns): pass": 1,
        "import time as t\nx = t.time_ns()": 1,
        "from time import time_ns\nx = time_ns()": 1,
        "from datetime import datetime\nx = datetime.now()": 1,
        "import datetime\nx = datetime.datetime.utcnow()": 1,
        "from datetime import date\nx = date.today()": 1,
        "import time\nx = time.gmtime()": 1,
        # Not reads: durations, and conversions of a time someone was given.
        "import time\nx = time.monotonic()": 0,
        "import time\nx = time.gmtime(5)": 0,
        "from datetime import datetime\nx = datetime.fromtimestamp(5)": 0,
    }

    got = {source: len(wall_clock_reads(ast.parse(source))) for source in samples}

    assert got == samples


def test_the_order_states_with_no_way_out_are_the_same_in_records_and_in_the_state_machine():
    from epochbot.model.records import TERMINAL_ORDER_STATES
    from epochbot.trading.orders import TERMINAL

    assert TERMINAL == TERMINAL_ORDER_STATES
