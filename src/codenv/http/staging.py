"""Uploads and downloads pass through a private temporary directory, one per request.

Upload bodies are capped before they reach a route (`http.limits`: `Settings.max_upload_bytes`
for uploads, `Settings.max_body_bytes` for every other form), so they never fill the disk or
the memory. The temporary directory is removed when the request is done, also when it fails.
File work runs in worker threads.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO

import anyio
from fastapi import Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from codenv.domain.errors import InvalidInput
from codenv.domain.limits import check_path_size

DOWNLOAD_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_COPY_CHUNK = 1 << 20


async def read_form(request: Request) -> FormData:
    """A console form (its files spooled to disk by Starlette in worker threads)."""
    return await request.form()


@asynccontextmanager
async def _staging_dir(prefix: str) -> AsyncIterator[Path]:
    workdir = Path(await run_in_threadpool(tempfile.mkdtemp, prefix=prefix))
    try:
        yield workdir
    finally:
        await run_in_threadpool(partial(shutil.rmtree, workdir, ignore_errors=True))


@asynccontextmanager
async def staged_body(request: Request, filename: str) -> AsyncIterator[Path]:
    """The request body, saved as `filename` in a private directory (API uploads)."""
    async with _staging_dir("codenv-upload-") as workdir:
        target = workdir / filename
        async with await anyio.open_file(target, "wb") as handle:
            async for chunk in request.stream():
                await handle.write(chunk)
        yield target


def upload_name(chosen: object) -> str:
    """The name of a console form's file, without any directory part."""
    raw = chosen.filename if isinstance(chosen, UploadFile) else None
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    if name in ("", ".", ".."):
        raise InvalidInput("choose a file to upload", field="file")
    check_path_size(name)  # before the name is used on the disk
    return name


def _copy(source: IO[bytes], target: Path) -> None:
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, _COPY_CHUNK)


@asynccontextmanager
async def staged_upload(chosen: object) -> AsyncIterator[Path]:
    """A console form's file (read with `read_form`), saved under its own name."""
    name = upload_name(chosen)
    assert isinstance(chosen, UploadFile)
    async with _staging_dir("codenv-upload-") as workdir:
        target = workdir / name
        await run_in_threadpool(_copy, chosen.file, target)
        yield target


def staged_download(fetch: Callable[[Path], Path]) -> FileResponse:
    """The file `fetch` copies into a private directory, sent as an attachment; the directory
    is removed once it is sent (or at once, when `fetch` fails). Call it from a worker thread."""
    workdir = Path(tempfile.mkdtemp(prefix="codenv-download-"))
    try:
        copy = fetch(workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return FileResponse(
        copy,
        filename=copy.name,
        media_type="application/octet-stream",
        headers=DOWNLOAD_HEADERS,
        background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
    )
