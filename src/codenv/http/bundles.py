"""Bundles over HTTP, for the API and the console alike.

An export is built into a private directory under the home (a bundle with its wheels may be
many GB: not for a small /tmp) and sent as an attachment. The directory is removed as soon as
the file is open for sending, so nothing is left behind when the client goes away mid-download.
An import takes the bundle of an upload form (staged like every upload) and imports it in a
worker thread.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from codenv.domain.bundles import bundle_file_name
from codenv.http.staging import DOWNLOAD_HEADERS, staged_upload
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.bundle_export import ExportRequest, export_bundle
from codenv.services.bundle_import import ImportReport, ImportRequest, import_bundle

BUNDLE_MEDIA_TYPE = "application/x-tar"
_CHUNK = 1 << 20


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def exported(app: Codenv, actor: Actor, request: ExportRequest) -> StreamingResponse:
    """The bundle of `request`, as a download. Call it from a worker thread: the export reads
    the index and writes the whole bundle before the answer starts."""
    workdir = Path(tempfile.mkdtemp(prefix="download-", dir=app.settings.builds_dir))
    name = bundle_file_name(request.names)
    try:
        result = export_bundle(app, actor, request, workdir / name)
        handle = result.path.open("rb")
    finally:
        # Removed at once: the open file stays readable until it is sent.
        shutil.rmtree(workdir, ignore_errors=True)
    headers = {
        **DOWNLOAD_HEADERS,
        "Content-Disposition": f'attachment; filename="{name}"',
        "Content-Length": str(result.size_bytes),
    }
    # A blocking iterator: Starlette reads it in a worker thread, off the event loop.
    return StreamingResponse(_chunks(handle), media_type=BUNDLE_MEDIA_TYPE, headers=headers)


async def imported(
    app: Codenv, actor: Actor, form: FormData, request: ImportRequest
) -> ImportReport:
    """Import the bundle of `form`'s `file` field (read with `staging.read_form`)."""
    async with staged_upload(form.get("file")) as bundle:
        return await run_in_threadpool(import_bundle, app, actor, bundle, request)
