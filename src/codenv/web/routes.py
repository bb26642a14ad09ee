"""Console pages: login and logout, the code envs list, New Python env, code env requests."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from codenv.domain.errors import CodenvError
from codenv.domain.spec import EnvSpec
from codenv.http.auth import (
    STALE_FORM,
    client_source,
    forget_login_token,
    login_token,
    login_token_matches,
    safe_next,
    set_login_token,
)
from codenv.http.deps import SubmittedDep, Viewer, ViewerDep, codenv_of
from codenv.http.errors import ShownError
from codenv.http.sessions import end_session, start_session
from codenv.http.staging import read_form
from codenv.services import envs
from codenv.services.actor import require_create
from codenv.services.authentication import authenticate_password
from codenv.services.env_listing import ENV_STATUSES, EnvFilter, find_envs
from codenv.services.listing import Page
from codenv.services.read_cache import derived
from codenv.web import (
    admin_accounts,
    admin_node,
    admin_pages,
    bundle_pages,
    container_pages,
    docs_page,
    env_pages,
    request_pages,
)
from codenv.web.paging import PAGE_SIZE, page_links
from codenv.web.render import (
    ConsoleRoute,
    error_page,
    render,
    render_form,
    rendered_once,
    see_other,
    static_file,
    viewer_context,
)
from codenv.web.request_pages import NOT_INSTALLED, default_python, offered_pythons

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


@router.get("/static/{name}")
def static(name: str) -> Response:
    return static_file(name)


def _login_page(request: Request, status: int = 200, **context: Any) -> Response:
    token = login_token()
    response = render("login.html", status=status, user=None, login_csrf=token, **context)
    set_login_token(request, response, token)
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, next=safe_next(next), name="")


def _log_in(request: Request, name: str, password: str, target: str) -> Response:
    app = codenv_of(request)
    try:
        actor = authenticate_password(app, name, password, client_source(request))
    except CodenvError as error:
        return _login_page(request, error.status, next=target, name=name, error=error.message)
    response = see_other(target)
    start_session(request, response, app, actor)
    forget_login_token(response)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    await form.close()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "/")))
    if not login_token_matches(request, str(form.get("csrf", ""))):
        return _login_page(request, 403, next=target, name=name, error=STALE_FORM)
    # The argon2 check takes a tenth of a second of CPU: never on the event loop.
    return await run_in_threadpool(_log_in, request, name, password, target)


@router.post("/logout")
def logout(request: Request, form: SubmittedDep) -> Response:
    response = see_other("/login")
    end_session(request, response, form.app, form.actor.source)
    return response


@router.get("/")
def env_list(
    viewer: ViewerDep,
    prefix: str = "",
    owner: str = "",
    status: str = "",
    python: str = "",
    after: str = "",
    limit: int = PAGE_SIZE,
) -> Response:
    """One page of the envs the viewer may use, filtered and paged by the database."""
    filters = EnvFilter(owner=owner.strip(), status=status, python=python.strip(), prefix=prefix)
    failed: CodenvError | None = None
    page = Page((), None)
    try:
        page = find_envs(viewer.app, viewer.actor, filters, limit=limit, cursor=after or None)
    except CodenvError as refused:
        failed = refused
    kept = {"prefix": prefix, "owner": owner, "status": status, "python": python}
    size = None if limit == PAGE_SIZE else limit
    return render_form(
        "envs.html",
        failed,
        envs=page.items,
        rows=rendered_once("_env_rows.html", page, envs=page.items),
        filters=kept,
        filtered=any(kept.values()),
        statuses=ENV_STATUSES,
        limit=size,
        **page_links("/", page, after, size, **kept),
        may_create=viewer.actor.may_create,
        # Once per page the read cache hands out: Jinja's selectattr over its rows cost more.
        may_update_one=derived(
            page, "may update one", lambda: any(env.capabilities.may_update for env in page.items)
        ),
        **viewer_context(viewer),
    )


def _new_env_page(viewer: Viewer, failed: CodenvError | None = None, **context: Any) -> Response:
    pythons = offered_pythons(viewer.app, viewer.actor)
    defaults: dict[str, Any] = {
        "name": "",
        "python": default_python(pythons),
        "core": True,
        "jupyter": False,
    }
    defaults.update(context)
    return render_form(
        "new_env.html",
        failed,
        pythons=pythons,
        not_installed=NOT_INSTALLED,
        **defaults,
        **viewer_context(viewer),
    )


@router.get("/new-env")
def new_env_form(viewer: ViewerDep) -> Response:
    require_create(viewer.actor)
    return _new_env_page(viewer)


@router.get("/new-env/check")
def check_name(viewer: ViewerDep, name: str = "") -> JSONResponse:
    """The identifier as typed, checked with the same rules and messages as the API."""
    try:
        envs.check_new_name(viewer.app, name)
    except CodenvError as error:
        return JSONResponse({"ok": False, "message": error.message})
    return JSONResponse({"ok": True, "message": f"{name} is available"})


@router.post("/new-env")
def create_env(form: SubmittedDep) -> Response:
    name = form.text("name").strip()
    spec = EnvSpec(
        python=form.text("python"),
        install_core_packages=form.flag("core"),
        install_jupyter_support=form.flag("jupyter"),
    )
    try:
        created = envs.create_env(form.app, form.actor, name, spec)
    except CodenvError as error:
        return _new_env_page(
            form,
            error,
            name=name,
            python=spec.python,
            core=spec.install_core_packages,
            jupyter=spec.install_jupyter_support,
        )
    return see_other(f"/envs/{created.env}/revisions?build={created.build_id}")


@router.get("/favicon.ico")
def favicon() -> Response:
    # Browsers ask for /favicon.ico whatever the pages say: the same SVG.
    return static_file("favicon.svg")


# Unknown URLs: tried after every other route of the app.
fallback = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


@fallback.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def not_found(path: str) -> Response:
    """Unknown URLs, whatever the method: the 404 page (the API keeps its JSON 404). Every
    method: a route for GET alone would turn a POST to an unknown API path into a 405 instead
    of a 404."""
    if path == "api" or path.startswith("api/"):
        raise HTTPException(status_code=404)
    return error_page(ShownError(404, "not_found", f"There is no page at /{path}.", None))


# Every page of the console, in the order their paths are tried (none of them overlap but the
# fallback, last): the env list, most asked for, first.
ROUTERS = (
    router,
    *env_pages.ROUTERS,
    bundle_pages.router,
    admin_pages.router,
    admin_accounts.router,
    request_pages.router,
    admin_node.router,
    container_pages.router,
    docs_page.router,
    fallback,
)
