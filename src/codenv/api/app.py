"""The FastAPI application: one Codenv context, the routers, one error handler."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from codenv import __version__
from codenv.api import routes_admin, routes_envs, routes_resources
from codenv.api.auth import secret_key
from codenv.api.errors import ERROR_RESPONSES, error_response, install_error_handlers
from codenv.services.app import Codenv, open_codenv
from codenv.settings import Settings
from codenv.web.routes import router as console_router

logger = logging.getLogger("codenv.api")


async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
    logger.exception("unexpected error", exc_info=error)
    return error_response(500, "internal_error", "internal error; the server log has details")


def create_app(settings: Settings, codenv: Codenv | None = None) -> FastAPI:
    """The API on `settings`' home; `codenv` lets tests and the CLI share an open context."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = codenv is None
        app.state.codenv = codenv or open_codenv(settings)
        app.state.secret_key = secret_key(settings.home)
        try:
            yield
        finally:
            if opened:
                app.state.codenv.close()

    app = FastAPI(
        title="codenv",
        version=__version__,
        lifespan=lifespan,
        description="Shared Python code environments: build, revisions, resources, "
        'permissions. Errors are {"error": {"code", "message", "field"}}.',
    )
    install_error_handlers(app)
    app.add_exception_handler(Exception, _unexpected)
    for module in (routes_envs, routes_resources, routes_admin):
        app.include_router(module.router, responses=ERROR_RESPONSES)
    app.include_router(console_router)
    return app
