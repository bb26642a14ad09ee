"""Administration pages: settings, users and groups, API tokens, the requests inbox, the audit log
(sessions and kept resources: admin_node.py).

Administrators only, except API tokens, where everyone manages their own. Each page calls the
service that checks the right again (a forced form post is refused with the 403 page); errors
of a form are shown in place, on the page it came from.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Response

from codenv.domain.errors import CodenvError, InvalidInput
from codenv.domain.secrets import mask_secrets
from codenv.http.deps import Submitted, SubmittedDep, Viewer, ViewerDep
from codenv.http.params import RowId
from codenv.services import boxes, node_settings, requests, tokens
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.services.listing import REQUEST_STATUSES, Page, find_audit, find_requests
from codenv.web.paging import PAGE_SIZE, page_links
from codenv.web.render import ConsoleRoute, render_form, see_other, viewer_context

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)

ADMIN_TABS = (
    ("settings", "Settings", "/admin/settings"),
    ("users", "Users and groups", "/admin/users"),
    ("sessions", "Sessions", "/admin/sessions"),
    ("tokens", "API tokens", "/admin/tokens"),
    ("requests", "Requests", "/admin/requests"),
    ("kept", "Kept resources", "/admin/kept-resources"),
    ("containers", "Containers", "/admin/containers"),
    ("audit", "Audit log", "/admin/audit"),
)
MASKED_MARK = "***@"
AUDIT_LIMIT = 100  # entries per page
MAX_TOKEN_DAYS = 3650


def admin_context(viewer: Viewer, tab: str, **context: Any) -> dict[str, Any]:
    """What every Administration page shows: its tabs, the one shown, the viewer."""
    return {**viewer_context(viewer), "tab": tab, "tabs": ADMIN_TABS, **context}


@router.get("/admin")
def admin_home(viewer: ViewerDep) -> Response:
    return see_other("/admin/settings" if viewer.actor.is_admin else "/admin/tokens")


# Settings -----------------------------------------------------------------------------------


def _settings_page(viewer: Viewer, failed: CodenvError | None = None, **context: Any) -> Response:
    shown = node_settings.show_settings(viewer.app, viewer.actor)
    values: dict[str, Any] = {
        "install_text": "\n".join(shown["install_options"]),
        "roots_text": "\n".join(shown["allowed_local_source_roots"]),
        "proxies_text": "\n".join(shown["trusted_proxies"]),
        "field": None,
        "saved": None,
    }
    values.update(context)
    return render_form(
        "admin_settings.html",
        failed,
        settings=shown,
        sandbox=node_settings.sandbox_mode(viewer.app),
        **admin_context(viewer, "settings", **values),
    )


@router.get("/admin/settings")
def settings(viewer: ViewerDep) -> Response:
    return _settings_page(viewer)


@router.post("/admin/settings/requests")
def set_requests(form: SubmittedDep) -> Response:
    allowed = form.flag("allow_requests")
    node_settings.set_requests_allowed(form.app, form.actor, allowed)
    saved = (
        "Users without the create right may now request code envs."
        if allowed
        else ("Requests are now turned off.")
    )
    return _settings_page(form, saved=saved)


@router.post("/admin/settings/prevent-override")
def set_prevent_override(form: SubmittedDep) -> Response:
    prevent = form.flag("prevent_override")
    node_settings.set_prevent_override(form.app, form.actor, prevent)
    saved = (
        "On an API node, the node's install options now win over imported envs' ones."
        if prevent
        else "Imported envs now keep their own install options."
    )
    return _settings_page(form, saved=saved)


@router.post("/admin/settings/install-options")
def set_install_options(form: SubmittedDep) -> Response:
    require_admin(form.actor, "change the node's settings")
    text = form.text("install_options")
    shown = node_settings.show_settings(form.app, form.actor)
    if _lines(text) == [mask_secrets(t) for t in shown["install_options"]]:
        return _settings_page(form, saved="The install options are unchanged.")
    try:
        if MASKED_MARK in text:
            raise InvalidInput(
                "a credential shows as *** and cannot be saved that way: type the whole "
                "URL with its credential again, or remove it",
                field="install_options",
            )
        node_settings.set_install_options(form.app, form.actor, split_options(text))
    except CodenvError as error:
        return _settings_page(form, error, install_text=text, field="install_options")
    return _settings_page(form, saved="The install options were saved.")


def split_options(text: str, field: str = "install_options") -> list[str]:
    """Install options as typed (shell quoting), one token each."""
    try:
        return shlex.split(text)
    except ValueError as bad:
        raise InvalidInput(f"the install options cannot be read: {bad}", field=field) from bad


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@router.post("/admin/settings/sandbox")
def set_sandbox(form: SubmittedDep) -> Response:
    mode = form.text("mode")
    try:
        boxes.set_sandbox_mode(form.app, form.actor, mode)
    except CodenvError as error:
        return _settings_page(form, error, field="mode")
    saved = (
        "The sandbox is off: builds now run unsandboxed."
        if mode == node_settings.OFF
        else "Builds run in the sandbox again."
    )
    return _settings_page(form, saved=saved)


def _save_lines(
    form: Submitted, field: str, save: Callable[[Codenv, Actor, list[str]], object], saved: str
) -> Response:
    """A setting given one item a line (`field`), saved by `save`; its error shown in place."""
    text = form.text(field)
    try:
        save(form.app, form.actor, _lines(text))
    except CodenvError as error:
        return _settings_page(form, error, field=field, **{f"{field}_text": text})
    return _settings_page(form, saved=saved)


@router.post("/admin/settings/local-source-roots")
def set_local_source_roots(form: SubmittedDep) -> Response:
    saved = "The local source directories were saved."
    return _save_lines(form, "roots", node_settings.set_local_source_roots, saved)


@router.post("/admin/settings/trusted-proxies")
def set_trusted_proxies(form: SubmittedDep) -> Response:
    saved = "The trusted proxies were saved."
    return _save_lines(form, "proxies", node_settings.set_trusted_proxies, saved)


# API tokens (everyone: their own) -----------------------------------------------------------


def _tokens_page(viewer: Viewer, failed: CodenvError | None = None, **context: Any) -> Response:
    values: dict[str, Any] = {"created": None, "saved": None, "name": "", "expires_days": ""}
    values.update(context)
    return render_form(
        "admin_tokens.html",
        failed,
        tokens=tokens.list_tokens(viewer.app, viewer.actor),
        **admin_context(viewer, "tokens", **values),
    )


@router.get("/admin/tokens")
def token_list(viewer: ViewerDep) -> Response:
    return _tokens_page(viewer)


@router.post("/admin/tokens")
def create_token(form: SubmittedDep) -> Response:
    name, days = form.text("name"), form.text("expires_days").strip()
    try:
        created = tokens.create_token(form.app, form.actor, name=name, expires_at=_expiry(days))
    except CodenvError as error:
        return _tokens_page(form, error, name=name, expires_days=days)
    return _tokens_page(form, created=created)


def _expiry(days: str) -> datetime | None:
    """The moment a token given `days` to live expires; None (never) when left empty."""
    if not days:
        return None
    if not days.isdigit() or not 1 <= int(days) <= MAX_TOKEN_DAYS:
        raise InvalidInput(
            f"the expiry is a number of days, 1 to {MAX_TOKEN_DAYS}", field="expires_days"
        )
    return datetime.now(UTC) + timedelta(days=int(days))


@router.post("/admin/tokens/{token_id}/expiry")
def set_token_expiry(token_id: RowId, form: SubmittedDep) -> Response:
    days = form.text("expires_days").strip()
    try:
        changed = tokens.set_token_expiry(form.app, form.actor, token_id, _expiry(days))
    except CodenvError as error:
        return _tokens_page(form, error)
    when = f"in {days} days" if days else "never"
    return _tokens_page(form, saved=f"The token {changed.prefix}… now expires {when}.")


@router.post("/admin/tokens/{token_id}/revoke")
def revoke_token(token_id: RowId, form: SubmittedDep) -> Response:
    revoked = tokens.revoke_token(form.app, form.actor, token_id)
    return _tokens_page(form, saved=f"The token {revoked.prefix}… was revoked.")


# Requests inbox -----------------------------------------------------------------------------


def requests_listed(
    viewer: Viewer,
    path: str,
    *,
    mine: bool,
    status: str = "",
    after: str = "",
    limit: int = PAGE_SIZE,
) -> tuple[dict[str, Any], CodenvError | None]:
    """One page of the inbox (or, `mine`, of the viewer's own requests), filtered and paged by
    the database, and its links; or why it cannot be shown."""
    page, failed = Page((), None), None
    try:
        page = find_requests(
            viewer.app, viewer.actor, limit=limit, cursor=after or None, status=status or None,
            mine=mine,
        )  # fmt: skip
    except CodenvError as refused:
        failed = refused
    size = None if limit == PAGE_SIZE else limit
    shown = {"requests": page.items, "shown_status": status, "statuses": REQUEST_STATUSES}
    return {**shown, "limit": size, **page_links(path, page, after, size, status=status)}, failed


def _requests_page(
    viewer: Viewer, failed: CodenvError | None = None, paging: dict[str, Any] | None = None,
    **context: Any,
) -> Response:  # fmt: skip
    values: dict[str, Any] = {"error_id": None, "saved": None, "reason": ""}
    values.update(context)
    listed, refused = requests_listed(viewer, "/admin/requests", mine=False, **(paging or {}))
    return render_form(
        "admin_requests.html",
        failed or refused,
        **listed,
        pending=requests.pending_count(viewer.app, viewer.actor),
        allowed=node_settings.requests_allowed(viewer.app),
        **admin_context(viewer, "requests", **values),
    )


@router.get("/admin/requests")
def inbox(
    viewer: ViewerDep,
    edited: int | None = None,
    status: str = "",
    after: str = "",
    limit: int = PAGE_SIZE,
) -> Response:
    """One page of the requests, pending first, filtered by status."""
    saved = f"Request #{edited} was saved; approve it to build it." if edited else None
    paging = {"status": status, "after": after, "limit": limit}
    return _requests_page(viewer, saved=saved, paging=paging)


@router.post("/admin/requests/{request_id}/approve")
def approve(request_id: RowId, form: SubmittedDep) -> Response:
    try:
        info, created = requests.approve_request(form.app, form.actor, request_id)
    except CodenvError as error:
        return _requests_page(form, error, error_id=request_id)
    return see_other(f"/envs/{info.name}/revisions?build={created.build_id}")


@router.post("/admin/requests/{request_id}/reject")
def reject(request_id: RowId, form: SubmittedDep) -> Response:
    reason = form.text("reason")
    try:
        info = requests.reject_request(form.app, form.actor, request_id, reason)
    except CodenvError as error:
        return _requests_page(form, error, error_id=request_id, reason=reason)
    return _requests_page(form, saved=f"The request for {info.name} was rejected.")


# Audit log ----------------------------------------------------------------------------------


def _pairs(details: dict[str, Any] | None, prefix: str = "") -> list[tuple[str, str]]:
    """An entry's details as key / value lines (nested ones as `spec.python`), credentials
    masked."""
    pairs: list[tuple[str, str]] = []
    for key, value in sorted((details or {}).items()):
        if isinstance(value, dict) and value:
            pairs.extend(_pairs(value, f"{prefix}{key}."))
        else:
            pairs.append((prefix + key, mask_secrets(_plain(value))))
    return pairs


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return " ".join(value) or "—"
    return json.dumps(value, default=str)


@router.get("/admin/audit")
def audit_log(
    viewer: ViewerDep,
    action: str = "",
    actor: str = "",
    target: str = "",
    after: str = "",
    limit: int = AUDIT_LIMIT,
) -> Response:
    """One page of the audit log, newest first, filtered by the database."""
    failed: CodenvError | None = None
    page = Page((), None)
    filters = {"action": action.strip(), "actor": actor.strip(), "target": target.strip()}
    try:
        page = find_audit(
            viewer.app,
            viewer.actor,
            limit=limit,
            cursor=after or None,
            action=filters["action"] or None,
            target=filters["target"] or None,
            actor_name=filters["actor"] or None,
        )
    except CodenvError as refused:
        failed = refused
    size = None if limit == AUDIT_LIMIT else limit
    return render_form(
        "admin_audit.html",
        failed,
        entries=[{"entry": entry, "details": _pairs(entry.details)} for entry in page.items],
        **filters,
        limit=limit,
        hidden_limit=size,
        **page_links("/admin/audit", page, after, size, **filters),
        **admin_context(viewer, "audit"),
    )
