"""The Dockerfile's structure, checked without building it: wheels built in a stage of their own,
a runtime stage without compilers or pip caches, a non-root user, static files collected, an
exec-form CMD the compose file runs too, and a HEALTHCHECK on /health."""

import json
import re
from dataclasses import dataclass, field

import pytest

from tests.deploy.deployment_files import REPO, load_compose

COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|libpq-dev|python3-dev)\b")


@dataclass
class Stage:
    """One FROM ... AS name, with its instructions as (keyword, arguments)."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arguments for word, arguments in self.instructions if word == keyword]


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile's stages (continuation lines joined, comments left out)."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            base, _, name = arguments.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip()))
        else:
            stages[-1].instructions.append((keyword, arguments))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages()


@pytest.fixture(scope="module")
def runtime(stages) -> Stage:
    return stages[-1]


def test_wheels_are_built_in_a_stage_of_their_own(stages):
    assert [stage.name for stage in stages] == ["builder", "runtime"]
    assert all(stage.base.startswith("python:3.11-slim") for stage in stages)
    builder = stages[0]
    assert any("pip wheel --wheel-dir /wheels" in run for run in builder.all("RUN"))


def test_the_runtime_has_no_compiler_and_no_wheel_layer(runtime):
    for run in runtime.all("RUN"):
        assert not COMPILERS.search(run), run
        assert "apt-get install" not in run, run
    # Installed from a bind mount of the builder's wheels: they never become a layer.
    install = next(run for run in runtime.all("RUN") if "pip install" in run)
    assert "--mount=type=bind,from=builder,source=/wheels" in install
    assert "--no-index --find-links=/wheels" in install
    assert not any("--from=builder" in copy for copy in runtime.all("COPY"))


def test_no_pip_cache_in_the_image(stages):
    for stage in stages:
        environment = " ".join(stage.all("ENV"))
        for run in stage.all("RUN"):
            if re.search(r"\bpip (install|wheel)\b", run):
                assert "PIP_NO_CACHE_DIR=1" in environment or "--no-cache-dir" in run, run


def test_it_runs_as_a_user_who_is_not_root(runtime):
    users = runtime.all("USER")
    assert users == ["app"]
    assert any("useradd --system --uid 1000" in run for run in runtime.all("RUN"))
    words = [word for word, _ in runtime.instructions]
    assert words.index("USER") > max(i for i, word in enumerate(words) if word == "RUN"), (
        "every RUN before USER: nothing runs as root after it"
    )


def test_static_files_are_collected_at_build_time(runtime):
    collect = [run for run in runtime.all("RUN") if "collectstatic" in run]
    assert len(collect) == 1
    assert "manage.py collectstatic --no-input" in collect[0]


def test_cmd_is_exec_form_and_the_compose_api_command(runtime):
    [cmd] = runtime.all("CMD")
    command = json.loads(cmd)
    assert command == ["gunicorn", "-c", "gunicorn.conf.py", "orchestrator_site.wsgi"]
    assert load_compose()["services"]["api"]["command"] == command
    assert "GUNICORN_BIND=0.0.0.0:8000" in " ".join(runtime.all("ENV"))
    assert runtime.all("EXPOSE") == ["8000"]


def test_healthcheck_asks_the_api_for_health(runtime):
    [healthcheck] = runtime.all("HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    probe = json.loads(command)  # exec form: no shell in between
    assert probe[0] == "python" and "http://localhost:8000/health" in probe[-1]


def test_local_state_stays_out_of_the_build_context():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "var", "staticfiles"} <= ignored
