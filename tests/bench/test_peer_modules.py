"""The modules that run inside the peers' own venvs (var/bench-venv, var/dbos-venv) import only
the standard library, their peer's library and each other: those venvs hold nothing else."""

import ast
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
CELERY = {"celery", "bench.celery_app", "bench.closed_loop"}
DBOS = {"dbos", "bench.dbos_app", "bench.closed_loop"}
# module: what it may import besides the standard library
IN_PEER_VENVS = {
    "celery_app": CELERY,
    "celery_client": CELERY,
    "dbos_app": DBOS,
    "dbos_client": DBOS,
    "closed_loop": set(),
}


def imports(path: Path):
    """(line, module) of every absolute import in the file."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def outside(path: Path, allowed: set[str]) -> list[str]:
    """The imports of `path` that are neither standard library nor in `allowed`."""
    return [
        f"{path.name}:{line} imports {name}"
        for line, name in imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] not in allowed
        and name not in allowed
    ]


@pytest.mark.parametrize("module", sorted(IN_PEER_VENVS))
def test_peer_venv_modules_import_only_what_their_venv_has(module):
    wrong = outside(BENCH / f"{module}.py", IN_PEER_VENVS[module])

    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_project_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import json\nfrom dbos import DBOS\nfrom bench.engine_stack import REPO\nimport httpx\n"
    )

    assert outside(module, DBOS) == ["m.py:3 imports bench.engine_stack", "m.py:4 imports httpx"]
