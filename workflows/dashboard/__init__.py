"""The server-rendered dashboard for operators: executions, their DAG, timeline and node details,
workflows, handler health and the dead-letter queue. Thin views over the selectors, reports and
services the API uses too; pages refresh their live parts through static/dashboard/live.js."""
