"""Jinja2 rendering, the console's error pages, and its static files (served from the package)."""

from __future__ import annotations

import re
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from codenv.domain.errors import CodenvError
from codenv.http.deps import Viewer
from codenv.http.errors import ShownError, console_route, in_place
from codenv.services import node_settings, requests
from codenv.services.read_cache import derived

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
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
TITLES = {403: "Not allowed", 404: "Not found", 409: "Not now", 422: "Cannot do that"}
UNSANDBOXED = (
    "builds run unsandboxed: the code of every spec (packages' setup.py, local sources, init "
    "scripts) runs as codenv itself and can read the whole node. Turn the sandbox back on in "
    "Administration › Settings."
)


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
    # As strftime("%Y-%m-%d %H:%M:%S"), several times faster (a page shows 50).
    return parsed.replace(tzinfo=None).isoformat(" ", "seconds")


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


def rendered_once(template: str, shared: object, **context: Any) -> Markup:
    """`template` rendered with `context`, once for each `shared` object: while the data is
    unchanged the read cache hands every request the same page, and the rows drawn from it
    cost more than the rest of the page. `context` must come from `shared` alone."""
    return derived(
        shared,
        template,
        lambda: Markup(TEMPLATES.get_template(template).render(**context)),  # noqa: S704 (autoescaped)
    )


def viewer_context(viewer: Viewer) -> dict[str, Any]:
    """What every page shows of its viewer: who, the session's CSRF token for its forms, the
    node's kind, and (to administrators) the node's warnings and the number of pending
    requests."""
    warnings = []
    if viewer.actor.is_admin and node_settings.sandbox_mode(viewer.app) == node_settings.OFF:
        warnings.append(UNSANDBOXED)
    pending = 0
    if viewer.actor.is_admin:
        pending = requests.pending_count(viewer.app, viewer.actor)
    return {
        "user": viewer.actor,
        "csrf": viewer.csrf,
        "node_kind": node_settings.node_kind(viewer.app),
        "warnings": warnings,
        "pending_requests": pending,
    }


def render(template: str, /, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def render_form(
    template: str, /, failed: CodenvError | None = None, **context: Any
) -> HTMLResponse:
    """A page with forms; the error of the form just sent (`failed`) shown in place."""
    error = in_place(failed) if failed else None
    return render(template, status=error.status if error else 200, error=error, **context)


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path if request.method == "GET" else "/"
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return see_other("/login?next=" + quote(target, safe=""))


def error_page(error: ShownError) -> HTMLResponse:
    return render(
        "error.html",
        status=error.status,
        title=TITLES.get(error.status, "Error"),
        message=error.message,
        code=error.code,
        user=None,
    )


# Console routes answer errors as pages: a login redirect, or an error page in words.
ConsoleRoute = console_route(error_page, login_redirect)


_STATIC_NAME = re.compile(r"^[a-z0-9-]+\.(css|js|svg)$")


def static_file(name: str) -> Response:
    if not _STATIC_NAME.fullmatch(name):
        return Response("not found", status_code=404, media_type="text/plain")
    source = resources.files("codenv.web").joinpath("static", name)
    if not source.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    suffix = name[name.rindex(".") :]
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(source.read_bytes(), media_type=STATIC_TYPES[suffix], headers=headers)
