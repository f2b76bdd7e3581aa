"""The asyncio client against the live API: the same flows, awaited (each test runs its own loop)."""

import asyncio
import uuid

import pytest

from orchestrator_client import AsyncClient, NotFound, Unauthorized, WaitTimedOut
from tests.client import dags
from tests.client.conftest import NO_RETRIES

pytestmark = pytest.mark.django_db


def test_submit_trigger_wait_results_and_tasks(async_client_factory):
    async def flow():
        async with async_client_factory() as client:
            submitted = await client.submit(dags.conditional())
            await client.trigger(submitted.execution_id, params={"data": "no"})
            final = await client.wait(submitted.execution_id, timeout=60)
            results = await client.results(submitted.execution_id)
            tasks = [task.node_id async for task in client.tasks(submitted.execution_id)]
            return final, results, tasks

    final, results, tasks = asyncio.run(flow())

    assert final.status == "COMPLETED"
    assert (
        final.node_statuses["true_branch"] == "SKIPPED" and final.node_statuses["false_branch"] == "COMPLETED"
    )
    assert results.outputs["is_yes"]["result"] is False
    assert tasks == ["start", "is_yes", "true_branch", "false_branch"]


def test_several_executions_followed_at_once(async_client_factory):
    async def flow():
        async with async_client_factory() as client:
            submitted = await asyncio.gather(*(client.submit(dags.conditional()) for _ in range(4)))
            await asyncio.gather(*(client.trigger(s.execution_id, {"data": "yes"}) for s in submitted))
            return await asyncio.gather(*(client.wait(s.execution_id, timeout=60) for s in submitted))

    finals = asyncio.run(flow())

    assert [final.status for final in finals] == ["COMPLETED"] * 4


def test_cancel_and_dead_letters(async_client_factory):
    async def flow():
        async with async_client_factory() as client:
            slow = await client.submit(dags.slow(60))
            await client.trigger(slow.execution_id)
            with pytest.raises(WaitTimedOut):
                await client.wait(slow.execution_id, timeout=0.5, poll_seconds=0.25)
            cancelled = await client.cancel(slow.execution_id)
            flaky = await client.submit(dags.flaky())
            await client.trigger(flaky.execution_id)
            failed = await client.wait(flaky.execution_id, timeout=60)
            letters = [letter async for letter in client.dead_letters(execution=flaky.execution_id)]
            discarded = await client.dead_letter_discard(letters[0].id, note="known")
            rerun = await client.rerun(flaky.execution_id)
            retriggered = await client.retrigger(flaky.execution_id)
            ends = await asyncio.gather(
                client.wait(flaky.execution_id, timeout=60), client.wait(retriggered.execution_id, timeout=60)
            )
            return cancelled, failed, letters, discarded, rerun, retriggered, ends

    cancelled, failed, letters, discarded, rerun, retriggered, ends = asyncio.run(flow())

    assert cancelled.status == "CANCELLED" and failed.status == "FAILED"
    assert [letter.status for letter in letters] == ["OPEN"] and discarded.status == "DISCARDED"
    assert (rerun.execution_id, rerun.status) == (failed.execution_id, "RUNNING")
    assert retriggered.execution_id != failed.execution_id
    assert [end.status for end in ends] == ["FAILED", "FAILED"]  # the node fails every attempt


def test_typed_errors(live_api):
    async def flow():
        async with AsyncClient(live_api.url, "not-a-token", retry=NO_RETRIES) as stranger:
            with pytest.raises(Unauthorized):
                await stranger.status(str(uuid.uuid4()))
        async with AsyncClient(live_api.url, live_api.user_token) as user:
            with pytest.raises(NotFound) as not_found:
                await user.results(str(uuid.uuid4()))
        return not_found.value

    not_found = asyncio.run(flow())

    assert not_found.status == 404 and not_found.code == "not_found"
