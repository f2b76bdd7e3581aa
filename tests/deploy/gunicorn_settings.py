"""gunicorn.conf.py loaded as gunicorn loads it, in a given environment."""

import os
import runpy
from unittest import mock

from gunicorn.config import Config

from tests.deploy.deployment_files import REPO

GUNICORN_CONF = REPO / "gunicorn.conf.py"


def gunicorn_settings(environment: dict[str, str]) -> Config:
    """gunicorn's settings from gunicorn.conf.py with exactly `environment`, each value checked
    by gunicorn's own validators."""
    with mock.patch.dict(os.environ, environment, clear=True):
        namespace = runpy.run_path(str(GUNICORN_CONF))
    config = Config()
    for name, value in namespace.items():
        if name in config.settings:
            config.set(name, value)
    return config
