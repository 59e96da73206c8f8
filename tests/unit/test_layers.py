"""Dependencies point one way: the layers of ``ledger``, read from the source.

Lowest first: domain, store, application, engine, projections, reads,
services, api (http and cli). ``ledger.settings`` and the composition root
``ledger.bootstrap`` sit outside: the root may import every layer but the
api, and only the api may import it (or the settings). ``ALLOWED_IMPORTS``
is the one table of what each layer may import; it records what the code
does today, so a new edge is a decision made here, not an accident.

Every module's imports are read with ``ast``: those at the top, those under
``if TYPE_CHECKING:``, those inside functions and ``import_module("...")``
calls. The domain, besides, imports only the standard library and
``eventsourcing.domain`` (house style).
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.util import resolve_name
from pathlib import Path

import pytest

import ledger

# Lowest first: a layer imports only layers before it (a later one is a
# back-edge), and only those that the table names.
LAYER_ORDER = (
    "ledger.domain",
    "ledger.store",
    "ledger.application",
    "ledger.engine",
    "ledger.projections",
    "ledger.reads",
    "ledger.services",
    "ledger.api",
)

# What each layer (the package ``ledger`` itself, a layer package, or a
# module outside the layers) may import besides itself. An entry names a
# layer or a single module of one.
ALLOWED_IMPORTS: dict[str, frozenset[str]] = {
    "ledger": frozenset(),
    "ledger.domain": frozenset(),
    # The store's errors are told in the reader's language (docs/i18n.md).
    "ledger.store": frozenset({"ledger.domain.messages"}),
    "ledger.application": frozenset({"ledger.domain", "ledger.store"}),
    "ledger.engine": frozenset({"ledger.store"}),
    "ledger.projections": frozenset({"ledger.domain", "ledger.store", "ledger.engine"}),
    "ledger.reads": frozenset(
        {"ledger.domain", "ledger.store", "ledger.engine", "ledger.projections"}
    ),
    "ledger.services": frozenset(
        {
            "ledger.domain",
            "ledger.store",
            "ledger.application",
            "ledger.engine",
            "ledger.projections",
            "ledger.reads",
        }
    ),
    "ledger.api": frozenset({*LAYER_ORDER[:-1], "ledger.settings", "ledger.bootstrap"}),
    "ledger.settings": frozenset(),
    "ledger.bootstrap": frozenset({*LAYER_ORDER[:-1], "ledger.settings"}),
}

DOMAIN_MAY_IMPORT = ("ledger.domain", "eventsourcing.domain")
DOMAIN_ALLOWANCE = (
    "the domain imports only the standard library, itself and eventsourcing.domain"
)


@dataclass(frozen=True)
class Import:
    """One import statement's name, as the dotted name it brings in."""

    module: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.module} imports {self.target} (line {self.line})"


def is_within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def layer_of(name: str) -> str | None:
    """The entry of ``ALLOWED_IMPORTS`` that a module or dotted name is in."""
    if name == "ledger":
        return name
    layer = ".".join(name.split(".")[:2])
    return layer if layer in ALLOWED_IMPORTS else None


def modules_under(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` at ``root``, by name, following the links
    that put ``projections/`` and ``api/`` in the package."""
    modules: dict[str, Path] = {}
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        parts = [package, *Path(folder).relative_to(root).parts]
        for file in files:
            if file.endswith(".py"):
                name = parts if file == "__init__.py" else [*parts, file[:-3]]
                modules[".".join(name)] = Path(folder, file)
    return modules


def imports_in(module: str, source: str, *, is_package: bool = False) -> list[Import]:
    """Every name ``source`` imports, wherever the import statement is."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_name("." * node.level + (node.module or ""), package)
            for alias in node.names:
                target = base if alias.name == "*" else f"{base}.{alias.name}"
                found.append(Import(module, target, node.lineno))
        elif isinstance(node, ast.Call) and (name := imported_at_run_time(node)):
            found.append(Import(module, name, node.lineno))
    return sorted(found, key=lambda each: each.line)


def imported_at_run_time(call: ast.Call) -> str | None:
    """The module named by ``import_module("x")`` (also as an attribute, as in
    ``importlib.import_module``) or ``__import__("x")``, if ``call`` is one."""
    if not call.args:
        return None
    function = call.func
    called = function.attr if isinstance(function, ast.Attribute) else None
    if isinstance(function, ast.Name):
        called = function.id
    argument = call.args[0]
    if called not in {"import_module", "__import__"}:
        return None
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return argument.value
    return None


def layer_violations(
    imports: Iterable[Import],
    allowed: Mapping[str, frozenset[str]] = ALLOWED_IMPORTS,
) -> Iterator[str]:
    """Each import of the ledger that the table does not allow, said so."""
    for found in imports:
        if not is_within(found.target, "ledger"):
            continue
        source = layer_of(found.module)
        if source is None:
            yield f"{found}: {found.module} is in no layer of ALLOWED_IMPORTS"
            continue
        target = layer_of(found.target)
        if target == source or any(is_within(found.target, a) for a in allowed[source]):
            continue
        backwards = (
            source in LAYER_ORDER
            and target in LAYER_ORDER
            and LAYER_ORDER.index(target) > LAYER_ORDER.index(source)
        )
        kind = "a back-edge" if backwards else "not in ALLOWED_IMPORTS"
        yield f"{found}: {kind}; {source} may import only {sorted(allowed[source])}"


def domain_violations(imports: Iterable[Import]) -> Iterator[str]:
    """Each import of the domain outside the standard library and
    ``eventsourcing.domain``."""
    for found in imports:
        if layer_of(found.module) != "ledger.domain":
            continue
        if found.target.split(".")[0] in sys.stdlib_module_names or any(
            is_within(found.target, allowed) for allowed in DOMAIN_MAY_IMPORT
        ):
            continue
        yield f"{found}: {DOMAIN_ALLOWANCE}"


@pytest.fixture(scope="module")
def ledger_modules() -> dict[str, Path]:
    return modules_under(Path(ledger.__file__).parent, "ledger")


@pytest.fixture(scope="module")
def ledger_imports(ledger_modules: dict[str, Path]) -> list[Import]:
    return [
        found
        for module, path in sorted(ledger_modules.items())
        for found in imports_in(
            module, path.read_text("utf-8"), is_package=path.name == "__init__.py"
        )
    ]


# --- the ledger as it is ------------------------------------------------------


def test_every_layer_is_read_including_the_linked_api_and_projections(
    ledger_modules: dict[str, Path],
) -> None:
    layers = {layer_of(module) for module in ledger_modules}
    assert layers >= {*LAYER_ORDER, "ledger.settings"}
    assert {"ledger.api.http.app", "ledger.projections.registry"} <= set(ledger_modules)


def test_every_module_imports_only_what_its_layer_may(
    ledger_imports: list[Import],
) -> None:
    violations = list(layer_violations(ledger_imports))
    assert violations == [], "\n".join(violations)


def test_the_domain_imports_only_the_standard_library_and_eventsourcing_domain(
    ledger_imports: list[Import],
) -> None:
    violations = list(domain_violations(ledger_imports))
    assert violations == [], "\n".join(violations)


# --- the checker itself: each way round a back-edge is caught ----------------


@pytest.mark.parametrize(
    ("module", "source", "violation"),
    [
        pytest.param(
            "ledger.store.event_store",
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from ledger.application.ledger import Ledger\n",
            "ledger.store.event_store imports ledger.application.ledger.Ledger "
            "(line 3): a back-edge; ledger.store may import only "
            "['ledger.domain.messages']",
            id="under TYPE_CHECKING",
        ),
        pytest.param(
            "ledger.domain.venues",
            "def later():\n    import ledger.engine.rebuild\n",
            "ledger.domain.venues imports ledger.engine.rebuild (line 2): a back-edge; "
            "ledger.domain may import only []",
            id="inside a function",
        ),
        pytest.param(
            "ledger.engine.rebuild",
            "from ..projections import registry\n",
            "ledger.engine.rebuild imports ledger.projections.registry (line 1): "
            "a back-edge; ledger.engine may import only ['ledger.store']",
            id="relative",
        ),
        pytest.param(
            "ledger.reads.queries",
            "import importlib\nimportlib.import_module('ledger.api.http.app')\n",
            "ledger.reads.queries imports ledger.api.http.app (line 2): a back-edge; "
            "ledger.reads may import only ['ledger.domain', 'ledger.engine', "
            "'ledger.projections', 'ledger.store']",
            id="by name at run time",
        ),
        pytest.param(
            "ledger.application.importer",
            "from ledger.engine.rebuild import ProjectionEngine\n",
            "ledger.application.importer imports "
            "ledger.engine.rebuild.ProjectionEngine (line 1): a back-edge; "
            "ledger.application may import only "
            "['ledger.domain', 'ledger.store']",
            id="a layer above",
        ),
        pytest.param(
            "ledger.store.chain",
            "from ledger.domain.common import LOCAL_TIME\n",
            "ledger.store.chain imports ledger.domain.common.LOCAL_TIME (line 1): "
            "not in ALLOWED_IMPORTS; ledger.store may import only "
            "['ledger.domain.messages']",
            id="forwards but not in the table",
        ),
        pytest.param(
            "ledger.services.honours",
            "from ledger import bootstrap\n",
            "ledger.services.honours imports ledger.bootstrap (line 1): "
            "not in ALLOWED_IMPORTS; ledger.services may import only "
            "['ledger.application', 'ledger.domain', 'ledger.engine', "
            "'ledger.projections', 'ledger.reads', 'ledger.store']",
            id="the composition root from below the api",
        ),
        pytest.param(
            "ledger.plugins.extra",
            "from ledger.domain import errors\n",
            "ledger.plugins.extra imports ledger.domain.errors (line 1): "
            "ledger.plugins.extra is in no layer of ALLOWED_IMPORTS",
            id="a module in no layer",
        ),
    ],
)
def test_the_checker_names_the_module_and_import_of_each_disallowed_edge(
    module: str, source: str, violation: str
) -> None:
    assert list(layer_violations(imports_in(module, source))) == [violation]


def test_the_checker_lets_through_what_the_table_allows() -> None:
    allowed = [
        ("ledger.api.http.deps", "from ledger.bootstrap import build_ledger\n"),
        ("ledger.api.cli.app", "from ledger.settings import get_settings\n"),
        ("ledger.application.importer", "from ledger.store import memory\n"),
        ("ledger.engine", "from . import tracking\n"),
        ("ledger.reads.queries", "import sqlalchemy as sa\nfrom ledger import reads\n"),
    ]
    assert [
        violation
        for module, source in allowed
        for violation in layer_violations(
            imports_in(module, source, is_package=module == "ledger.engine")
        )
    ] == []


def test_the_domain_check_names_each_import_outside_its_allowance() -> None:
    source = (
        "import datetime\n"
        "from eventsourcing.domain import Aggregate, event\n"
        "from ledger.domain.errors import DomainError\n"
        "import sqlalchemy\n"
        "from eventsourcing.persistence import Mapper\n"
    )
    assert list(domain_violations(imports_in("ledger.domain.orders", source))) == [
        f"ledger.domain.orders imports sqlalchemy (line 4): {DOMAIN_ALLOWANCE}",
        "ledger.domain.orders imports eventsourcing.persistence.Mapper (line 5): "
        + DOMAIN_ALLOWANCE,
    ]
