"""`codenv serve`: the HTTP server (REST API) on this node's home."""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from codenv.cli.context import state
from codenv.domain.errors import Conflict, InvalidInput
from codenv.settings import Settings, load_settings

if TYPE_CHECKING:
    from codenv.services.app import Codenv

ADMIN_PASSWORD_VARIABLE = "CODENV_ADMIN_PASSWORD"  # noqa: S105 (a variable name)
WORKERS_VARIABLE = "CODENV_SERVE_WORKERS"
MAX_DEFAULT_WORKERS = 4
MAX_WORKERS = 64


def default_workers() -> int:
    """One server process per core this process may use, at most 4 (1 on a one-core machine)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_WORKERS, cores))


def serve(
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The port to listen on.")] = 8765,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            envvar=WORKERS_VARIABLE,
            help="Server processes (default: one per core, at most 4).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start the server. On the first start it creates the administrator `admin` and prints a
    one-time password (or takes it from CODENV_ADMIN_PASSWORD)."""
    count = default_workers() if workers is None else workers
    if not 1 <= count <= MAX_WORKERS:
        raise InvalidInput(
            f"--workers must be from 1 to {MAX_WORKERS}, got {count}", field="workers"
        )
    _check_port_free(host, port)
    cli = state()
    if count == 1:
        app = cli.open()
        _prepare_home(app, host, port, count)
        _serve_here(app, host, port)
        return
    if cli.url:
        cli.open()  # refused: a server runs on the node itself
    # Migrations, start-up recovery and the initial admin happen once, before any worker
    # starts, in a process of their own: the supervisor of the workers then holds none of
    # codenv's modules (some 70 MB) for as long as it serves.
    preparing = multiprocessing.get_context("spawn").Process(
        target=_prepare_child, args=(cli.home, host, port, count)
    )
    preparing.start()
    preparing.join()
    if preparing.exitcode != 0:
        raise typer.Exit(preparing.exitcode or 1)
    _serve_workers(load_settings(cli.home), host, port, count)


def _prepare_child(home: Path | None, host: str, port: int, count: int) -> None:
    """The preparation, in its own process: its errors end as the CLI's do (one line)."""
    from codenv.cli.main import report

    cli = state()
    cli.home = home
    try:
        try:
            _prepare_home(cli.open(), host, port, count)
        finally:
            cli.close()
    except Exception as error:
        sys.exit(report(error))


def _prepare_home(app: Codenv, host: str, port: int, count: int) -> None:
    """The initial administrator (its one-time password printed once) and the banner."""
    from codenv.services.accounts import ensure_initial_admin

    cli = state()
    name, password = ensure_initial_admin(app, os.environ.get(ADMIN_PASSWORD_VARIABLE))
    if password is not None and ADMIN_PASSWORD_VARIABLE not in os.environ:
        cli.err.print(
            f"created the administrator {name!r} with the one-time password: "
            f"{password}\n(log in and change it)",
            highlight=False,
            markup=False,
        )
    plural = f" ({count} processes)" if count > 1 else ""
    cli.err.print(
        f"codenv serving {app.settings.home} on http://{host}:{port}{plural}", highlight=False
    )


def _serve_here(app: Codenv, host: str, port: int) -> None:
    """One process: the context opened above serves."""
    import uvicorn

    from codenv.http.app import create_app

    # proxy_headers=False: uvicorn would believe X-Forwarded-For from loopback; codenv reads
    # it only from the proxies an administrator lists (`trustedProxies`, http/auth.py).
    served = create_app(app.settings, app, settle_heap=True)
    uvicorn.run(served, host=host, port=port, log_level="warning", proxy_headers=False)


def _serve_workers(settings: Settings, host: str, port: int, count: int) -> None:
    """`count` processes, each opening its own context (engine, build threads) from the
    environment: uvicorn starts them fresh (spawn), so nothing open here is shared."""
    import uvicorn

    # The workers need no admin password: keep it out of their environment.
    os.environ.pop(ADMIN_PASSWORD_VARIABLE, None)
    os.environ.update(worker_environment(settings, count))
    config = uvicorn.Config(
        "codenv.http.app:create_app_from_env",
        factory=True,
        workers=count,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
    )
    # As uvicorn.run: Ctrl-C stops the server quietly.
    with contextlib.suppress(KeyboardInterrupt):
        _own_socket_workers()(config, host, port).run()


def _own_socket_workers() -> type:
    from uvicorn import Config
    from uvicorn.supervisors import Multiprocess

    class OwnSocketWorkers(Multiprocess):
        """uvicorn's supervisor, each worker listening on a socket of its own (SO_REUSEPORT),
        among which the kernel spreads connections. On one shared socket the first worker to
        wake accepted every connection waiting (asyncio accepts up to the backlog at once):
        20 keep-alive clients split 17/3 and one core idled."""

        def __init__(self, config: Config, host: str, port: int) -> None:
            self._address = (host, port)
            self._given: list[socket.socket] = []
            super().__init__(config, sockets=[])

        @property
        def sockets(self) -> list[socket.socket]:
            # Read once per worker started. A socket left open here, its worker dead, would
            # keep getting connections that no one accepts.
            self._close_given()
            self._given = [_listening_socket(*self._address)]
            return self._given

        @sockets.setter
        def sockets(self, _unused: list[socket.socket]) -> None:
            pass

        # What starts workers (at start, a dead one replaced, SIGHUP/SIGTTIN), then closes
        # the copy of the last one's socket here.
        def init_processes(self) -> None:
            super().init_processes()
            self._close_given()

        def keep_subprocess_alive(self) -> None:
            super().keep_subprocess_alive()
            self._close_given()

        def handle_signals(self) -> None:
            super().handle_signals()
            self._close_given()

        def _close_given(self) -> None:
            for given in self._given:
                given.close()
            self._given = []

    return OwnSocketWorkers


def worker_environment(settings: Settings, workers: int) -> dict[str, str]:
    """The variables a worker needs to open the same home: the node's build threads are
    shared out between the workers (each runs at least one build at a time)."""
    return {
        "CODENV_HOME": str(settings.home),
        "CODENV_MAX_PARALLEL_BUILDS": str(max(1, settings.max_parallel_builds // workers)),
    }


def _listening_socket(host: str, port: int) -> socket.socket:
    family, kind, proto, _name, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    listening = socket.socket(family, kind, proto)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # One per worker; the port was checked free first, so no other server joins them.
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    # Ours, not uvicorn's (protocol 0): asyncio never set TCP_NODELAY on what a worker
    # accepted, and every answer waited ~40 ms for a delayed ACK (Nagle). Accepted
    # connections inherit it (Linux), whatever asyncio does.
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listening.bind(address)
    listening.listen(2048)
    listening.set_inheritable(True)
    return listening


def _check_port_free(host: str, port: int) -> None:
    """Say clearly when the port is taken (uvicorn would log a bare errno and exit)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise Conflict(
            f"port {port} on {host} is already in use (another codenv serve?); "
            "choose another with --port",
            field="port",
        ) from error


def register(root: typer.Typer) -> None:
    root.command()(serve)
