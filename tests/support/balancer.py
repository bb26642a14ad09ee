"""A round-robin TCP load balancer on loopback, in front of several servers as one address.

Each new client connection goes to the next upstream in turn; an upstream that refuses the
connection (its process is gone) is skipped for the next one, as nginx's
`proxy_next_upstream error` does. Bytes are relayed as they come (no buffering: live log
streams stay live), and a connection an upstream drops is dropped to the client: a request in
flight on a server that dies fails at the client, as it would behind nginx.

`routes` says which upstream each client connection (by its local port) went to, so that a
test knows which server answered a request.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from support.workers import close_quietly, relay

CONNECT_TIMEOUT = 3


class Balancer:
    """One address (`url`) for the servers at `upstreams` (their base URLs)."""

    def __init__(self, upstreams: Sequence[str]) -> None:
        self._upstreams = [_address(url) for url in upstreams]
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._lock = threading.Lock()
        self._next = 0
        self.served = [0] * len(upstreams)  # connections relayed to each upstream
        self.refused = [0] * len(upstreams)  # connections it refused (then skipped)
        self.routes: dict[int, int] = {}  # client port -> upstream index
        threading.Thread(target=self._accept, daemon=True).start()

    def upstream_of(self, client_port: int) -> int:
        """The upstream the client connection from `client_port` was relayed to."""
        with self._lock:
            return self.routes[client_port]

    def _accept(self) -> None:
        while True:
            try:
                client, peer = self._server.accept()
            except OSError:
                return
            with self._lock:
                first, self._next = self._next, (self._next + 1) % len(self._upstreams)
            chosen = self._connect(first)
            if chosen is None:
                close_quietly(client)  # every upstream refused: the client sees its connection drop
                continue
            index, upstream = chosen
            with self._lock:
                self.served[index] += 1
                self.routes[peer[1]] = index
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=relay, args=(source, target), daemon=True).start()

    def _connect(self, first: int) -> tuple[int, socket.socket] | None:
        """A connection to the first upstream, from `first` on, that accepts one."""
        count = len(self._upstreams)
        for index in ((first + step) % count for step in range(count)):
            try:
                upstream = socket.create_connection(self._upstreams[index], timeout=CONNECT_TIMEOUT)
            except OSError:
                with self._lock:
                    self.refused[index] += 1
                continue
            upstream.settimeout(None)
            return index, upstream
        return None

    def close(self) -> None:
        close_quietly(self._server)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80
