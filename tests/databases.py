"""The test database as a URL, for runner processes the end-to-end and fault tests start."""

from urllib.parse import quote

from django.db import connection


def runner_database_url() -> str:
    """pytest-django's test database (test_<name>), as a DATABASE_URL for the children."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "postgres")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'])}"
