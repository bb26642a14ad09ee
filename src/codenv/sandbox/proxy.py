"""The forwarding proxy of a box in `indexes` mode: outside the box, on a listener inside it.

An HTTP proxy (CONNECT for https, GET and HEAD of absolute http:// URLs) that connects only
to the (host, port) pairs of the box's policy, resolving names itself (the box has no DNS),
through the node's own proxy when it has one (sandbox/upstream.py), and answers everything
else with 403 and the reason, which it logs and keeps for the build log. One asyncio loop in
a thread of its own per box, for the box's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading

from codenv.sandbox.network import HostPort, Refused, check_allowed
from codenv.sandbox.proxy_http import (
    ESTABLISHED,
    MAX_HEAD_BYTES,
    closing_response_head,
    error_response,
    parse_request,
    read_head,
)
from codenv.sandbox.upstream import connect

logger = logging.getLogger(__name__)

# Each connection holds two of the server's descriptors: a box gets a bounded share.
MAX_CONNECTIONS = 64
# Kept for the build log (and logged) per box; a box repeating refused requests adds none.
MAX_REFUSALS_KEPT = 50
_CHUNK = 256 * 1024


class IndexProxy:
    """The proxy of one box, serving on `listener` (a socket in the box's network namespace)
    from `start()` to `stop()`; `refused` lists what it refused, for the build log."""

    def __init__(self, listener: socket.socket, allowed: tuple[HostPort, ...]) -> None:
        self._listener = listener
        self._allowed = allowed
        self._refused: list[str] = []
        self._refusals = 0
        self._connections: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="codenv-sandbox-proxy", daemon=True)

    @property
    def refused(self) -> tuple[str, ...]:
        more = self._refusals - len(self._refused)
        return (*self._refused, *([f"… and {more} more refused requests"] if more else []))

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise self._failure

    def stop(self) -> None:
        """Close the listener and every connection; return once the thread has ended."""
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread.ident is not None:
            self._thread.join()
        self._listener.close()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # handed to start()'s caller
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, sock=self._listener, limit=MAX_HEAD_BYTES)
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for connection in self._connections:
                connection.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a connection's handler runs as a task
        if len(self._connections) >= MAX_CONNECTIONS:
            self._refuse(writer, Refused(f"over {MAX_CONNECTIONS} connections at once", 503))
            writer.close()
            return
        self._connections.add(task)
        try:
            await self._serve_request(reader, writer)
        except Refused as refused:
            self._refuse(writer, refused)
        except (OSError, EOFError, TimeoutError, asyncio.LimitOverrunError):
            pass  # the box or the index hung up, stalled or sent too much: nothing to forward
        except asyncio.CancelledError:
            pass  # the proxy is stopping (ended normally: 3.11 logs a cancelled handler)
        finally:
            writer.close()
            self._connections.discard(task)

    async def _serve_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request = parse_request(await read_head(reader))
        check_allowed(request.target, self._allowed)
        index_reader, index_writer = await connect(request)
        try:
            if request.method == "CONNECT":
                writer.write(ESTABLISHED)
                await _tunnel(reader, writer, index_reader, index_writer)
            else:
                writer.write(closing_response_head(await read_head(index_reader)))
                await _pipe(index_reader, writer)
        finally:
            index_writer.close()

    def _refuse(self, writer: asyncio.StreamWriter, refused: Refused) -> None:
        """Answer `refused` (sent when the connection closes) and keep it for the log."""
        self._refusals += 1
        if len(self._refused) < MAX_REFUSALS_KEPT:
            self._refused.append(f"network: {refused}")
            logger.warning("sandbox proxy refused a request: %s", refused)
        writer.write(error_response(refused.status, str(refused)))


async def _tunnel(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    index_reader: asyncio.StreamReader,
    index_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until both ends are done; an error on one way ends both."""
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_pipe(reader, index_writer))
            group.create_task(_pipe(index_reader, writer))
    except* OSError:
        pass  # a reset: the caller closes both connections


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(_CHUNK):
        writer.write(chunk)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
