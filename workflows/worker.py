"""Worker: reads tasks for its free slots, runs handlers in a bounded pool, reports completions.

Workers touch only Redis. Before running, each task is admitted atomically in Redis (not
cancelled, not already done, not running elsewhere, circuit closed, under its rate limit) and
claimed. `{{ secrets.NAME }}` in a config is revealed just before its handler runs, and every
revealed value is scrubbed from the task's output and error. A reporter thread publishes
completions as soon as handlers finish, batching whatever finished together into one round trip.
A watchdog thread heartbeats live work (so the reaper leaves it alone), enforces per-task
timeouts and stops tasks whose execution was cancelled.
"""

import asyncio
import json
import queue
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

from resilience.errors import TaskTimeout, error_detail
from workflows.crash_points import crash_point
from workflows.dag import DagError, check_json_value
from workflows.handlers import HandlerError, Interrupted, TaskContext, circuit_for, get_handler
from workflows.messages import CompletionMessage, TaskMessage
from workflows.outages import Outage
from workflows.runner import RETRY_MAX_SECONDS
from workflows.secrets import SecretMissing, reveal, scrub
from workflows.streams import WORKERS_GROUP, Entry, Streams

log = structlog.get_logger(__name__)
WATCHDOG_TICK_SECONDS = 0.2
# How soon a running handler hears that its execution was cancelled (one Redis read per check).
CANCEL_CHECK_SECONDS = 1.0
# How often an idle reporter looks up to see whether the worker was closed.
REPORTER_WAKE_SECONDS = 0.5


@dataclass(frozen=True)
class WorkerConfig:
    """Tuning that comes from settings (tests shrink the times)."""

    concurrency: int = 8
    block_ms: int = 2000
    task_timeout_seconds: float = 300.0
    visibility_timeout_seconds: float = 30.0
    circuit_failure_threshold: int = 5
    circuit_reset_seconds: float = 30.0
    max_output_bytes: int = 1024 * 1024
    # What `{{ secrets.NAME }}` reads (SECRETS, from WORKFLOW_SECRET_<NAME>).
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def claim_ms(self) -> int:
        return int(self.visibility_timeout_seconds * 1000)


@dataclass
class Running:
    """One task in flight in this process."""

    entry_id: bytes
    task: TaskMessage
    context: TaskContext
    started: float
    expires: float
    future: Future | None = None
    reported: bool = False
    circuit: str | None = None


class Worker:
    """One worker process's engine; `step()` does one read, `drain()` finishes in-flight work."""

    def __init__(self, streams: Streams, *, consumer: str, config: WorkerConfig):
        self.streams = streams
        self.consumer = consumer
        self.config = config
        self.slots = threading.Semaphore(config.concurrency)
        # Extra threads: a handler that ignores its stop signal after a timeout keeps its
        # thread, but must not shrink the pool below the advertised concurrency.
        self.pool = ThreadPoolExecutor(config.concurrency * 2, thread_name_prefix="handler")
        self.finished: queue.SimpleQueue = queue.SimpleQueue()
        # Redis refusing the reporter's writes or the watchdog's heartbeats: logged once per interval.
        self.write_outage, self.watch_outage = Outage("worker_report"), Outage("worker_heartbeat")
        self.running: dict[bytes, Running] = {}
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = threading.Event()
        self.threads = [
            threading.Thread(target=self._report_until_closed, name="reporter", daemon=True),
            threading.Thread(target=self._watch_until_closed, name="watchdog", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def step(self) -> int:
        """Read at most as many tasks as there are free slots and start them; returns how many."""
        free = self._take_slots()
        if not free:
            return 0
        try:
            entries = self.streams.read_tasks(self.consumer, free, self.config.block_ms)
        except Exception:
            self._release(free)
            raise
        self._release(free - len(entries))
        if not entries:
            return 0
        undecodable = [e for e in entries if e.message is None]
        for entry in undecodable:
            log.error("task_undecodable", entry_id=entry.id.decode(), error=str(entry.error))
        self._release(len(undecodable))
        readable = [e for e in entries if e.message is not None]
        circuits = [_circuit(e.message) for e in readable]
        try:
            verdicts = self.streams.admit(
                [e.message for e in readable],
                self.consumer,
                claim_ms=self.config.claim_ms,
                probe_seconds=self.config.visibility_timeout_seconds,
                circuits=circuits,
            )
        except Exception:
            # Redis went away mid-batch: the entries stay pending and the reaper re-delivers them.
            self._release(len(readable))
            raise
        dropped, deferred = [], []
        with self.lock:
            mine = {(r.task.task_id, r.task.attempt) for r in self.running.values()}
        for entry, circuit, admission in zip(readable, circuits, verdicts, strict=True):
            delivery = (entry.message.task_id, entry.message.attempt)
            if admission.verdict == "run" and delivery not in mine:
                mine.add(delivery)
                self._start(entry, circuit)
                continue
            self._release(1)
            if admission.verdict in {"circuit", "rate"}:
                # Not a failed attempt: wait in the delayed set until the handler may run.
                deferred.append((entry.id, entry.message, time.time() + max(admission.wait_seconds, 0.05)))
            else:
                dropped.append(entry.id)  # cancelled, duplicate, or already running (here or elsewhere)
        self.streams.drop(self.streams.tasks, WORKERS_GROUP, dropped)
        self.streams.defer_tasks(deferred)
        self.streams.park_undecodable(self.streams.tasks, WORKERS_GROUP, undecodable)
        return len(entries)

    def drain(self, timeout: float) -> bool:
        """SIGTERM: wait for in-flight tasks to finish and be reported, then stop what is left
        (it is handed back to the stream, not lost). True if everything finished in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.running:
                    return True
            time.sleep(0.05)
        with self.lock:
            left = list(self.running.values())
        for running in left:
            running.context.request_stop("shutdown")
        grace = time.monotonic() + 2.0
        while time.monotonic() < grace:
            with self.lock:
                if not self.running:
                    break
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop the reporter and watchdog threads (after `drain`: nothing is left to report)."""
        self.closed.set()
        for thread in self.threads:
            thread.join(timeout=2.0)
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)

    def _take_slots(self) -> int:
        if not self.slots.acquire(timeout=1.0):
            return 0
        taken = 1
        while taken < self.config.concurrency and self.slots.acquire(blocking=False):
            taken += 1
        return taken

    def _release(self, count: int) -> None:
        for _ in range(count):
            self.slots.release()

    def _start(self, entry: Entry, circuit: str | None) -> None:
        task: TaskMessage = entry.message
        registered = get_handler(task.handler)
        context = TaskContext.for_task(task)
        started = time.time()
        # The workflow deadline is the reaper's to enforce (TIMED_OUT, cancel flag); here only the
        # task's own timeout applies.
        timeout = task.timeout_seconds or self.config.task_timeout_seconds
        running = Running(entry.id, task, context, started, started + timeout, circuit=circuit)
        with self.lock:
            self.running[entry.id] = running
        try:
            config, revealed = reveal(task.config, self.config.secrets)
        except SecretMissing as exc:
            future = Future()
            future.set_exception(HandlerError(str(exc), code="secret_missing", permanent=True))
        else:
            context.redacted.extend(revealed)
            if registered is not None and registered.is_async:
                future = asyncio.run_coroutine_threadsafe(
                    registered.function(config, context), self._event_loop()
                )
            else:
                future = self.pool.submit(_call, registered, task, config, context)
        running.future = future
        future.add_done_callback(lambda f: self._finish(running, f))

    def _finish(self, running: Running, future: Future | None, timed_out: bool = False) -> None:
        """Called once per outcome source (handler done, timeout); only the first one counts."""
        with self.lock:
            if running.reported:
                return
            running.reported = True
        self.finished.put((running, future, timed_out))

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, name="async-handlers", daemon=True).start()
        return self.loop

    def _report_until_closed(self) -> None:
        while not self.closed.is_set():
            try:
                batch = [self.finished.get(timeout=REPORTER_WAKE_SECONDS)]
            except queue.Empty:
                continue
            while True:
                try:
                    batch.append(self.finished.get_nowait())
                except queue.Empty:
                    break
            done, handed_back, dropped = [], [], []
            for running, future, timed_out in batch:
                try:
                    outcome = self._outcome(running, future, timed_out)
                except Exception as exc:  # never lose the reporter: the task fails, visibly
                    outcome = self._failure(running, exc)
                if outcome == "shutdown":
                    handed_back.append(running)
                elif outcome == "cancelled":
                    dropped.append(running.entry_id)
                else:
                    done.append((running.entry_id, outcome, running.circuit))
            crash_point("before_publish")
            # One script publishes the completions and acks their task entries: no crash can
            # fall between the two.
            self._with_retry(
                lambda done=done: self.streams.publish_completions(
                    done, circuit=(self.config.circuit_failure_threshold, self.config.circuit_reset_seconds)
                )
            )
            crash_point("after_publish")
            for running in handed_back:
                self._with_retry(lambda r=running: self.streams.redeliver_task(r.entry_id, r.task))
            self._with_retry(
                lambda dropped=dropped: self.streams.drop(self.streams.tasks, WORKERS_GROUP, dropped)
            )
            with self.lock:  # a task leaves `running` and gives its slot back as one step
                for running, _, _ in batch:
                    self.running.pop(running.entry_id, None)
                self._release(len(batch))

    def _with_retry(self, operation) -> None:
        """Retry until Redis takes it: a completion is the only record of the work done."""
        delay = 0.1
        while True:
            try:
                operation()
                self.write_outage.ended()
                return
            except Exception as exc:  # connection errors of any kind: keep the results and retry
                self.write_outage.failed(exc)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    def _outcome(self, running: Running, future: Future | None, timed_out: bool):
        """A CompletionMessage, or 'shutdown' (hand back) / 'cancelled' (drop)."""
        if timed_out:
            exc: BaseException | None = TaskTimeout(
                f"task exceeded its timeout of {running.expires - running.started:.3g} s", code="task_timeout"
            )
        else:
            reason = running.context.stop_reason[0] if running.context.stop_reason else "cancelled"
            exc = Interrupted(reason) if future.cancelled() else future.exception()
        if isinstance(exc, Interrupted):
            if exc.reason == "timeout":
                exc = TaskTimeout("task exceeded its timeout", code="task_timeout")
            elif exc.reason in {"shutdown", "cancelled"}:
                return exc.reason
        if exc is None:
            output, exc = _checked_output(future.result(), self.config.max_output_bytes)
            if exc is None:
                return self._completion(running, ok=True, output=output)
        return self._failure(running, exc)

    def _failure(self, running: Running, exc: BaseException) -> CompletionMessage:
        task = running.task
        completion = self._completion(running, ok=False, error=error_detail(exc))
        log.warning(
            "task_failed",
            execution_id=task.execution_id,
            node_id=task.node_id,
            attempt=task.attempt,
            category=completion.error["category"],
            error=completion.error["message"],
        )
        return completion

    def _completion(self, running: Running, **outcome) -> CompletionMessage:
        """The task's outcome as it leaves the worker: every secret it saw scrubbed from it."""
        if running.context.redacted:
            outcome = scrub(outcome, running.context.redacted)
        return CompletionMessage.for_task(
            running.task,
            # Recorded on the cluster's clock, not this host's (which may be skewed).
            started_at=self.streams.cluster_time(running.started),
            finished_at=self.streams.now(),
            worker=self.consumer,
            **outcome,
        )

    def _watch_until_closed(self) -> None:
        last_beat = last_check = 0.0
        interval = max(0.2, self.config.visibility_timeout_seconds / 3)
        check_every = min(interval, CANCEL_CHECK_SECONDS)
        while not self.closed.wait(WATCHDOG_TICK_SECONDS):
            now = time.time()
            with self.lock:
                live = [r for r in self.running.values() if not r.reported]
            for running in live:
                if now >= running.expires:
                    running.context.request_stop("timeout")
                    # Report the timeout first: cancelling fires the done callback, which must
                    # find the outcome already taken.
                    self._finish(running, running.future, timed_out=True)
                    if running.future is not None:
                        running.future.cancel()
            if not live:
                continue
            try:
                if now - last_beat >= interval:
                    last_beat = now
                    self.streams.heartbeat(
                        self.consumer, [(r.entry_id, r.task) for r in live], claim_ms=self.config.claim_ms
                    )
                if now - last_check >= check_every:
                    last_check = now
                    cancelled = self.streams.cancelled_executions({r.task.execution_id for r in live})
                    for running in live:
                        if running.task.execution_id in cancelled:
                            running.context.request_stop("cancelled")
                self.watch_outage.ended()
            except Exception as exc:  # Redis blip: the next tick tries again
                self.watch_outage.failed(exc)


def _call(registered, task: TaskMessage, config: dict, context: TaskContext):
    if registered is None:
        raise HandlerError(
            f"no handler named {task.handler!r} in this worker", code="unknown_handler", permanent=True
        )
    return registered.function(config, context)


def _circuit(task: TaskMessage) -> str | None:
    """The circuit breaker this task answers to (None: it has none)."""
    try:
        return circuit_for(task.handler, task.config)
    except Exception as exc:  # a project handler's circuit function failed: one circuit for it
        log.warning("circuit_name_failed", handler=task.handler, error=str(exc))
        return task.handler


def _checked_output(output, max_bytes: int) -> tuple[dict | None, BaseException | None]:
    """Handlers return a dict PostgreSQL can store as JSON (None means {}, other values are
    wrapped): no NaN or infinity, no NUL or lone surrogates, bounded nesting and size."""
    output = {} if output is None else output
    if not isinstance(output, dict):
        output = {"result": output}
    try:
        check_json_value(output, "handler output")
        size = len(json.dumps(output, allow_nan=False))
    except (DagError, TypeError, ValueError, RecursionError) as err:
        return None, HandlerError(
            f"handler output cannot be stored: {err}", code="invalid_output", permanent=True
        )
    if size > max_bytes:
        return None, HandlerError(
            f"handler output is {size} bytes, the limit is {max_bytes} (OUTPUT_MAX_BYTES)",
            code="output_too_large",
            permanent=True,
        )
    return output, None
