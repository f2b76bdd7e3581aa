"""The shapes, driven against the engine through its REST API only."""

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from urllib.parse import urlencode, urlsplit

from bench import workloads

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
REQUEST_TIMEOUT = 60.0
# How long one POST /workflow/run waits for the end (the API's LONG_POLL_MAX_SECONDS default).
RUN_WAIT = 30.0


class ApiError(Exception):
    """A request that did not get the answer the shape needs (non-2xx or no response)."""


@dataclass
class LoadResult:
    """What the concurrent-clients shape saw, raw; figures are derived in `bench.suite`."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0


class Http:
    """One keep-alive HTTP/1.1 connection speaking JSON. The standard library's http.client, not
    httpx: the clients share the 2 cores with the system under test, and httpx cost about 8 ms of
    CPU per load workflow (40 % of the machine), this about a tenth of that."""

    def __init__(self, base_url: str, token: str):
        url = urlsplit(base_url)
        self.connection = HTTPConnection(url.hostname, url.port, timeout=REQUEST_TIMEOUT)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def __enter__(self) -> "Http":
        return self

    def __exit__(self, *exc) -> None:
        self.connection.close()

    def request(self, method: str, path: str, *, json_body=None, params=None) -> tuple[int, bytes]:
        if params:
            path = f"{path}?{urlencode(params)}"
        body = None if json_body is None else json.dumps(json_body).encode()
        self.connection.request(method, path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()


class EngineClient:
    """One system under test as the API sees it: a base URL and a token."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self.token = token

    def http(self) -> Http:
        return Http(self.base_url, self.token)

    def load(
        self, *, workflows: int, clients: int, poll: float, timeout: float, one_request: bool = False
    ) -> LoadResult:
        """`clients` threads, each with its own keep-alive connection: submit, trigger, poll until
        terminal; with `one_request`, POST /workflow/run?wait= instead (polling only if it has
        not ended within the wait)."""
        result = LoadResult()
        lock = threading.Lock()
        remaining = iter(range(workflows))
        start, finished = threading.Event(), threading.Event()
        deadline_box: list[float] = []
        clock = [0.0]

        def take() -> int | None:
            if finished.is_set() or time.monotonic() > deadline_box[0]:
                return None
            with lock:
                return next(remaining, None)

        def client_loop() -> None:
            with self.http() as http:
                _request(http, "GET", "/health")  # open the connection before the clock starts
                start.wait()
                while (index := take()) is not None:
                    began = time.perf_counter()
                    try:
                        if one_request:
                            status = run_and_wait(http, workloads.two_node(index), deadline_box[0])
                        else:
                            execution_id = submit(http, workloads.two_node(index))
                            trigger(http, execution_id)
                            status = wait_terminal(http, execution_id, poll, deadline_box[0])
                    except ApiError as exc:
                        at = time.perf_counter() - clock[0]
                        with lock:
                            result.errors.append(f"{exc} (workflow {index}, t+{at:.1f}s)")
                            result.statuses["ERROR"] += 1
                        continue
                    with lock:
                        result.statuses[status] += 1
                        if status in TERMINAL:
                            result.latencies.append(time.perf_counter() - began)

        threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # let every client open its connection
        began = clock[0] = time.perf_counter()
        deadline_box.append(time.monotonic() + timeout)
        start.set()
        try:
            for thread in threads:
                thread.join(timeout=max(0.0, deadline_box[0] + REQUEST_TIMEOUT - time.monotonic()))
        finally:
            finished.set()  # on Ctrl-C too: no client starts another workflow
        result.wall_seconds = time.perf_counter() - began
        return result

    def run_to_end(self, definition: dict, *, poll: float, timeout: float) -> dict:
        """Submit, then time trigger -> terminal status seen (long polls of `poll` s each)."""
        with self.http() as http:
            _request(http, "GET", "/health")
            began = time.perf_counter()
            execution_id = submit(http, definition)
            submitted = time.perf_counter()
            trigger(http, execution_id)
            status = wait_terminal(http, execution_id, poll, time.monotonic() + timeout)
            finished = time.perf_counter()
            outcome = {
                "execution_id": execution_id,
                "status": status,
                "submit_seconds": submitted - began,
                "seconds": finished - submitted,
                "tasks": len(definition["dag"]["nodes"]),
            }
            if status != "COMPLETED":
                outcome["progress"] = _request(http, "GET", f"/api/v1/workflow/{execution_id}").get(
                    "progress"
                )
            return outcome

    def submit_only(self, definition: dict) -> dict:
        """Time one POST /api/v1/workflow (validate and store; nothing runs)."""
        with self.http() as http:
            _request(http, "GET", "/health")
            began = time.perf_counter()
            execution_id = submit(http, definition)
            return {"seconds": time.perf_counter() - began, "execution_id": execution_id}


def submit(http: Http, definition: dict) -> str:
    return _request(http, "POST", "/api/v1/workflow", json_body=definition)["execution_id"]


def trigger(http: Http, execution_id: str) -> None:
    _request(http, "POST", f"/api/v1/workflow/trigger/{execution_id}", json_body={})


def run_and_wait(http: Http, definition: dict, deadline: float) -> str:
    """One request submits, triggers and long-polls (the answer is the final status when the
    execution ends within RUN_WAIT seconds); long polls after that if it has not."""
    answer = _request(
        http, "POST", "/api/v1/workflow/run", json_body={"workflow": definition}, params={"wait": RUN_WAIT}
    )
    if answer["status"] in TERMINAL:
        return answer["status"]
    return wait_terminal(http, answer["execution_id"], RUN_WAIT, deadline)


def wait_terminal(http: Http, execution_id: str, poll: float, deadline: float) -> str:
    """Poll the status every `poll` seconds until a terminal status or the deadline. Each poll is
    a long poll (`?wait=poll`): the server answers as soon as the execution ends."""
    status = "UNKNOWN"
    while time.monotonic() < deadline:
        began = time.monotonic()
        status = _request(http, "GET", f"/api/v1/workflow/{execution_id}", params={"wait": poll})["status"]
        if status in TERMINAL:
            return status
        time.sleep(max(0.0, began + poll - time.monotonic()))
    return f"STUCK({status})"


def _request(http: Http, method: str, path: str, **kwargs) -> dict:
    try:
        status, body = http.request(method, path, **kwargs)
    except (OSError, HTTPException) as exc:
        raise ApiError(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
    if status >= 300:
        raise ApiError(f"{method} {path}: HTTP {status}: {body[:300].decode(errors='replace')}")
    return json.loads(body)
