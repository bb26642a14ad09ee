"""Jinja2 rendering, the console's error pages, and its static files (served from the package)."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, select_autoescape

from codenv.domain.errors import CodenvError
from codenv.domain.secrets import mask_secrets
from codenv.services.actor import AuthenticationFailed
from codenv.web.session import LoginRequired

# No inline script or style anywhere: everything comes from /static, from this package.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
TITLES = {403: "Not allowed", 404: "Not found", 409: "Not now", 422: "Cannot do that"}


def human_size(size: int | None) -> str:
    if not size:
        return "—"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def when(moment: str | None) -> str:
    if not moment:
        return "—"
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    return parsed.strftime("%Y-%m-%d %H:%M:%S")


def seconds(duration: float | None) -> str:
    if duration is None:
        return "—"
    return f"{duration:.1f} s" if duration < 120 else f"{duration / 60:.1f} min"


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("codenv.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(size=human_size, when=when, seconds=seconds, urlpart=quote)
    return environment


TEMPLATES = _environment()


def render(template: str, /, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path if request.method == "GET" else "/"
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return see_other("/login?next=" + quote(target, safe=""))


def error_page(error: CodenvError, user: str | None = None) -> HTMLResponse:
    return render(
        "error.html",
        status=error.status,
        title=TITLES.get(error.status, "Error"),
        message=mask_secrets(error.message),
        code=error.code,
        user=user,
    )


class ConsoleRoute(APIRoute):
    """Console routes answer errors as pages: a login redirect, or an error page in words."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (LoginRequired, AuthenticationFailed):
                return login_redirect(request)
            except CodenvError as error:
                return error_page(error)

        return handle


_STATIC_NAME = re.compile(r"^[a-z0-9-]+\.(css|js)$")


def static_file(name: str) -> Response:
    if not _STATIC_NAME.fullmatch(name):
        return Response("not found", status_code=404, media_type="text/plain")
    source = resources.files("codenv.web").joinpath("static", name)
    if not source.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    suffix = name[name.rindex(".") :]
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(source.read_bytes(), media_type=STATIC_TYPES[suffix], headers=headers)
