"""/api/v1/envs/{name}/resources: init script, env vars, files; and kernels."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from fastapi import Query, Request, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from codenv.api.responses import FileEntry, InitScript, InitStarted, Kernel
from codenv.api.routers import api_router
from codenv.api.schemas import InitScriptBody
from codenv.http.deps import Caller, CallerBeforeBody
from codenv.http.staging import staged_body, staged_download
from codenv.services import kernels, resources

router = api_router("resources")


@router.get("/envs/{name}/resources/script", response_model=InitScript)
def get_script(name: str, call: Caller) -> dict[str, Any]:
    """Needs the update right (the script may hold secrets; their URLs are masked)."""
    return resources.get_init_script(call.app, call.actor, name).to_dict()


@router.put("/envs/{name}/resources/script", response_model=InitScript)
def set_script(name: str, body: InitScriptBody, call: Caller) -> dict[str, Any]:
    return resources.set_init_script(
        call.app,
        call.actor,
        name,
        script=body.script,
        run_on_update=body.run_on_update,
        run_on_api_node=body.run_on_api_node,
    ).to_dict()


@router.post(
    "/envs/{name}/resources/init", status_code=status.HTTP_202_ACCEPTED, response_model=InitStarted
)
def run_init(name: str, call: Caller) -> dict[str, Any]:
    return {"env": name, "build_id": resources.run_init_script_now(call.app, call.actor, name)}


@router.get("/envs/{name}/resources/vars")
def env_vars(name: str, call: Caller) -> dict[str, str]:
    return resources.resource_env_vars(call.app, call.actor, name)


@router.get("/envs/{name}/resources/files", response_model=list[FileEntry])
def list_files(
    name: str, call: Caller, path: str = Query("", max_length=4096)
) -> list[dict[str, Any]]:
    return [e.to_dict() for e in resources.list_files(call.app, call.actor, name, path)]


@router.put("/envs/{name}/resources/files/{path:path}", response_model=list[FileEntry])
async def upload(
    name: str, path: str, request: Request, call: CallerBeforeBody, unzip: bool = False
) -> list[dict[str, Any]]:
    """The request body is the file (with `unzip`, a zip unpacked into `path`)."""
    # The right to write, and the path, are checked before the (possibly large) body is
    # received (http.limits caps its size).
    await run_in_threadpool(resources.require_files_write, call.app, call.actor, name, path)
    async with staged_body(request, PurePosixPath(path).name or "upload") as source:
        entries = await run_in_threadpool(
            resources.put_files, call.app, call.actor, name, source, path or None, unzip=unzip
        )
    return [entry.to_dict() for entry in entries]


@router.get("/envs/{name}/resources/content/{path:path}", response_class=FileResponse)
def download(name: str, path: str, call: Caller) -> FileResponse:
    return staged_download(
        lambda workdir: resources.get_file(call.app, call.actor, name, path, workdir)
    )


@router.delete("/envs/{name}/resources/files/{path:path}", status_code=204)
def remove(name: str, path: str, call: Caller) -> None:
    resources.remove_file(call.app, call.actor, name, path)


@router.get("/kernels", response_model=list[Kernel])
def list_kernels(call: Caller) -> list[dict[str, object]]:
    return kernels.list_kernels(call.app, call.actor)
