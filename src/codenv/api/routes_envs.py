"""/api/v1/envs: code envs, their builds, revisions, installed packages and permissions."""

from __future__ import annotations

from typing import Any

from fastapi import Response, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from codenv.api.answers import answer
from codenv.api.errors import JSON_ERRORS
from codenv.api.responses import (
    Build,
    BuildPage,
    Created,
    Deleted,
    Env,
    EnvPage,
    Installed,
    Permissions,
    Revision,
    RevisionPage,
    SpecSaved,
    UpdateResult,
)
from codenv.api.routers import api_router
from codenv.api.schemas import (
    CreateEnvBody,
    Cursor,
    Filter,
    Limit,
    PermissionsBody,
    RollbackBody,
    SaveSpecBody,
    Sort,
    SpecBody,
    UpdateBody,
    listed,
    wants_page,
)
from codenv.domain.names import revision_of
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.http.deps import Caller
from codenv.http.params import Offset, RevisionQuery, RowId
from codenv.services import builds, env_listing, envs, listing, logs, permissions, revisions
from codenv.services.env_listing import EnvFilter
from codenv.services.installed import show_installed
from codenv.services.listing import DEFAULT_LIMIT

router = api_router("envs")


def spec_of(body: SpecBody) -> EnvSpec:
    # from_dict reads every spec field (the body's others, name and message, are not one).
    return EnvSpec.from_dict(body.model_dump())


@router.get("/envs", response_model=list[Env] | EnvPage)
def list_envs(
    call: Caller,
    limit: Limit = None,
    cursor: Cursor = None,
    owner: Filter = None,
    status: Filter = None,
    python: Filter = None,
    prefix: Filter = None,
    sort: Sort = "name",
) -> Response:
    """The code envs the caller may use, by name (or `sort`). With `limit` or `cursor`: one
    page, `{"items", "next_cursor"}` of rows without the spec; without: every one (that the
    filters keep), a plain list of full rows. `status`: ready,
    building, failed, not built, out of date, last update failed; `python`: 3.X; `prefix`: of
    the name, case-insensitive."""
    filters = EnvFilter(owner=owner, status=status, python=python, prefix=prefix)
    if not wants_page(limit, cursor):
        return answer(env_listing.all_envs(call.app, call.actor, filters, sort))
    return answer(
        env_listing.find_envs(
            call.app, call.actor, filters, limit=limit or DEFAULT_LIMIT, cursor=cursor, sort=sort
        ),
        shared=True,
    )


@router.post("/envs", status_code=status.HTTP_202_ACCEPTED, response_model=Created)
def create_env(body: CreateEnvBody, call: Caller) -> dict[str, Any]:
    return envs.create_env(call.app, call.actor, body.name, spec_of(body)).to_dict()


@router.get("/envs/{name}", response_model=Env)
def show_env(name: str, call: Caller) -> Response:
    return answer(envs.show_env(call.app, call.actor, name))


@router.delete("/envs/{name}", response_model=Deleted)
def delete_env(name: str, call: Caller, delete_resources: bool = False) -> dict[str, Any]:
    """`kept_resources`: the id its resources were set aside under for administrators
    (`/kept-resources`), or null when they were deleted too or it had none."""
    kept = envs.delete_env(call.app, call.actor, name, delete_resources=delete_resources)
    return {"env": name, "kept_resources": kept}


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@router.patch("/envs/{name}/spec", response_model=SpecSaved)
def save_spec(name: str, body: SaveSpecBody, call: Caller) -> dict[str, Any]:
    """Save (and, with `update`, Save and update)."""
    # Every field of SpecChanges, taken from the body (a missing one fails here, loudly).
    changes = SpecChanges(
        **{key: _tupled(getattr(body, key)) for key in SpecChanges.__dataclass_fields__}
    )
    spec = envs.save_spec(call.app, call.actor, name, changes)
    result: dict[str, Any] = {"spec": spec.to_dict(), "update": None}
    if body.update:
        result["update"] = builds.request_update(
            call.app, call.actor, name, upgrade_all=body.upgrade_all, rebuild=body.rebuild
        ).to_dict()
    return result


@router.post("/envs/{name}/update", response_model=UpdateResult)
def update_env(name: str, body: UpdateBody, call: Caller) -> dict[str, Any]:
    return builds.request_update(
        call.app, call.actor, name, upgrade_all=body.upgrade_all, rebuild=body.rebuild
    ).to_dict()


@router.get("/envs/{name}/builds", response_model=list[Build] | BuildPage)
def list_builds(
    name: str,
    call: Caller,
    limit: Limit = None,
    cursor: Cursor = None,
    status: Filter = None,
    kind: Filter = None,
) -> Response:
    """Newest first. With `limit` or `cursor`: one page; `status`: queued, running,
    succeeded, failed, cancelled; `kind`: update, init, import, image."""
    if status is None and kind is None and not wants_page(limit, cursor):
        return answer(builds.list_builds(call.app, call.actor, name))
    return answer(
        listed(
            lambda size, after: listing.find_builds(
                call.app, call.actor, name, limit=size, cursor=after, status=status, kind=kind
            ),
            limit,
            cursor,
        ),
        shared=wants_page(limit, cursor),
    )


@router.get("/builds/{build_id}", response_model=Build)
def get_build(build_id: str, call: Caller) -> Response:
    return answer(builds.get_build(call.app, call.actor, build_id))


@router.post("/builds/{build_id}/cancel", response_model=Build)
def cancel_build(build_id: str, call: Caller) -> dict[str, Any]:
    """Cancel a queued build at once, or ask a running one to stop (it ends `cancelled`
    within a second or so; the active revision is unchanged). Needs the update right."""
    return builds.cancel_build(call.app, call.actor, build_id).to_dict()


@router.get("/builds/{build_id}/log", response_class=PlainTextResponse, responses=JSON_ERRORS)
def build_log(build_id: str, call: Caller, offset: Offset = 0) -> PlainTextResponse:
    """The log from `offset`; `X-Log-Offset` gives where to continue, `X-Build-Finished`."""
    build = builds.get_build(call.app, call.actor, build_id)
    text, end = logs.read_log(call.app, call.actor, build_id, offset)
    headers = {"X-Log-Offset": str(end), "X-Build-Finished": str(build.finished).lower()}
    return PlainTextResponse(text, headers=headers)


@router.get(
    "/builds/{build_id}/log/stream", response_class=PlainTextResponse, responses=JSON_ERRORS
)
def stream_log(build_id: str, call: Caller) -> StreamingResponse:
    """The log as it is written, until the build ends."""
    builds.get_build(call.app, call.actor, build_id)
    # A blocking iterator: Starlette iterates it in a worker thread, off the event loop.
    chunks = logs.follow_log(call.app, call.actor, build_id)
    return StreamingResponse(chunks, media_type="text/plain")


@router.get("/envs/{name}/installed", response_model=Installed)
def installed(name: str, call: Caller, revision: RevisionQuery = None) -> Response:
    """The packages of a revision (default: the active one; `NAME@N` or `revision`: revision N)
    and its `diff` with the one before."""
    return answer(show_installed(call.app, call.actor, *revision_of(name, revision)))


@router.get("/envs/{name}/revisions", response_model=list[Revision] | RevisionPage)
def list_revisions(
    name: str, call: Caller, limit: Limit = None, cursor: Cursor = None
) -> dict[str, Any] | list[dict[str, Any]]:
    """Newest first; `origin` says which bundle an imported revision (a version) came from,
    null for one built here. With `limit` or `cursor`: one page."""
    if not wants_page(limit, cursor):
        return [r.to_dict() for r in revisions.list_revisions(call.app, call.actor, name)]
    return listing.find_revisions(
        call.app, call.actor, name, limit=limit or DEFAULT_LIMIT, cursor=cursor
    ).to_dict()


@router.get("/envs/{name}/revisions/{number}", response_model=Revision)
def show_revision(name: str, number: RowId, call: Caller) -> dict[str, Any]:
    return revisions.show_revision(call.app, call.actor, name, number).to_dict()


@router.delete("/envs/{name}/revisions/{number}", response_model=Revision)
def remove_revision(name: str, number: RowId, call: Caller) -> dict[str, Any]:
    """Remove a revision other than the active one (409 for that one): its directory and its
    Jupyter kernel go, its record stays, marked pruned. Needs the update right."""
    return revisions.remove_revision(call.app, call.actor, name, number).to_dict()


@router.post("/envs/{name}/rollback", response_model=Revision)
def rollback(name: str, body: RollbackBody, call: Caller) -> dict[str, Any]:
    return revisions.rollback(call.app, call.actor, name, body.revision).to_dict()


@router.get("/envs/{name}/permissions", response_model=Permissions)
def get_permissions(name: str, call: Caller) -> dict[str, Any]:
    return permissions.get_permissions(call.app, call.actor, name).to_dict()


@router.put("/envs/{name}/permissions", response_model=Permissions)
def set_permissions(name: str, body: PermissionsBody, call: Caller) -> dict[str, Any]:
    return permissions.set_permissions(
        call.app,
        call.actor,
        name,
        owner=body.owner,
        usable_by_all=body.usable_by_all,
        grants=body.grants,
    ).to_dict()
