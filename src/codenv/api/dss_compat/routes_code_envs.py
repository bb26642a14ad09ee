"""DSS's `/admin/code-envs/…` calls (DSS_API §2.1) on codenv's services.

Long operations (create, update, Jupyter support, delete) take `wait`: absent or true (older
clients never send it), the answer is the operation's result once it has one, awaited
without holding a server thread; false, the answer is a future the client polls
(`/futures/{id}`, `routes_futures.py`). Fixed paths (`usages`, `internal-env/create`,
`from-python-preset/…`) are registered before `/{lang}/{name}`, which would take them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from codenv.api.dss_compat import shapes, shapes_input
from codenv.api.dss_compat.deps import DssCall, DssCaller, json_body
from codenv.api.dss_compat.errors import DssError, with_dss_code
from codenv.domain.errors import AlreadyExists, CodenvError, NotFound, PermissionDenied
from codenv.services import builds, dss_code_envs, envs
from codenv.services.futures import (
    build_id_of_log,
    finished_future,
    future_for_build,
    future_state,
    log_file_name,
    wait_for_future,
)
from codenv.services.views import UpdateResult

router = APIRouter()
T = TypeVar("T")
BASE = "/admin/code-envs"
ENV = BASE + "/{lang}/{name}"


async def _run(fn: Callable[..., T], *args: Any, creating: bool = False, **kwargs: Any) -> T:
    """A blocking service call in a worker thread, its errors given DSS's codes."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except CodenvError as error:
        raise _with_code(error, creating) from None


def _with_code(error: CodenvError, creating: bool) -> CodenvError:
    if isinstance(error, NotFound) and error.field == "name":
        return with_dss_code(error, "ERR_CODEENV_MISSING_ENV")
    if isinstance(error, AlreadyExists):
        return with_dss_code(error, "ERR_CODEENV_EXISTING_ENV")
    if isinstance(error, PermissionDenied) and creating:
        return with_dss_code(error, "ERR_CODEENV_NO_CREATION_PERMISSION")
    return error


async def _outcome(
    call: DssCall,
    *,
    wait: bool,
    kind: str,
    target: str,
    build_id: str | None = None,
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The answer of a long operation: its result (`wait`) or its future's state."""
    app, actor = call.app, call.actor
    if build_id is None:
        assert result is not None
        if wait:
            return result
        job = await _run(finished_future, app, actor, kind=kind, target=target, result=result)
        return await _run(future_state, app, actor, job)
    job = await _run(future_for_build, app, actor, build_id, kind=kind, target=target)
    if not wait:
        return await _run(future_state, app, actor, job)
    state = await wait_for_future(app, actor, job)
    outcome = state.get("result")
    return outcome if isinstance(outcome, dict) else shapes.aborted_result(target, job)


def _update_outcome(update: UpdateResult) -> dict[str, Any]:
    item = shapes.message("INFO", "Code env already up to date", update.message)
    return shapes.immediate_result(update.env, [item], upToDate=True)


# ---- fixed paths first -----------------------------------------------------------------


@router.get(BASE + "/")
async def list_code_envs(call: DssCaller) -> list[dict[str, Any]]:
    infos = await _run(envs.list_envs, call.app, call.actor)
    return [shapes.list_item(info, dss_code_envs.kernel_of(info)) for info in infos]


@router.get(BASE + "/usages")
def list_all_usages(call: DssCaller) -> list[dict[str, Any]]:
    """codenv has no projects: no usage anywhere."""
    return []


@router.post(BASE + "/internal-env/create")
def create_internal_env(call: DssCaller) -> dict[str, Any]:
    raise DssError(
        "codenv has no DSS internal code envs; create a code env with the package sets you "
        "need (POST /admin/code-envs/PYTHON/{name})",
        field="dssInternalCodeEnvType",
    )


@router.post(BASE + "/from-python-preset/{preset}")
async def create_from_preset(
    preset: str,
    call: DssCaller,
    allow_update: Annotated[bool, Query(alias="allowUpdate")] = True,
    interpreter: Annotated[str | None, Query(max_length=40)] = None,
    prefix: Annotated[str | None, Query(max_length=64)] = None,
    wait: bool = True,
) -> dict[str, Any]:
    """A preset is one of codenv's package sets (`visual-ml`, `visual-ml:gpu`…); the env is
    named `{prefix}{preset}` (`:` as `-`)."""
    await _run(_check_preset, call, preset)
    name = (prefix or "") + preset.replace(":", "-")
    python = shapes.python_of(interpreter, field="interpreter")
    done = await _run(
        dss_code_envs.create_from_set,
        call.app,
        call.actor,
        name,
        preset,
        python=python,
        allow_update=allow_update,
        creating=True,
    )
    if done.build_id is None:
        item = shapes.message("INFO", "Code env already up to date", done.message)
        result = shapes.immediate_result(done.env, [item], upToDate=True)
        return await _outcome(call, wait=wait, kind="update", target=done.env, result=result)
    kind = "create" if done.created else "update"
    return await _outcome(call, wait=wait, kind=kind, target=done.env, build_id=done.build_id)


def _check_preset(call: DssCall, preset: str) -> None:
    known = [package_set.id for package_set in call.app.catalog.sets]
    if preset.partition(":")[0] not in known:
        raise DssError(
            f"unknown preset {preset[:80]!r}: codenv's presets are its package sets, "
            f"optionally with a variant (`id:variant`): {', '.join(known)}",
            field="preset",
        )


# ---- one env ---------------------------------------------------------------------------


def _create(call: DssCall, lang: str, name: str, body: Any) -> str:
    spec = shapes_input.create_spec(
        body, lang, name, lambda: dss_code_envs.default_python(call.app)
    )
    return envs.create_env(call.app, call.actor, name, spec).build_id


@router.post(ENV)
async def create_code_env(
    lang: str, name: str, request: Request, call: DssCaller, wait: bool = True
) -> dict[str, Any]:
    body = await json_body(request)
    build_id = await _run(_create, call, lang, name, body, creating=True)
    return await _outcome(call, wait=wait, kind="create", target=name, build_id=build_id)


def _settings(call: DssCall, name: str) -> dict[str, Any]:
    return shapes.render_settings(dss_code_envs.env_settings(call.app, call.actor, name))


@router.get(ENV)
async def get_settings(lang: str, name: str, call: DssCaller) -> dict[str, Any]:
    shapes.check_lang(lang)
    return await _run(_settings, call, name)


def _save(call: DssCall, name: str, body: Any) -> dict[str, Any]:
    change = shapes_input.settings_change(_settings(call, name), body)
    dss_code_envs.apply_settings(call.app, call.actor, name, change)
    return _settings(call, name)


@router.put(ENV)
async def save_settings(lang: str, name: str, request: Request, call: DssCaller) -> dict[str, Any]:
    """Applies only what differs from what GET shows, each part with its own right; answers
    the new settings (the client needs a JSON answer)."""
    shapes.check_lang(lang)
    body = await json_body(request)
    return await _run(_save, call, name, body)


@router.delete(ENV)
async def delete_code_env(
    lang: str, name: str, call: DssCaller, wait: bool = True
) -> dict[str, Any]:
    """Everything goes, the resources directory included, as in DSS."""
    shapes.check_lang(lang)
    await _run(dss_code_envs.delete_everything, call.app, call.actor, name)
    item = shapes.message("SUCCESS", "Code env deleted", f"code env {name!r} was deleted")
    result = shapes.immediate_result(name, [item])
    return await _outcome(call, wait=wait, kind="delete", target=name, result=result)


async def _update_answer(
    call: DssCall, update: UpdateResult, *, wait: bool, kind: str
) -> dict[str, Any]:
    if update.build_id is None:
        result = _update_outcome(update)
        return await _outcome(call, wait=wait, kind=kind, target=update.env, result=result)
    return await _outcome(call, wait=wait, kind=kind, target=update.env, build_id=update.build_id)


@router.post(ENV + "/packages")
async def update_packages(
    lang: str,
    name: str,
    call: DssCaller,
    force_rebuild: Annotated[bool, Query(alias="forceRebuildEnv")] = False,
    version: Annotated[str | None, Query(alias="versionToUpdate", max_length=200)] = None,
    # codenv's extension: upgrade every package to its newest allowed version.
    upgrade_all: Annotated[bool, Query(alias="upgradeAllPackages")] = False,
    wait: bool = True,
) -> dict[str, Any]:
    shapes.check_lang(lang)
    if version is not None:
        raise DssError(
            "codenv keeps no automation versions of a design env (versionToUpdate)",
            field="versionToUpdate",
        )
    update = await _run(
        builds.request_update,
        call.app,
        call.actor,
        name,
        upgrade_all=upgrade_all,
        rebuild=force_rebuild,
    )
    return await _update_answer(call, update, wait=wait, kind="update")


@router.post(ENV + "/jupyter")
async def set_jupyter_support(
    lang: str, name: str, call: DssCaller, active: bool, wait: bool = True
) -> dict[str, Any]:
    shapes.check_lang(lang)
    update = await _run(dss_code_envs.set_jupyter_support, call.app, call.actor, name, active)
    return await _update_answer(call, update, wait=wait, kind="jupyter")


@router.post(ENV + "/images")
async def update_images(
    lang: str,
    name: str,
    call: DssCaller,
    version: Annotated[str | None, Query(alias="envVersion", max_length=200)] = None,
    wait: bool = True,
) -> dict[str, Any]:
    """codenv builds no DSS container images: a success with nothing done."""
    shapes.check_lang(lang)
    if version is not None:
        raise DssError("codenv keeps no automation versions of a design env", field="envVersion")
    await _run(dss_code_envs.env_usages, call.app, call.actor, name)
    text = "codenv builds no container images for DSS code envs: nothing to do"
    result = shapes.immediate_result(name, [shapes.message("INFO", "No images", text)])
    return await _outcome(call, wait=wait, kind="images", target=name, result=result)


@router.get(ENV + "/usages")
async def list_usages(lang: str, name: str, call: DssCaller) -> list[dict[str, Any]]:
    shapes.check_lang(lang)
    return await _run(dss_code_envs.env_usages, call.app, call.actor, name)


@router.get(ENV + "/logs")
async def list_logs(lang: str, name: str, call: DssCaller) -> list[dict[str, Any]]:
    shapes.check_lang(lang)
    found = await _run(dss_code_envs.env_logs, call.app, call.actor, name)
    return [
        shapes.log_item(log_file_name(log.build.id), log.size, log.modified_ms) for log in found
    ]


@router.get(ENV + "/logs/{log_name}", response_class=PlainTextResponse)
async def get_log(lang: str, name: str, log_name: str, call: DssCaller) -> PlainTextResponse:
    shapes.check_lang(lang)
    build_id = build_id_of_log(log_name)
    text = await _run(dss_code_envs.env_log, call.app, call.actor, name, build_id)
    return PlainTextResponse(text)


@router.get(ENV + "/{project_key}/version")
async def version_for_project(
    lang: str, name: str, project_key: str, call: DssCaller
) -> dict[str, Any]:
    """codenv has no projects: no project pins a version."""
    shapes.check_lang(lang)
    await _run(dss_code_envs.env_usages, call.app, call.actor, name)
    return {"version": None, "bundleId": None}
