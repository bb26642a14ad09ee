"""Design, automation and API nodes in the service layer (fake installer): what each kind
refuses, what it still allows, the kind read from config/server.json, and which install
options a build takes on an API node (preventOverrideFromImportedEnvs)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import delete

from codenv.domain.errors import Conflict, InvalidInput, PermissionDenied
from codenv.domain.install_options import to_tokens
from codenv.domain.nodes import NodeKind, parse_node_kind
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.services import builds, envs, node_settings, requests, resources, revisions, runtime
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.audit import list_audit
from codenv.services.node_settings_store import stored_settings
from codenv.services.plans import ENV, NODE, describe_options_source, effective_options
from codenv.storage.models_shared import NodeSettingRow

NODE_OPTIONS = ["--timeout", "30"]
ENV_OPTIONS = ("--retries", "7")


def _configure(app: Codenv, **config: Any) -> None:
    """The node as if upgraded with this config/server.json: its settings imported afresh."""
    app.settings.config_file.parent.mkdir(parents=True, exist_ok=True)
    app.settings.config_file.write_text(json.dumps(config))
    with app.db.session() as session:
        session.execute(delete(NodeSettingRow))


def test_the_kind_comes_from_node_type_and_defaults_to_design(app: Codenv) -> None:
    assert node_settings.node_kind(app) is NodeKind.DESIGN  # no config file at all
    _configure(app, nodeType="api")
    assert node_settings.node_kind(app) is NodeKind.API
    assert [kind.designs_envs for kind in NodeKind] == [True, False, False]
    _configure(app, nodeType="automaton")
    with pytest.raises(InvalidInput) as refused:
        node_settings.node_kind(app)
    assert refused.value.field == "nodeType"
    assert "'design', 'automation', 'api'" in refused.value.message
    assert "'automaton'" in refused.value.message
    with pytest.raises(InvalidInput):
        parse_node_kind(3)


def test_setting_the_kind_is_for_administrators_and_audited(app: Codenv, admin: Actor) -> None:
    _configure(app, codeEnvsSettings={"allowRequests": True})
    assert node_settings.set_node_kind(app, admin, "automation") is NodeKind.AUTOMATION
    saved = stored_settings(app)
    assert saved == {"codeEnvsSettings.allowRequests": True, "nodeType": "automation"}
    # The database holds the node's settings now: the file is as the administrator left it.
    assert json.loads(app.settings.config_file.read_text()) == {
        "codeEnvsSettings": {"allowRequests": True}
    }
    entry = list_audit(app, admin, 10, 0, action="settings.update")[0]
    assert entry.target == "nodeType" and entry.details == {"nodeType": "automation"}
    with pytest.raises(InvalidInput):
        node_settings.set_node_kind(app, admin, "edge")
    with pytest.raises(PermissionDenied):
        node_settings.set_node_kind(app, Actor(name="someone", user_id=7), "design")


@pytest.mark.parametrize("kind", ["automation", "api"])
def test_spec_edits_are_refused_where_envs_are_imported(
    app: Codenv, admin: Actor, newest: str, kind: str
) -> None:
    spec = EnvSpec(python=newest, requested="alpha\n", install_core_packages=False)
    envs.create_env(app, admin, "demo", spec)
    envs.save_spec(app, admin, "demo", SpecChanges(requested="alpha\nbeta\n"))
    builds.request_update(app, admin, "demo")
    node_settings.set_requests_allowed(app, admin, True)
    asked = requests.submit_request(app, admin, "wanted", spec)
    node_settings.set_node_kind(app, admin, kind)

    label = "an API node" if kind == "api" else "an automation node"
    refused = {
        "create": lambda: envs.create_env(app, admin, "other", spec),
        "save": lambda: envs.save_spec(app, admin, "demo", SpecChanges(requested="beta\n")),
        "update": lambda: builds.request_update(app, admin, "demo", rebuild=True),
        "init script": lambda: resources.set_init_script(app, admin, "demo", script="print(1)"),
        "approve": lambda: requests.approve_request(app, admin, asked.id),
        "request": lambda: requests.submit_request(app, admin, "more", spec),
    }
    for action, attempt in refused.items():
        with pytest.raises(Conflict) as error:
            attempt()
        assert error.value.field == "node", action
        assert f"this is {label}" in error.value.message, action
        assert "imported from bundles here, not designed (codenv import FILE)" in (
            error.value.message
        )

    # What does not write a spec goes on: rollback, running, reading, permissions.
    assert revisions.rollback(app, admin, "demo", 1).number == 1
    assert envs.show_env(app, admin, "demo").active_revision == 1
    assert runtime.run_context(app, admin, "demo") is not None
    assert requests.get_request(app, admin, asked.id).status == "pending"
    assert len(envs.list_envs(app, admin)) == 1


def _options(app: Codenv, spec: EnvSpec) -> tuple[list[str], str, str]:
    found = effective_options(app, spec)
    tokens = [t for t in to_tokens(found.install) if not t.startswith(("--index-url", "http"))]
    return tokens, found.source.install, describe_options_source(found.source)


def test_prevent_override_makes_the_api_nodes_options_win(app: Codenv, newest: str) -> None:
    imported = EnvSpec(python=newest, install_options=ENV_OPTIONS, venv_options=())
    inheriting = EnvSpec(python=newest)
    settings = {"pipInstallExtraOptions": NODE_OPTIONS, "preventOverrideFromImportedEnvs": True}

    _configure(app, nodeType="api", codeEnvsSettings=settings)
    assert _options(app, imported) == (
        NODE_OPTIONS,
        NODE,
        "from the node's config/server.json (preventOverrideFromImportedEnvs)",
    )
    assert effective_options(app, imported).source.venv == NODE

    _configure(
        app, nodeType="api", codeEnvsSettings={**settings, "preventOverrideFromImportedEnvs": False}
    )
    assert _options(app, imported) == (list(ENV_OPTIONS), ENV, "from the imported env")
    assert _options(app, inheriting) == (NODE_OPTIONS, NODE, "from the node's config/server.json")

    # Elsewhere the setting does nothing: the spec's options apply, None inherits.
    for kind in ("design", "automation"):
        _configure(app, nodeType=kind, codeEnvsSettings=settings)
        tokens, source, described = _options(app, imported)
        assert (tokens, source) == (list(ENV_OPTIONS), ENV)
        assert described == ("from the env's spec" if kind == "design" else "from the imported env")
        assert _options(app, inheriting)[:2] == (NODE_OPTIONS, NODE)

    _configure(app, nodeType="api", codeEnvsSettings={"preventOverrideFromImportedEnvs": "yes"})
    with pytest.raises(InvalidInput) as refused:
        effective_options(app, imported)
    assert refused.value.field == "preventOverrideFromImportedEnvs"
