from django.conf import settings
from django.core.management.base import BaseCommand

from workflows.runner import consumer_name, run_until_stopped, start_runner
from workflows.worker import Worker, WorkerConfig


class Command(BaseCommand):
    help = "Run handlers for tasks from the task stream (a competing consumer; start as many as you like)."

    def add_arguments(self, parser):
        parser.add_argument("--concurrency", type=int, default=settings.WORKER_CONCURRENCY)
        parser.add_argument("--drain-timeout", type=float, default=30.0)
        parser.add_argument("--metrics-port", type=int, default=0, help="serve this runner's /metrics")
        parser.add_argument("--once", action="store_true", help="one read, then drain and exit")

    def handle(self, *args, metrics_port, concurrency, drain_timeout, once, **options):
        stop, streams = start_runner(metrics_port)
        config = WorkerConfig(
            concurrency=concurrency,
            block_ms=settings.RUNNER_BLOCK_MS,
            task_timeout_seconds=settings.TASK_TIMEOUT_SECONDS,
            visibility_timeout_seconds=settings.VISIBILITY_TIMEOUT_SECONDS,
            circuit_failure_threshold=settings.CIRCUIT_FAILURE_THRESHOLD,
            circuit_reset_seconds=settings.CIRCUIT_RESET_SECONDS,
            max_output_bytes=settings.OUTPUT_MAX_BYTES,
            secrets=settings.SECRETS,
        )
        worker = Worker(streams, consumer=consumer_name("worker"), config=config)
        self.stdout.write(f"worker {worker.consumer} started, concurrency {concurrency}")
        run_until_stopped(worker.step, stop, once=once)
        if not worker.drain(drain_timeout):
            self.stderr.write("drain timed out; unfinished tasks were handed back for another worker")
        worker.close()
