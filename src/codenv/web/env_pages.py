"""The env page and its tabs: Packages to install, Actually installed, Revisions & logs
(General: env_general.py; Resources and Permissions: env_tabs.py).

Edit controls are shown only to those whose level allows them; the services check every
change again, so a forced form post is refused all the same (403 page)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from codenv.domain.catalog import PackageSet
from codenv.domain.errors import CodenvError, Conflict, InvalidInput, NotFound
from codenv.domain.pythons import parse_minor
from codenv.domain.spec import SpecChanges
from codenv.http.deps import SubmittedDep, Viewer, ViewerDep
from codenv.http.params import MAX_ID, RowId
from codenv.services import builds, envs, logs, revisions
from codenv.services.installed import show_installed
from codenv.services.listing import Page, find_builds
from codenv.services.views import BuildInfo, EnvInfo
from codenv.web.paging import page_url
from codenv.web.render import ConsoleRoute, render, render_form, see_other, viewer_context
from codenv.web.request_pages import set_choices

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)

TABS = (
    ("general", "General", ""),
    ("packages", "Packages to install", "/packages"),
    ("installed", "Actually installed packages", "/installed"),
    ("containers", "Containerized execution", "/containers"),
    ("resources", "Resources", "/resources"),
    ("permissions", "Permissions", "/permissions"),
    ("revisions", "Revisions & logs", "/revisions"),
)


def page_context(viewer: Viewer, name: str, tab: str, **context: Any) -> dict[str, Any]:
    """What every tab shows; `env.capabilities` says which controls to offer."""
    return {
        **viewer_context(viewer),
        "env": envs.show_env(viewer.app, viewer.actor, name),
        "tab": tab,
        "tabs": TABS,
        **context,
    }


@router.post("/envs/{name}/delete")
def delete(name: str, form: SubmittedDep) -> Response:
    envs.delete_env(form.app, form.actor, name, delete_resources=form.flag("delete_resources"))
    return see_other("/")


def _sets(viewer: Viewer, env: EnvInfo) -> list[dict[str, Any]]:
    python = parse_minor(env.python)
    chosen = {ref.partition(":")[0] for ref in env.spec.get("package_sets", [])}
    offered = []
    for package_set in viewer.app.catalog.sets:
        offered.extend(_set_options(package_set, python, chosen))
    return offered


def _set_options(
    package_set: PackageSet, python: tuple[int, int], chosen: set[str]
) -> list[dict[str, Any]]:
    reason = None
    if package_set.id in chosen:
        reason = "already added"
    elif not package_set.supports(python):
        reason = f"needs Python {package_set.python_range}"
    variants = list(package_set.variants)
    return [
        {
            "value": package_set.id if len(variants) == 1 else f"{package_set.id}:{variant}",
            "label": package_set.title
            if len(variants) == 1
            else f"{package_set.title} ({variant})",
            "range": package_set.python_range,
            "reason": reason,
        }
        for variant in variants
    ]


def _error_line(error: CodenvError | None, text: str) -> dict[str, Any] | None:
    """The requested-packages line an error names, to show it beside the message."""
    if error is None or error.field != "requested" or error.line is None:
        return None
    number = error.line
    lines = text.splitlines()
    return {"number": number, "text": lines[number - 1] if 0 < number <= len(lines) else ""}


def _packages_page(
    viewer: Viewer,
    name: str,
    failed: CodenvError | None = None,
    requested: str | None = None,
    notice: str | None = None,
) -> Response:
    context = page_context(viewer, name, "packages")
    env: EnvInfo = context["env"]
    text = env.spec.get("requested", "") if requested is None else requested
    return render_form(
        "env_packages.html",
        failed,
        requested=text,
        sets=_sets(viewer, env),
        set_contents=set_choices(viewer.app),
        error_line=_error_line(failed, text),
        notice=notice,
        **context,
    )


@router.get("/envs/{name}/packages")
def packages(name: str, viewer: ViewerDep, notice: str | None = None) -> Response:
    return _packages_page(viewer, name, notice=notice)


@router.post("/envs/{name}/packages")
def save_packages(name: str, form: SubmittedDep) -> Response:
    requested = form.text("requested").replace("\r\n", "\n")
    changes = SpecChanges(
        requested=requested,
        add_sets=tuple(value for value in form.lists.get("add_set", []) if value),
        remove_sets=tuple(form.lists.get("remove_set", [])),
    )
    try:
        envs.save_spec(form.app, form.actor, name, changes)
        if form.text("action") != "update":
            return see_other(f"/envs/{name}/packages?notice=saved")
        result = builds.request_update(
            form.app,
            form.actor,
            name,
            upgrade_all=form.flag("upgrade_all"),
            rebuild=form.flag("rebuild"),
        )
    except CodenvError as error:
        return _packages_page(form, name, error, requested)
    if result.build_id is None:
        return see_other(f"/envs/{name}/packages?notice=up-to-date")
    return see_other(f"/envs/{name}/revisions?build={result.build_id}")


@router.get("/envs/{name}/installed")
def installed(
    name: str, viewer: ViewerDep, revision: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> Response:
    """The packages of the active revision, or of `revision` (linked from Revisions & logs)."""
    context = page_context(viewer, name, "installed")
    env: EnvInfo = context["env"]
    wanted = revision or env.active_revision
    shown = None
    if wanted is not None:
        shown = show_installed(viewer.app, viewer.actor, name, wanted)
    active = wanted == env.active_revision
    return render("env_installed.html", installed=shown, active=active, **context)


BUILDS_PAGE = 20
MAX_BUILD_ID = 64
MAX_CURSOR = 512  # a cursor holds one row's sort key (the service checks it again)


def _shown_build(viewer: Viewer, name: str, page: Page, wanted: str | None) -> BuildInfo | None:
    """The build whose log is shown: the one asked for (on this page or not), else the
    newest of the page."""
    listed: Sequence[BuildInfo] = page.items
    for build in listed:
        if build.id == wanted:
            return build
    if wanted:
        try:
            found = builds.get_build(viewer.app, viewer.actor, wanted)
        except NotFound:
            found = None  # an unknown id: the newest build, as for none
        if found is not None and found.env == name:
            return found
    return listed[0] if listed else None


def _revisions_page(
    viewer: Viewer,
    name: str,
    build: str | None,
    failed: CodenvError | None = None,
    after: str | None = None,
    limit: int = BUILDS_PAGE,
) -> Response:
    context = page_context(viewer, name, "revisions")
    page = find_builds(viewer.app, viewer.actor, name, limit=limit, cursor=after)
    shown = _shown_build(viewer, name, page, build)
    log, offset = ("", 0)
    if shown is not None:
        log, offset = logs.read_log(viewer.app, viewer.actor, shown.id)
    path, size = f"/envs/{name}/revisions", None if limit == BUILDS_PAGE else limit
    wanted = shown.id if shown else None
    return render_form(
        "env_revisions.html",
        failed,
        builds=page.items,
        next_builds=page_url(path, build=wanted, limit=size, after=page.next_cursor)
        if page.next_cursor
        else None,
        first_builds=page_url(path, build=wanted, limit=size) if after else None,
        revisions=revisions.list_revisions(viewer.app, viewer.actor, name),
        shown=shown,
        log=log,
        offset=offset,
        **context,
    )


@router.get("/envs/{name}/revisions")
def revisions_page(
    name: str,
    viewer: ViewerDep,
    build: Annotated[str | None, Query(max_length=MAX_BUILD_ID)] = None,
    after: Annotated[str | None, Query(max_length=MAX_CURSOR)] = None,
    limit: int = BUILDS_PAGE,
) -> Response:
    return _revisions_page(viewer, name, build, after=after, limit=limit)


@router.post("/envs/{name}/builds/{build_id}/cancel")
def cancel_build(name: str, build_id: str, form: SubmittedDep) -> Response:
    try:
        builds.cancel_build(form.app, form.actor, build_id)
    except CodenvError as error:
        return _revisions_page(form, name, build_id, error)
    return see_other(f"/envs/{name}/revisions?build={build_id}")


@router.post("/envs/{name}/rollback")
def rollback(name: str, form: SubmittedDep) -> Response:
    try:
        number = int(form.text("revision"))
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_ID:  # a larger one cannot exist (nor be looked up)
        raise InvalidInput("choose a revision to roll back to", field="revision")
    revisions.rollback(form.app, form.actor, name, number)
    return see_other(f"/envs/{name}/revisions")


@router.post("/envs/{name}/revisions/{number}/remove")
def remove_revision(name: str, number: RowId, form: SubmittedDep) -> Response:
    try:
        revisions.remove_revision(form.app, form.actor, name, number)
    except (Conflict, NotFound) as error:
        # Shown on the tab itself: the active one, or one removed meanwhile.
        return _revisions_page(form, name, None, error)
    return see_other(f"/envs/{name}/revisions")


# General, Resources and Permissions: their modules use `page_context` above, so they are
# imported last.
from codenv.web import env_general, env_tabs  # noqa: E402

ROUTERS = (router, env_general.router, env_tabs.router)
