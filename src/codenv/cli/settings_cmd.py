"""`codenv settings`: the node's code env settings (install options, requests, the sandbox,
local-source roots, trusted proxies, the node's kind)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from codenv.cli.context import JsonOption, state
from codenv.domain.secrets import mask_secrets

app = typer.Typer(help="The node's code env settings.")
Tokens = Annotated[
    list[str] | None, typer.Argument(help="Options as for pip, after --; none to clear.")
]
# The values a setting is replaced with (none: cleared).
RootsArgument = typer.Argument(
    None,
    help="Absolute directories (on the node) requested packages may name local archives and "
    "`-e` sources in; none to allow none.",
    show_default=False,
)
ProxiesArgument = typer.Argument(
    None,
    help="IP addresses or networks (10.0.0.0/8) of the reverse proxies in front of the server; "
    "none to trust none.",
    show_default=False,
)
UNSANDBOXED = (
    "warning: the sandbox is off: the code of every spec (packages' setup.py, local sources, "
    "init scripts) runs as codenv itself and can read the whole node; "
    "`codenv settings set-sandbox required` turns it back on"
)


class SandboxMode(StrEnum):
    required = "required"
    off = "off"


class NodeKindChoice(StrEnum):
    design = "design"
    automation = "automation"
    api = "api"


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value) or "(none)"
    return str(value)


def _settings_text(found: dict[str, Any]) -> str:
    """The sandbox first (with the warning when it is off), then every other setting."""
    lines = [f"sandbox: {found['sandbox']}"]
    if found["sandbox"] == SandboxMode.off.value:
        lines.append(UNSANDBOXED)
    lines += [f"{key}: {_shown(value)}" for key, value in found.items() if key != "sandbox"]
    return "\n".join(lines)


@app.command("show")
def show(json_output: bool = JsonOption) -> None:
    """The sandbox, local-source roots, trusted proxies, install and venv options, default
    index, requests (credentials masked)."""
    cli = state(json_output)
    found = cli.backend().settings()
    cli.emit(found, _settings_text(found))


@app.command("set-install-options")
def set_install_options(tokens: Tokens = None) -> None:
    """Options for every install: `codenv settings set-install-options -- --index-url URL`."""
    cli = state()
    saved = cli.backend().set_install_options(list(tokens or ()))
    shown = mask_secrets(" ".join(saved)) or "(none)"
    cli.say(f"install options: {shown}")


@app.command("set-venv-options")
def set_venv_options(tokens: Tokens = None) -> None:
    """Options for creating venvs (`--system-site-packages`)."""
    cli = state()
    saved = cli.backend().set_venv_options(list(tokens or ()))
    cli.say(f"venv options: {' '.join(saved) or '(none)'}")


@app.command("requests")
def requests(
    allow: Annotated[
        bool,
        typer.Option(
            "--allow/--deny", help="Whether users without the create right may request an env."
        ),
    ],
) -> None:
    """Allow (or not) users without the create right to request a code env."""
    cli = state()
    cli.backend().set_requests(allow)
    cli.say("requests allowed" if allow else "requests turned off")


@app.command("set-sandbox")
def set_sandbox(
    mode: Annotated[
        SandboxMode,
        typer.Argument(help="required: builds run in the sandbox; off: as codenv itself."),
    ],
) -> None:
    """MODE required: builds and init scripts run in the sandbox; off: as codenv itself (not
    recommended; recorded in the audit log)."""
    cli = state()
    saved = cli.backend().set_sandbox(mode.value)
    cli.say(f"sandbox: {saved}")
    if saved == SandboxMode.off.value:
        sys.stderr.write(UNSANDBOXED + "\n")


@app.command("set-local-source-roots")
def set_local_source_roots(
    roots: list[str] | None = RootsArgument,
) -> None:
    """The absolute directories (ROOTS, none: no local sources) requested packages may name
    local archives and `-e` sources in; builds see them read-only."""
    cli = state()
    saved = cli.backend().set_local_source_roots(list(roots or ()))
    cli.say(f"local source roots: {_shown(saved)}")


@app.command("set-trusted-proxies")
def set_trusted_proxies(
    proxies: list[str] | None = ProxiesArgument,
) -> None:
    """The reverse proxies (addresses or networks like 10.0.0.0/8) whose X-Forwarded-For gives
    a request's source; none: the TCP peer is the source."""
    cli = state()
    saved = cli.backend().set_trusted_proxies(list(proxies or ()))
    cli.say(f"trusted proxies: {_shown(saved)}")


@app.command("set-node-kind")
def set_node_kind(
    kind: Annotated[
        NodeKindChoice,
        typer.Argument(
            help="design: envs are designed here; automation, api: envs are imported from "
            "bundles, spec edits are refused."
        ),
    ],
) -> None:
    """The node's kind (config/server.json nodeType; recorded in the audit log)."""
    cli = state()
    cli.say(f"node kind: {cli.backend().set_node_kind(kind.value)}")


@app.command("prevent-override")
def prevent_override(
    prevent: Annotated[
        bool,
        typer.Option(
            "--on/--off",
            help="Whether the node's install and venv options replace those of imported envs.",
        ),
    ],
) -> None:
    """API nodes: whether the node's install and venv options win over those an imported env
    carries from its design node (codeEnvsSettings.preventOverrideFromImportedEnvs)."""
    cli = state()
    saved = cli.backend().set_prevent_override(prevent)
    cli.say(
        "the node's install options win over imported envs' ones"
        if saved
        else "imported envs keep their own install options"
    )


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="settings")
