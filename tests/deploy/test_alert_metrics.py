"""The metrics deploy/prometheus/alerts.yml needs beyond the ones that were there: the age of
each stream's oldest entry (pending age) and what the reaper's sweeps did (reclaim rate)."""

import time

import pytest

from workflows import metrics
from workflows.messages import TaskMessage, encode


def test_oldest_ages_are_zero_on_empty_streams(streams):
    assert streams.oldest_ages() == {"tasks": 0.0, "completions": 0.0}


def test_oldest_age_is_the_first_entrys_age_on_redis_clock(streams):
    ten_minutes_ago_ms = int((streams.now() - 600) * 1000)
    task = TaskMessage(task_id=1, execution_id="e", node_id="n", handler="input", attempt=1)
    streams.client.xadd(streams.tasks, encode(task), id=f"{ten_minutes_ago_ms}-0")
    streams.publish_tasks([task])

    ages = streams.oldest_ages()

    assert 599 < ages["tasks"] < 605
    assert ages["completions"] == 0.0


@pytest.mark.django_db
def test_the_collector_exports_the_oldest_age_per_stream(streams):
    streams.publish_tasks([TaskMessage(task_id=1, execution_id="e", node_id="n", handler="input", attempt=1)])
    time.sleep(0.01)

    families = {family.name: family for family in metrics.EngineCollector().collect()}

    samples = {s.labels["stream"]: s.value for s in families["workflow_stream_oldest_age_seconds"].samples}
    assert samples["tasks"] > 0 and samples["completions"] == 0.0


def test_a_sweep_is_counted_by_action():
    def count(action: str) -> float:
        [family] = metrics.REAPER_ACTIONS.collect()
        totals = {s.labels["action"]: s.value for s in family.samples if s.name.endswith("_total")}
        return totals.get(action, 0.0)

    before = count("tasks_reclaimed"), count("republished")
    metrics.count_reaper_sweep({"tasks_reclaimed": 2, "republished": 0, "timed_out": 1})
    assert (count("tasks_reclaimed"), count("republished")) == (before[0] + 2, before[1])
