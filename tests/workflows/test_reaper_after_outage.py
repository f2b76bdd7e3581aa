"""The reaper after a sweep Redis refused: while Redis did not answer, workers could neither
heartbeat their tasks nor publish what finished, so the idle times it reports then say nothing
about who is alive. Reclaims wait until workers have had time to catch up."""

import pytest
import redis

from tests.clock import ManualClock
from workflows.reaper import Reaper, ReaperConfig
from workflows.runner import RETRY_MAX_SECONDS
from workflows.streams import Streams

pytestmark = pytest.mark.django_db(transaction=True)

ONE_NODE = {"name": "after an outage", "dag": {"nodes": [{"id": "only", "handler": "input"}]}}
VISIBILITY_SECONDS = 1.0


def test_after_redis_refused_a_sweep_nothing_is_reclaimed_for_a_visibility_timeout_and_a_retry(
    streams, start_workflow, worker
):
    start_workflow(ONE_NODE)
    worker.take()  # claimed, never heartbeated: idle for as long as the test likes
    clock = ManualClock()
    unreachable = Streams(redis.Redis(port=1, socket_connect_timeout=1), streams.prefix)
    reaper = Reaper(
        unreachable,
        consumer="reaper-1",
        config=ReaperConfig(visibility_timeout_seconds=VISIBILITY_SECONDS),
        clock=clock,
    )
    with pytest.raises(redis.ConnectionError):
        reaper.sweep()
    reaper.streams = streams  # Redis answers again

    assert reaper.sweep()["tasks_reclaimed"] == 0
    clock.advance(VISIBILITY_SECONDS + RETRY_MAX_SECONDS - 0.1)
    assert reaper.sweep()["tasks_reclaimed"] == 0
    clock.advance(0.1)
    assert reaper.sweep()["tasks_reclaimed"] == 1
