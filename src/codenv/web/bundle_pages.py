"""Bundles in the console: an env's Export page (the bundle file downloads, with its wheels
and resources on request), and Import a bundle (an upload form, then the report: each env
with what was done and a link to its import build's log).

The pages only decide what to show; the services check the rights (update on each exported
env; create, or update on an existing env, for an import) and refuse a forced post.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from codenv.domain.bundles import ImportMode
from codenv.domain.errors import CodenvError, InvalidInput
from codenv.http.auth import check_form_token
from codenv.http.bundles import exported, imported
from codenv.http.deps import SubmittedDep, Viewer, ViewerBeforeBody, ViewerDep
from codenv.http.staging import read_form
from codenv.services.bundle_export import ExportRequest
from codenv.services.bundle_import import ImportReport, ImportRequest
from codenv.web.env_pages import page_context
from codenv.web.render import ConsoleRoute, render_form, viewer_context

router: APIRouter = APIRouter(include_in_schema=False, route_class=ConsoleRoute)

MODES = (
    (ImportMode.INSTALL_IF_MISSING, "Create it (an env that exists gets a new version)"),
    (ImportMode.FAIL_IF_MISSING, "Fail (only add versions to envs that exist here)"),
    (ImportMode.DO_NOTHING, "Change nothing: only report what the bundle would do"),
)
_IMPORT_DEFAULTS: dict[str, Any] = {
    "as_name": "",
    "offline": False,
    "mode": ImportMode.INSTALL_IF_MISSING.value,
}


def _export_page(
    viewer: Viewer,
    name: str,
    failed: CodenvError | None = None,
    typed: dict[str, bool] | None = None,
) -> Response:
    context = page_context(viewer, name, "export")
    shown = typed or {"with_wheels": False, "with_resources": False}
    return render_form("env_export.html", failed, form=shown, **context)


@router.get("/envs/{name}/export")
def export_form(name: str, viewer: ViewerDep) -> Response:
    return _export_page(viewer, name)


@router.post("/envs/{name}/export")
def export(name: str, form: SubmittedDep) -> Response:
    """The bundle, as a download; a refusal is shown on the page the form came from."""
    typed = {"with_wheels": form.flag("with_wheels"), "with_resources": form.flag("with_resources")}
    request = ExportRequest((name,), None, typed["with_wheels"], typed["with_resources"])
    try:
        return exported(form.app, form.actor, request)
    except CodenvError as error:
        return _export_page(form, name, error, typed)


def _import_page(
    viewer: Viewer,
    failed: CodenvError | None = None,
    report: ImportReport | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    return render_form(
        "import.html",
        failed,
        report=report,
        modes=MODES,
        form=typed or _IMPORT_DEFAULTS,
        **viewer_context(viewer),
    )


@router.get("/bundles/import")
def import_form(viewer: ViewerDep) -> Response:
    return _import_page(viewer)


def _typed(form: FormData) -> dict[str, Any]:
    return {
        "as_name": str(form.get("as_name") or "").strip(),
        "offline": form.get("offline") in ("on", "true", "1", "yes"),
        "mode": str(form.get("mode") or ImportMode.INSTALL_IF_MISSING.value),
    }


def _import_request(typed: dict[str, Any]) -> ImportRequest:
    if typed["mode"] not in ImportMode.__members__:
        raise InvalidInput(f"unknown import mode {typed['mode'][:40]!r}", field="mode")
    return ImportRequest(typed["as_name"] or None, typed["offline"], ImportMode(typed["mode"]))


@router.post("/bundles/import")
async def import_upload(request: Request, viewer: ViewerBeforeBody) -> Response:
    # The session is checked (ViewerBeforeBody) before the (possibly large) body is received.
    typed = dict(_IMPORT_DEFAULTS)
    try:
        form = await read_form(request)
        try:
            check_form_token(form, viewer.csrf)
            typed = _typed(form)
            report = await imported(viewer.app, viewer.actor, form, _import_request(typed))
        finally:
            await form.close()
    except CodenvError as error:
        return await run_in_threadpool(partial(_import_page, viewer, error, typed=typed))
    return await run_in_threadpool(partial(_import_page, viewer, report=report, typed=typed))
