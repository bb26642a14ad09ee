"""Groups, users and general settings (§2.3, §4.6): what administrators' scripts call around
code env rights. Translations live in `admin_shapes`; every rule (administrators only, the
last administrator kept, …) is checked by `services.accounts` and `services.node_settings`.

Bodies are read with `json_body` (the client sends no Content-Type), so the routes that take
one are async and run the services in a worker thread; the others are plain functions.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from codenv.api.dss_compat import admin_shapes as shapes
from codenv.api.dss_compat.deps import DssCall, DssCaller, json_body
from codenv.api.dss_compat.errors import DssError
from codenv.domain.errors import NotFound
from codenv.domain.install_options import INSTALL_OPTIONS, VENV_OPTIONS, parse_options
from codenv.domain.names import name_key
from codenv.services import accounts, node_settings
from codenv.services.access_views import GroupInfo

router = APIRouter()


# --- groups --------------------------------------------------------------------------------


def _group(call: DssCall, name: str) -> GroupInfo:
    for group in accounts.list_groups(call.app, call.actor):
        if name_key(group.name) == name_key(name):
            return group
    raise NotFound(f"no group named {name!r}", field="group")


@router.get("/admin/groups/")
@router.get("/admin/groups")
def list_groups(call: DssCaller) -> list[dict[str, Any]]:
    return [shapes.group_definition(g) for g in accounts.list_groups(call.app, call.actor)]


def _create_group(call: DssCall, body: Any) -> dict[str, Any]:
    new = shapes.new_group(body)
    created = accounts.create_group(
        call.app,
        call.actor,
        new.name,
        description=new.description,
        administrator=new.rights.get("administrator", False),
        may_create_envs=new.rights.get("may_create_envs", False),
        may_manage_all_envs=new.rights.get("may_manage_all_envs", False),
    )
    return shapes.group_definition(created)


@router.post("/admin/groups/")
@router.post("/admin/groups")
async def create_group(call: DssCaller, request: Request) -> dict[str, Any]:
    """`create_group(name, description, source_type)`: the new group's definition."""
    body = await json_body(request)
    return await run_in_threadpool(partial(_create_group, call, body))


@router.get("/admin/groups/{name}")
def get_group(call: DssCaller, name: str) -> dict[str, Any]:
    return shapes.group_definition(_group(call, name))


def _set_group(call: DssCall, name: str, body: Any) -> dict[str, Any]:
    current = _group(call, name)
    changes = shapes.group_changes(current, body)
    if changes.empty:
        return shapes.group_definition(current)
    rights = changes.rights
    changed = accounts.set_group_rights(
        call.app,
        call.actor,
        current.name,
        description=changes.description,
        administrator=rights.get("administrator"),
        may_create_envs=rights.get("may_create_envs"),
        may_manage_all_envs=rights.get("may_manage_all_envs"),
    )
    return shapes.group_definition(changed)


@router.put("/admin/groups/{name}")
async def set_group(call: DssCaller, name: str, request: Request) -> dict[str, Any]:
    """`set_definition(d)`: only what differs from the group is applied; the new definition."""
    body = await json_body(request)
    return await run_in_threadpool(partial(_set_group, call, name, body))


@router.delete("/admin/groups/{name}")
def delete_group(call: DssCaller, name: str) -> dict[str, Any]:
    accounts.delete_group(call.app, call.actor, name)
    return {"deleted": name}


@router.get("/groups")
def list_groups_info(call: DssCaller) -> list[dict[str, Any]]:
    """`list_groups_info()`: every group's name, for anyone (what grants are picked from)."""
    return [{"name": name} for name in accounts.group_names(call.app, call.actor)]


# --- users ---------------------------------------------------------------------------------


@router.get("/admin/users/")
@router.get("/admin/users")
def list_users(call: DssCaller, includeSettings: bool = False) -> list[dict[str, Any]]:
    render = shapes.user_settings if includeSettings else shapes.user_info
    return [render(user) for user in accounts.list_users(call.app, call.actor)]


def _create_user(call: DssCall, body: Any) -> str:
    new = shapes.new_user(body)
    accounts.create_user(
        call.app,
        call.actor,
        new.login,
        new.password,
        display_name=new.display_name,
        groups=new.groups,
    )
    return new.login


@router.post("/admin/users/")
@router.post("/admin/users")
async def create_user(call: DssCaller, request: Request) -> dict[str, Any]:
    """`create_user(login, password, display_name, source_type, groups, …)`."""
    body = await json_body(request)
    login = await run_in_threadpool(partial(_create_user, call, body))
    return await run_in_threadpool(partial(_user_settings, call, login))


def _user_settings(call: DssCall, login: str) -> dict[str, Any]:
    return shapes.user_settings(accounts.get_user(call.app, call.actor, login))


@router.get("/admin/users/{login}")
def get_user(call: DssCaller, login: str) -> dict[str, Any]:
    """`get_settings()` / `get_definition()` (a user may read their own)."""
    return _user_settings(call, login)


def _set_user(call: DssCall, login: str, body: Any) -> dict[str, Any]:
    current = accounts.get_user(call.app, call.actor, login)
    changes = shapes.user_changes(current, body)
    app, actor, name = call.app, call.actor, current.name
    if changes.account:
        accounts.update_user(
            app, actor, name, display_name=changes.display_name, active=changes.active
        )
    for group in changes.add_groups:
        accounts.add_member(app, actor, group, name)
    for group in changes.remove_groups:
        accounts.remove_member(app, actor, group, name)
    if changes.password is not None:
        accounts.set_password(app, actor, name, changes.password)
    return _user_settings(call, name)


@router.put("/admin/users/{login}")
async def set_user(call: DssCaller, login: str, request: Request) -> dict[str, Any]:
    """`DSSUserSettings.save()` / `set_definition()`: display name, enabled, groups and
    password are applied when they differ; the new settings."""
    body = await json_body(request)
    return await run_in_threadpool(partial(_set_user, call, login, body))


@router.delete("/admin/users/{login}")
def delete_user(call: DssCaller, login: str, allowSelfDeletion: bool = False) -> dict[str, Any]:
    if name_key(login) == name_key(call.actor.name) and not allowSelfDeletion:
        raise DssError(
            "you may not delete your own user unless you pass allow_self_deletion=True",
            field="login",
            dss_code=None,
        )
    accounts.delete_user(call.app, call.actor, login)
    return {"deleted": login}


@router.get("/users")
def list_users_info(call: DssCaller) -> list[dict[str, Any]]:
    """`list_users_info()`: administrators only in codenv (users see no other accounts)."""
    return [shapes.user_info(user) for user in accounts.list_users(call.app, call.actor)]


@router.get("/users/{login}")
def get_user_info(call: DssCaller, login: str) -> dict[str, Any]:
    return shapes.user_info(accounts.get_user(call.app, call.actor, login))


@router.get("/current-user")
def current_user(call: DssCaller) -> dict[str, Any]:
    """`get_own_user().get_settings()`."""
    return _user_settings(call, call.actor.name)


# --- general settings ----------------------------------------------------------------------


def _general_settings(call: DssCall) -> dict[str, Any]:
    shown = node_settings.show_settings(call.app, call.actor)  # administrators only
    return shapes.general_settings(
        shown["install_options"], shown["venv_options"], shown["allow_requests"]
    )


@router.get("/admin/general-settings")
def get_general_settings(call: DssCaller) -> dict[str, Any]:
    return _general_settings(call)


def _save_general_settings(call: DssCall, body: Any) -> dict[str, Any]:
    app, actor = call.app, call.actor
    shown = node_settings.show_settings(app, actor)  # refuses anyone but administrators
    stored = node_settings.code_envs_settings(app)
    changes = shapes.settings_changes(
        body,
        install_stored=list(stored.get(shapes.PIP, [])),
        venv_stored=list(shown["venv_options"]),
        allow_requests=bool(shown["allow_requests"]),
    )
    # Check both option lists before writing either: a refusal changes nothing.
    if changes.install_options is not None:
        parse_options(changes.install_options, INSTALL_OPTIONS, field=shapes.PIP)
    if changes.venv_options is not None:
        parse_options(changes.venv_options, VENV_OPTIONS, field=shapes.VENV)
        node_settings.set_venv_options(app, actor, changes.venv_options)
    if changes.install_options is not None:
        node_settings.set_install_options(app, actor, changes.install_options)
    if changes.allow_requests is not None:
        node_settings.set_requests_allowed(app, actor, changes.allow_requests)
    return _general_settings(call)


@router.put("/admin/general-settings")
async def save_general_settings(call: DssCaller, request: Request) -> dict[str, Any]:
    """`DSSGeneralSettings.save()`: the `codeEnvs` options and `codenv.allowCodeEnvRequests`
    are applied when they differ; any other non-empty part is refused (400)."""
    body = await json_body(request)
    return await run_in_threadpool(partial(_save_general_settings, call, body))
