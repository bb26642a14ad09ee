"""The FastAPI application: one Codenv context, the API's routers and the console's pages."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from codenv import __version__
from codenv.api import (
    routes_admin,
    routes_bundles,
    routes_cluster,
    routes_containers,
    routes_envs,
    routes_resources,
)
from codenv.api.dss_compat.app import mount_dss_api
from codenv.http.errors import install_error_handlers
from codenv.http.etag import ETags
from codenv.http.limits import BodyLimit
from codenv.http.request_log import RequestLog
from codenv.http.sessions import open_sessions
from codenv.services.app import Codenv, open_codenv
from codenv.services.leases import start_reaper
from codenv.settings import Settings, load_settings
from codenv.web.render import error_page
from codenv.web.routes import ROUTERS as CONSOLE_ROUTERS


def create_app(
    settings: Settings, codenv: Codenv | None = None, *, settle_heap: bool = False
) -> FastAPI:
    """The server on `settings`' home; `codenv` lets tests and the CLI share an open context.
    `settle_heap`: a server process's own (see `_settle_heap`), not a test's."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = codenv is None
        app.state.codenv = codenv or open_codenv(settings)
        open_sessions(app.state, settings.home)
        if settle_heap:
            _settle_heap()
        # Expired leases fail their builds; a dead process's queued builds run here.
        reaper = start_reaper(app.state.codenv)
        try:
            yield
        finally:
            reaper.stop()
            if opened:
                app.state.codenv.close()

    app = FastAPI(
        title="codenv",
        version=__version__,
        lifespan=lifespan,
        # /docs is a console page (web/docs_page.py): behind login, assets from the package.
        docs_url=None,
        redoc_url=None,
        description="Shared Python code environments: build, revisions, resources, "
        'permissions. Errors are {"error": {"code", "message", "field"}}.',
    )
    install_error_handlers(app)
    # Inside the body limit and the log: a 304 is logged as what the client got.
    app.add_middleware(ETags)
    # Bodies are limited before authentication and parsing.
    app.add_middleware(BodyLimit, settings=settings, page=error_page)
    # Added last, so outermost: every request is logged, refused ones too.
    app.add_middleware(RequestLog)
    api = (routes_envs, routes_resources, routes_bundles, routes_containers, routes_admin)
    _add_routes(app, [module.router for module in (*api, routes_cluster)])
    # The seed system's public API (dataikuapi clients), beside /api/v1 and out of its schema.
    mount_dss_api(app)
    _add_routes(app, CONSOLE_ROUTERS)
    return app


def _add_routes(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """The routers' routes, on the app itself. Included instead (`include_router`), each path
    was tried against every route before it through FastAPI's per-route bookkeeping of
    included routers (~10 µs a route here): a console page, tried after every API route,
    spent more CPU finding its handler than reading its data."""
    for router in routers:
        app.router.routes.extend(router.routes)


def _settle_heap() -> None:
    """What a server holds from its start (modules, routes, schemas, the engine) is never
    garbage: it is taken out of the collector's sight. Its full collections walked all of it
    while holding the GIL, ~100 ms each every few hundred requests, stalling every request of
    the process; now they walk only what requests made since (~5-25 ms)."""
    gc.collect()
    gc.freeze()


def create_app_from_env() -> FastAPI:
    """uvicorn's factory for each worker process of `codenv serve --workers N`: settings come
    from the environment (never from a command line, which other users can read), and each
    worker opens its own context (engine, build threads) when it starts."""
    return create_app(load_settings(), settle_heap=True)
