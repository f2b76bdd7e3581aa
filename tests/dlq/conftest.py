"""The API tests' fixtures (see tests/workflows/conftest.py), for the dead-letter tests too."""

from tests.workflows.api_driver import (  # noqa: F401 (fixtures)
    cancel,
    failed_execution,
    fast_password_hashing,
    own_streams,
    start,
    trigger,
)
