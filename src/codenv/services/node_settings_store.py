"""The node's runtime settings in the database, where every server and worker reads them.

The settings administrators change while codenv runs (node kind, trusted proxies, the
`codeEnvsSettings` with a setter) live in `node_settings`, one row per setting, named as
config/server.json names it (`nodeType`, `codeEnvsSettings.allowRequests`). At the first read
on a database that has none, the file's values are imported once (the upgrade path); after
that the database holds them, and the file keeps only what a host starts with (database URL,
index, interpreters, sandbox limits…).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from codenv.services.app import Codenv
from codenv.settings import read_config_file
from codenv.storage.models_shared import NodeSettingRow

CODE_ENVS = "codeEnvsSettings"
# The settings that services change at run time (services/node_settings.py, services/boxes.py).
SHARED_TOP = ("nodeType", "trustedProxies")
SHARED_CODE_ENVS = (
    "pipInstallExtraOptions",
    "virtualenvCreateExtraOptions",
    "allowRequests",
    "allowedLocalSourceRoots",
    "preventOverrideFromImportedEnvs",
    "sandbox",
)
# The row saying the file was imported (and when, from where); never a setting's name.
IMPORTED = "(imported from config/server.json)"


def node_config(app: Codenv) -> dict[str, Any]:
    """config/server.json as the services read it: the shared settings from the database."""
    config = read_config_file(app.settings.config_file)
    code_envs = config.get(CODE_ENVS)
    code_envs = dict(code_envs) if isinstance(code_envs, dict) else {}
    for key in SHARED_TOP:
        config.pop(key, None)
    for key in SHARED_CODE_ENVS:
        code_envs.pop(key, None)
    for key, value in stored_settings(app).items():
        if key.startswith(CODE_ENVS + "."):
            code_envs[key.removeprefix(CODE_ENVS + ".")] = value
        else:
            config[key] = value
    config[CODE_ENVS] = code_envs
    return config


def stored_settings(app: Codenv) -> dict[str, Any]:
    """The shared settings, by row name; the file's imported first when never done."""
    rows = _rows(app)
    if IMPORTED not in rows:
        _import_file(app)
        rows = _rows(app)
    rows.pop(IMPORTED, None)
    return rows


def _rows(app: Codenv) -> dict[str, Any]:
    """A copy of the rows kept at the data version (every console page and `show` ask)."""
    return copy.deepcopy(app.reads.read(("node settings",), lambda: _read_rows(app)))


def _read_rows(app: Codenv) -> dict[str, Any]:
    with app.db.connection() as connection:
        # Columns, not entities: read on most requests (show, the console's banner).
        rows = connection.execute(select(NodeSettingRow.key, NodeSettingRow.value))
        return {key: value for key, value in rows}


def _import_file(app: Codenv) -> None:
    config = read_config_file(app.settings.config_file)
    code_envs = config.get(CODE_ENVS)
    code_envs = code_envs if isinstance(code_envs, dict) else {}
    values = {key: config[key] for key in SHARED_TOP if key in config}
    values |= {f"{CODE_ENVS}.{key}": code_envs[key] for key in SHARED_CODE_ENVS if key in code_envs}
    marker = {"file": str(app.settings.config_file), "at": datetime.now(UTC).isoformat()}
    try:
        with app.db.session() as session:
            for key, value in (*values.items(), (IMPORTED, marker)):
                session.add(NodeSettingRow(key=key, value=value))
    except IntegrityError:
        pass  # another process imported them at the same moment: theirs stand


def store_settings(app: Codenv, values: dict[str, Any]) -> None:
    """Set the given settings (row names as `stored_settings` gives them)."""
    stored_settings(app)  # imported first: the file's values never overwrite these later
    for attempt in range(2):
        try:
            with app.db.session() as session:
                for key, value in values.items():
                    session.merge(NodeSettingRow(key=key, value=value))
            return
        except IntegrityError:
            # Another process inserted one of these rows between our read and write: the
            # second attempt updates it.
            if attempt:
                raise
