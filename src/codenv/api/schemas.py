"""Request bodies and list parameters. Responses are the services' views (`to_dict()`), typed
in `codenv.api.responses`.

Every field has the size its service allows (the services check it again, for the console and
the CLI): a body or query over them is answered 422 naming the field, before any service runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from codenv.domain import limits
from codenv.domain.names import MAX_NAME_CHARS
from codenv.http.params import MAX_ID
from codenv.services.accounts import MAX_PASSWORD
from codenv.services.listing import DEFAULT_LIMIT, MAX_FILTER, MAX_LIMIT, Page
from codenv.services.requests import MAX_MESSAGE

Name = Annotated[str, Field(max_length=MAX_NAME_CHARS)]
Token = Annotated[str, Field(max_length=limits.MAX_OPTION_CHARS)]
SetText = Annotated[str, Field(max_length=limits.MAX_SET_REF_CHARS)]
Options = Annotated[list[Token], Field(max_length=limits.MAX_OPTIONS)]
Sets = Annotated[list[SetText], Field(max_length=limits.MAX_SETS)]
Line = Annotated[str, Field(max_length=limits.MAX_LINE_CHARS)]
Lines = Annotated[list[Line], Field(max_length=limits.MAX_CHANGED_LINES)]
Password = Annotated[str, Field(max_length=MAX_PASSWORD)]
MAX_GRANTS = 100  # groups in one grant list, or one user's groups
MAX_DISPLAY_NAME = 256  # as services/accounts.py
MAX_TOKEN_NAME = 128  # as services/tokens.py
MAX_EXPORTED = 1000  # code envs named in one export


class SpecBody(BaseModel):
    """A code env's spec, every field of it."""

    # All of EnvSpec's fields (tests/test_cli_remote.py checks): one left out here would be
    # dropped from what the remote CLI sends.
    python: str = Field(description="Python version, like 3.11", max_length=limits.MAX_PYTHON_CHARS)
    install_core_packages: bool = True
    install_jupyter_support: bool = False
    package_sets: Sets = Field(default_factory=list, description="ID or ID:variant")
    requested: str = Field(
        "", description="requirements.txt text", max_length=limits.MAX_REQUESTED_CHARS
    )
    description: str = Field("", max_length=limits.MAX_DESCRIPTION_CHARS)
    resources_init_script: str = Field("", max_length=limits.MAX_SCRIPT_CHARS)
    run_init_script_on_update: bool = True
    run_init_script_on_api_node: bool = True
    install_options: Options | None = Field(None, description="null: the node's options")
    venv_options: Options | None = Field(None, description="null: the node's options")
    install_seed_packages: bool | None = Field(
        None, description="pip, setuptools and wheel in the env; null: the node's default"
    )


class CreateEnvBody(SpecBody):
    name: Name


class SaveSpecBody(BaseModel):
    """Changes to the saved spec (null or empty: unchanged), and what to do after saving."""

    requested: str | None = Field(None, max_length=limits.MAX_REQUESTED_CHARS)
    add: Lines = Field(default_factory=list)
    remove: Lines = Field(default_factory=list)
    add_sets: Sets = Field(default_factory=list)
    remove_sets: Sets = Field(default_factory=list)
    python: str | None = Field(None, max_length=limits.MAX_PYTHON_CHARS)
    install_core_packages: bool | None = None
    install_jupyter_support: bool | None = None
    install_seed_packages: bool | None = None
    description: str | None = Field(None, max_length=limits.MAX_DESCRIPTION_CHARS)
    resources_init_script: str | None = Field(None, max_length=limits.MAX_SCRIPT_CHARS)
    run_init_script_on_update: bool | None = None
    run_init_script_on_api_node: bool | None = None
    install_options: Options | None = None
    inherit_install_options: bool = False
    venv_options: Options | None = None
    inherit_venv_options: bool = False
    update: bool = Field(False, description="Save and update")
    upgrade_all: bool = False
    rebuild: bool = False


class UpdateBody(BaseModel):
    upgrade_all: bool = False
    rebuild: bool = False


class RollbackBody(BaseModel):
    revision: int = Field(ge=1, le=MAX_ID)


class InitScriptBody(BaseModel):
    script: str | None = Field(None, max_length=limits.MAX_SCRIPT_CHARS)
    run_on_update: bool | None = None
    run_on_api_node: bool | None = None


class PermissionsBody(BaseModel):
    owner: Name | None = None
    usable_by_all: bool | None = None
    grants: list[tuple[Name, Name]] | None = Field(
        None, description="[group, level] pairs", max_length=MAX_GRANTS
    )


class LoginBody(BaseModel):
    name: str = Field(max_length=256)
    password: str = Field(max_length=1024)


class PathBody(BaseModel):
    path: str = Field(max_length=limits.MAX_PATH_BYTES)


class UserBody(BaseModel):
    name: Name
    password: Password | None = None
    display_name: str = Field("", max_length=MAX_DISPLAY_NAME)
    groups: list[Name] = Field(default_factory=list, max_length=MAX_GRANTS)


class UserChangeBody(BaseModel):
    display_name: str | None = Field(None, max_length=MAX_DISPLAY_NAME)
    active: bool | None = None


class PasswordBody(BaseModel):
    new_password: Password
    current_password: Password | None = None


class GroupBody(BaseModel):
    name: Name
    administrator: bool = False
    may_create_envs: bool = False
    may_manage_all_envs: bool = False


class GroupRightsBody(BaseModel):
    administrator: bool | None = None
    may_create_envs: bool | None = None
    may_manage_all_envs: bool | None = None


class TokenBody(BaseModel):
    name: str = Field("", max_length=MAX_TOKEN_NAME)
    expires_at: datetime | None = None
    user: Name | None = None


class TokenExpiryBody(BaseModel):
    expires_at: datetime | None = Field(None, description="null: never expires")


class RequestBody(SpecBody):
    name: Name
    message: str = Field("", max_length=MAX_MESSAGE)


class RejectBody(BaseModel):
    reason: str = Field(max_length=MAX_MESSAGE)


class OptionsBody(BaseModel):
    tokens: Options


class AllowRequestsBody(BaseModel):
    allow: bool


class ExportBody(BaseModel):
    """What to export: the envs named, or every env the caller may change (`all`)."""

    envs: list[Name] = Field(default_factory=list, max_length=MAX_EXPORTED)
    all: bool = Field(False, description="every code env the caller may change")
    revision: int | None = Field(
        None, ge=1, le=MAX_ID, description="one env only: this revision (null: the active one)"
    )
    with_wheels: bool = Field(False, description="carry every wheel: the bundle installs offline")
    with_resources: bool = Field(False, description="carry the resources directory")


# Node settings (routes_admin.py).
class SandboxBody(BaseModel):
    mode: str = Field(max_length=16, description='"required" or "off"')


class RootsBody(BaseModel):
    roots: list[str] = Field(max_length=100, description="absolute directories")


class NodeKindBody(BaseModel):
    kind: str = Field(max_length=16, description='"design", "automation" or "api"')


class PreventOverrideBody(BaseModel):
    prevent: bool = Field(
        description="API nodes: the node's install options replace those of imported envs"
    )


class ProxiesBody(BaseModel):
    proxies: list[str] = Field(max_length=100, description="IP addresses or networks")


class AdoptBody(BaseModel):
    env: str = Field(max_length=64, description="the code env that gets the resources")


# --- list parameters ----------------------------------------------------------------------

MAX_CURSOR = 512  # a cursor is a short opaque token (services/listing.py makes them)
Limit = Annotated[
    int | None,
    Query(ge=1, le=MAX_LIMIT, description="items per page: with it, the answer is a page"),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR,
        description="the `next_cursor` of the page before: with it, the answer is a page",
    ),
]
Filter = Annotated[str | None, Query(max_length=MAX_FILTER)]
Sort = Annotated[str, Query(max_length=16, description="name, -name, created, -created, owner")]


def listed(
    fetch: Callable[[int, str | None], Page], limit: int | None, cursor: str | None
) -> Page | list[Any]:
    """The page asked for when `limit` or `cursor` is given; otherwise every item, a plain
    list, as these routes answered before they had pages (scripts rely on it)."""
    if limit is not None or cursor is not None:
        return fetch(limit or DEFAULT_LIMIT, cursor)
    page = fetch(MAX_LIMIT, None)
    items = list(page.items)
    while page.next_cursor is not None:
        page = fetch(MAX_LIMIT, page.next_cursor)
        items.extend(page.items)
    return items


def wants_page(limit: int | None, cursor: str | None) -> bool:
    return limit is not None or cursor is not None


def operation_id(route: APIRoute) -> str:
    """A route's operationId in the schema: its function's name (`list_envs`), which is what a
    client generated from it names its calls (unique across /api/v1)."""
    return route.name
