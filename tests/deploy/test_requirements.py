"""The image installs requirements.txt and nothing else: it must name every distribution the
product imports, and none of the test, lint and browser tools of requirements-dev.txt."""

import ast
import re
import sys
from importlib.metadata import packages_distributions

from tests.deploy.deployment_files import REPO

PRODUCT = ["orchestrator_site", "workflows", "resilience", "dlq", "orchestrator_client"]
# The image's entry points beside the packages.
ENTRY_POINTS = [REPO / "manage.py", REPO / "gunicorn.conf.py"]
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_names(path) -> set[str]:
    """Distribution names a requirements file lists itself (not through `-r`), normalised."""
    names = set()
    for line in path.read_text().splitlines():
        match = REQUIREMENT_NAME.match(line.split("#", 1)[0])
        if match:
            names.add(normalised(match.group(1)))
    return names


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def product_files():
    yield from ENTRY_POINTS
    for package in PRODUCT:
        yield from sorted((REPO / package).rglob("*.py"))


def imported_top_level_modules() -> set[str]:
    modules = set()
    for path in product_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def test_the_runtime_requirements_name_every_distribution_the_product_imports():
    runtime = requirement_names(REPO / "requirements.txt")
    installed = packages_distributions()
    third_party = imported_top_level_modules() - set(sys.stdlib_module_names) - set(PRODUCT)
    missing = {
        module: sorted(normalised(d) for d in installed.get(module, ["(not installed)"]))
        for module in sorted(third_party)
        if not runtime & {normalised(d) for d in installed.get(module, [])}
    }
    assert not missing, f"imported by the product but not in requirements.txt: {missing}"


def test_the_runtime_requirements_hold_no_development_tool():
    development = requirement_names(REPO / "requirements-dev.txt")
    runtime = requirement_names(REPO / "requirements.txt")

    assert {"pytest", "pytest-django", "ruff", "bandit", "playwright", "schemathesis"} <= development
    assert not development & runtime
    assert "-r requirements.txt" in (REPO / "requirements-dev.txt").read_text().splitlines()
