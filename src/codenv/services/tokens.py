"""API tokens: a user's secret for scripts and the remote CLI, acting with that user's rights.

The secret (`cdv_` + 43 URL-safe characters, 256 bits) is shown once, when created; only its
SHA-256 is stored (a fast hash is right for a high-entropy secret; passwords use argon2), with
its first characters kept to recognise it. Every authentication reads the token's row: a
revoked or expired token, or one of a disabled user, is refused at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from codenv.domain.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from codenv.domain.names import name_key
from codenv.services.access_views import NewToken, TokenInfo
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.services.audit import add_entry
from codenv.services.authentication import actor_of_holder
from codenv.services.views import as_utc
from codenv.storage import holders, queries
from codenv.storage.holders import HeldToken
from codenv.storage.models import ApiTokenRow, utcnow

SECRET_PREFIX = "cdv_"  # noqa: S105 (what every secret starts with)
PREFIX_LENGTH = 12  # "cdv_" and 8 characters of the secret: enough to tell tokens apart
MAX_SECRET_LENGTH = 128
INVALID_TOKEN = "invalid, expired or revoked API token"  # noqa: S105
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _owner_for(actor: Actor, user: str | None) -> str:
    """The name of the user the new token is for: the actor, or (administrators) anyone."""
    if user is None:
        if actor.user_id is None:
            raise InvalidInput(
                "the local administrator has no account: name the user the token is for",
                field="user",
            )
        return actor.name
    if name_key(user) != name_key(actor.name):
        require_admin(actor, "create tokens for other users")
    return user


def _expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    aware = as_utc(expires_at)
    assert aware is not None
    if aware <= now:
        raise InvalidInput("the expiry must be in the future", field="expires_at")
    return aware


def create_token(
    app: Codenv,
    actor: Actor,
    *,
    name: str = "",
    expires_at: datetime | None = None,
    user: str | None = None,
) -> NewToken:
    """A new token for the actor (administrators: for `user`); its secret is returned once."""
    now = utcnow()
    expiry = _expiry(expires_at, now)
    if len(name) > 128:
        raise InvalidInput("a token name has at most 128 characters", field="name")
    owner_name = _owner_for(actor, user)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with app.db.session() as session:
        owner = queries.user_by_name(session, owner_name)
        if owner is None or (owner.id != actor.user_id and not actor.is_admin):
            raise NotFound(f"no user named {owner_name!r}", field="user")
        if not owner.active:
            raise InvalidInput(f"user {owner.name!r} is disabled", field="user")
        row = ApiTokenRow(
            user=owner,
            name=name.strip(),
            prefix=secret[:PREFIX_LENGTH],
            secret_hash=secret_hash(secret),
            created_by=actor.name,
            created_at=now,
            expires_at=expiry,
        )
        session.add(row)
        session.flush()
        details = {"id": row.id, "prefix": row.prefix, "name": row.name, "expires_at": str(expiry)}
        add_entry(session, actor, "token.create", owner.name, details)
        return NewToken(TokenInfo.of(row, now), secret)


def list_tokens(
    app: Codenv, actor: Actor, *, user: str | None = None, all_users: bool = False
) -> list[TokenInfo]:
    """The actor's own tokens; administrators may ask for one `user`'s or `all_users`'."""
    if (user is not None or all_users) and not actor.is_admin:
        require_admin(actor, "list other users' tokens")
    now = utcnow()
    with app.db.session() as session:
        if all_users:
            rows = queries.tokens_of(session, None)
        elif user is not None:
            rows = queries.tokens_of(session, queries.require_user(session, user).id)
        elif actor.user_id is None:
            rows = []
        else:
            rows = queries.tokens_of(session, actor.user_id)
        return [TokenInfo.of(row, now) for row in rows]


def revoke_token(app: Codenv, actor: Actor, token_id: int) -> TokenInfo:
    """Revoke one of the actor's tokens (administrators: anyone's); refused from then on."""
    now = utcnow()
    with app.db.session() as session:
        row = session.get(ApiTokenRow, token_id)
        if row is None or not (actor.is_admin or row.user_id == actor.user_id):
            raise NotFound(f"no API token #{token_id}", field="token")
        if row.revoked_at is None:
            row.revoked_at = now
            details = {"id": row.id, "prefix": row.prefix}
            add_entry(session, actor, "token.revoke", row.user.name, details)
        return TokenInfo.of(row, now)


def set_token_expiry(
    app: Codenv, actor: Actor, token_id: int, expires_at: datetime | None
) -> TokenInfo:
    """Change when one of the actor's tokens (administrators: anyone's) expires; None: never.

    A revoked token stays revoked."""
    now = utcnow()
    expiry = _expiry(expires_at, now)
    with app.db.session() as session:
        row = session.get(ApiTokenRow, token_id)
        if row is None or not (actor.is_admin or row.user_id == actor.user_id):
            raise NotFound(f"no API token #{token_id}", field="token")
        if row.revoked_at is not None:
            raise Conflict(f"API token {row.prefix}… is revoked", field="token")
        row.expires_at = expiry
        details = {"id": row.id, "prefix": row.prefix, "expires_at": str(expiry)}
        add_entry(session, actor, "token.expiry", row.user.name, details)
        return TokenInfo.of(row, now)


def _usable(token: HeldToken | None, now: datetime) -> HeldToken:
    if token is None or token.revoked_at is not None:
        raise AuthenticationFailed(INVALID_TOKEN)
    expires = as_utc(token.expires_at)
    if expires is not None and expires <= now:
        raise AuthenticationFailed(INVALID_TOKEN)
    if not token.holder.active:
        raise AuthenticationFailed(INVALID_TOKEN)
    return token


def authenticate_token(
    app: Codenv, secret: str, *, source: str = "", now: datetime | None = None
) -> Actor:
    """The Actor of the token's user, with the user's rights as of now.

    Raises AuthenticationFailed, always with the same message, for an unknown, revoked or
    expired token and for a disabled user."""
    secret = secret.strip()
    if not secret.startswith(SECRET_PREFIX) or len(secret) > MAX_SECRET_LENGTH:
        raise AuthenticationFailed(INVALID_TOKEN)
    moment = now or utcnow()
    with app.db.connection() as connection:
        token = _usable(holders.token_by_hash(connection, secret_hash(secret)), moment)
        last = as_utc(token.last_used_at)
        if last is None or moment - last >= LAST_USED_RESOLUTION:
            holders.token_used(connection, token.id, moment)
        return actor_of_holder(token.holder, source)
