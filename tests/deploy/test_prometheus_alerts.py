"""deploy/prometheus/alerts.yml checked as `promtool check rules` would (it is not installed
here): the rule file's structure, durations, label names, balanced expressions, and every
metric an expression names is one the code exports."""

import re

import pytest
import yaml

from tests.deploy.deployment_files import REPO

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
OPERATIONS = REPO / "docs" / "operations.md"
METRIC_DEFINITIONS = re.compile(
    r"\b(Counter|Histogram|Gauge|Summary|GaugeMetricFamily|CounterMetricFamily)\(\s*[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)[\"']"
)
# What each kind of metric is exposed as, by prometheus_client.
SAMPLE_SUFFIXES = {
    "Counter": ("_total",),
    "CounterMetricFamily": ("_total",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "Summary": ("_sum", "_count"),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
}
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
}


def exported_metrics() -> set[str]:
    """Every series name the engine's code exports (workflows, dlq, resilience)."""
    names = set()
    for app in ("workflows", "dlq", "resilience"):
        for path in (REPO / app).rglob("*.py"):
            for kind, name in METRIC_DEFINITIONS.findall(path.read_text()):
                base = name.removesuffix("_total") if kind.startswith("Counter") else name
                names.update(base + suffix for suffix in SAMPLE_SUFFIXES[kind])
    return names


def metrics_in(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords, labels)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("(") or match.group() in PROMQL_KEYWORDS:
            continue
        names.add(match.group())
    return names


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {"groups"}
    groups = document["groups"]
    assert [group["name"] for group in groups] == ["workflow-engine"]
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit"}
        assert group["rules"], group["name"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_rule_is_a_well_formed_alert(rules):
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in rules:
        assert set(rule) <= RULE_KEYS, rule
        assert NAME.fullmatch(rule["alert"]), rule["alert"]
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule["alert"]
        assert DURATION.fullmatch(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        for labels in (rule["labels"], rule["annotations"]):
            assert all(NAME.fullmatch(key) and isinstance(value, str) for key, value in labels.items())
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]


def test_expressions_are_balanced(rules):
    pairs = {")": "(", "]": "[", "}": "{"}
    for rule in rules:
        stack = []
        for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', rule["expr"]):
            if char in "([{":
                stack.append(char)
            elif char in pairs:
                assert stack and stack.pop() == pairs[char], rule["alert"]
        assert not stack, rule["alert"]


def test_every_metric_named_is_one_the_code_exports(rules):
    exported = exported_metrics()
    assert "workflow_reaper_actions_total" in exported and "workflow_task_duration_seconds_bucket" in exported
    for rule in rules:
        named = metrics_in(rule["expr"])
        assert named, rule["alert"]
        assert named <= exported, (rule["alert"], named - exported)


def test_the_issues_alerts_are_all_there(rules):
    """Dead-letter growth, pending age, circuit open, reaper reclaim rate, stream length."""
    selected = {name for rule in rules for name in metrics_in(rule["expr"])}
    assert {
        "workflow_dead_letters_open",
        "workflow_stream_oldest_age_seconds",
        "workflow_circuit_state",
        "workflow_reaper_actions_total",
        "workflow_stream_length",
    } <= selected


def test_every_runbook_link_lands_on_a_heading(rules):
    anchors = heading_anchors(OPERATIONS.read_text())
    for rule in rules:
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/operations.md" and anchor in anchors, (rule["alert"], anchor)


def test_the_metric_parser_ignores_functions_labels_and_keywords():
    expr = 'sum by (reason) (rate(a_total{x="y(z)"}[5m] offset 1h)) / on (i) group_left b > 1e3 and c'
    assert metrics_in(expr) == {"a_total", "b", "c"}
