"""/api/v1/bundles: code envs exported to a bundle file, and bundle files imported."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import StreamingResponse

from codenv.api.errors import JSON_ERRORS
from codenv.api.responses import ImportReport
from codenv.api.routers import api_router
from codenv.api.schemas import ExportBody
from codenv.domain.bundles import ImportMode
from codenv.domain.errors import InvalidInput
from codenv.domain.names import MAX_NAME_CHARS
from codenv.http.bundles import BUNDLE_MEDIA_TYPE, exported, imported
from codenv.http.deps import Caller, CallerBeforeBody
from codenv.http.staging import read_form
from codenv.services.bundle_export import ExportRequest
from codenv.services.bundle_import import ImportRequest

router = api_router("bundles")

_BUNDLE_FILE = {"type": "string", "format": "binary"}
_DOWNLOAD = {
    200: {
        "description": "The bundle file (attachment NAME.codenv.tar; codenv-envs.codenv.tar "
        "for several envs)",
        "content": {BUNDLE_MEDIA_TYPE: {"schema": _BUNDLE_FILE}},
    },
    **JSON_ERRORS,
}
# The body is read by the route itself, after the caller is authenticated (a declared form
# parameter would have FastAPI receive the whole upload first): declared here for the schema.
_UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {**_BUNDLE_FILE, "description": "the bundle file"}},
                }
            }
        },
    }
}


@router.post("/bundles/export", response_class=StreamingResponse, responses=_DOWNLOAD)
def export_bundle(body: ExportBody, call: Caller) -> StreamingResponse:
    """The envs named in `envs`, or with `all` every env the caller may change, in one bundle
    file: spec, exact lock (and pylock.toml), installed list, init script; wheels and
    resources on request. Needs the update right on each env."""
    if bool(body.envs) == body.all:
        raise InvalidInput("name the code envs to export in 'envs', or give 'all'", field="envs")
    request = ExportRequest(tuple(body.envs), body.revision, body.with_wheels, body.with_resources)
    return exported(call.app, call.actor, request)


@router.post("/bundles/import", openapi_extra=_UPLOAD, response_model=ImportReport)
async def import_bundle(
    request: Request,
    call: CallerBeforeBody,
    as_name: Annotated[
        str | None, Query(max_length=MAX_NAME_CHARS, description="a one-env bundle's new name")
    ] = None,
    offline: Annotated[
        bool, Query(description="never reach the network: bundled wheels or the cache")
    ] = False,
    mode: ImportMode = ImportMode.INSTALL_IF_MISSING,
) -> dict[str, Any]:
    """Import the uploaded bundle (multipart field `file`, up to CODENV_MAX_UPLOAD_BYTES). Each
    env gets an import build (`build_id`) that installs its exact lock, unless one of its
    versions holds that lock already; nothing is created when any check fails."""
    form = await read_form(request)
    try:
        report = await imported(call.app, call.actor, form, ImportRequest(as_name, offline, mode))
    finally:
        await form.close()
    return report.to_dict()
