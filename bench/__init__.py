"""Benchmark suite: the engine (PostgreSQL and embedded) against Celery 5 and DBOS, through public
interfaces only.

`python -m bench` (or `make bench`) runs everything; `python -m bench --help` lists the options.
Nothing here is imported by the application; the Celery modules run only inside var/bench-venv,
the DBOS ones only inside var/dbos-venv (with `closed_loop`, which both share).
"""
