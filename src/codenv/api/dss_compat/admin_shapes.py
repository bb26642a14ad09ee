"""Pure translations between DSS's admin JSON (groups, users, general settings) and codenv's.

DSS clients always send back the whole document they got (GET → edit → PUT), so every reader
here compares the submitted document with the current one and keeps only what changed. What
DSS has and codenv does not:

* groups: DSS's other global rights (`mayWriteSafeCode`, …) read `false` and are ignored on
  PUT, as are LDAP mappings: scripts copy whole DSS group definitions, refusing them would
  break those scripts; a non-LOCAL `sourceType` is refused;
* users: profiles, e-mails, properties and preferences are ignored; user secrets and
  connection credentials are refused when non-empty (silently dropping a secret would lose
  it); a non-LOCAL `sourceType` is refused;
* general settings: only `codeEnvs` (pip and virtualenv options) and the `codenv` extension
  mean something; conda, CRAN, default envs and any other non-empty part are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from codenv.api.dss_compat.errors import DssError
from codenv.domain.errors import InvalidInput
from codenv.domain.names import name_key
from codenv.domain.secrets import MASK, mask_secrets
from codenv.services.access_views import GroupInfo, UserInfo

LOCAL = "LOCAL"
# codenv has no user profiles; the one DSS gives a user who may write code.
USER_PROFILE = "DATA_SCIENTIST"
# DSS group key → codenv group right.
RIGHTS = {
    "admin": "administrator",
    "mayCreateCodeEnvs": "may_create_envs",
    "mayManageCodeEnvs": "may_manage_all_envs",
}
# DSS's other global rights (dsscli's list and later clients'): shown false, ignored on PUT.
OTHER_RIGHTS = (
    "mayManageUDM",
    "mayCreateProjects",
    "mayCreateProjectsFromMacros",
    "mayCreateProjectsFromTemplates",
    "mayCreateProjectsFromDataikuApps",
    "mayWriteUnsafeCode",
    "mayWriteSafeCode",
    "mayCreateAuthenticatedConnections",
    "mayCreateClusters",
    "mayManageClusters",
    "mayDevelopPlugins",
    "mayEditLibFolders",
    "mayViewIndexedHiveConnections",
    "mayCreatePublishedAPIServices",
    "mayCreatePublishedProjects",
    "mayWriteInRootProjectFolder",
    "mayCreateActiveWebContent",
)
MAX_GROUPS, MAX_OPTIONS = 1000, 200
MASKED_MARK = MASK + "@"


# --- checked reads of a JSON document ------------------------------------------------------


def as_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput(f"the {what} must be a JSON object", field="body")
    return body


def _bool(doc: Mapping[str, Any], key: str) -> bool | None:
    value = doc.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise InvalidInput(f"{key} must be true or false, got {value!r}", field=key)


def _text(doc: Mapping[str, Any], key: str, limit: int) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{key} must be a text of at most {limit} characters", field=key)
    return value


def _texts(doc: Mapping[str, Any], key: str, limit: int) -> list[str] | None:
    value = doc.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > limit
        or not all(isinstance(item, str) and len(item) <= 4096 for item in value)
    ):
        raise InvalidInput(f"{key} must be a list of at most {limit} texts", field=key)
    return list(value)


def _local_only(doc: Mapping[str, Any], what: str) -> None:
    source = doc.get("sourceType")
    if source not in (None, LOCAL):
        raise DssError(
            f"codenv has local {what} only: sourceType {str(source)[:40]!r} is not supported",
            field="sourceType",
        )


def _same_name(doc: Mapping[str, Any], key: str, name: str, what: str) -> None:
    given = _text(doc, key, 64)
    if given is not None and name_key(given) != name_key(name):
        raise InvalidInput(
            f"codenv cannot rename a {what}: {key} {given!r} differs from {name!r}", field=key
        )


def epoch_ms(iso: str | None) -> int | None:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


# --- groups --------------------------------------------------------------------------------


def group_definition(group: GroupInfo) -> dict[str, Any]:
    """A group as `DSSGroup.get_definition()` returns it."""
    return {
        "name": group.name,
        "description": group.description,
        "sourceType": LOCAL,
        "admin": group.administrator,
        "mayCreateCodeEnvs": group.may_create_envs,
        "mayManageCodeEnvs": group.may_manage_all_envs,
        **dict.fromkeys(OTHER_RIGHTS, False),
        "ldapGroupNames": [],
        "codenv": {"members": list(group.members)},
    }


@dataclass(frozen=True)
class GroupChanges:
    """What a group PUT changes: codenv rights (`may_create_envs`: True…) and description."""

    rights: dict[str, bool] = field(default_factory=dict)
    description: str | None = None

    @property
    def empty(self) -> bool:
        return not self.rights and self.description is None


def _rights(doc: Mapping[str, Any]) -> dict[str, bool]:
    asked = {RIGHTS[key]: _bool(doc, key) for key in RIGHTS}
    return {right: value for right, value in asked.items() if value is not None}


def group_changes(current: GroupInfo, body: Any) -> GroupChanges:
    """The differences between a submitted definition and the group as it is."""
    doc = as_object(body, "group definition")
    _same_name(doc, "name", current.name, "group")
    _local_only(doc, "groups")
    now = {
        "administrator": current.administrator,
        "may_create_envs": current.may_create_envs,
        "may_manage_all_envs": current.may_manage_all_envs,
    }
    rights = {right: value for right, value in _rights(doc).items() if now[right] != value}
    description = _text(doc, "description", 512)
    if description is not None and description.strip() == current.description:
        description = None
    return GroupChanges(rights, description)


@dataclass(frozen=True)
class NewGroup:
    name: str
    description: str
    rights: dict[str, bool]


def new_group(body: Any) -> NewGroup:
    """`create_group`'s body `{name, description, sourceType}` (rights accepted too)."""
    doc = as_object(body, "group")
    name = _text(doc, "name", 64)
    if not name:
        raise InvalidInput("a group needs a name", field="name")
    _local_only(doc, "groups")
    return NewGroup(name, _text(doc, "description", 512) or "", _rights(doc))


# --- users ---------------------------------------------------------------------------------


def user_info(user: UserInfo) -> dict[str, Any]:
    """Basic information (`DSSUserInfo`, list items of `list_users`)."""
    return {
        "login": user.name,
        "displayName": user.display_name,
        "email": None,
        "groups": list(user.groups),
        "enabled": user.active,
        "sourceType": LOCAL,
        "userProfile": USER_PROFILE,
    }


def user_settings(user: UserInfo) -> dict[str, Any]:
    """A user as `DSSUser.get_settings()` reads it."""
    return {
        **user_info(user),
        "creationDate": epoch_ms(user.created_at),
        "userProperties": {},
        "adminProperties": {},
        "secrets": [],
        "credentials": {},
        "preferences": {},
        "codenv": {
            "isAdmin": user.is_admin,
            "mayCreateCodeEnvs": user.may_create,
            "mayManageCodeEnvs": user.may_manage_all,
            "hasPassword": user.has_password,
        },
    }


def _no_secrets(doc: Mapping[str, Any]) -> None:
    for key in ("secrets", "credentials"):
        if doc.get(key):
            raise DssError(
                f"codenv stores no user secrets nor connection credentials: {key} must be empty",
                field=key,
            )


@dataclass(frozen=True)
class UserChanges:
    display_name: str | None = None
    active: bool | None = None
    add_groups: tuple[str, ...] = ()
    remove_groups: tuple[str, ...] = ()
    password: str | None = None

    @property
    def account(self) -> bool:
        """Whether the display name or the enabled flag change."""
        return self.display_name is not None or self.active is not None


def _group_diff(current: Sequence[str], wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    have = {name_key(group) for group in current}
    want = {name_key(group) for group in wanted}
    added = list(dict.fromkeys(g for g in wanted if name_key(g) not in have))
    return added, [group for group in current if name_key(group) not in want]


def user_changes(current: UserInfo, body: Any) -> UserChanges:
    """The differences between a submitted user document and the user as it is."""
    doc = as_object(body, "user settings")
    _same_name(doc, "login", current.name, "user")
    _local_only(doc, "users")
    _no_secrets(doc)
    display = _text(doc, "displayName", 256)
    enabled = _bool(doc, "enabled")
    groups = _texts(doc, "groups", MAX_GROUPS)
    added, removed = _group_diff(current.groups, groups) if groups is not None else ([], [])
    return UserChanges(
        display_name=display if display is not None and display != current.display_name else None,
        active=enabled if enabled is not None and enabled != current.active else None,
        add_groups=tuple(added),
        remove_groups=tuple(removed),
        password=_text(doc, "password", 1024) or None,
    )


@dataclass(frozen=True)
class NewUser:
    login: str
    password: str | None
    display_name: str
    groups: tuple[str, ...]


def new_user(body: Any) -> NewUser:
    """`create_user`'s body `{login, password, displayName, sourceType, groups, …}`."""
    doc = as_object(body, "user")
    login = _text(doc, "login", 64)
    if not login:
        raise InvalidInput("a user needs a login", field="login")
    _local_only(doc, "users")
    _no_secrets(doc)
    return NewUser(
        login=login,
        password=_text(doc, "password", 1024) or None,
        display_name=_text(doc, "displayName", 256) or "",
        groups=tuple(dict.fromkeys(_texts(doc, "groups", MAX_GROUPS) or [])),
    )


# --- general settings ----------------------------------------------------------------------

PIP, VENV = "pipInstallExtraOptions", "virtualenvCreateExtraOptions"
ALLOW_REQUESTS = "allowCodeEnvRequests"
# The parts of DSS's `codeEnvs` settings codenv has no concept of, and why.
_NO_SUCH = {
    "condaCreateExtraOptions": "codenv does not manage conda envs",
    "condaInstallExtraOptions": "codenv does not manage conda envs",
    "cranMirrorURL": "codenv manages Python code envs only (no R, no CRAN)",
    "defaultPythonEnv": "codenv has no default code env",
    "defaultREnv": "codenv manages Python code envs only (no R)",
}


def general_settings(
    install_options: Sequence[str], venv_options: Sequence[str], allow_requests: bool
) -> dict[str, Any]:
    """`get_general_settings()`: the code env part (install options already masked) and the
    `codenv` extension; nothing else of DSS's general settings exists in codenv."""
    return {
        "codeEnvs": {
            "defaultPythonEnv": None,
            "defaultREnv": None,
            PIP: list(install_options),
            VENV: list(venv_options),
            "condaCreateExtraOptions": [],
            "condaInstallExtraOptions": [],
            "cranMirrorURL": None,
        },
        "codenv": {ALLOW_REQUESTS: allow_requests},
    }


@dataclass(frozen=True)
class SettingsChanges:
    """What a general settings PUT changes (None: unchanged)."""

    install_options: list[str] | None = None
    venv_options: list[str] | None = None
    allow_requests: bool | None = None

    @property
    def empty(self) -> bool:
        return (
            self.install_options is None
            and self.venv_options is None
            and (self.allow_requests is None)
        )


def restore_masked(submitted: Sequence[str], stored: Sequence[str], key: str) -> list[str]:
    """Submitted options with each one that is the masked form of a stored one put back as
    stored (a GET → PUT round trip keeps the credentials); a masked credential left over
    names no stored secret and is refused rather than saved as `***`."""
    originals = {shown: item for item in stored if (shown := mask_secrets(item)) != item}
    restored = [originals.get(item, item) if MASK in item else item for item in submitted]
    if any(MASKED_MARK in item for item in restored):
        raise InvalidInput(
            f"{key}: a credential shows as *** and cannot be saved that way; give the whole "
            "URL with its credential again, or remove it",
            field=key,
        )
    return restored


def _refuse_unknown(doc: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key, value in doc.items():
        if key in known or value in (None, False, "", [], {}):
            continue
        reason = _NO_SUCH.get(key, f"codenv has no such setting ({where}{key})")
        raise DssError(f"{reason}: {where}{key} must be empty", field=key[:64])


def settings_changes(
    body: Any, *, install_stored: Sequence[str], venv_stored: Sequence[str], allow_requests: bool
) -> SettingsChanges:
    """The differences between a submitted general settings document and the node's."""
    doc = as_object(body, "general settings")
    _refuse_unknown(doc, ("codeEnvs", "codenv"), "")
    code_envs = as_object(doc.get("codeEnvs") or {}, "codeEnvs part")
    _refuse_unknown(code_envs, (PIP, VENV), "codeEnvs.")
    extension = as_object(doc.get("codenv") or {}, "codenv part")
    _refuse_unknown(extension, (ALLOW_REQUESTS,), "codenv.")
    pip = _texts(code_envs, PIP, MAX_OPTIONS)
    if pip is not None:
        pip = restore_masked(pip, install_stored, PIP)
    venv = _texts(code_envs, VENV, MAX_OPTIONS)
    allow = _bool(extension, ALLOW_REQUESTS)
    return SettingsChanges(
        install_options=pip if pip is not None and pip != list(install_stored) else None,
        venv_options=venv if venv is not None and venv != list(venv_stored) else None,
        allow_requests=allow if allow is not None and allow != allow_requests else None,
    )
