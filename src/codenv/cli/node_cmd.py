"""`codenv node`: what this node is (its kind, codenv's version, Python, the sandbox)."""

from __future__ import annotations

from typing import Any

import typer

from codenv.cli.context import JsonOption, state

KINDS = {
    "design": "code envs are designed here",
    "automation": "code envs are imported from bundles here, not designed",
    "api": "code envs are imported from bundles here, not designed",
}


def _node_text(found: dict[str, Any]) -> str:
    lines = [
        f"kind: {found['kind']} ({KINDS.get(found['kind'], '')})",
        f"version: codenv {found['version']}",
        f"python: {found['python']}",
        f"sandbox: {found['sandbox']}",
    ]
    if found["kind"] == "api":
        wins = found["prevent_override_from_imported_envs"]
        lines.append(f"install options of imported envs: {'node wins' if wins else 'env wins'}")
    if found.get("config_file"):
        lines.append(f"settings: {found['config_file']}")
    return "\n".join(lines)


def show_node(json_output: bool = JsonOption) -> None:
    """This node: its kind (design, automation, api), codenv's version, Python, the sandbox.
    `codenv settings set-node-kind` changes the kind."""
    cli = state(json_output)
    found = cli.backend().node()
    cli.emit(found, _node_text(found))


def register(app: typer.Typer) -> None:
    app.command("node")(show_node)
