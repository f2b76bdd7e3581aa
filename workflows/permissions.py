"""Who may act on whose executions: Django permissions, one rule for the API, dashboard and admin.

Owners may do everything to their own workflows and executions. Acting on another user's takes a
permission, granted to a user or a group in the admin (a superuser holds them all; staff status
alone grants nothing but the admin's login). The `operators` group holds every one of them.

| permission | lets its holder |
|---|---|
| `workflows.view_execution` | see every user's executions, their tasks, and handler figures over all of them |
| `workflows.view_workflow` | see every user's workflows |
| `workflows.cancel_any_execution` | cancel another user's execution |
| `workflows.run_any_execution` | trigger, re-run or re-trigger another user's execution, or start their workflow |
| `dlq.view_deadletter` | read the dead-letter queue |
| `dlq.change_deadletter` | retry and discard dead letters |
"""

VIEW_ALL_EXECUTIONS = "workflows.view_execution"
VIEW_ALL_WORKFLOWS = "workflows.view_workflow"
CANCEL_ANY_EXECUTION = "workflows.cancel_any_execution"
RUN_ANY_EXECUTION = "workflows.run_any_execution"
VIEW_DEAD_LETTERS = "dlq.view_deadletter"
TRIAGE_DEAD_LETTERS = "dlq.change_deadletter"

OPERATORS_GROUP = "operators"
OPERATOR_PERMISSIONS = (
    VIEW_ALL_EXECUTIONS,
    VIEW_ALL_WORKFLOWS,
    CANCEL_ANY_EXECUTION,
    RUN_ANY_EXECUTION,
    VIEW_DEAD_LETTERS,
    TRIAGE_DEAD_LETTERS,
)


def may_act(user, owner_id: int | None, permission: str) -> bool:
    """True for the owner (checked first: no query), else for holders of `permission`. No user at
    all is the project's own code (`workflows.client` without an owner), never a request."""
    if user is None:
        return True
    return (owner_id is not None and owner_id == user.pk) or user.has_perm(permission)


def operators_group_ensure(**_signal_kwargs) -> None:
    """The `operators` group with every permission above (after each migrate): add a user to it
    to make them an operator."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    wanted = [name.split(".") for name in OPERATOR_PERMISSIONS]
    found = Permission.objects.filter(
        content_type__app_label__in={app for app, _ in wanted}, codename__in={code for _, code in wanted}
    )
    group.permissions.add(*found)
