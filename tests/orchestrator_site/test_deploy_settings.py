"""Production settings: `manage.py check --deploy` reports nothing with the variables the README
gives for production, a deployment without SECRET_KEY refuses to start, and the embedded stack
keeps a random key of its own instead of a built-in one."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "orchestrator.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_COOKIES": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "BEHIND_TLS_PROXY": "1",
}


def manage(*args: str, env: dict[str, str], drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in drop} | env
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def database_url() -> str:
    return os.environ["DATABASE_URL"]


def test_the_deploy_check_is_clean_with_the_production_variables():
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION | {"DATABASE_URL": database_url()}
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_deploy_check_fails_on_the_defaults_meant_for_a_laptop():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={"DEBUG": "1"}, drop=("SECRET_KEY",))

    assert result.returncode != 0
    assert "security.W009" in result.stderr + result.stdout  # the debug key is refused


def test_a_deployment_without_secret_key_refuses_to_start():
    result = manage("check", env={"DEBUG": "0", "DATABASE_URL": database_url()}, drop=("SECRET_KEY",))

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert settings.SECRET_KEY not in result.stderr


def test_the_embedded_stack_keeps_a_private_random_key_of_its_own(tmp_path):
    read_key = ("shell", "--no-imports", "-c", "from django.conf import settings; print(settings.SECRET_KEY)")
    embedded = {"DEBUG": "0", "VAR_DIR": str(tmp_path)}
    drop = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL")

    first = manage(*read_key, env=embedded, drop=drop)
    second = manage(*read_key, env=embedded, drop=drop)
    elsewhere = manage(*read_key, env=embedded | {"VAR_DIR": str(tmp_path / "other")}, drop=drop)

    key_file = tmp_path / "secret_key"
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == second.stdout.strip() == key_file.read_text().strip()
    assert len(first.stdout.strip()) >= 50 and "insecure" not in first.stdout
    assert elsewhere.stdout.strip() != first.stdout.strip()
    assert key_file.stat().st_mode & 0o777 == 0o600
