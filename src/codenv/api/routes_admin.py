"""/api/v1: sessions, interpreters, sets, settings, users, groups, tokens, requests, audit."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query, Request, Response, status

from codenv.api.errors import TOO_MANY_ATTEMPTS
from codenv.api.routes_envs import spec_of
from codenv.api.schemas import (
    AllowRequestsBody,
    GroupBody,
    GroupRightsBody,
    LoginBody,
    OptionsBody,
    PasswordBody,
    PathBody,
    RejectBody,
    RequestBody,
    TokenBody,
    UserBody,
    UserChangeBody,
)
from codenv.http.auth import client_source
from codenv.http.deps import Caller, codenv_of
from codenv.http.sessions import end_session, start_session
from codenv.services import accounts, audit, interpreters, node_settings, requests, tokens
from codenv.services.authentication import authenticate_password

router = APIRouter(prefix="/api/v1")


@router.post("/session", tags=["session"], responses=TOO_MANY_ATTEMPTS)
def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
    """Log in (browser session): sets the session and CSRF cookies."""
    app = codenv_of(request)
    actor = authenticate_password(app, body.name, body.password, client_source(request))
    assert actor.user_id is not None
    session = start_session(request, response, actor.user_id)
    return {"user": actor.name, "is_admin": actor.is_admin, "csrf_token": session.csrf}


@router.delete("/session", tags=["session"], status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response) -> None:
    end_session(request, response)


@router.get("/me", tags=["session"])
def me(call: Caller) -> dict[str, Any]:
    actor = call.actor
    return {
        "name": actor.name,
        "groups": sorted(actor.groups),
        "is_admin": actor.is_admin,
        "may_create": actor.may_create,
        "may_manage_all": actor.may_manage_all,
    }


@router.get("/pythons", tags=["node"])
def list_pythons(call: Caller) -> dict[str, Any]:
    found = interpreters.list_pythons(call.app, call.actor)
    return {
        "interpreters": [item.to_dict() for item in found.found],
        "refused": [asdict(item) for item in found.refused],
    }


@router.post("/pythons", tags=["node"], status_code=status.HTTP_201_CREATED)
def add_python(body: PathBody, call: Caller) -> dict[str, Any]:
    return interpreters.add_python(call.app, call.actor, body.path).to_dict()


@router.get("/sets", tags=["node"])
def list_sets(call: Caller) -> list[dict[str, Any]]:
    return [item.to_dict() for item in call.app.catalog.sets]


@router.get("/settings", tags=["node"])
def show_settings(call: Caller) -> dict[str, Any]:
    return node_settings.show_settings(call.app, call.actor)


@router.put("/settings/install-options", tags=["node"])
def set_install_options(body: OptionsBody, call: Caller) -> dict[str, Any]:
    node_settings.set_install_options(call.app, call.actor, body.tokens)
    return node_settings.show_settings(call.app, call.actor)


@router.put("/settings/venv-options", tags=["node"])
def set_venv_options(body: OptionsBody, call: Caller) -> dict[str, Any]:
    node_settings.set_venv_options(call.app, call.actor, body.tokens)
    return node_settings.show_settings(call.app, call.actor)


@router.put("/settings/requests", tags=["node"])
def set_requests(body: AllowRequestsBody, call: Caller) -> dict[str, Any]:
    node_settings.set_requests_allowed(call.app, call.actor, body.allow)
    return node_settings.show_settings(call.app, call.actor)


@router.get("/users", tags=["accounts"])
def list_users(call: Caller) -> list[dict[str, Any]]:
    return [user.to_dict() for user in accounts.list_users(call.app, call.actor)]


@router.post("/users", tags=["accounts"], status_code=status.HTTP_201_CREATED)
def create_user(body: UserBody, call: Caller) -> dict[str, Any]:
    return accounts.create_user(
        call.app,
        call.actor,
        body.name,
        body.password,
        display_name=body.display_name,
        groups=body.groups,
    ).to_dict()


@router.patch("/users/{name}", tags=["accounts"])
def update_user(name: str, body: UserChangeBody, call: Caller) -> dict[str, Any]:
    return accounts.update_user(
        call.app, call.actor, name, display_name=body.display_name, active=body.active
    ).to_dict()


@router.put("/users/{name}/password", tags=["accounts"], status_code=204)
def set_password(name: str, body: PasswordBody, call: Caller) -> None:
    accounts.set_password(
        call.app, call.actor, name, body.new_password, current_password=body.current_password
    )


@router.get("/groups", tags=["accounts"])
def list_groups(call: Caller) -> list[dict[str, Any]]:
    return [group.to_dict() for group in accounts.list_groups(call.app, call.actor)]


@router.post("/groups", tags=["accounts"], status_code=status.HTTP_201_CREATED)
def create_group(body: GroupBody, call: Caller) -> dict[str, Any]:
    return accounts.create_group(
        call.app,
        call.actor,
        body.name,
        administrator=body.administrator,
        may_create_envs=body.may_create_envs,
        may_manage_all_envs=body.may_manage_all_envs,
    ).to_dict()


@router.patch("/groups/{name}", tags=["accounts"])
def set_group_rights(name: str, body: GroupRightsBody, call: Caller) -> dict[str, Any]:
    return accounts.set_group_rights(
        call.app,
        call.actor,
        name,
        administrator=body.administrator,
        may_create_envs=body.may_create_envs,
        may_manage_all_envs=body.may_manage_all_envs,
    ).to_dict()


@router.put("/groups/{name}/members/{user}", tags=["accounts"])
def add_member(name: str, user: str, call: Caller) -> dict[str, Any]:
    return accounts.add_member(call.app, call.actor, name, user).to_dict()


@router.delete("/groups/{name}/members/{user}", tags=["accounts"])
def remove_member(name: str, user: str, call: Caller) -> dict[str, Any]:
    return accounts.remove_member(call.app, call.actor, name, user).to_dict()


@router.get("/tokens", tags=["tokens"])
def list_tokens(call: Caller, all_users: bool = False) -> list[dict[str, Any]]:
    found = tokens.list_tokens(call.app, call.actor, all_users=all_users)
    return [token.to_dict() for token in found]


@router.post("/tokens", tags=["tokens"], status_code=status.HTTP_201_CREATED)
def create_token(body: TokenBody, call: Caller) -> dict[str, Any]:
    """The secret is in this response only."""
    return tokens.create_token(
        call.app, call.actor, name=body.name, expires_at=body.expires_at, user=body.user
    ).to_dict()


@router.delete("/tokens/{token_id}", tags=["tokens"])
def revoke_token(token_id: int, call: Caller) -> dict[str, Any]:
    return tokens.revoke_token(call.app, call.actor, token_id).to_dict()


@router.post("/requests", tags=["requests"], status_code=status.HTTP_201_CREATED)
def submit_request(body: RequestBody, call: Caller) -> dict[str, Any]:
    return requests.submit_request(
        call.app, call.actor, body.name, spec_of(body), body.message
    ).to_dict()


@router.get("/requests", tags=["requests"])
def list_requests(
    call: Caller, mine: bool = False, status_filter: str | None = Query(None, alias="status")
) -> list[dict[str, Any]]:
    """The inbox (administrators) or, with `mine`, the caller's own requests."""
    found = (
        requests.my_requests(call.app, call.actor)
        if mine
        else requests.list_requests(call.app, call.actor, status=status_filter)
    )
    return [item.to_dict() for item in found]


@router.get("/requests/{request_id}", tags=["requests"])
def get_request(request_id: int, call: Caller) -> dict[str, Any]:
    return requests.get_request(call.app, call.actor, request_id).to_dict()


@router.post("/requests/{request_id}/approve", tags=["requests"])
def approve_request(request_id: int, call: Caller) -> dict[str, Any]:
    """The request, approved, with the `build_id` of the new env's first build."""
    decided, _ = requests.approve_request(call.app, call.actor, request_id)
    return decided.to_dict()


@router.post("/requests/{request_id}/reject", tags=["requests"])
def reject_request(request_id: int, body: RejectBody, call: Caller) -> dict[str, Any]:
    return requests.reject_request(call.app, call.actor, request_id, body.reason).to_dict()


@router.get("/audit", tags=["audit"])
def list_audit(
    call: Caller,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    action: str | None = None,
) -> list[dict[str, Any]]:
    found = audit.list_audit(call.app, call.actor, limit, offset, action=action)
    return [entry.to_dict() for entry in found]
