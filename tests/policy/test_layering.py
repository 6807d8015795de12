"""fleet.policy imports only the standard library, fleet.core, itself and its three
third-party libraries (pydantic, ruamel.yaml, croniter): it must stay usable without Azure,
databases or Celery, and import-linter's contracts only forbid, they do not allow-list."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import fleet.policy

ALLOWED = {"pydantic", "ruamel", "croniter"}


def test_policy_package_imports() -> None:
    package = Path(fleet.policy.__file__).parent
    offending = []
    for module in sorted(package.glob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                if root in sys.stdlib_module_names or root in ALLOWED:
                    continue
                if name.startswith(("fleet.core", "fleet.policy")) or name == "fleet":
                    continue
                offending.append(f"{module.name}: {name}")
    assert offending == []
