"""Fault injection for the fault suite (tests/faults): a process started with CRASH_POINT=<name>
dies (`os._exit(1)`, no clean-up, like kill -9) when it reaches the point of that name, so a test
can prove recovery from a crash exactly there. Unset in production: then every point is a
comparison with an empty string.

Points: `before_publish` and `after_publish` (a worker's reporter, either side of publishing a
completion), `after_trigger_commit` (an API process, after a trigger commits and before its
roots are published), `between_publish_chunks` (whoever publishes a dispatch of more than
`PUBLISH_CHUNK` tasks, after each chunk sent ahead of the last)."""

import os

VARIABLE = "CRASH_POINT"
CRASH_POINT = os.environ.get(VARIABLE, "")


def crash_point(name: str) -> None:
    """Die here if CRASH_POINT names this point."""
    if name == CRASH_POINT:
        os._exit(1)
