"""Imports between the project's packages go one way (docs/architecture.md, "Code layout"):
orchestrator_site → workflows → dlq and resilience. `dlq` imports no other app, `resilience`
neither Django nor another app. An import the other way fails here, naming the file and line."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package: the top-level modules it must never import
FORBIDDEN = {
    "resilience": {"django", "workflows", "dlq", "orchestrator_site"},
    "dlq": {"workflows", "resilience", "orchestrator_site"},
    "workflows": {"orchestrator_site"},
}


def imported_roots(path: Path):
    """(line, top-level module) of every import in the file, function-level ones included."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package):
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
        for line, module in imported_roots(path)
        if module in FORBIDDEN[package]
    ]

    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_wrong_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from workflows.models import Execution\nimport django.db\n")

    assert sorted(imported_roots(module)) == [(2, "workflows"), (3, "django")]
