"""Code env requests: a user without the create right asks; an administrator approves or rejects.

Requests are allowed only while the node's setting says so (`node_settings.requests_allowed`).
A request is validated when submitted exactly as `create` validates (name, then the whole spec),
and its name may be neither an env's nor another pending request's. Approving creates the env
and queues its build with the requester as its owner; rejecting keeps the reason for them.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from codenv.domain.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    InvalidSpec,
    NotFound,
    PermissionDenied,
)
from codenv.domain.names import name_key
from codenv.domain.spec import EnvSpec
from codenv.services.access_views import RequestInfo
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.services.audit import add_entry, spec_details
from codenv.services.envs import Created, check_new_name, create_env
from codenv.services.node_settings import requests_allowed, require_design_node
from codenv.services.plans import check_spec
from codenv.storage import queries
from codenv.storage.models import EnvRequestRow, utcnow

REQUESTS_OFF = "requests for code envs are turned off on this node; ask an administrator"
STATUSES = ("pending", "approved", "rejected")
MAX_MESSAGE = 4000


def _check_request(app: Codenv, name: str, spec: EnvSpec, message: str) -> None:
    check_new_name(app, name)
    with app.db.session() as session:
        if queries.pending_request(session, name) is not None:
            raise AlreadyExists(f"a request for a code env named {name!r} is pending", field="name")
    _check_contents(app, spec, message)


def _check_contents(app: Codenv, spec: EnvSpec, message: str) -> None:
    """What a request may carry: a spec `create` accepts, without an init script."""
    if spec.resources_init_script.strip():
        raise InvalidSpec(
            "a request cannot carry a resources init script (it runs code on the server); "
            "add it once the env is yours",
            field="resources_init_script",
        )
    if len(message) > MAX_MESSAGE:
        raise InvalidInput(f"the message is longer than {MAX_MESSAGE} characters", field="message")
    check_spec(app, spec)


def submit_request(
    app: Codenv, actor: Actor, name: str, spec: EnvSpec, message: str = ""
) -> RequestInfo:
    """Ask the administrators for a new env; refused (nothing stored) unless it would create."""
    require_design_node(app, "request a code env")
    if not requests_allowed(app):
        raise PermissionDenied(REQUESTS_OFF)
    _check_request(app, name, spec, message)
    try:
        with app.db.session() as session:
            row = EnvRequestRow(
                name=name,
                pending_key=name_key(name),
                requester=actor.name,
                spec=spec.to_dict(),
                message=message.strip(),
            )
            session.add(row)
            session.flush()
            details = {"id": row.id, "spec": spec_details(row.spec)}
            add_entry(session, actor, "request.submit", name, details)
            return RequestInfo.of(row)
    except IntegrityError as error:
        pending = f"a request for a code env named {name!r} is pending"
        raise AlreadyExists(pending, field="name") from error


def list_requests(app: Codenv, actor: Actor, *, status: str | None = None) -> list[RequestInfo]:
    """The administrators' inbox: pending requests first, then the newest."""
    require_admin(actor, "read the requests inbox")
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; use {', '.join(STATUSES)}", field="status")
    with app.db.session() as session:
        rows = queries.requests(session)
        return [RequestInfo.of(row) for row in rows if status is None or row.status == status]


def pending_count(app: Codenv, actor: Actor) -> int:
    """How many requests wait for an administrator (every console page shows it to them): one
    COUNT through the status index, whatever the number of requests ever made."""
    require_admin(actor, "read the requests inbox")
    with app.db.session() as session:
        query = select(func.count()).where(EnvRequestRow.status == "pending")
        return session.scalar(query.select_from(EnvRequestRow)) or 0


def my_requests(app: Codenv, actor: Actor) -> list[RequestInfo]:
    """The actor's own requests, with their status and, when rejected, the reason."""
    with app.db.session() as session:
        return [RequestInfo.of(row) for row in queries.requests(session, actor.name)]


def get_request(app: Codenv, actor: Actor, request_id: int) -> RequestInfo:
    """One request: for administrators and its requester."""
    with app.db.session() as session:
        row = session.get(EnvRequestRow, request_id)
        if row is None or not (actor.is_admin or row.requester == actor.name):
            raise NotFound(f"no request #{request_id}", field="request")
        return RequestInfo.of(row)


def _pending(app: Codenv, request_id: int) -> EnvRequestRow:
    with app.db.session() as session:
        row = session.get(EnvRequestRow, request_id)
        if row is None:
            raise NotFound(f"no request #{request_id}", field="request")
        if row.status != "pending":
            raise Conflict(f"request #{request_id} was already {row.status}", field="request")
        return row


def _decide(app: Codenv, actor: Actor, request_id: int, status: str, **fields: str) -> RequestInfo:
    with app.db.session() as session:
        row = session.get(EnvRequestRow, request_id)
        assert row is not None
        row.status, row.pending_key = status, None
        row.decided_by, row.decided_at = actor.name, utcnow()
        for key, value in fields.items():
            setattr(row, key, value)
        action = "request.approve" if status == "approved" else "request.reject"
        add_entry(session, actor, action, row.name, {"id": row.id, **fields})
        return RequestInfo.of(row)


def approve_request(app: Codenv, actor: Actor, request_id: int) -> tuple[RequestInfo, Created]:
    """Create the env (validated again: the node may have changed) and queue its build, owned by
    the requester. When creating fails the request stays pending and the error is raised."""
    require_design_node(app, "approve a code env request")
    require_admin(actor, "approve requests")
    row = _pending(app, request_id)
    created = create_env(app, actor, row.name, EnvSpec.from_dict(row.spec), owner=row.requester)
    return _decide(app, actor, request_id, "approved", build_id=created.build_id), created


def update_request(
    app: Codenv, actor: Actor, request_id: int, spec: EnvSpec, message: str | None = None
) -> RequestInfo:
    """An administrator's change to a pending request's spec (and message) before deciding;
    checked as a submitted request is, and audited."""
    require_admin(actor, "edit requests")
    row = _pending(app, request_id)
    message = row.message if message is None else message
    _check_contents(app, spec, message)
    with app.db.session() as session:
        changed = session.get(EnvRequestRow, request_id)
        if changed is None or changed.status != "pending":
            raise Conflict(f"request #{request_id} was decided meanwhile", field="request")
        changed.spec, changed.message = spec.to_dict(), message.strip()
        details = {"id": request_id, "spec": spec_details(changed.spec)}
        add_entry(session, actor, "request.update", changed.name, details)
        return RequestInfo.of(changed)


def reject_request(app: Codenv, actor: Actor, request_id: int, reason: str) -> RequestInfo:
    """Reject with a reason the requester will see."""
    require_admin(actor, "reject requests")
    if not reason.strip():
        raise InvalidInput("give the requester a reason", field="reason")
    if len(reason) > MAX_MESSAGE:
        raise InvalidInput(f"the reason is longer than {MAX_MESSAGE} characters", field="reason")
    _pending(app, request_id)
    return _decide(app, actor, request_id, "rejected", reason=reason.strip())
