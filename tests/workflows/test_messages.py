"""Stream message encoding: what a worker or orchestrator reads back from a Redis entry."""

import json

import pytest

from workflows.messages import (
    SCHEMA_VERSION,
    CompletionMessage,
    MessageError,
    TaskMessage,
    decode_completion,
    decode_task,
    encode,
)

TASK = TaskMessage(
    task_id=41,
    execution_id="3f1c0a52-6a8e-4e0a-9d3b-7f1e2c9a1b00",
    node_id="fetch_users",
    handler="call_external_service",
    attempt=2,
    config={"url": "https://api.example.com/users", "headers": {"X": "é"}},
    params={"user": "u1"},
    upstream={"input": {"document": "text"}},
    deadline=1_700_000_123.5,
    timeout_seconds=30,
)
COMPLETION = CompletionMessage(
    task_id=41,
    execution_id="3f1c0a52-6a8e-4e0a-9d3b-7f1e2c9a1b00",
    node_id="fetch_users",
    attempt=2,
    ok=False,
    output=None,
    error={"code": "timeout", "message": "took too long", "permanent": False},
    exhausted=False,
    started_at=1_700_000_100.0,
    finished_at=1_700_000_130.25,
    worker="worker-7",
)


def as_redis_returns(fields: dict[str, str]) -> dict[bytes, bytes]:
    """redis-py without decode_responses hands back bytes keys and values."""
    return {key.encode(): value.encode() for key, value in fields.items()}


def entry(body: dict, version: str = SCHEMA_VERSION) -> dict[bytes, bytes]:
    return as_redis_returns({"v": version, "body": json.dumps(body)})


def task_body(**overrides) -> dict:
    body = {"task_id": 1, "execution_id": "e", "node_id": "n", "handler": "input", "attempt": 1}
    return {**body, **overrides}


def completion_body(**overrides) -> dict:
    body = {"task_id": 1, "execution_id": "e", "node_id": "n", "attempt": 1, "ok": True}
    return {**body, **overrides}


def test_encode_gives_a_version_and_a_json_body_of_strings():
    fields = encode(TASK)

    assert set(fields) == {"v", "body"}
    assert fields["v"] == SCHEMA_VERSION
    assert json.loads(fields["body"])["node_id"] == "fetch_users"


def test_task_round_trips_with_bytes_keys():
    assert decode_task(as_redis_returns(encode(TASK))) == TASK


def test_task_round_trips_with_str_keys():
    assert decode_task(encode(TASK)) == TASK


def test_completion_round_trips_with_bytes_keys():
    assert decode_completion(as_redis_returns(encode(COMPLETION))) == COMPLETION


def test_completion_round_trips_with_str_keys():
    assert decode_completion(encode(COMPLETION)) == COMPLETION


def test_successful_completion_round_trips():
    done = CompletionMessage(
        task_id=1, execution_id="e", node_id="n", attempt=1, ok=True, output={"rows": [1, 2]}
    )

    assert decode_completion(as_redis_returns(encode(done))) == done


def test_unknown_body_fields_are_ignored():
    message = decode_task(entry(task_body(priority="high", trace={"id": 1})))

    assert message == TaskMessage(task_id=1, execution_id="e", node_id="n", handler="input", attempt=1)


def test_unknown_stream_fields_are_ignored():
    fields = {**as_redis_returns(encode(COMPLETION)), b"trace": b"abc"}

    assert decode_completion(fields) == COMPLETION


def test_missing_optional_task_fields_get_defaults():
    message = decode_task(entry(task_body()))

    assert message.config == {}
    assert message.params == {}
    assert message.upstream is None
    assert message.deadline is None
    assert message.timeout_seconds is None


def test_missing_optional_completion_fields_get_defaults():
    message = decode_completion(entry(completion_body()))

    assert message.output is None
    assert message.error is None
    assert message.exhausted is False
    assert message.started_at is None
    assert message.finished_at is None
    assert message.worker == ""


def test_defaulted_containers_are_not_shared_between_messages():
    first = decode_task(entry(task_body()))
    second = decode_task(entry(task_body()))

    assert first.config is not second.config


@pytest.mark.parametrize("version", ["1.1", "1.9", "1.10", "1"])
def test_same_major_version_is_accepted(version):
    assert decode_task(entry(task_body(), version=version)).task_id == 1


def test_same_major_version_with_str_keys_is_accepted():
    assert decode_completion({"v": "1.3", "body": json.dumps(completion_body())}).ok is True


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.0", "", "v1", "11.0"])
def test_other_major_versions_are_rejected(version):
    with pytest.raises(MessageError, match="version"):
        decode_task(entry(task_body(), version=version))


def test_missing_version_is_rejected():
    with pytest.raises(MessageError, match="version"):
        decode_completion({b"body": json.dumps(completion_body()).encode()})


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", "{'task_id': 1}"])
def test_body_that_is_not_json_is_rejected(body):
    with pytest.raises(MessageError, match="not JSON"):
        decode_task({b"v": b"1.0", b"body": body})


def test_missing_body_is_rejected():
    with pytest.raises(MessageError):
        decode_task({b"v": b"1.0"})


@pytest.mark.parametrize("body", [[1, 2], "task", 3, None, True])
def test_body_that_is_not_an_object_is_rejected(body):
    with pytest.raises(MessageError, match="object"):
        decode_completion({b"v": b"1.0", b"body": json.dumps(body).encode()})


@pytest.mark.parametrize("missing", ["task_id", "execution_id", "node_id", "handler", "attempt"])
def test_task_missing_a_required_field_is_rejected(missing):
    body = task_body()
    del body[missing]

    with pytest.raises(MessageError, match="TaskMessage"):
        decode_task(entry(body))


@pytest.mark.parametrize("missing", ["task_id", "execution_id", "node_id", "attempt", "ok"])
def test_completion_missing_a_required_field_is_rejected(missing):
    body = completion_body()
    del body[missing]

    with pytest.raises(MessageError, match="CompletionMessage"):
        decode_completion(entry(body))


def test_a_completion_is_not_a_task():
    with pytest.raises(MessageError):
        decode_task(as_redis_returns(encode(COMPLETION)))
