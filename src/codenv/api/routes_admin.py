"""/api/v1: sessions, interpreters, sets, settings, users, groups, tokens, requests, audit, kept
resources of deleted envs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response, status

from codenv.api.answers import answer
from codenv.api.errors import TOO_MANY_ATTEMPTS
from codenv.api.responses_admin import (
    AddedInterpreter,
    AuditEntry,
    AuditPage,
    EnvRequest,
    Group,
    KeptResources,
    LoggedIn,
    Me,
    NewToken,
    Node,
    PackageSet,
    Pythons,
    RequestPage,
    Session,
    SessionsEnded,
    Settings,
    Token,
    User,
    UserPage,
)
from codenv.api.routers import api_router
from codenv.api.routes_envs import spec_of
from codenv.api.schemas import (
    AdoptBody,
    AllowRequestsBody,
    Cursor,
    Filter,
    GroupBody,
    GroupRightsBody,
    Limit,
    LoginBody,
    NodeKindBody,
    OptionsBody,
    PasswordBody,
    PathBody,
    PreventOverrideBody,
    ProxiesBody,
    RejectBody,
    RequestBody,
    RootsBody,
    SandboxBody,
    TokenBody,
    TokenExpiryBody,
    UserBody,
    UserChangeBody,
    listed,
    wants_page,
)
from codenv.domain.errors import InvalidInput
from codenv.http.auth import client_source
from codenv.http.deps import Caller, codenv_of
from codenv.http.params import MAX_ID, RowId
from codenv.http.sessions import end_session, start_session
from codenv.services import (
    accounts,
    audit,
    boxes,
    interpreters,
    kept_resources,
    listing,
    node_info,
    node_settings,
    requests,
    sessions,
    tokens,
)
from codenv.services.authentication import authenticate_password
from codenv.services.listing import DEFAULT_LIMIT, MAX_FILTER

router = api_router()
MAX_AUDIT = 1000  # entries in one plain list (the older paging, with `offset`)


@router.post("/session", tags=["session"], responses=TOO_MANY_ATTEMPTS, response_model=LoggedIn)
def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
    """Log in (browser session): sets the session and CSRF cookies."""
    app = codenv_of(request)
    actor = authenticate_password(app, body.name, body.password, client_source(request))
    csrf = start_session(request, response, app, actor)
    return {"user": actor.name, "is_admin": actor.is_admin, "csrf_token": csrf}


@router.delete("/session", tags=["session"], status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response) -> None:
    """Log out: the session ends on the server (its cookie no longer works anywhere)."""
    end_session(request, response, codenv_of(request), client_source(request))


@router.get("/sessions", tags=["session"], response_model=list[Session])
def list_sessions(call: Caller, user: str | None = None) -> list[dict[str, Any]]:
    """Live browser sessions (administrators), the most recently seen first."""
    return [info.to_dict() for info in sessions.list_sessions(call.app, call.actor, user=user)]


@router.delete("/sessions/{session_id}", tags=["session"], response_model=Session)
def end_session_by_id(session_id: RowId, call: Caller) -> dict[str, Any]:
    """End one session: that browser is logged out at its next request."""
    return sessions.end_session_by_id(call.app, call.actor, session_id).to_dict()


@router.delete("/users/{name}/sessions", tags=["session"], response_model=SessionsEnded)
def end_user_sessions(name: str, call: Caller) -> dict[str, Any]:
    return {"ended": sessions.end_user_sessions(call.app, call.actor, name)}


@router.get("/me", tags=["session"], response_model=Me)
def me(call: Caller) -> dict[str, Any]:
    actor = call.actor
    return {
        "name": actor.name,
        "groups": sorted(actor.groups),
        "is_admin": actor.is_admin,
        "may_create": actor.may_create,
        "may_manage_all": actor.may_manage_all,
    }


@router.get("/pythons", tags=["node"], response_model=Pythons)
def list_pythons(call: Caller) -> dict[str, Any]:
    """The node's interpreters; their paths (and the refused ones) for administrators only."""
    return interpreters.pythons_shown(call.app, call.actor)


@router.post(
    "/pythons", tags=["node"], status_code=status.HTTP_201_CREATED, response_model=AddedInterpreter
)
def add_python(body: PathBody, call: Caller) -> dict[str, Any]:
    return interpreters.add_python(call.app, call.actor, body.path).to_dict()


@router.get("/sets", tags=["node"], response_model=list[PackageSet])
def list_sets(call: Caller) -> list[dict[str, Any]]:
    return [item.to_dict() for item in call.app.catalog.sets]


def _settings(call: Caller) -> dict[str, Any]:
    return node_settings.show_settings(call.app, call.actor)


@router.get("/settings", tags=["node"], response_model=Settings)
def show_settings(call: Caller) -> dict[str, Any]:
    return _settings(call)


@router.put("/settings/install-options", tags=["node"], response_model=Settings)
def set_install_options(body: OptionsBody, call: Caller) -> dict[str, Any]:
    node_settings.set_install_options(call.app, call.actor, body.tokens)
    return _settings(call)


@router.put("/settings/venv-options", tags=["node"], response_model=Settings)
def set_venv_options(body: OptionsBody, call: Caller) -> dict[str, Any]:
    node_settings.set_venv_options(call.app, call.actor, body.tokens)
    return _settings(call)


@router.put("/settings/requests", tags=["node"], response_model=Settings)
def set_requests(body: AllowRequestsBody, call: Caller) -> dict[str, Any]:
    node_settings.set_requests_allowed(call.app, call.actor, body.allow)
    return _settings(call)


@router.put("/settings/sandbox", tags=["node"], response_model=Settings)
def set_sandbox(body: SandboxBody, call: Caller) -> dict[str, Any]:
    """`off` lets builds run unsandboxed, as codenv itself (recorded in the audit log)."""
    boxes.set_sandbox_mode(call.app, call.actor, body.mode)
    return _settings(call)


@router.put("/settings/local-source-roots", tags=["node"], response_model=Settings)
def set_local_source_roots(body: RootsBody, call: Caller) -> dict[str, Any]:
    """The directories requested packages may name local archives and `-e` sources in."""
    node_settings.set_local_source_roots(call.app, call.actor, body.roots)
    return _settings(call)


@router.put("/settings/trusted-proxies", tags=["node"], response_model=Settings)
def set_trusted_proxies(body: ProxiesBody, call: Caller) -> dict[str, Any]:
    """The reverse proxies whose X-Forwarded-For gives a request's source (none: the peer)."""
    node_settings.set_trusted_proxies(call.app, call.actor, body.proxies)
    return _settings(call)


@router.get("/node", tags=["node"], response_model=Node)
def show_node(call: Caller) -> dict[str, Any]:
    """This node: its kind (design, automation, api) and what it allows, codenv's version, the
    Python it runs on, the sandbox mode."""
    return node_info.node_info(call.app, call.actor).to_dict()


@router.put("/settings/node-kind", tags=["node"], response_model=Settings)
def set_node_kind(body: NodeKindBody, call: Caller) -> dict[str, Any]:
    """design: envs are designed here; automation, api: envs are imported, spec edits refused."""
    node_settings.set_node_kind(call.app, call.actor, body.kind)
    return _settings(call)


@router.put("/settings/prevent-override", tags=["node"], response_model=Settings)
def set_prevent_override(body: PreventOverrideBody, call: Caller) -> dict[str, Any]:
    """preventOverrideFromImportedEnvs: on an API node, the node's options win."""
    node_settings.set_prevent_override(call.app, call.actor, body.prevent)
    return _settings(call)


@router.get("/kept-resources", tags=["node"], response_model=list[KeptResources])
def list_kept(call: Caller) -> list[dict[str, Any]]:
    """Resources (and env vars) of deleted code envs, set aside (administrators)."""
    return [kept.to_dict() for kept in kept_resources.list_kept(call.app, call.actor)]


@router.post("/kept-resources/{kept_id}/adopt", tags=["node"], status_code=204)
def adopt_kept(kept_id: str, body: AdoptBody, call: Caller) -> None:
    """Give them to a code env that has no resources of its own."""
    kept_resources.adopt_kept(call.app, call.actor, kept_id, body.env)


@router.delete("/kept-resources/{kept_id}", tags=["node"], status_code=204)
def drop_kept(kept_id: str, call: Caller) -> None:
    kept_resources.drop_kept(call.app, call.actor, kept_id)


@router.get("/users", tags=["accounts"], response_model=list[User] | UserPage)
def list_users(
    call: Caller, limit: Limit = None, cursor: Cursor = None, prefix: Filter = None
) -> Response:
    """By name; `prefix`: of the name, case-insensitive. With `limit` or `cursor`: one page."""
    if prefix is None and not wants_page(limit, cursor):
        return answer(accounts.list_users(call.app, call.actor))
    return answer(
        listed(
            lambda size, after: listing.find_users(
                call.app, call.actor, limit=size, cursor=after, prefix=prefix
            ),
            limit,
            cursor,
        )
    )


@router.post("/users", tags=["accounts"], status_code=status.HTTP_201_CREATED, response_model=User)
def create_user(body: UserBody, call: Caller) -> dict[str, Any]:
    return accounts.create_user(
        call.app,
        call.actor,
        body.name,
        body.password,
        display_name=body.display_name,
        groups=body.groups,
    ).to_dict()


@router.patch("/users/{name}", tags=["accounts"], response_model=User)
def update_user(name: str, body: UserChangeBody, call: Caller) -> dict[str, Any]:
    return accounts.update_user(
        call.app, call.actor, name, display_name=body.display_name, active=body.active
    ).to_dict()


@router.delete("/users/{name}", tags=["accounts"], status_code=204)
def delete_user(name: str, call: Caller) -> None:
    """Remove a user (refused while they own code envs); their sessions and tokens end."""
    accounts.delete_user(call.app, call.actor, name)


@router.put("/users/{name}/password", tags=["accounts"], status_code=204)
def set_password(name: str, body: PasswordBody, call: Caller) -> None:
    """Ends the user's browser sessions (theirs too, when they change their own)."""
    accounts.set_password(
        call.app, call.actor, name, body.new_password, current_password=body.current_password
    )


@router.get("/groups", tags=["accounts"], response_model=list[Group])
def list_groups(call: Caller) -> list[dict[str, Any]]:
    return [group.to_dict() for group in accounts.list_groups(call.app, call.actor)]


@router.post(
    "/groups", tags=["accounts"], status_code=status.HTTP_201_CREATED, response_model=Group
)
def create_group(body: GroupBody, call: Caller) -> dict[str, Any]:
    return accounts.create_group(
        call.app,
        call.actor,
        body.name,
        administrator=body.administrator,
        may_create_envs=body.may_create_envs,
        may_manage_all_envs=body.may_manage_all_envs,
    ).to_dict()


@router.patch("/groups/{name}", tags=["accounts"], response_model=Group)
def set_group_rights(name: str, body: GroupRightsBody, call: Caller) -> dict[str, Any]:
    return accounts.set_group_rights(
        call.app,
        call.actor,
        name,
        administrator=body.administrator,
        may_create_envs=body.may_create_envs,
        may_manage_all_envs=body.may_manage_all_envs,
    ).to_dict()


@router.put("/groups/{name}/members/{user}", tags=["accounts"], response_model=Group)
def add_member(name: str, user: str, call: Caller) -> dict[str, Any]:
    return accounts.add_member(call.app, call.actor, name, user).to_dict()


@router.delete("/groups/{name}/members/{user}", tags=["accounts"], response_model=Group)
def remove_member(name: str, user: str, call: Caller) -> dict[str, Any]:
    return accounts.remove_member(call.app, call.actor, name, user).to_dict()


@router.get("/tokens", tags=["tokens"], response_model=list[Token])
def list_tokens(call: Caller, all_users: bool = False) -> list[dict[str, Any]]:
    found = tokens.list_tokens(call.app, call.actor, all_users=all_users)
    return [token.to_dict() for token in found]


@router.post(
    "/tokens", tags=["tokens"], status_code=status.HTTP_201_CREATED, response_model=NewToken
)
def create_token(body: TokenBody, call: Caller) -> dict[str, Any]:
    """The secret is in this response only."""
    return tokens.create_token(
        call.app, call.actor, name=body.name, expires_at=body.expires_at, user=body.user
    ).to_dict()


@router.put("/tokens/{token_id}/expiry", tags=["tokens"], response_model=Token)
def set_token_expiry(token_id: RowId, body: TokenExpiryBody, call: Caller) -> dict[str, Any]:
    """Change when a token expires (null: never); a revoked token answers 409."""
    return tokens.set_token_expiry(call.app, call.actor, token_id, body.expires_at).to_dict()


@router.delete("/tokens/{token_id}", tags=["tokens"], response_model=Token)
def revoke_token(token_id: RowId, call: Caller) -> dict[str, Any]:
    return tokens.revoke_token(call.app, call.actor, token_id).to_dict()


@router.post(
    "/requests", tags=["requests"], status_code=status.HTTP_201_CREATED, response_model=EnvRequest
)
def submit_request(body: RequestBody, call: Caller) -> dict[str, Any]:
    return requests.submit_request(
        call.app, call.actor, body.name, spec_of(body), body.message
    ).to_dict()


@router.get("/requests", tags=["requests"], response_model=list[EnvRequest] | RequestPage)
def list_requests(
    call: Caller,
    mine: bool = False,
    status_filter: Annotated[str | None, Query(alias="status", max_length=MAX_FILTER)] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any] | list[dict[str, Any]]:
    """The inbox (administrators; pending first) or, with `mine`, the caller's own requests.
    With `limit` or `cursor`: one page of either."""
    if wants_page(limit, cursor):
        return listing.find_requests(
            call.app,
            call.actor,
            limit=limit or DEFAULT_LIMIT,
            cursor=cursor,
            status=status_filter,
            mine=mine,
        ).to_dict()
    if mine:
        return [item.to_dict() for item in requests.my_requests(call.app, call.actor)]
    found = requests.list_requests(call.app, call.actor, status=status_filter)
    return [item.to_dict() for item in found]


@router.get("/requests/{request_id}", tags=["requests"], response_model=EnvRequest)
def get_request(request_id: RowId, call: Caller) -> dict[str, Any]:
    return requests.get_request(call.app, call.actor, request_id).to_dict()


@router.post("/requests/{request_id}/approve", tags=["requests"], response_model=EnvRequest)
def approve_request(request_id: RowId, call: Caller) -> dict[str, Any]:
    """The request, approved, with the `build_id` of the new env's first build."""
    decided, _ = requests.approve_request(call.app, call.actor, request_id)
    return decided.to_dict()


@router.post("/requests/{request_id}/reject", tags=["requests"], response_model=EnvRequest)
def reject_request(request_id: RowId, body: RejectBody, call: Caller) -> dict[str, Any]:
    return requests.reject_request(call.app, call.actor, request_id, body.reason).to_dict()


@router.get("/audit", tags=["audit"], response_model=list[AuditEntry] | AuditPage)
def list_audit(
    call: Caller,
    limit: Annotated[int | None, Query(ge=1, le=MAX_AUDIT)] = None,
    cursor: Cursor = None,
    offset: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="the older paging: a plain list")
    ] = None,
    action: Filter = None,
    target: Filter = None,
    actor: Filter = None,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Newest first; `action` may end in `*` (`env.*`). With `cursor`, or `limit` without
    `offset`: one page (`limit` up to 500). Otherwise a plain list: the newest 100, or with
    `offset` the older paging (`limit` up to 1000; no `actor`)."""
    if offset is not None and cursor is None:
        if actor is not None:
            raise InvalidInput("`actor` filters pages (a cursor), not offsets", field="actor")
        found = audit.list_audit(
            call.app, call.actor, limit or DEFAULT_LIMIT, offset, action=action, target=target
        )
        return [entry.to_dict() for entry in found]
    page = listing.find_audit(
        call.app,
        call.actor,
        limit=limit or DEFAULT_LIMIT,
        cursor=cursor,
        action=action,
        target=target,
        actor_name=actor,
    )
    return page.to_dict() if wants_page(limit, cursor) else [e.to_dict() for e in page.items]
