"""The test database, as the environment of runner processes the end-to-end and fault tests start."""

from urllib.parse import quote

from django.conf import settings
from django.db import connection


def runner_database_url() -> str:
    """pytest-django's PostgreSQL test database (test_<name>), as a DATABASE_URL for the children."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "postgres")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'])}"


def runner_database_environment() -> dict[str, str]:
    """The children's database settings: DATABASE_URL on PostgreSQL; on SQLite (the embedded pass)
    no DATABASE_URL and this VAR_DIR, so they open the test database (tests/conftest.py makes it
    VAR_DIR's embedded database file) with the embedded settings, as under `make run`."""
    if connection.vendor == "sqlite":
        return {"DATABASE_URL": "", "VAR_DIR": str(settings.VAR_DIR)}
    return {"DATABASE_URL": runner_database_url()}
