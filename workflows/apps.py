from django.apps import AppConfig
from django.conf import settings


class WorkflowsConfig(AppConfig):
    """Loads the handler registry so the API validates and the workers run the same handlers."""

    name = "workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from workflows import checks  # noqa: F401  (registers the system checks)
        from workflows.handlers import load_handlers
        from workflows.metrics import register_collector

        load_handlers(settings.HANDLER_MODULES)
        register_collector()
