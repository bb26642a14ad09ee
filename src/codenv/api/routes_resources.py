"""/api/v1/envs/{name}/resources: init script, env vars, files; and kernels."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from codenv.api.deps import Caller
from codenv.api.schemas import InitScriptBody
from codenv.domain.errors import InvalidSpec
from codenv.services import kernels, resources

router = APIRouter(prefix="/api/v1", tags=["resources"])
MAX_UPLOAD_BYTES = 10 * 1024**3


@router.get("/envs/{name}/resources/script")
def get_script(name: str, call: Caller) -> dict[str, Any]:
    return resources.get_init_script(call.app, call.actor, name).to_dict()


@router.put("/envs/{name}/resources/script")
def set_script(name: str, body: InitScriptBody, call: Caller) -> dict[str, Any]:
    return resources.set_init_script(
        call.app,
        call.actor,
        name,
        script=body.script,
        run_on_update=body.run_on_update,
        run_on_api_node=body.run_on_api_node,
    ).to_dict()


@router.post("/envs/{name}/resources/init", status_code=status.HTTP_202_ACCEPTED)
def run_init(name: str, call: Caller) -> dict[str, Any]:
    return {"env": name, "build_id": resources.run_init_script_now(call.app, call.actor, name)}


@router.get("/envs/{name}/resources/vars")
def env_vars(name: str, call: Caller) -> dict[str, str]:
    return resources.resource_env_vars(call.app, call.actor, name)


@router.get("/envs/{name}/resources/files")
def list_files(
    name: str, call: Caller, path: str = Query("", max_length=4096)
) -> list[dict[str, Any]]:
    return [e.to_dict() for e in resources.list_files(call.app, call.actor, name, path)]


async def _receive(request: Request, target: Path) -> None:
    size = 0
    with target.open("wb") as handle:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise InvalidSpec("the upload is larger than 10 GiB", field="file")
            handle.write(chunk)


@router.put("/envs/{name}/resources/files/{path:path}")
async def upload(
    name: str, path: str, request: Request, call: Caller, unzip: bool = False
) -> list[dict[str, Any]]:
    """The request body is the file (with `unzip`, a zip unpacked into `path`)."""
    resources.require_files_write(call.app, call.actor, name)
    workdir = Path(tempfile.mkdtemp(prefix="codenv-upload-"))
    try:
        source = workdir / (Path(path).name or "upload")
        await _receive(request, source)
        entries = resources.put_files(call.app, call.actor, name, source, path or None, unzip=unzip)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return [entry.to_dict() for entry in entries]


@router.get("/envs/{name}/resources/content/{path:path}", response_class=FileResponse)
def download(name: str, path: str, call: Caller) -> FileResponse:
    workdir = Path(tempfile.mkdtemp(prefix="codenv-download-"))
    try:
        copy = resources.get_file(call.app, call.actor, name, path, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    cleanup = BackgroundTask(shutil.rmtree, workdir, ignore_errors=True)
    return FileResponse(copy, filename=copy.name, background=cleanup)


@router.delete("/envs/{name}/resources/files/{path:path}", status_code=204)
def remove(name: str, path: str, call: Caller) -> None:
    resources.remove_file(call.app, call.actor, name, path)


@router.get("/kernels")
def list_kernels(call: Caller) -> list[dict[str, object]]:
    return kernels.list_kernels(call.app, call.actor)
