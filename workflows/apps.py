from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


class WorkflowsConfig(AppConfig):
    """Loads the handler registry so the API validates and the workers run the same handlers;
    keeps the `operators` group holding every operator permission."""

    name = "workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from workflows import checks  # noqa: F401  (registers the system checks)
        from workflows.handlers import load_handlers
        from workflows.metrics import register_collector
        from workflows.permissions import operators_group_ensure

        load_handlers(settings.HANDLER_MODULES)
        register_collector()
        # Every app's post_migrate: the dlq app's permissions exist only once its own has run.
        post_migrate.connect(operators_group_ensure, dispatch_uid="operators_group")
