"""Error classification: categories, permanence, and the detail a failed attempt records."""

import pytest

from resilience.errors import ClassifiedError, TaskTimeout, classify, error_detail, simple_error
from workflows.handlers import HandlerError

DETAIL_KEYS = {"category", "code", "message", "permanent", "traceback", "traceback_hash"}


def raised(function, *args) -> BaseException:
    """The exception `function(*args)` raises, with its traceback, as a worker would catch it."""
    try:
        function(*args)
    except BaseException as exc:  # the point is to capture anything
        return exc
    raise AssertionError("expected an exception")


def fail_with_value_error(message: str) -> None:
    raise ValueError(message)


def fail_elsewhere(message: str) -> None:
    raise ValueError(message)


@pytest.mark.parametrize(
    ("exc", "category"),
    [
        (TimeoutError("slow"), "timeout"),
        (ConnectionError("reset"), "transient"),
        (ConnectionRefusedError("refused"), "transient"),
        (ConnectionResetError("reset"), "transient"),
        (BrokenPipeError("pipe"), "transient"),
        (OSError("network unreachable"), "transient"),
        (ValueError("bad value"), "handler"),
        (TypeError("bad type"), "handler"),
        (KeyError("missing"), "handler"),
        (IndexError("out of range"), "handler"),
        (MemoryError(), "resource"),
        (RecursionError("too deep"), "resource"),
        (FileNotFoundError("no such file"), "unknown"),
        (PermissionError("denied"), "unknown"),
        (RuntimeError("something else"), "unknown"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_classify_builtin_exceptions(exc, category):
    found = classify(exc)

    assert found.category == category
    assert found.code == type(exc).__name__
    assert found.permanent is False


def test_permanent_handler_error_is_a_validation_error():
    found = classify(HandlerError("config is nonsense", code="invalid_config", permanent=True))

    assert (found.category, found.code, found.permanent) == ("validation", "invalid_config", True)


def test_transient_handler_error_is_retried():
    found = classify(HandlerError("upstream hiccup", code="flaky"))

    assert (found.category, found.code, found.permanent) == ("handler", "flaky", False)


def test_classified_error_keeps_its_explicit_category():
    found = classify(ClassifiedError("quota exceeded", code="quota", category="resource"))

    assert (found.category, found.code, found.permanent) == ("resource", "quota", False)


def test_explicit_category_wins_over_the_exception_type():
    class DownstreamTimeout(ClassifiedError, TimeoutError):
        category = "infrastructure"

    found = classify(DownstreamTimeout("gateway timed out"))

    assert found.category == "infrastructure"
    assert found.code == "DownstreamTimeout"


@pytest.mark.parametrize("category", ["validation", "poison"])
def test_explicit_permanent_categories_are_permanent(category):
    assert classify(ClassifiedError("no", category=category)).permanent is True


def test_classified_error_defaults():
    found = classify(ClassifiedError("plain"))

    assert (found.category, found.code, found.permanent) == ("handler", "ClassifiedError", False)


def test_task_timeout_is_a_timeout():
    found = classify(TaskTimeout("too slow", code="task_timeout"))

    assert (found.category, found.code, found.permanent) == ("timeout", "task_timeout", False)


def test_error_detail_fields():
    exc = raised(fail_with_value_error, "bad input 42")

    detail = error_detail(exc)

    assert set(detail) == DETAIL_KEYS
    assert detail["category"] == "handler"
    assert detail["code"] == "ValueError"
    assert detail["message"] == "bad input 42"
    assert detail["permanent"] is False
    assert "fail_with_value_error" in detail["traceback"]
    assert detail["traceback"].rstrip().endswith("ValueError: bad input 42")
    assert len(detail["traceback_hash"]) == 16
    int(detail["traceback_hash"], 16)


def test_error_detail_of_a_permanent_handler_error():
    def handler():
        raise HandlerError("missing 'url'", code="invalid_config", permanent=True)

    detail = error_detail(raised(handler))

    assert detail["category"] == "validation"
    assert detail["code"] == "invalid_config"
    assert detail["permanent"] is True


def test_error_detail_category_override():
    detail = error_detail(raised(fail_with_value_error, "x"), category="infrastructure")

    assert detail["category"] == "infrastructure"
    assert detail["code"] == "ValueError"


def test_error_detail_message_falls_back_to_the_class_name():
    assert error_detail(MemoryError())["message"] == "MemoryError"


def test_error_detail_traceback_is_bounded():
    detail = error_detail(raised(fail_with_value_error, "x" * 20_000))

    assert len(detail["traceback"]) == 8000
    assert detail["traceback"].rstrip().endswith("x" * 100)


def test_traceback_hash_groups_the_same_site_regardless_of_message():
    first = error_detail(raised(fail_with_value_error, "user 1 not found"))
    second = error_detail(raised(fail_with_value_error, "user 2 not found"))

    assert first["message"] != second["message"]
    assert first["traceback_hash"] == second["traceback_hash"]


def test_traceback_hash_differs_between_sites():
    here = error_detail(raised(fail_with_value_error, "same message"))
    there = error_detail(raised(fail_elsewhere, "same message"))

    assert here["traceback_hash"] != there["traceback_hash"]


def test_traceback_hash_differs_between_exception_types_without_traceback():
    assert error_detail(ValueError("x"))["traceback_hash"] != error_detail(TypeError("x"))["traceback_hash"]


def test_simple_error():
    error = simple_error("poison", "poison_message", "delivered 3 times", permanent=True)

    assert error == {
        "category": "poison",
        "code": "poison_message",
        "message": "delivered 3 times",
        "permanent": True,
        "traceback": "",
        "traceback_hash": error["traceback_hash"],
    }
    assert len(error["traceback_hash"]) == 16


def test_simple_error_defaults_to_not_permanent_and_hashes_category_and_code():
    first = simple_error("circuit_open", "circuit_open", "handler circuit is open")
    second = simple_error("circuit_open", "circuit_open", "another message")
    other = simple_error("circuit_open", "other_code", "handler circuit is open")

    assert first["permanent"] is False
    assert first["traceback_hash"] == second["traceback_hash"]
    assert first["traceback_hash"] != other["traceback_hash"]


def test_a_transient_error_carries_its_earliest_retry():
    detail = error_detail(
        ClassifiedError("429", code="http_429", category="transient", retry_after_seconds=12)
    )
    permanent = error_detail(ClassifiedError("no", code="x", category="validation", retry_after_seconds=12))

    assert detail["retry_after_seconds"] == 12.0
    assert "retry_after_seconds" not in permanent  # no retry at all
    assert "retry_after_seconds" not in error_detail(ValueError("x"))
