"""The deployment files as the tests read them: docker-compose.yml with compose's variable
substitution, .env.example as compose reads it, and the environment variables the code reads."""

import re
from pathlib import Path

import yaml
from django.conf import settings

REPO = Path(settings.BASE_DIR)
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
# Read by docker-compose.yml only, never by the application.
COMPOSE_ONLY_VARIABLES = frozenset({"POSTGRES_PASSWORD", "REDIS_MAXMEMORY", "API_PORT"})
RUNNER_SERVICES = ("worker", "orchestrator", "reaper")
ENGINE_SERVICES = ("api", *RUNNER_SERVICES)
# Where the code reads its environment: settings, gunicorn's settings, and the apps.
CODE_READING_ENVIRONMENT = [
    REPO / "orchestrator_site" / "settings.py",
    REPO / "gunicorn.conf.py",
    *sorted((REPO / "workflows").rglob("*.py")),
    *sorted((REPO / "dlq").rglob("*.py")),
    *sorted((REPO / "resilience").rglob("*.py")),
]
ENVIRONMENT_READ = re.compile(
    r"(?:\benv_(?:bool|int|float|list|rate)|\b_env_(?:int|float)|os\.environ\.get|os\.getenv)\(\s*"
    r"[\"']([A-Z][A-Z0-9_]*)[\"']|os\.environ\[[\"']([A-Z][A-Z0-9_]*)[\"']\]"
)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, and $$ for a dollar.
VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?])(?P<argument>[^}]*))?\}"
)


class MissingVariable(Exception):
    """A ${NAME:?message} whose variable is unset or empty: compose refuses to start."""


def compose_text() -> str:
    return COMPOSE_FILE.read_text()


def load_compose(environment: dict[str, str] | None = None) -> dict:
    """docker-compose.yml parsed (merge keys resolved) and its variables substituted from
    `environment` (by default .env.example with the values compose requires filled in)."""
    if environment is None:
        environment = {**env_example(), "POSTGRES_PASSWORD": "example", "SECRET_KEY": "example"}
    return _substitute(yaml.safe_load(compose_text()), environment)


def _substitute(node, environment: dict[str, str]):
    if isinstance(node, dict):
        return {key: _substitute(value, environment) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(item, environment) for item in node]
    if isinstance(node, str):
        return interpolate(node, environment)
    return node


def interpolate(text: str, environment: dict[str, str]) -> str:
    """Substitute variables in `text` as docker compose does."""

    def value(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group("name", "operator", "argument")
        present = environment.get(name)
        if operator is None:
            return present or ""
        missing = not present if operator.startswith(":") else present is None
        if not missing:
            return present
        if operator.endswith("-"):
            return argument
        raise MissingVariable(f"{name}: {argument}")

    return VARIABLE.sub(value, text)


def compose_defaults() -> dict[str, str]:
    """The default compose substitutes for each variable used as ${NAME:-default}."""
    return {
        match.group("name"): match.group("argument")
        for match in VARIABLE.finditer(compose_text())
        if match.group("operator") == ":-"
    }


def env_example_lines() -> list[tuple[int, str]]:
    """The assignments of .env.example, with their line numbers (comments and blanks left out)."""
    return [
        (number, line)
        for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def env_example() -> dict[str, str]:
    """.env.example as a mapping, read as compose reads an env file."""
    return dict(line.split("=", 1) for _, line in env_example_lines())


def variables_read_by_code() -> set[str]:
    """Every environment variable the code reads by name."""
    names = set()
    for path in CODE_READING_ENVIRONMENT:
        for match in ENVIRONMENT_READ.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names
