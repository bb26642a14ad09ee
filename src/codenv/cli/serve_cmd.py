"""`codenv serve`: the HTTP server (REST API) on this node's home."""

from __future__ import annotations

import errno
import os
import socket
from typing import Annotated

import typer

from codenv.cli.context import state
from codenv.domain.errors import Conflict

ADMIN_PASSWORD_VARIABLE = "CODENV_ADMIN_PASSWORD"  # noqa: S105 (a variable name)


def serve(
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The port to listen on.")] = 8765,
) -> None:
    """Start the server. On the first start it creates the administrator `admin` and prints a
    one-time password (or takes it from CODENV_ADMIN_PASSWORD)."""
    import uvicorn

    from codenv.http.app import create_app
    from codenv.services.accounts import ensure_initial_admin

    _check_port_free(host, port)
    cli = state()
    app = cli.open()
    name, password = ensure_initial_admin(app, os.environ.get(ADMIN_PASSWORD_VARIABLE))
    if password is not None and ADMIN_PASSWORD_VARIABLE not in os.environ:
        cli.err.print(
            f"created the administrator {name!r} with the one-time password: "
            f"{password}\n(log in and change it)",
            highlight=False,
            markup=False,
        )
    cli.err.print(f"codenv serving {app.settings.home} on http://{host}:{port}", highlight=False)
    # proxy_headers=False: uvicorn would believe X-Forwarded-For from loopback; codenv reads
    # it only from the proxies an administrator lists (`trustedProxies`, http/auth.py).
    uvicorn.run(
        create_app(app.settings, app),
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
    )


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
