from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workflows.stack import PortInUse, Stack


class Command(BaseCommand):
    help = "Run the whole stack in one foreground process tree: API, workers, orchestrators (Ctrl-C stops)."

    def add_arguments(self, parser):
        parser.add_argument("--workers", type=int, default=3)
        parser.add_argument("--orchestrators", type=int, default=2)
        parser.add_argument("--concurrency", type=int, default=settings.WORKER_CONCURRENCY)
        parser.add_argument("--bind", default="127.0.0.1:8000", help="API address (host:port)")
        parser.add_argument("--api-workers", type=int, default=2, help="gunicorn worker processes")

    def handle(self, *args, **options):
        stack = Stack(
            workers=options["workers"],
            orchestrators=options["orchestrators"],
            concurrency=options["concurrency"],
            bind=options["bind"],
            api_workers=options["api_workers"],
            out=self.stdout,
        )
        try:
            stack.run()
        except PortInUse as exc:
            raise CommandError(str(exc)) from exc
