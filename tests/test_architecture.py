"""The package's shape holds: imports run one way, and no module outgrows the size habit
(docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCE = ROOT / "app"
PACKAGE = "switchboard"
# Each part of the package and the parts it may import, besides itself. The core modules at
# the top of the package import only each other; faces import what lies below them.
CORE = {
    "config",
    "config_schema",
    "environment",
    "catalog",
    "database",
    "tables",
    "errors",
    "times",
    "logs",
}
ALLOWED: dict[str, set[str]] = {
    "ledger": CORE,
    "access": CORE | {"ledger"},
    "capture": CORE | {"ledger", "access"},
    "reports": CORE | {"ledger"},
    "relay": CORE | {"ledger", "access", "capture"},
    "metrics": CORE | {"ledger"},
    "services": CORE | {"ledger", "access", "relay", "metrics"},
    "gateway": CORE | {"ledger", "access", "capture", "relay", "services", "metrics"},
    "admin": CORE | {"ledger", "access", "reports", "gateway", "services"},
    "cli": CORE | {"ledger", "access", "reports", "services", "factory"},
    "factory": CORE
    | {"ledger", "access", "relay", "services", "gateway", "admin", "metrics", "openapi"},
    "openapi": CORE | {"capture", "gateway", "admin"},
    "__main__": {"cli"},
    "gunicorn_conf": {"ledger", "environment", "config", "logs", "metrics"},
    "gunicorn_worker": set(),
    "__init__": {"factory"},
} | {name: CORE for name in CORE}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join([PACKAGE, *parts])


def part_of(module: str) -> str:
    """The part of the package a module belongs to: its subpackage or core module."""
    return module.split(".")[1] if "." in module else "__init__"


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """The modules of this package that `source` (the text of `module`) imports."""
    found: set[str] = set()
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            if node.module is None or target == PACKAGE:
                # `from . import reports`: the names are modules of the anchor package.
                found |= {f"{target}.{a.name}" for a in node.names}
            else:
                found.add(target)
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports of `module` that break the rule, as `module -> imported`."""
    part = part_of(module)
    allowed = ALLOWED[part] | {part}
    return sorted(
        f"{module} -> {target}"
        for target in imported_modules(source, module, is_package)
        if target != PACKAGE and part_of(target) not in allowed
    )


def sources() -> list[Path]:
    return sorted(SOURCE.rglob("*.py"))


def test_every_part_of_the_package_has_a_rule():
    parts = {part_of(module_name(p)) for p in sources()}
    assert parts - set(ALLOWED) == set()


def test_imports_run_one_way():
    broken = []
    for path in sources():
        module = module_name(path)
        broken += violations(path.read_text(), module, path.name == "__init__.py")
    assert broken == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("switchboard.ledger.ledger", "from ..gateway.calls import authenticate\n"),
        ("switchboard.ledger.ledger", "from switchboard.relay import loop\n"),
        ("switchboard.relay.loop", "from ..admin import api\n"),
        ("switchboard.access.keys", "from ..capture.bodies import BodyCapture\n"),
        ("switchboard.reports.render", "from .. import capture\n"),
        ("switchboard.catalog", "from .ledger.call import Call\n"),
    ],
)
def test_an_import_against_the_rule_is_caught(module, source):
    assert violations(source, module) != []


def test_imports_within_the_rule_pass():
    assert violations("from ..times import utcnow\nfrom .call import Call\n",
                      "switchboard.ledger.ledger") == []  # fmt: skip
    assert violations("from .. import reports\n", "switchboard.admin.api") == []


def test_every_subpackage_says_what_it_owns():
    for init in SOURCE.glob("*/__init__.py"):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init.relative_to(ROOT)} has no docstring"


def test_no_module_outgrows_the_size_habit():
    long = {
        str(p.relative_to(ROOT)): n
        for p in sources()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
