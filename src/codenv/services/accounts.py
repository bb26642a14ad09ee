"""Users, groups and the global rights groups grant; administrators manage them.

User and group names are unique, compared case-insensitively. Passwords are hashed with argon2
(`argon2-cffi`); the hash never leaves this module. A change that would leave the node without
an active administrator is refused (the local CLI administrator can always repair a node).
A password change or reset, disabling and deleting a user end that user's browser sessions at
once (re-enabling a user revives none of them).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codenv.domain.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from codenv.domain.names import name_key
from codenv.services.access_views import GroupInfo, UserInfo
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.services.audit import add_entry
from codenv.storage import queries
from codenv.storage.models import GroupRow, MembershipRow, SessionRow, UserRow

ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
INITIAL_ADMIN, INITIAL_ADMINS_GROUP = "admin", "administrators"
RIGHTS = ("administrator", "may_create_envs", "may_manage_all_envs")


# --- passwords ----------------------------------------------------------------------------


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified against when the user does not exist, so both cases take the same time.
    return _hasher().hash(secrets.token_urlsafe(16))


def check_password_policy(password: str, field: str = "password") -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters", field=field
        )
    return password


def hash_password(password: str) -> str:
    return _hasher().hash(check_password_policy(password))


def verify_password(user: UserRow | None, password: str) -> bool:
    """True when `password` is the user's; rehashes it when the parameters have changed."""
    stored = user.password_hash if user is not None else None
    try:
        _hasher().verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    if user is None or stored is None:
        return False
    if _hasher().check_needs_rehash(stored):
        user.password_hash = _hasher().hash(password)
    return True


# --- names and shared checks --------------------------------------------------------------


def validate_account_name(name: str, what: str, field: str) -> str:
    if not ACCOUNT_NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid {what} name {name!r}: use 1 to 64 characters among A-Z, a-z, digits, "
            "'.', '_', '@' and '-', starting with a letter or digit",
            field=field,
        )
    return name


def _text(value: str, limit: int, field: str) -> str:
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", field=field)
    return value.strip()


@contextmanager
def _keeping_an_admin(session: Session) -> Iterator[None]:
    """Refuse the change made in the block when it removes the last active administrator."""
    before = queries.active_admin_count(session)
    yield
    session.flush()
    if before and not queries.active_admin_count(session):
        raise Conflict(
            "this would leave no active administrator; make another user an administrator first"
        )


@contextmanager
def admin_session(app: Codenv, actor: Actor, what: str) -> Iterator[Session]:
    """A unit of work for an administrator's change; anyone else is refused first."""
    require_admin(actor, what)
    with app.db.session() as session:
        yield session


def end_sessions_of(session: Session, user_id: int) -> int:
    """End every browser session of the user, in the caller's unit of work; how many."""
    ended = session.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
    return ended.rowcount if isinstance(ended, CursorResult) else 0


# --- users --------------------------------------------------------------------------------


def create_user(
    app: Codenv,
    actor: Actor,
    name: str,
    password: str | None,
    *,
    display_name: str = "",
    groups: Sequence[str] = (),
) -> UserInfo:
    """A new, active user; without a password they can log in only once one is set."""
    require_admin(actor, "create users")
    validate_account_name(name, "user", "name")
    hashed = hash_password(password) if password is not None else None
    try:
        with admin_session(app, actor, "create users") as session:
            if queries.user_by_name(session, name) is not None:
                raise AlreadyExists(f"a user named {name!r} already exists", field="name")
            user = UserRow(
                name=name,
                name_key=name_key(name),
                display_name=_text(display_name, 256, "display_name"),
                password_hash=hashed,
            )
            session.add(user)
            for group in groups:
                group_row = queries.require_group(session, group, field="groups")
                session.add(MembershipRow(group=group_row, user=user))
            session.flush()
            add_entry(session, actor, "user.create", name, {"groups": list(groups)})
            return UserInfo.of(user)
    except IntegrityError as error:
        raise AlreadyExists(f"a user named {name!r} already exists", field="name") from error


def get_user(app: Codenv, actor: Actor, name: str) -> UserInfo:
    """A user's account: administrators see anyone's, users their own."""
    with app.db.session() as session:
        user = queries.user_by_name(session, name)
        if user is None or not (actor.is_admin or user.id == actor.user_id):
            raise NotFound(f"no user named {name!r}", field="user")
        return UserInfo.of(user)


def list_users(app: Codenv, actor: Actor) -> list[UserInfo]:
    with admin_session(app, actor, "list users") as session:
        return [UserInfo.of(user) for user in queries.all_users(session)]


def update_user(
    app: Codenv,
    actor: Actor,
    name: str,
    *,
    display_name: str | None = None,
    active: bool | None = None,
) -> UserInfo:
    """Change a user's display name or enable / disable them (a disabled user's tokens and
    sessions stop working at once)."""
    with admin_session(app, actor, "change users") as session, _keeping_an_admin(session):
        user = queries.require_user(session, name)
        changes: dict[str, object] = {}
        if display_name is not None:
            user.display_name = changes["display_name"] = _text(display_name, 256, "display_name")
        if active is not None:
            user.active = changes["active"] = active
        if active is False:
            changes["sessions_ended"] = end_sessions_of(session, user.id)
        add_entry(session, actor, "user.update", user.name, changes)
    return get_user(app, actor, name)


def disable_user(app: Codenv, actor: Actor, name: str) -> UserInfo:
    return update_user(app, actor, name, active=False)


def delete_user(app: Codenv, actor: Actor, name: str) -> None:
    """Remove a user with their memberships, API tokens and sessions. Refused while they own
    code envs: a new user of the same name would own them."""
    with admin_session(app, actor, "delete users") as session, _keeping_an_admin(session):
        user = queries.require_user(session, name)
        owned = [
            env.name for env in queries.all_envs(session) if name_key(env.owner) == user.name_key
        ]
        if owned:
            raise Conflict(
                f"user {user.name!r} owns code envs ({', '.join(owned)}): give them another "
                "owner first",
                field="name",
            )
        end_sessions_of(session, user.id)
        session.delete(user)
        add_entry(session, actor, "user.delete", user.name)


def set_password(
    app: Codenv,
    actor: Actor,
    name: str,
    new_password: str,
    *,
    current_password: str | None = None,
) -> None:
    """Administrators set anyone's password; a user changes their own with their current one."""
    check_password_policy(new_password, field="new_password")
    with app.db.session() as session:
        user = queries.user_by_name(session, name)
        own = user is not None and user.id == actor.user_id
        if user is None or not (own or actor.is_admin):
            raise NotFound(f"no user named {name!r}", field="user")
        if not actor.is_admin and not verify_password(user, current_password or ""):
            raise PermissionDenied("the current password is wrong", field="current_password")
        user.password_hash = hash_password(new_password)
        ended = end_sessions_of(session, user.id)
        add_entry(session, actor, "user.password", user.name, {"own": own, "sessions_ended": ended})


# --- groups -------------------------------------------------------------------------------


def create_group(
    app: Codenv,
    actor: Actor,
    name: str,
    *,
    description: str = "",
    administrator: bool = False,
    may_create_envs: bool = False,
    may_manage_all_envs: bool = False,
) -> GroupInfo:
    validate_account_name(name, "group", "name")
    rights = {
        "administrator": administrator,
        "may_create_envs": may_create_envs,
        "may_manage_all_envs": may_manage_all_envs,
    }
    try:
        with admin_session(app, actor, "create groups") as session:
            if queries.group_by_name(session, name) is not None:
                raise AlreadyExists(f"a group named {name!r} already exists", field="name")
            group = GroupRow(
                name=name,
                name_key=name_key(name),
                description=_text(description, 512, "description"),
                **rights,
            )
            session.add(group)
            session.flush()
            add_entry(session, actor, "group.create", name, rights)
            return GroupInfo.of(group)
    except IntegrityError as error:
        raise AlreadyExists(f"a group named {name!r} already exists", field="name") from error


def list_groups(app: Codenv, actor: Actor) -> list[GroupInfo]:
    with admin_session(app, actor, "list groups") as session:
        return [GroupInfo.of(group) for group in queries.all_groups(session)]


def group_names(app: Codenv, actor: Actor) -> list[str]:
    """Every group's name: what an env's owner picks grants from."""
    with app.db.session() as session:
        return [group.name for group in queries.all_groups(session)]


def set_group_rights(
    app: Codenv,
    actor: Actor,
    name: str,
    *,
    administrator: bool | None = None,
    may_create_envs: bool | None = None,
    may_manage_all_envs: bool | None = None,
    description: str | None = None,
) -> GroupInfo:
    """Change a group's global rights (None leaves one as it is); members get them at their
    next authentication (every API call authenticates)."""
    asked = {
        "administrator": administrator,
        "may_create_envs": may_create_envs,
        "may_manage_all_envs": may_manage_all_envs,
    }
    changes = {right: value for right, value in asked.items() if value is not None}
    with admin_session(app, actor, "change groups") as session, _keeping_an_admin(session):
        group = queries.require_group(session, name)
        for right, value in changes.items():
            setattr(group, right, value)
        if description is not None:
            group.description = _text(description, 512, "description")
        add_entry(session, actor, "group.rights", group.name, changes)
        session.flush()
        return GroupInfo.of(group)


def delete_group(app: Codenv, actor: Actor, name: str) -> None:
    """Remove a group, its memberships and its grants on envs."""
    with admin_session(app, actor, "delete groups") as session, _keeping_an_admin(session):
        group = queries.require_group(session, name)
        session.delete(group)
        add_entry(session, actor, "group.delete", group.name)


def _membership(session: Session, group: GroupRow, user: UserRow) -> MembershipRow | None:
    return session.get(MembershipRow, (group.id, user.id))


def add_member(app: Codenv, actor: Actor, group: str, user: str) -> GroupInfo:
    with admin_session(app, actor, "change group members") as session:
        group_row = queries.require_group(session, group)
        user_row = queries.require_user(session, user)
        if _membership(session, group_row, user_row) is None:
            session.add(MembershipRow(group=group_row, user=user_row))
            add_entry(session, actor, "group.add_member", group_row.name, {"user": user_row.name})
        session.flush()
        session.refresh(group_row)
        return GroupInfo.of(group_row)


def remove_member(app: Codenv, actor: Actor, group: str, user: str) -> GroupInfo:
    with admin_session(app, actor, "change group members") as session, _keeping_an_admin(session):
        group_row = queries.require_group(session, group)
        user_row = queries.require_user(session, user)
        membership = _membership(session, group_row, user_row)
        if membership is not None:
            session.delete(membership)
            add_entry(
                session, actor, "group.remove_member", group_row.name, {"user": user_row.name}
            )
        session.flush()
        session.refresh(group_row)
        return GroupInfo.of(group_row)


# --- the first administrator --------------------------------------------------------------


def ensure_initial_admin(app: Codenv, password: str | None) -> tuple[str, str | None]:
    """On a node without users: create `admin` in group `administrators` (administrator right)
    with `password`, or a generated one.

    Returns (the user's name, the generated password to print once), ("", None) when the node
    already had users, and (name, None) when the password was given."""
    with app.db.session() as session:
        if queries.user_count(session):
            return "", None
    generated = None if password is not None else secrets.token_urlsafe(18)
    hashed = hash_password(password if password is not None else generated or "")
    try:
        with app.db.session() as session:
            if queries.user_count(session):
                return "", None
            group = queries.group_by_name(session, INITIAL_ADMINS_GROUP)
            if group is None:
                group = GroupRow(name=INITIAL_ADMINS_GROUP, name_key=INITIAL_ADMINS_GROUP)
                session.add(group)
            group.administrator = True
            user = UserRow(name=INITIAL_ADMIN, name_key=INITIAL_ADMIN, password_hash=hashed)
            session.add_all([user, MembershipRow(group=group, user=user)])
            add_entry(session, "codenv", "user.create", INITIAL_ADMIN, {"initial": True})
    except IntegrityError:
        # Another process created the first administrator at the same moment.
        return "", None
    return INITIAL_ADMIN, generated
