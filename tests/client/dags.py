"""The workflows the client's tests run (built-in handlers only)."""

from tests.reference_payloads import load


def conditional() -> dict:
    """Four nodes: start, is_yes, and two branches of which one is SKIPPED by its condition."""
    return load("conditional_branching")


def flaky() -> dict:
    """One node that fails every attempt: FAILED after 2 attempts, with a dead letter."""
    return {
        "name": "flaky",
        "dag": {
            "nodes": [
                {
                    "id": "a",
                    "handler": "input",
                    "config": {"simulate_failure": True},
                    "retry": {"max_attempts": 2, "backoff_base": 0.2},
                }
            ]
        },
    }


def slow(seconds: float = 60) -> dict:
    """One delay node: RUNNING for `seconds` unless cancelled."""
    return {
        "name": "slow",
        "dag": {"nodes": [{"id": "nap", "handler": "delay", "config": {"seconds": seconds}}]},
    }


def cyclic() -> dict:
    """Invalid: a and b depend on each other."""
    return {
        "name": "cyclic",
        "dag": {
            "nodes": [
                {"id": "a", "handler": "input", "dependencies": ["b"]},
                {"id": "b", "handler": "input", "dependencies": ["a"]},
            ]
        },
    }
