"""The node's settings that administrators change while codenv runs.

They keep the seed system's shape and names (`config/server.json`'s
`codeEnvsSettings.pipInstallExtraOptions`, …) so an existing node's settings read the same,
but live in the database (services/node_settings_store.py: the file's values are imported
once), so every server and worker on it sees a change at its next call.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

from codenv.domain.errors import InvalidInput
from codenv.domain.install_options import INSTALL_OPTIONS, VENV_OPTIONS, parse_options, to_tokens
from codenv.domain.nodes import NODE_TYPE_KEY, NodeKind, parse_node_kind, refuse_spec_edit
from codenv.domain.secrets import mask_secrets
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.services.node_settings_store import (
    CODE_ENVS,
    node_config,
    store_settings,
    stored_settings,
)

# `codeEnvsSettings.sandbox`: builds run in boxes unless an administrator turned them off.
REQUIRED, OFF = "required", "off"


def code_envs_settings(app: Codenv) -> dict[str, Any]:
    settings = node_config(app).get(CODE_ENVS, {})
    return settings if isinstance(settings, dict) else {}


def update_code_envs_settings(app: Codenv, actor: Actor, changes: dict[str, Any]) -> None:
    """Merge `changes` into `codeEnvsSettings`."""
    require_admin(actor, "change the node's settings")
    store_settings(app, {f"{CODE_ENVS}.{key}": value for key, value in changes.items()})
    record(app, actor, "settings.update", "codeEnvsSettings", changes)


def sandbox_mode(app: Codenv) -> str:
    return OFF if code_envs_settings(app).get("sandbox") == OFF else REQUIRED


def node_kind(app: Codenv) -> NodeKind:
    """This node's kind (`nodeType`; absent: design). InvalidInput naming `nodeType` and the
    allowed values when the file names another."""
    # A shared setting: the database's rows alone (every console page asks; no file read).
    return parse_node_kind(stored_settings(app).get(NODE_TYPE_KEY))


def require_design_node(app: Codenv, action: str) -> None:
    """Conflict (field `node`) unless envs are designed here: the entry points of the use
    cases that write a spec call this (importing a bundle does not)."""
    refuse_spec_edit(node_kind(app), action)


def set_node_kind(app: Codenv, actor: Actor, kind: str) -> NodeKind:
    require_admin(actor, "change the node's settings")
    checked = parse_node_kind(kind)
    store_settings(app, {NODE_TYPE_KEY: checked.value})
    record(app, actor, "settings.update", NODE_TYPE_KEY, {NODE_TYPE_KEY: checked.value})
    return checked


PREVENT_OVERRIDE = "preventOverrideFromImportedEnvs"


def prevent_override(app: Codenv) -> bool:
    """Whether, on an API node, the node's install and venv options replace those that
    imported envs carry (`codeEnvsSettings.preventOverrideFromImportedEnvs`, default false)."""
    value = code_envs_settings(app).get(PREVENT_OVERRIDE, False)
    if not isinstance(value, bool):
        raise InvalidInput(
            f"codeEnvsSettings.{PREVENT_OVERRIDE} must be true or false, got {value!r}",
            field=PREVENT_OVERRIDE,
        )
    return value


def set_prevent_override(app: Codenv, actor: Actor, prevent: bool) -> bool:
    update_code_envs_settings(app, actor, {PREVENT_OVERRIDE: prevent})
    return prevent


def requests_allowed(app: Codenv) -> bool:
    """Whether users without the create right may request a code env."""
    return bool(code_envs_settings(app).get("allowRequests", False))


def set_requests_allowed(app: Codenv, actor: Actor, allowed: bool) -> None:
    update_code_envs_settings(app, actor, {"allowRequests": allowed})


def set_install_options(app: Codenv, actor: Actor, tokens: list[str]) -> tuple[str, ...]:
    """The node's install options (every env that inherits them rebuilds at its next update)."""
    normalized = to_tokens(parse_options(tokens, INSTALL_OPTIONS, field="install_options"))
    update_code_envs_settings(app, actor, {"pipInstallExtraOptions": list(normalized)})
    return normalized


def set_venv_options(app: Codenv, actor: Actor, tokens: list[str]) -> tuple[str, ...]:
    normalized = to_tokens(parse_options(tokens, VENV_OPTIONS, field="venv_options"))
    update_code_envs_settings(app, actor, {"virtualenvCreateExtraOptions": list(normalized)})
    return normalized


def _check_root(app: Codenv, root: str) -> str:
    real = os.path.realpath(root)
    home = os.path.realpath(app.settings.home)
    if not os.path.isabs(root) or not os.path.isdir(real):
        raise InvalidInput(f"{root!r} is not an absolute path to a directory", field="roots")
    overlaps = real in ("/", home) or home.startswith(real.rstrip("/") + "/")
    if overlaps or real.startswith(home.rstrip("/") + "/"):
        # Builds see the allowed directories: one holding codenv's home would show them its
        # database and keys.
        raise InvalidInput(
            f"{root!r} may not be allowed: it holds or is inside codenv's home ({home})",
            field="roots",
        )
    return real


def set_local_source_roots(app: Codenv, actor: Actor, roots: list[str]) -> list[str]:
    """The directories requested packages may name local archives and `-e` sources in."""
    require_admin(actor, "change the node's settings")
    checked = sorted({_check_root(app, root) for root in roots})
    update_code_envs_settings(app, actor, {"allowedLocalSourceRoots": checked})
    return checked


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxies(app: Codenv) -> tuple[Network, ...]:
    """The addresses whose `X-Forwarded-For` is believed (`trustedProxies`; none by default,
    so a request's source is its TCP peer). An entry that is no address is ignored."""
    listed: Any = node_config(app).get("trustedProxies", [])
    networks = []
    for entry in listed if isinstance(listed, list) else []:
        try:
            networks.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError:
            continue
    return tuple(networks)


def set_trusted_proxies(app: Codenv, actor: Actor, proxies: list[str]) -> list[str]:
    """The reverse proxies in front of this server: addresses or networks (`10.0.0.0/8`)."""
    require_admin(actor, "change the node's settings")
    checked = []
    for entry in proxies:
        try:
            checked.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
        except ValueError:
            raise InvalidInput(
                f"{entry!r} is not an IP address or network", field="proxies"
            ) from None
    listed = sorted(set(checked))
    store_settings(app, {"trustedProxies": listed})
    record(app, actor, "settings.update", "trustedProxies", {"trustedProxies": listed})
    return listed


def show_settings(app: Codenv, actor: Actor) -> dict[str, Any]:
    """The node's code env settings as they may be shown (credentials masked)."""
    require_admin(actor, "read the node's settings")
    settings = code_envs_settings(app)
    return {
        "sandbox": sandbox_mode(app),
        "node_kind": node_kind(app).value,
        "prevent_override_from_imported_envs": prevent_override(app),
        "install_options": [mask_secrets(t) for t in settings.get("pipInstallExtraOptions", [])],
        "venv_options": list(settings.get("virtualenvCreateExtraOptions", [])),
        "default_index": mask_secrets(app.settings.index_url),
        "allow_requests": requests_allowed(app),
        "allowed_local_source_roots": list(settings.get("allowedLocalSourceRoots", [])),
        "trusted_proxies": [str(network) for network in trusted_proxies(app)],
        "revision_retention": app.settings.retention,
        "resolution_ttl_seconds": app.settings.resolution_ttl_seconds,
        "supported_install_options": list(INSTALL_OPTIONS),
        "supported_venv_options": list(VENV_OPTIONS),
    }
