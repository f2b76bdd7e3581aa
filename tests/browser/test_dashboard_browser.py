"""The dashboard in a real browser, with the engine running: log in, trigger from the workflows
page, watch a node run without reloading, open its detail, read the timeline's axis at two widths,
re-run from failure, retry a dead letter, and read the API docs with no network beyond this
machine."""

import os
import re
import signal
from contextlib import contextmanager
from itertools import pairwise

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in, screenshot

pytestmark = pytest.mark.e2e

DELAY_WORKFLOW = {
    "name": "Nightly report",
    "description": "Waits for the warehouse, fetches orders, summarises them.",
    "dag": {
        "nodes": [
            {"id": "wait_for_warehouse", "handler": "delay", "config": {"seconds": 3}},
            {
                "id": "fetch_orders",
                "handler": "call_external_service",
                "config": {"url": "https://example.com"},
            },
            {
                "id": "summarise",
                "handler": "call_llm",
                "dependencies": ["fetch_orders"],
                "config": {"prompt": "Summarise {{ fetch_orders.data }}"},
            },
            {"id": "publish", "handler": "output", "dependencies": ["wait_for_warehouse", "summarise"]},
        ]
    },
}


def failing_workflow(fixed_file) -> dict:
    """`flaky` fails for good until `fixed_file` exists; `report` needs it."""
    return {
        "name": "Flaky import",
        "dag": {
            "nodes": [
                {"id": "load", "handler": "input", "config": {"rows": 3}},
                {
                    "id": "flaky",
                    "handler": "e2e_fail_until",
                    "dependencies": ["load"],
                    "config": {"fixed_file": str(fixed_file)},
                    "retry": {"max_attempts": 1},
                },
                {"id": "report", "handler": "output", "dependencies": ["flaky"]},
            ]
        },
    }


def node(page: Page, node_id: str):
    return page.locator(f'svg.graph g[data-node="{node_id}"]')


@contextmanager
def workers_paused(runners):
    """Stop the workers (SIGSTOP) so queued work stays QUEUED long enough to be seen."""
    workers = [r.process.pid for r in runners if r.name.startswith("worker")]
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)


def mark_page(page: Page) -> None:
    """A flag that a reload would lose: its survival shows updates came without one."""
    page.evaluate("window.notReloaded = true")


def still_same_page(page: Page) -> bool:
    return page.evaluate("window.notReloaded === true")


def test_a_user_triggers_from_the_workflows_page_and_watches_the_run_live(
    page, api, runners, alice, offsite_requests
):
    workflow_id = api.submit(DELAY_WORKFLOW)["workflow_id"]
    log_in(page, "alice", "alice-password-1")
    expect(page.locator(".topbar .who")).to_contain_text("alice")

    page.goto("/dashboard/workflows")
    row = page.locator(f'tr[data-workflow="{workflow_id}"]')
    expect(row).to_contain_text("Nightly report")
    with workers_paused(runners):
        row.locator("summary", has_text="Trigger").click()
        row.locator("textarea[name=params]").fill('{"day": "2026-12-01"}')
        screenshot(page, "workflows")
        row.locator("button", has_text="Start execution").click()
        page.wait_for_url(re.compile(r"/dashboard/executions/[0-9a-f-]{36}$"))
        mark_page(page)
        expect(node(page, "wait_for_warehouse")).to_have_attribute("data-status", "QUEUED")
        expect(node(page, "publish")).to_have_attribute("data-status", "PENDING")
    expect(node(page, "wait_for_warehouse")).to_have_attribute("data-status", "RUNNING")
    expect(page.locator("#execution-status")).to_have_text("RUNNING")
    screenshot(page, "execution-running")
    expect(node(page, "wait_for_warehouse")).to_have_attribute("data-status", "COMPLETED")
    expect(page.locator("#execution-status")).to_have_text("COMPLETED")
    expect(node(page, "publish")).to_have_attribute("data-status", "COMPLETED")
    assert still_same_page(page)

    page.locator('svg.graph a[data-node-link="wait_for_warehouse"]').click()
    detail = page.locator("#node-detail")
    expect(detail).to_contain_text("Resolved config")
    expect(detail).to_contain_text('"seconds": 3')
    expect(detail).to_contain_text("#1")
    assert page.url.endswith("?node=wait_for_warehouse") and still_same_page(page)
    screenshot(page, "node-detail")

    page.goto("/dashboard/")
    expect(page.locator("tr[data-execution]").first).to_contain_text("COMPLETED")
    screenshot(page, "executions")
    page.goto("/dashboard/handlers")
    expect(page.locator('tr[data-handler="delay"]')).to_contain_text("100 %")
    screenshot(page, "handlers")
    assert offsite_requests == []


def axis_labels(page: Page) -> list[dict]:
    """The timeline's tick labels the browser shows, left to right, with their drawn extent."""
    return page.evaluate(
        """() => [...document.querySelectorAll("table.timeline .axis text")]
            .map((text) => {
                const box = text.getBoundingClientRect();
                return {text: text.textContent, shown: getComputedStyle(text).textTransform,
                        left: box.left, right: box.right};
            })
            .filter((label) => label.right > label.left)"""
    )


def assert_the_axis_is_readable(page: Page) -> None:
    """Starts at 0, at most 6 labels, lower-case units as written, none overlapping."""
    labels = axis_labels(page)
    assert 2 <= len(labels) <= 6 and labels[0]["text"] == "0", labels
    assert all(re.fullmatch(r"0|[\d.]+ (ms|s|min|h)", label["text"]) for label in labels), labels
    assert {label["shown"] for label in labels} == {"none"}
    assert all(a["right"] < b["left"] for a, b in pairwise(labels)), labels


def test_a_failed_execution_is_re_run_from_the_button(page, api, alice, tmp_path):
    fixed = tmp_path / "fixed"
    execution_id = api.run(failing_workflow(fixed))
    assert api.wait_for_end(execution_id)["status"] == "FAILED"
    log_in(page, "alice", "alice-password-1")

    page.goto(f"/dashboard/executions/{execution_id}")
    expect(node(page, "flaky")).to_have_attribute("data-status", "FAILED")
    expect(node(page, "report")).to_have_attribute("data-status", "CANCELLED")
    expect(page.locator(".error-box")).to_contain_text("not fixed yet")
    assert_the_axis_is_readable(page)
    screenshot(page, "execution-failed")
    page.set_viewport_size({"width": 600, "height": 900})  # a narrower chart shows fewer ticks
    assert_the_axis_is_readable(page)
    page.set_viewport_size({"width": 1440, "height": 900})
    fixed.touch()
    page.locator("button", has_text="Re-run from failure").click()

    expect(page.locator(".messages")).to_contain_text("Re-running from the failure")
    mark_page(page)
    expect(page.locator("#execution-status")).to_have_text("COMPLETED")
    expect(node(page, "report")).to_have_attribute("data-status", "COMPLETED")
    assert still_same_page(page)
    page.locator('svg.graph a[data-node-link="flaky"]').click()
    expect(page.locator("#node-detail")).to_contain_text("validation / not_fixed")  # the first attempt
    expect(page.locator("#node-detail")).to_contain_text('"fixed_on_attempt": 2')


def test_staff_retry_a_dead_letter_from_the_dlq_page(page, api, alice, operator, tmp_path):
    fixed = tmp_path / "fixed"
    execution_id = api.run(failing_workflow(fixed))
    assert api.wait_for_end(execution_id)["status"] == "FAILED"
    fixed.touch()
    log_in(page, "olga", "olga-password-1")

    page.goto("/dashboard/dlq")
    letter = page.locator("tr[data-letter]", has_text="flaky")
    expect(letter).to_contain_text("not fixed yet")
    letter.locator("summary", has_text="Error (JSON)").click()
    expect(letter).to_contain_text('"code": "not_fixed"')
    screenshot(page, "dlq")
    letter.locator("input[name=note]").fill("import fixed")
    letter.locator("button", has_text="Retry").click()

    expect(page.locator(".messages")).to_contain_text("retry done")
    assert api.wait_for_end(execution_id)["status"] == "COMPLETED"
    page.goto(f"/dashboard/executions/{execution_id}")
    expect(page.locator("#execution-status")).to_have_text("COMPLETED")


def test_a_user_without_the_permission_is_told_what_the_dlq_takes(page, alice):
    log_in(page, "alice", "alice-password-1")

    page.goto("/dashboard/dlq")

    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator(".card")).to_contain_text("takes the dlq.view_deadletter permission")
    expect(page.locator(".topbar nav")).not_to_contain_text("Dead letters")


def test_the_api_docs_work_without_the_internet(page, alice, offsite_requests):
    log_in(page, "alice", "alice-password-1")

    page.goto("/docs")

    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator("body")).to_contain_text("/api/v1/workflow/trigger/")
    screenshot(page, "docs")
    assert offsite_requests == []
