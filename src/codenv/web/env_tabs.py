"""The env page's Resources and Permissions tabs.

Resources: the init script and its two options, running it now, the env vars it set, and a
file explorer over the env's resources directory (browse, upload a file or a zip, download,
delete). Permissions: owner, usable by all, group grants. Controls are shown only to those
whose level allows them; the services check every change again (a forced post is a 403
page), and they confine every path to the resources directory (errors shown in place).
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from codenv.domain.errors import CodenvError, InvalidSpec, PermissionDenied
from codenv.resources.confine import Entry
from codenv.services import accounts, permissions, resources
from codenv.services.access_views import EnvPermissions
from codenv.web.env_pages import page_context
from codenv.web.render import ConsoleRoute, render, see_other
from codenv.web.session import (
    CSRF_FIELD,
    STALE_FORM,
    Submitted,
    SubmittedDep,
    Viewer,
    ViewerDep,
    same_token,
)

router: APIRouter = APIRouter(route_class=ConsoleRoute)

MANAGE_LEVELS = ("manage_users", "all")
GRANT_LEVELS = ("use", "update", "manage_users")
NOTICES = {
    "saved": "Init script saved. It runs when the env is updated, or now with Run now.",
    "uploaded": "Uploaded.",
    "deleted": "Deleted.",
    "permissions": "Permissions saved.",
}


def _shown(error: CodenvError) -> CodenvError:
    """An error to show in place; not allowed and no such env stay error pages."""
    if error.status == 403 or (error.status == 404 and error.field is None):
        raise error
    return error


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
    viewer: Viewer | Submitted,
    name: str,
    path: str = "",
    *,
    status: int = 200,
    error: CodenvError | None = None,
    notice: str | None = None,
    script: str | None = None,
) -> Response:
    context = page_context(viewer, name, "resources")
    init = resources.get_init_script(viewer.app, viewer.actor, name)
    entries: list[Entry] = []
    browse_error: CodenvError | None = None
    try:
        entries = resources.list_files(viewer.app, viewer.actor, name, path)
    except CodenvError as problem:
        browse_error = _shown(problem)
    return render(
        "env_resources.html",
        status=status,
        init=init,
        script=init.script if script is None else script,
        env_vars=sorted(resources.resource_env_vars(viewer.app, viewer.actor, name).items()),
        path=path,
        parent=_parent(path),
        crumbs=_crumbs(path),
        entries=[_row(entry) for entry in sorted(entries, key=_order)],
        error=error,
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
        return _resources_page(form, name, status=error.status, error=_shown(error), script=script)
    return _back(name, "", "saved")


@router.post("/envs/{name}/resources/run")
def run_script(name: str, form: SubmittedDep) -> Response:
    try:
        build_id = resources.run_init_script_now(form.app, form.actor, name)
    except CodenvError as error:
        return _resources_page(form, name, status=error.status, error=_shown(error))
    return see_other(f"/envs/{name}/revisions?build={build_id}")


def _upload_name(upload: UploadFile) -> str:
    filename = PurePosixPath((upload.filename or "").replace("\\", "/")).name
    if filename in ("", ".", ".."):
        raise InvalidSpec("choose a file to upload", field="file")
    return filename


def _store(viewer: Viewer, name: str, path: str, upload: UploadFile, unzip: bool) -> int:
    """Save the upload to a temp file under its own name, then put it into the resources."""
    with tempfile.TemporaryDirectory(prefix="codenv-upload-") as temp:
        source = Path(temp) / _upload_name(upload)
        with open(source, "wb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        dest = path.rstrip("/") + "/" if path else None
        written = resources.put_files(viewer.app, viewer.actor, name, source, dest, unzip=unzip)
    return len(written)


def _failed_upload(viewer: Viewer, name: str, path: str, error: CodenvError) -> Response:
    return _resources_page(viewer, name, path, status=error.status, error=error)


@router.post("/envs/{name}/resources/upload")
async def upload(name: str, request: Request, viewer: ViewerDep) -> Response:
    # The right to write is checked before the (possibly large) body is received.
    await run_in_threadpool(resources.require_files_write, viewer.app, viewer.actor, name)
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not isinstance(token, str) or not same_token(token, viewer.csrf):
        raise PermissionDenied(STALE_FORM, field=CSRF_FIELD)
    path = str(form.get("path") or "")
    unzip = form.get("unzip") in ("on", "true", "1", "yes")
    chosen = form.get("file")
    try:
        if not isinstance(chosen, UploadFile):
            raise InvalidSpec("choose a file to upload", field="file")
        await run_in_threadpool(_store, viewer, name, path, chosen, unzip)
    except CodenvError as error:
        shown = _shown(error)
        return await run_in_threadpool(_failed_upload, viewer, name, path, shown)
    finally:
        await form.close()
    return _back(name, path, "uploaded")


@router.get("/envs/{name}/resources/download")
def download(name: str, viewer: ViewerDep, path: str = "") -> Response:
    temp = Path(tempfile.mkdtemp(prefix="codenv-download-"))
    try:
        copied = resources.get_file(viewer.app, viewer.actor, name, path, temp)
    except CodenvError as error:
        shutil.rmtree(temp, ignore_errors=True)
        return _resources_page(
            viewer, name, _parent(path), status=error.status, error=_shown(error)
        )
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return FileResponse(
        copied,
        filename=copied.name,
        media_type="application/octet-stream",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        background=BackgroundTask(shutil.rmtree, temp, ignore_errors=True),
    )


@router.post("/envs/{name}/resources/delete")
def delete_file(name: str, form: SubmittedDep) -> Response:
    path = form.text("path")
    try:
        resources.remove_file(form.app, form.actor, name, path)
    except CodenvError as error:
        return _resources_page(form, name, _parent(path), status=error.status, error=_shown(error))
    return _back(name, _parent(path), "deleted")


def _permissions_page(
    viewer: Viewer | Submitted,
    name: str,
    *,
    status: int = 200,
    error: CodenvError | None = None,
    notice: str | None = None,
) -> Response:
    context = page_context(viewer, name, "permissions")
    shown: EnvPermissions = permissions.get_permissions(viewer.app, viewer.actor, name)
    can_manage = shown.caller_level in MANAGE_LEVELS
    groups = accounts.group_names(viewer.app, viewer.actor) if can_manage else []
    return render(
        "env_permissions.html",
        status=status,
        perms=shown,
        can_manage=can_manage,
        groups=groups,
        levels=GRANT_LEVELS,
        error=error,
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
        raise InvalidSpec("each group grant needs a group and a level", field="grants")
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
        return _permissions_page(form, name, status=error.status, error=_shown(error))
    return see_other(f"/envs/{name}/permissions?notice=permissions")
