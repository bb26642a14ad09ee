"""The audit log: every change, who made it, on what, when and from where. Never a secret.

Services call `record` after a change succeeded (or `add_entry` inside the change's own unit of
work). Details are masked on the way in (`secrets.mask_secrets`: URL credentials, API token
secrets), and values under secret-looking keys (password, secret, token …) become `***`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from codenv.domain.secrets import MASK, mask_secrets
from codenv.services.access_views import AuditEntry
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.storage.models import AuditRow

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|credential|api[_-]?key", re.IGNORECASE)
MAX_LIMIT = 1000


def masked(value: Any) -> Any:
    """A JSON-able value with every string masked and every secret-looking key's value hidden."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, Mapping):
        return {
            str(key): MASK if _SECRET_KEYS.search(str(key)) else masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return mask_secrets(str(value))


def _who(actor: Actor | str, source: str | None) -> tuple[str, str]:
    if isinstance(actor, Actor):
        return actor.name, actor.source if source is None else source
    return actor, source or ""


def add_entry(
    session: Session,
    actor: Actor | str,
    action: str,
    target: str = "",
    details: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
) -> None:
    """Record inside the caller's unit of work: the entry commits (or not) with the change."""
    name, where = _who(actor, source)
    session.add(
        AuditRow(
            actor=name[:128],
            action=action[:64],
            target=mask_secrets(target)[:256],
            details=masked(dict(details or {})),
            source=where[:128],
        )
    )


def record(
    app: Codenv,
    actor: Actor | str,
    action: str,
    target: str = "",
    details: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
) -> None:
    """Record a change that already happened, in a unit of work of its own."""
    with app.db.session() as session:
        add_entry(session, actor, action, target, details, source=source)


def list_audit(
    app: Codenv,
    actor: Actor,
    limit: int = 100,
    offset: int = 0,
    *,
    action: str | None = None,
    target: str | None = None,
) -> list[AuditEntry]:
    """Newest first; administrators only. `action` may end in `*` (`env.*`)."""
    require_admin(actor, "read the audit log")
    query = select(AuditRow).order_by(AuditRow.id.desc())
    if action:
        prefix = action.removesuffix("*")
        query = query.where(
            AuditRow.action.startswith(prefix, autoescape=True)
            if action.endswith("*")
            else AuditRow.action == action
        )
    if target:
        query = query.where(AuditRow.target == target)
    query = query.limit(max(1, min(limit, MAX_LIMIT))).offset(max(0, offset))
    with app.db.session() as session:
        return [AuditEntry.of(row) for row in session.scalars(query)]


def spec_details(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec (or part of one) as the audit log keeps it: the init script, which may hold
    secrets, by its size only; URLs masked when recorded."""
    shown = dict(spec)
    script = shown.get("resources_init_script")
    if script:
        shown["resources_init_script"] = f"({len(str(script))} characters)"
    return shown


def spec_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a spec that changed, with their new values."""
    keys = sorted(set(old) | set(new))
    return spec_details({key: new.get(key) for key in keys if old.get(key) != new.get(key)})
