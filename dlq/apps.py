from django.apps import AppConfig


class DlqConfig(AppConfig):
    """Dead letters: tasks that exhausted their attempts, parked for triage."""

    name = "dlq"
    verbose_name = "Dead letter queue"
    default_auto_field = "django.db.models.BigAutoField"
