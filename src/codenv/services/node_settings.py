"""The node's settings that administrators change while codenv runs: `config/server.json`.

The file keeps the seed system's shape (`codeEnvsSettings.pipInstallExtraOptions`, …) so an
existing node's settings read the same. Every read goes to the file, so a change made through
one process (CLI, server) is seen by all at their next call.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from codenv.domain.errors import InvalidSpec
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv

_WRITE_LOCK = threading.Lock()


def read_config(app: Codenv) -> dict[str, Any]:
    path = app.settings.config_file
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidSpec(f"cannot read {path}: {error}", field="config") from error
    if not isinstance(data, dict):
        raise InvalidSpec(f"{path} must hold a JSON object", field="config")
    return data


def code_envs_settings(app: Codenv) -> dict[str, Any]:
    settings = read_config(app).get("codeEnvsSettings", {})
    return settings if isinstance(settings, dict) else {}


def update_code_envs_settings(app: Codenv, actor: Actor, changes: dict[str, Any]) -> None:
    """Merge `changes` into `codeEnvsSettings` and write the file atomically."""
    require_admin(actor, "change the node's settings")
    path = app.settings.config_file
    with _WRITE_LOCK:
        config = read_config(app)
        config.setdefault("codeEnvsSettings", {}).update(changes)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(config, indent=2) + "\n", "utf-8")
        os.replace(temporary, path)


def requests_allowed(app: Codenv) -> bool:
    """Whether users without the create right may request a code env."""
    return bool(code_envs_settings(app).get("allowRequests", False))


def set_requests_allowed(app: Codenv, actor: Actor, allowed: bool) -> None:
    update_code_envs_settings(app, actor, {"allowRequests": allowed})
