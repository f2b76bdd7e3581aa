"""Browser tests: Debian's headless Chromium driven by Playwright against pytest-django's live
server, with the engine's real runner processes behind it (the end-to-end suite's `runners` and
`api` fixtures, reused as they are).

Every page runs with the network outside this machine cut off, so a page that needs a CDN fails.
Screenshots go to var/screenshots/ for a person to look at.
"""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import Page, expect, sync_playwright

# The end-to-end fixtures and their hook that attaches the runners' logs to a failing test.
from tests.e2e.conftest import api, pytest_runtest_makereport, runners  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def offsite_requests() -> list[str]:
    """URLs a page tried to fetch from outside this machine (all of them were refused)."""
    return []


@pytest.fixture
def page(live_server, transactional_db, monkeypatch, offsite_requests) -> Page:
    """A fresh browser page whose relative URLs go to the live server."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-browser.sh (make test does)")
    # Playwright's sync API keeps an asyncio loop running in this thread, and Django refuses ORM
    # calls from a thread with a running loop; the test's own queries are plain blocking ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)

        def local_only(route):
            if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
                route.continue_()
            else:
                offsite_requests.append(route.request.url)
                route.abort()

        context.route("**/*", local_only)
        page = context.new_page()
        # Content-Security-Policy refusals only show on the console: any one fails the test.
        refused = []
        page.on(
            "console",
            lambda message: "Content Security Policy" in message.text and refused.append(message.text),
        )
        try:
            yield page
            assert not refused, f"the page broke its Content-Security-Policy: {refused}"
        finally:
            context.close()
            browser.close()
            # With Playwright's loop running, Django keeps this test's connections apart from the
            # thread's usual ones; unclosed, they stop pytest-django dropping the test database.
            connections.close_all()


def log_in(page: Page, username: str, password: str) -> None:
    """Through the dashboard's own login form, as a person would."""
    page.goto("/dashboard/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
