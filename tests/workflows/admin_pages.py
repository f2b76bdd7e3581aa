"""Reading the Django admin's pages as a user sees them (rows, offered actions, messages), for the
admin tests of executions and dead letters."""

import html
import re

from django.test import Client

# One changelist row per line: the id links to the object's page, then its columns.
ROW = re.compile(
    r'<th class="field-id"><a href="[^"]*/([^/"]+)/change/[^"]*">.*?<td class="field-status">([^<]*)</td>'
)
ACTION_SELECT = re.compile(r'<select name="action"[^>]*>(.*?)</select>', re.DOTALL)
OPTION = re.compile(r'<option value="([^"]+)"')
MESSAGE_LIST = re.compile(r'<ul class="messagelist">(.*?)</ul>', re.DOTALL)
MESSAGE = re.compile(r'<li class="(\w+)">(.*?)</li>', re.DOTALL)
INLINE_ROW = re.compile(r'<tr class="form-row[^"]*"\s+id="task_runs-\d+">(.*?)</tr>', re.DOTALL)
INLINE_CELL = re.compile(r'<td class="field-(\w+)">\s*<p>(.*?)</p>', re.DOTALL)


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def page(browser: Client, url: str) -> str:
    response = browser.get(url)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def listed(text: str) -> dict[str, str]:
    """The changelist's rows: {object id: the status shown}."""
    return {pk: html.unescape(status) for pk, status in ROW.findall(text)}


def offered_actions(text: str) -> set[str]:
    """The bulk actions the changelist offers (none: no action box at all)."""
    select = ACTION_SELECT.search(text)
    return set(OPTION.findall(select.group(1))) if select else set()


def task_runs_shown(text: str) -> dict[str, dict[str, str]]:
    """The task runs inline on an execution's page: {node id: {column: text}}."""
    rows = [
        {field: html.unescape(value.strip()) for field, value in INLINE_CELL.findall(row)}
        for row in INLINE_ROW.findall(text)
    ]
    return {row["node_id"]: row for row in rows}


def act(browser: Client, url: str, action: str, selected: list) -> list[tuple[str, str]]:
    """Run a bulk action on the selected rows as the changelist form does; the messages the page
    then shows, as (level, text)."""
    response = browser.post(
        url, {"action": action, "_selected_action": [str(pk) for pk in selected]}, follow=True
    )
    assert response.status_code == 200, response.content[:500]
    shown = MESSAGE_LIST.search(response.content.decode())
    return [
        (level, html.unescape(text.strip()))
        for level, text in MESSAGE.findall(shown.group(1) if shown else "")
    ]
