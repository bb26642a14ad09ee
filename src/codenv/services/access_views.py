"""Plain results of the access services (users, groups, tokens, permissions, requests, audit).

Adapters render these; they never hold a password hash or a token's hash or secret.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from codenv.domain.secrets import mask_secrets
from codenv.domain.spec_masking import masked_spec
from codenv.services.views import as_utc
from codenv.storage.models import (
    ApiTokenRow,
    AuditRow,
    EnvRequestRow,
    GroupRow,
    UserRow,
)


def iso(moment: datetime | None) -> str | None:
    aware = as_utc(moment)
    return aware.isoformat(timespec="milliseconds") if aware else None


@dataclass(frozen=True)
class UserInfo:
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

    @classmethod
    def of(cls, row: UserRow) -> UserInfo:
        groups = sorted((m.group for m in row.memberships), key=lambda g: g.name_key)
        return cls(
            id=row.id,
            name=row.name,
            display_name=row.display_name,
            active=row.active,
            groups=[group.name for group in groups],
            is_admin=any(group.administrator for group in groups),
            may_create=any(g.administrator or g.may_create_envs for g in groups),
            may_manage_all=any(g.administrator or g.may_manage_all_envs for g in groups),
            has_password=row.password_hash is not None,
            created_at=iso(row.created_at),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GroupInfo:
    id: int
    name: str
    description: str
    administrator: bool
    may_create_envs: bool
    may_manage_all_envs: bool
    members: list[str]
    created_at: str | None

    @classmethod
    def of(cls, row: GroupRow) -> GroupInfo:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            administrator=row.administrator,
            may_create_envs=row.may_create_envs,
            may_manage_all_envs=row.may_manage_all_envs,
            members=sorted((m.user.name for m in row.memberships), key=str.casefold),
            created_at=iso(row.created_at),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TokenInfo:
    """A token as it may be shown again: its prefix, never its secret nor its hash."""

    id: int
    user: str
    name: str
    prefix: str
    status: str  # active | expired | revoked
    created_by: str
    created_at: str | None
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None

    @classmethod
    def of(cls, row: ApiTokenRow, now: datetime) -> TokenInfo:
        expires = as_utc(row.expires_at)
        status = "active"
        if row.revoked_at is not None:
            status = "revoked"
        elif expires is not None and expires <= now:
            status = "expired"
        return cls(
            id=row.id,
            user=row.user.name,
            name=row.name,
            prefix=row.prefix,
            status=status,
            created_by=row.created_by,
            created_at=iso(row.created_at),
            expires_at=iso(row.expires_at),
            revoked_at=iso(row.revoked_at),
            last_used_at=iso(row.last_used_at),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NewToken:
    """A token just created: `secret` is shown this once and never stored."""

    token: TokenInfo
    secret: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.token.to_dict(), "secret": self.secret}


@dataclass(frozen=True)
class Grant:
    group: str
    level: str  # use | update | manage_users

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EnvPermissions:
    env: str
    owner: str
    usable_by_all: bool
    grants: list[Grant]
    # What the caller may do on the env: use, update, manage_users, or all (may also delete).
    caller_level: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "owner": self.owner,
            "usable_by_all": self.usable_by_all,
            "grants": [grant.to_dict() for grant in self.grants],
            "caller_level": self.caller_level,
        }


@dataclass(frozen=True)
class RequestInfo:
    id: int
    name: str
    requester: str
    spec: dict[str, Any]
    message: str
    status: str  # pending | approved | rejected
    reason: str
    decided_by: str | None
    decided_at: str | None
    build_id: str | None
    created_at: str | None

    @classmethod
    def of(cls, row: EnvRequestRow) -> RequestInfo:
        return cls(
            id=row.id,
            name=row.name,
            requester=row.requester,
            spec=masked_spec(row.spec),
            message=mask_secrets(row.message),
            status=row.status,
            reason=mask_secrets(row.reason),
            decided_by=row.decided_by,
            decided_at=iso(row.decided_at),
            build_id=row.build_id,
            created_at=iso(row.created_at),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str | None
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    source: str

    @classmethod
    def of(cls, row: AuditRow) -> AuditEntry:
        return cls(
            id=row.id,
            at=iso(row.at),
            actor=row.actor,
            action=row.action,
            target=row.target,
            details=dict(row.details),
            source=row.source,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
