"""/docs: the API's interactive documentation (Swagger UI) for logged-in users.

Swagger UI's files come from the installed `swagger-ui-bundle-v2` package (pinned in
pyproject.toml), served from this server: no CDN, no external URL, and the console's strict
CSP holds (the page's own script is /static/docs.js). The schema it shows is /openapi.json.
"""

from __future__ import annotations

from functools import cache
from importlib.resources.abc import Traversable

import swagger_ui_bundle  # type: ignore[import-untyped]  # (it ships no type information)
from fastapi import APIRouter, Response

from codenv.http.deps import ViewerDep
from codenv.web.render import ConsoleRoute, render, viewer_context

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
SWAGGER_UI: Traversable = swagger_ui_bundle.swagger_ui_path

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}


@router.get("/docs")
def docs(viewer: ViewerDep) -> Response:
    return render("docs.html", schema="/openapi.json", **viewer_context(viewer))


@cache
def _asset(name: str) -> bytes:
    return SWAGGER_UI.joinpath(name).read_bytes()


@router.get("/docs/assets/{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response("not found", status_code=404, media_type="text/plain")
    headers = {"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(_asset(name), media_type=ASSETS[name], headers=headers)
