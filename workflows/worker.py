"""Worker: reads tasks for its free slots, runs handlers in a bounded pool, reports completions.

Workers touch only Redis. A reporter thread publishes completions (and acks the tasks) as soon as
they finish, batching whatever finished together into one round trip.
"""

import asyncio
import hashlib
import json
import queue
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor

import structlog

from workflows.handlers import HandlerError, TaskContext, get_handler
from workflows.messages import CompletionMessage, TaskMessage
from workflows.streams import Entry, Streams

log = structlog.get_logger(__name__)
MAX_OUTPUT_BYTES = 1024 * 1024


class Worker:
    """One worker process's engine; `step()` does one read, `drain()` finishes in-flight work."""

    def __init__(self, streams: Streams, *, consumer: str, concurrency: int, block_ms: int):
        self.streams = streams
        self.consumer = consumer
        self.concurrency = concurrency
        self.block_ms = block_ms
        self.slots = threading.Semaphore(concurrency)
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="handler")
        self.finished: queue.SimpleQueue = queue.SimpleQueue()
        self.in_flight = 0
        self.in_flight_lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.reporter = threading.Thread(target=self._report_forever, name="reporter", daemon=True)
        self.reporter.start()

    def step(self) -> int:
        """Read at most as many tasks as there are free slots and start them; returns how many."""
        free = self._take_slots()
        if not free:
            return 0
        entries = self.streams.read_tasks(self.consumer, free, self.block_ms)
        for _ in range(free - len(entries)):
            self.slots.release()
        if not entries:
            return 0
        cancelled = self.streams.cancelled_among(
            e.message.execution_id for e in entries if e.message is not None
        )
        dropped = []
        for entry in entries:
            if entry.message is None or entry.message.execution_id in cancelled:
                if entry.message is None:
                    log.error("task_undecodable", entry_id=entry.id.decode(), error=str(entry.error))
                dropped.append(entry.id)
                self.slots.release()
                continue
            self._start(entry)
        self.streams.ack_tasks(dropped)
        return len(entries)

    def drain(self, timeout: float) -> bool:
        """Wait for in-flight tasks to finish and be reported; False if the bound ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.in_flight_lock:
                if self.in_flight == 0:
                    return True
            time.sleep(0.05)
        return False

    def _take_slots(self) -> int:
        if not self.slots.acquire(timeout=1.0):
            return 0
        taken = 1
        while taken < self.concurrency and self.slots.acquire(blocking=False):
            taken += 1
        return taken

    def _start(self, entry: Entry) -> None:
        task: TaskMessage = entry.message
        with self.in_flight_lock:
            self.in_flight += 1
        registered = get_handler(task.handler)
        context = TaskContext(
            execution_id=task.execution_id,
            node_id=task.node_id,
            attempt=task.attempt,
            params=task.params,
            upstream=task.upstream or {},
            deadline=task.deadline,
        )
        started = time.time()
        if registered is not None and registered.is_async:
            future = asyncio.run_coroutine_threadsafe(
                registered.function(task.config, context), self._event_loop()
            )
        else:
            future = self.pool.submit(self._call, registered, task, context)
        future.add_done_callback(lambda f: self.finished.put((entry.id, task, started, f)))

    @staticmethod
    def _call(registered, task: TaskMessage, context: TaskContext):
        if registered is None:
            raise HandlerError(
                f"no handler named {task.handler!r} in this worker", code="unknown_handler", permanent=True
            )
        return registered.function(task.config, context)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, name="async-handlers", daemon=True).start()
        return self.loop

    def _report_forever(self) -> None:
        while True:
            batch = [self.finished.get()]
            while True:
                try:
                    batch.append(self.finished.get_nowait())
                except queue.Empty:
                    break
            done = [
                (entry_id, self._completion(task, started, future))
                for entry_id, task, started, future in batch
            ]
            self._publish(done)
            with self.in_flight_lock:
                self.in_flight -= len(batch)
            for _ in batch:
                self.slots.release()

    def _publish(self, done: list) -> None:
        """Retry until Redis takes the completions: they are the only record of the work done."""
        delay = 0.1
        while True:
            try:
                self.streams.publish_completions(done)
                return
            except Exception as exc:  # connection errors of any kind: keep the results and retry
                log.warning("completion_publish_failed", error=str(exc), retry_in=delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _completion(self, task: TaskMessage, started: float, future: Future) -> CompletionMessage:
        common = dict(
            task_id=task.task_id,
            execution_id=task.execution_id,
            node_id=task.node_id,
            attempt=task.attempt,
            started_at=started,
            finished_at=time.time(),
            worker=self.consumer,
        )
        exc = future.exception()
        if exc is None:
            output = future.result()
            output = {} if output is None else output
            if not isinstance(output, dict):
                output = {"result": output}
            try:
                size = len(json.dumps(output))
            except (TypeError, ValueError) as err:
                exc = HandlerError(
                    f"handler output is not JSON-serialisable: {err}", code="invalid_output", permanent=True
                )
            else:
                if size > MAX_OUTPUT_BYTES:
                    exc = HandlerError(
                        f"handler output is {size} bytes, the limit is {MAX_OUTPUT_BYTES}",
                        code="output_too_large",
                        permanent=True,
                    )
                else:
                    return CompletionMessage(ok=True, output=output, **common)
        log.warning(
            "task_failed",
            execution_id=task.execution_id,
            node_id=task.node_id,
            attempt=task.attempt,
            error=str(exc),
        )
        return CompletionMessage(ok=False, error=error_detail(exc), exhausted=True, **common)


def error_detail(exc: BaseException) -> dict:
    """What a failed attempt records: code, message, whether permanent, traceback and its hash."""
    trace = "".join(traceback.format_exception(exc))
    return {
        "code": getattr(exc, "code", exc.__class__.__name__),
        "category": "handler",
        "message": str(exc) or exc.__class__.__name__,
        "permanent": bool(getattr(exc, "permanent", False)),
        "traceback": trace[-8000:],
        "traceback_hash": hashlib.sha256(trace.encode()).hexdigest()[:16],
    }
