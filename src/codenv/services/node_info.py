"""What this node is (`codenv node`, `GET /api/v1/node`, the console's header): its kind and
what the kind allows, codenv's version, the Python codenv runs on, the sandbox mode."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from typing import Any

from codenv import __version__
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.node_settings import node_kind, prevent_override, sandbox_mode


@dataclass(frozen=True)
class NodeInfo:
    kind: str
    designs_envs: bool  # False: envs are imported from bundles here, spec edits are refused
    version: str
    python: str
    sandbox: str
    # API nodes: the node's install options replace those of imported envs.
    prevent_override_from_imported_envs: bool
    # Administrators only: the file the node's settings live in.
    config_file: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def node_info(app: Codenv, actor: Actor) -> NodeInfo:
    """For every signed-in caller; the config file's path for administrators only."""
    kind = node_kind(app)
    return NodeInfo(
        kind=kind.value,
        designs_envs=kind.designs_envs,
        version=__version__,
        python=platform.python_version(),
        sandbox=sandbox_mode(app),
        prevent_override_from_imported_envs=kind.node_options_may_win and prevent_override(app),
        config_file=str(app.settings.config_file) if actor.is_admin else None,
    )
