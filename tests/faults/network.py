"""A network link the fault suite can cut: a TCP relay between one process and a server. Cut,
it relays nothing (bytes in flight wait, new connections are accepted but hang), as when a
partition drops every packet; restored, what waited flows on, as TCP delivers it after the
partition heals. Nothing is lost or reordered, so a client sees only silence, then its own
timeouts."""

import socket
import threading

from tests.faults.servers import free_port

CHUNK = 65536


class Link:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.open = threading.Event()
        self.open.set()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, name="link-accept", daemon=True).start()

    def cut(self) -> None:
        self.open.clear()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.open.set()
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self.open.wait()
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=self._relay, args=(source, target), daemon=True).start()

    def _relay(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                self.open.wait()
                data = source.recv(CHUNK)
                if not data:
                    break
                self.open.wait()  # read before the cut: delivered once the link is back
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                end.close()
