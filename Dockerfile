FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://unused:6379/0 SECRET_KEY=collectstatic-only \
    python manage.py collectstatic --no-input -v0 \
 && useradd --system --uid 1000 app
USER app
EXPOSE 8000
CMD ["gunicorn", "orchestrator_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "32", "--access-logfile", "-"]
