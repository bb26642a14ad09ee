"""A loopback TCP server that only counts the connections it accepts: a stand-in for the
codenv server's own port in tests of what a sandbox can reach."""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Self


class Listener:
    """Listens on 127.0.0.1 (a free port) until closed; `accepted` counts connections."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.handle(connection)

    def handle(self, connection: socket.socket) -> None:
        """Count and close; subclasses may serve the connection instead."""
        self.accepted += 1
        connection.close()

    def close(self) -> None:
        self.socket.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        self.socket.close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
