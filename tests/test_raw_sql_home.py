"""Raw SQL lives in one module, `workflows/statements.py`, over the row-table and cursor
machinery of `workflows/bulk_sql.py` (docs/architecture.md, "Code layout"): a cursor, a raw
query or a SQL string executed anywhere else in the apps fails here, naming the file and line."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("workflows", "dlq", "resilience", "orchestrator_site")
HOMES = {ROOT / "workflows" / "statements.py", ROOT / "workflows" / "bulk_sql.py"}
# Calls that mean raw SQL: a cursor, Django's raw-query escape hatches.
RAW_CALLS = {"cursor", "hot_cursor", "raw", "extra", "RawSQL"}


def raw_sql(path: Path):
    """(line, what) of each raw-SQL call in the file: RAW_CALLS by name, and `.execute()` of a
    string (a Redis pipeline's `execute()` takes none)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in RAW_CALLS:
            yield node.lineno, f"{name}()"
        elif name == "execute" and node.args and isinstance(node.args[0], ast.Constant | ast.JoinedStr):
            yield node.lineno, "execute() of a SQL string"


def app_modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts and path not in HOMES:
                yield path


@pytest.mark.parametrize("app", APPS)
def test_raw_sql_only_in_statements(app):
    found = [
        f"{path.relative_to(ROOT)}:{line} {what}"
        for path in app_modules()
        if path.relative_to(ROOT).parts[0] == app
        for line, what in raw_sql(path)
    ]

    assert not found, "raw SQL belongs in workflows/statements.py:\n" + "\n".join(found)


def test_the_check_sees_raw_sql(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "with connection.cursor() as c:\n    c.execute('SELECT 1')\n"
        "Model.objects.raw(q)\npg.execute(f'SET {x}')\npipe.execute()\n"
    )

    assert sorted(raw_sql(module)) == [
        (1, "cursor()"),
        (2, "execute() of a SQL string"),
        (3, "raw()"),
        (4, "execute() of a SQL string"),
    ]
