"""What the /api/v1 routes of sessions, the node, accounts, tokens, requests and the audit log
answer, typed (closed and strict, as `codenv.api.responses` says)."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from codenv.api.responses import Spec, closed


@closed
class LoggedIn(TypedDict):
    user: str
    is_admin: bool
    csrf_token: str


@closed
class Session(TypedDict):
    id: int
    user: str
    created_at: str | None
    last_seen_at: str | None
    expires_at: str | None
    source: str
    user_agent: str


@closed
class SessionsEnded(TypedDict):
    ended: int


@closed
class Me(TypedDict):
    name: str
    groups: list[str]
    is_admin: bool
    may_create: bool
    may_manage_all: bool


@closed
class Interpreter(TypedDict):
    path: str | None  # null for callers who are not administrators
    version: str
    implementation: str
    source: str
    has_headers: bool
    deprecated: bool


@closed
class AddedInterpreter(TypedDict):
    path: str
    version: str
    implementation: str
    source: str
    has_headers: bool
    deprecated: bool


@closed
class RefusedInterpreter(TypedDict):
    path: str
    source: str
    reason: str


@closed
class Pythons(TypedDict):
    interpreters: list[Interpreter]
    refused: list[RefusedInterpreter]


@closed
class PackageSet(TypedDict):
    id: str
    title: str
    description: str
    python_min: str
    python_max: str
    variants: dict[str, list[str]]


@closed
class Settings(TypedDict):
    sandbox: str
    node_kind: str
    prevent_override_from_imported_envs: bool
    install_options: list[str]
    venv_options: list[str]
    default_index: str
    allow_requests: bool
    allowed_local_source_roots: list[str]
    trusted_proxies: list[str]
    revision_retention: int
    resolution_ttl_seconds: int
    supported_install_options: list[str]
    supported_venv_options: list[str]


@closed
class Node(TypedDict):
    kind: str
    designs_envs: bool
    version: str
    python: str
    sandbox: str
    prevent_override_from_imported_envs: bool
    config_file: str | None


@closed
class KeptResources(TypedDict):
    id: str
    env: str
    kept_at: str
    size_bytes: int
    env_vars: bool


@closed
class User(TypedDict):
    id: int
    name: str
    display_name: str
    active: bool
    groups: list[str]
    is_admin: bool
    may_create: bool
    may_manage_all: bool
    has_password: bool
    created_at: str | None


@closed
class Group(TypedDict):
    id: int
    name: str
    description: str
    administrator: bool
    may_create_envs: bool
    may_manage_all_envs: bool
    members: list[str]
    created_at: str | None


@closed
class Token(TypedDict):
    id: int
    user: str
    name: str
    prefix: str
    status: str
    created_by: str
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None


@closed
class NewToken(Token):
    """A token just created: `secret` is in this response only."""

    secret: str


@closed
class EnvRequest(TypedDict):
    id: int
    name: str
    requester: str
    spec: Spec
    message: str
    status: str
    reason: str
    decided_by: str | None
    decided_at: str | None
    build_id: str | None
    created_at: str | None


@closed
class AuditEntry(TypedDict):
    id: int
    at: str | None
    actor: str
    action: str
    target: str
    details: dict[str, Any]  # what each action records differs: open by nature
    source: str


@closed
class UserPage(TypedDict):
    items: list[User]
    next_cursor: str | None


@closed
class RequestPage(TypedDict):
    items: list[EnvRequest]
    next_cursor: str | None


@closed
class AuditPage(TypedDict):
    items: list[AuditEntry]
    next_cursor: str | None
