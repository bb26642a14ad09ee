"""An env's permissions: its owner, whether everyone may use it, and its group grants.

Reading them needs the right to use the env; changing them needs `manage_users` (the owner,
a group granted manage_users, administrators and those who may manage all code envs).
Giving the env to another owner is for its owner and those who manage all code envs only: a
manage_users grantee could otherwise make itself the owner and take the env away.
The rules themselves live in `services/actor.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from codenv.domain.errors import InvalidInput, PermissionDenied
from codenv.domain.names import name_key
from codenv.services.access_views import EnvPermissions, Grant
from codenv.services.actor import (
    LEVEL_NAMES,
    LEVELS,
    MANAGE_USERS,
    Actor,
    env_for,
    env_level,
    owns,
)
from codenv.services.app import Codenv
from codenv.services.audit import add_entry
from codenv.storage import queries
from codenv.storage.models import CodeEnvRow, EnvGrantRow, GroupRow


def _view(actor: Actor, env: CodeEnvRow) -> EnvPermissions:
    grants = sorted(env.grants, key=lambda grant: grant.group.name_key)
    return EnvPermissions(
        env=env.name,
        owner=env.owner,
        usable_by_all=env.usable_by_all,
        grants=[Grant(grant.group.name, grant.level) for grant in grants],
        caller_level=LEVEL_NAMES[env_level(actor, env)],
    )


def get_permissions(app: Codenv, actor: Actor, name: str) -> EnvPermissions:
    with app.db.session() as session:
        return _view(actor, env_for(session, actor, name))


def _checked_grants(
    session: Session, grants: Sequence[tuple[str, str]]
) -> list[tuple[GroupRow, str]]:
    checked: list[tuple[GroupRow, str]] = []
    seen: set[str] = set()
    for group_name, level in grants:
        if level not in LEVELS:
            raise InvalidInput(
                f"unknown level {level!r} for group {group_name!r}; "
                f"choose among {', '.join(LEVELS)}",
                field="grants",
            )
        group = queries.group_by_name(session, group_name)
        if group is None:
            raise InvalidInput(f"no group named {group_name!r}", field="grants")
        if group.name_key in seen:
            raise InvalidInput(f"group {group.name!r} is listed twice", field="grants")
        seen.add(group.name_key)
        checked.append((group, level))
    return checked


def _require_owner_change(actor: Actor, env: CodeEnvRow) -> None:
    if not (owns(actor, env) or actor.manages_all):
        raise PermissionDenied(
            f"only the owner of code env {env.name!r}, administrators and users who may manage "
            "all code envs may give it to another owner",
            field="owner",
        )


def _new_owner(session: Session, owner: str) -> str:
    user = queries.user_by_name(session, owner)
    if user is None:
        raise InvalidInput(f"no user named {owner!r}", field="owner")
    if not user.active:
        raise InvalidInput(f"user {user.name!r} is disabled", field="owner")
    return user.name


def set_permissions(
    app: Codenv,
    actor: Actor,
    name: str,
    *,
    owner: str | None = None,
    usable_by_all: bool | None = None,
    grants: Sequence[tuple[str, str]] | None = None,
) -> EnvPermissions:
    """Change what is given (None leaves it); `grants` replaces every grant of the env with
    (group, level) pairs, level among use, update, manage_users."""
    with app.db.session() as session:
        env = env_for(session, actor, name, MANAGE_USERS)
        changes: dict[str, object] = {}
        if owner is not None and name_key(owner) != name_key(env.owner):
            _require_owner_change(actor, env)
            env.owner = changes["owner"] = _new_owner(session, owner)
        if usable_by_all is not None and usable_by_all != env.usable_by_all:
            env.usable_by_all = changes["usable_by_all"] = usable_by_all
        if grants is not None:
            checked = _checked_grants(session, grants)
            env.grants.clear()
            session.flush()
            env.grants.extend(EnvGrantRow(group=group, level=level) for group, level in checked)
            changes["grants"] = [[group.name, level] for group, level in checked]
        if changes:
            add_entry(session, actor, "env.permissions", env.name, changes)
        session.flush()
        return _view(actor, env)
