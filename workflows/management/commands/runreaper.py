from django.conf import settings
from django.core.management.base import BaseCommand

from workflows import metrics
from workflows.reaper import Reaper, ReaperConfig
from workflows.runner import consumer_name, run_until_stopped, start_runner


class Command(BaseCommand):
    help = (
        "Recover stuck work: delayed retries, reclaims, poison messages, lost publishes, workflow timeouts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=settings.REAPER_INTERVAL_SECONDS)
        parser.add_argument("--metrics-port", type=int, default=0, help="serve this runner's /metrics")
        parser.add_argument("--once", action="store_true", help="one sweep, print what it did, exit")

    def handle(self, *args, metrics_port, interval, once, **options):
        stop, streams = start_runner(metrics_port)
        reaper = Reaper(
            streams,
            consumer=consumer_name("reaper"),
            config=ReaperConfig(
                visibility_timeout_seconds=settings.VISIBILITY_TIMEOUT_SECONDS,
                republish_after_seconds=settings.REPUBLISH_AFTER_SECONDS,
                max_deliveries=settings.MAX_DELIVERIES,
            ),
        )
        self.stdout.write(f"reaper {reaper.consumer} started, every {interval} s")

        def sweep() -> None:
            done = reaper.sweep()
            metrics.count_reaper_sweep(done)
            if once:
                self.stdout.write(str(done))
            stop.event.wait(interval)

        run_until_stopped(sweep, stop, once=once)
