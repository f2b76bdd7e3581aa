from django.conf import settings
from django.core.management.base import BaseCommand

from workflows.orchestrator import Orchestrator
from workflows.runner import consumer_name, run_until_stopped, start_runner


class Command(BaseCommand):
    help = "Apply task completions and dispatch what became ready (competing consumers)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=settings.ORCHESTRATOR_BATCH_SIZE)
        parser.add_argument("--metrics-port", type=int, default=0, help="serve this runner's /metrics")
        parser.add_argument("--once", action="store_true", help="one batch, then exit")

    def handle(self, *args, metrics_port, batch_size, once, **options):
        stop, streams = start_runner(metrics_port)
        orchestrator = Orchestrator(
            streams,
            consumer=consumer_name("orchestrator"),
            batch_size=batch_size,
            block_ms=settings.RUNNER_BLOCK_MS,
        )
        self.stdout.write(f"orchestrator {orchestrator.consumer} started, batch size {batch_size}")
        run_until_stopped(orchestrator.step, stop, once=once)
