"""The env page's Resources and Permissions tabs.

Resources: the init script and its two options, running it now, the env vars it set, and a
file explorer over the env's resources directory (browse, upload a file or a zip, download,
delete). Permissions: owner, usable by all, group grants. Controls are shown only to those
whose level allows them; the services check every change again (a forced post is a 403
page), and they confine every path to the resources directory (errors shown in place).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from codenv.domain.errors import CodenvError, InvalidInput
from codenv.http.auth import check_form_token
from codenv.http.deps import Submitted, SubmittedDep, Viewer, ViewerBeforeBody, ViewerDep
from codenv.http.errors import ShownError, in_place
from codenv.http.staging import read_form, staged_download, staged_upload
from codenv.resources.confine import Entry
from codenv.services import accounts, permissions, resources
from codenv.services.access_views import EnvPermissions
from codenv.web.env_pages import page_context
from codenv.web.render import ConsoleRoute, render_form, see_other

router: APIRouter = APIRouter(include_in_schema=False, route_class=ConsoleRoute)

GRANT_LEVELS = ("use", "update", "manage_users")
NOTICES = {
    "saved": "Init script saved. It runs when the env is updated, or now with Run now.",
    "uploaded": "Uploaded.",
    "deleted": "Deleted.",
    "permissions": "Permissions saved.",
}


def _parent(path: str) -> str:
    parent = str(PurePosixPath(path).parent)
    return "" if parent == "." else parent


def _crumbs(path: str) -> list[tuple[str, str]]:
    parts = [part for part in path.split("/") if part]
    return [(part, "/".join(parts[: index + 1])) for index, part in enumerate(parts)]


def _order(entry: Entry) -> tuple[bool, str]:
    return entry.kind != "dir", entry.name.lower()


def _row(entry: Entry) -> dict[str, Any]:
    modified = datetime.fromtimestamp(entry.modified).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "path": entry.path,
        "name": entry.name,
        "kind": entry.kind,
        "size": entry.size,
        "modified": modified,
    }


def _resources_page(
    viewer: Viewer,
    name: str,
    path: str = "",
    *,
    failed: CodenvError | None = None,
    notice: str | None = None,
    script: str | None = None,
) -> Response:
    """The tab, with the error of the form that was sent (`failed`) shown in place."""
    context = page_context(viewer, name, "resources")
    # The script may hold secrets: only those who may change it read it.
    may_update = context["env"].capabilities.may_update
    init = resources.get_init_script(viewer.app, viewer.actor, name) if may_update else None
    entries: list[Entry] = []
    browse_error: ShownError | None = None
    try:
        entries = resources.list_files(viewer.app, viewer.actor, name, path)
    except CodenvError as problem:
        browse_error = in_place(problem)
    return render_form(
        "env_resources.html",
        failed,
        init=init,
        script=init.script if script is None and init else script,
        env_vars=sorted(resources.resource_env_vars(viewer.app, viewer.actor, name).items()),
        path=path,
        parent=_parent(path),
        crumbs=_crumbs(path),
        entries=[_row(entry) for entry in sorted(entries, key=_order)],
        browse_error=browse_error,
        notice=NOTICES.get(notice or ""),
        **context,
    )


def _back(name: str, path: str, notice: str) -> Response:
    query = f"?notice={notice}" + (f"&path={path}" if path else "")
    return see_other(f"/envs/{name}/resources{query}")


@router.get("/envs/{name}/resources")
def resources_tab(
    name: str, viewer: ViewerDep, path: str = "", notice: str | None = None
) -> Response:
    return _resources_page(viewer, name, path, notice=notice)


@router.post("/envs/{name}/resources/script")
def save_script(name: str, form: SubmittedDep) -> Response:
    script = form.text("script").replace("\r\n", "\n")
    try:
        resources.set_init_script(
            form.app,
            form.actor,
            name,
            script=script,
            run_on_update=form.flag("run_on_update"),
            run_on_api_node=form.flag("run_on_api_node"),
        )
    except CodenvError as error:
        return _resources_page(form, name, failed=error, script=script)
    return _back(name, "", "saved")


@router.post("/envs/{name}/resources/run")
def run_script(name: str, form: SubmittedDep) -> Response:
    try:
        build_id = resources.run_init_script_now(form.app, form.actor, name)
    except CodenvError as error:
        return _resources_page(form, name, failed=error)
    return see_other(f"/envs/{name}/revisions?build={build_id}")


def _put(viewer: Viewer, name: str, source: Path, path: str, unzip: bool) -> None:
    dest = path.rstrip("/") + "/" if path else None
    resources.put_files(viewer.app, viewer.actor, name, source, dest, unzip=unzip)


@router.post("/envs/{name}/resources/upload")
async def upload(name: str, request: Request, viewer: ViewerBeforeBody) -> Response:
    # The right to write is checked before the (possibly large) body is received.
    await run_in_threadpool(resources.require_files_write, viewer.app, viewer.actor, name)
    path = ""
    try:
        form = await read_form(request)
        try:
            check_form_token(form, viewer.csrf)
            path = str(form.get("path") or "")
            unzip = form.get("unzip") in ("on", "true", "1", "yes")
            async with staged_upload(form.get("file")) as source:
                await run_in_threadpool(_put, viewer, name, source, path, unzip)
        finally:
            await form.close()
    except CodenvError as error:
        return await run_in_threadpool(partial(_resources_page, viewer, name, path, failed=error))
    return _back(name, path, "uploaded")


@router.get("/envs/{name}/resources/download")
def download(name: str, viewer: ViewerDep, path: str = "") -> Response:
    try:
        return staged_download(
            lambda workdir: resources.get_file(viewer.app, viewer.actor, name, path, workdir)
        )
    except CodenvError as error:
        return _resources_page(viewer, name, _parent(path), failed=error)


@router.post("/envs/{name}/resources/delete")
def delete_file(name: str, form: SubmittedDep) -> Response:
    path = form.text("path")
    try:
        resources.remove_file(form.app, form.actor, name, path)
    except CodenvError as error:
        return _resources_page(form, name, _parent(path), failed=error)
    return _back(name, _parent(path), "deleted")


def _permissions_page(
    viewer: Viewer,
    name: str,
    *,
    failed: CodenvError | None = None,
    notice: str | None = None,
) -> Response:
    """The tab, with the error of the form that was sent (`failed`) shown in place."""
    context = page_context(viewer, name, "permissions")
    shown: EnvPermissions = permissions.get_permissions(viewer.app, viewer.actor, name)
    may_manage = context["env"].capabilities.may_manage_users
    groups = accounts.group_names(viewer.app, viewer.actor) if may_manage else []
    return render_form(
        "env_permissions.html",
        failed,
        perms=shown,
        groups=groups,
        levels=GRANT_LEVELS,
        notice=NOTICES.get(notice or ""),
        **context,
    )


@router.get("/envs/{name}/permissions")
def permissions_tab(name: str, viewer: ViewerDep, notice: str | None = None) -> Response:
    return _permissions_page(viewer, name, notice=notice)


def _grants(form: Submitted) -> list[tuple[str, str]]:
    groups = form.lists.get("grant_group", [])
    levels = form.lists.get("grant_level", [])
    if len(groups) != len(levels):
        raise InvalidInput("each group grant needs a group and a level", field="grants")
    # An empty group (the "add" row) or the level "remove" drops the row.
    return [(group, level) for group, level in zip(groups, levels, strict=True) if group and level]


@router.post("/envs/{name}/permissions")
def save_permissions(name: str, form: SubmittedDep) -> Response:
    try:
        permissions.set_permissions(
            form.app,
            form.actor,
            name,
            owner=form.text("owner").strip() or None,
            usable_by_all=form.flag("usable_by_all"),
            grants=_grants(form),
        )
    except CodenvError as error:
        return _permissions_page(form, name, failed=error)
    return see_other(f"/envs/{name}/permissions?notice=permissions")
