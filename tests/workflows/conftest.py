"""The API tests' fixtures, defined next to the functions they use. None is autouse: a module asks
for `own_streams` and `fast_password_hashing` in its `pytestmark`."""

from tests.workflows.api_driver import (  # noqa: F401 (fixtures)
    cancel,
    failed_execution,
    fast_password_hashing,
    own_streams,
    start,
    trigger,
)
