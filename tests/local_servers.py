"""Servers on loopback for the outbound and handler tests (no internet): a scripted HTTP server
that records every request it answers, and a canary that counts every connection made to it."""

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Hit:
    """One request the scripted server answered."""

    method: str
    path: str
    headers: Message  # case-insensitive, as HTTP header names are
    body: bytes


@dataclass
class Reply:
    """What a route answers; `delay` seconds of silence first (timeouts); `undeclared` sends the
    body without a Content-Length, until the connection closes (size limits while streaming)."""

    status: int = 200
    body: bytes | str | dict | list = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    undeclared: bool = False

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return body, headers


Route = Callable[[Hit], Reply]


class ScriptedServer:
    """An HTTP/1.1 server on `host`, port chosen by the system, answering each path with its
    route (404 otherwise) and recording every hit."""

    def __init__(self, host: str = "127.0.0.1"):
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                hit = Hit(self.command, self.path, self.headers, self.rfile.read(length))
                server.hits.append(hit)
                route = server.routes.get(self.path.split("?", 1)[0])
                reply = route(hit) if route else Reply(404, "no such route")
                if reply.delay:
                    threading.Event().wait(reply.delay)
                body, headers = reply.encoded()
                try:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if reply.undeclared:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    elif "Content-Length" not in headers:
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout, size limit): that is the test's point

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.host = host
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, reply: Reply | Route) -> None:
        self.routes[path] = reply if callable(reply) else (lambda hit, reply=reply: reply)

    def hits_on(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path.split("?", 1)[0] == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Canary:
    """Listens on 127.0.0.1 and ::1 on one port and counts every connection accepted (a request
    never has to be sent for it to count)."""

    def __init__(self, port: int = 0):
        self.connections = 0
        self._lock = threading.Lock()
        first = socket.create_server(("127.0.0.1", port))
        self.port = first.getsockname()[1]
        self.sockets = [first]
        with contextlib.suppress(OSError):  # no IPv6 loopback here: the IPv4 side still counts
            self.sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        for sock in self.sockets:
            threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                connection, _ = sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            connection.close()

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
