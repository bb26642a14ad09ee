"""From a queued import build to its build input: a bundle's exact lock, installed as it is.

The import service staged the env's part of the bundle (verified) in `imports/<build-id>/`.
Nothing is resolved: the lock is the bundle's, with the core package taken from this node's
own wheel. With bundled wheels the install reads them only (no index at all); `--offline`
imports use the shared cache and never the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codenv.backends.uv_options import OFFLINE
from codenv.builds.executor import BuildInput
from codenv.domain.builds import ResolutionPolicy
from codenv.domain.bundles import LOCK, SPEC, local_lock
from codenv.domain.errors import NotFound
from codenv.domain.install_options import Option
from codenv.domain.nodes import NodeKind
from codenv.domain.spec import EnvSpec
from codenv.services.app import Codenv
from codenv.services.boxes import build_boxes
from codenv.services.build_input import (
    BuildRequest,
    Prepared,
    build_dirs,
    init_script_input,
)
from codenv.services.interpreters import discovery
from codenv.services.node_settings import node_kind
from codenv.services.plans import (
    CheckedSpec,
    check_spec,
    describe_options_source,
    file_sha256,
    spec_context,
)
from codenv.storage import queries
from codenv.storage.models import CodeEnvRow

ORIGIN = "origin.json"  # what the import service knows of the bundle: file, digest, revision


@dataclass(frozen=True)
class StagedImport:
    """The env's part of a bundle, staged for one import build."""

    root: Path

    @classmethod
    def of(cls, app: Codenv, build_id: str) -> StagedImport:
        return cls(app.settings.imports_dir / build_id)

    def spec(self) -> EnvSpec:
        return EnvSpec.from_dict(json.loads((self.root / SPEC).read_text("utf-8")))

    def lock(self) -> str:
        return (self.root / LOCK).read_text("utf-8")

    def origin(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.root / ORIGIN).read_text("utf-8"))
        return loaded


def init_script_at_import(spec: EnvSpec, kind: NodeKind) -> str:
    """The init script an import runs: on an API node only when the env says "run on API
    node"; elsewhere as an update would."""
    wanted = (
        spec.run_init_script_on_api_node if kind is NodeKind.API else spec.run_init_script_on_update
    )
    script = spec.resources_init_script
    return script if wanted and script.strip() else ""


def _install_options(
    app: Codenv, origin: dict[str, Any], node: tuple[Option, ...]
) -> tuple[Option, ...]:
    if origin.get("with_wheels"):
        # The bundled wheels and nothing else: no index is asked anything.
        wheels = str(app.settings.bundle_wheels_dir)
        return (Option("--no-index"), Option("--find-links", wheels), Option(OFFLINE))
    return (*node, Option(OFFLINE)) if origin.get("offline") else node


def _options_note(origin: dict[str, Any], checked: CheckedSpec) -> str:
    if origin.get("with_wheels"):
        return "the bundle's wheels only: no index"
    offline = ", offline: the shared cache only" if origin.get("offline") else ""
    return describe_options_source(checked.options_source) + offline


def prepare_import(app: Codenv, request: BuildRequest) -> Prepared:
    staged = StagedImport.of(app, request.build_id)
    origin = staged.origin()
    spec = staged.spec()
    with app.db.session() as session:
        env = session.get(CodeEnvRow, request.env_id)
        if env is None:
            raise NotFound(f"code env {request.env_name!r} was deleted", field="name")
        number = queries.next_revision_number(session, env.id)
    found = discovery(app)
    checked = check_spec(app, spec, found)
    context = spec_context(app, found)
    lock = local_lock(staged.lock(), context.core_line, file_sha256(context.core_wheel))
    layout, dirs = build_dirs(app, request, number)
    script = init_script_at_import(spec, node_kind(app))
    options = _install_options(app, origin, checked.options)
    job = BuildInput(
        build_id=request.build_id,
        plan=checked.plan,
        number=number,
        target=dirs.target,
        work_dir=dirs.work_dir,
        policy=ResolutionPolicy.EXACT,
        previous_lock=lock,
        reuse_resolution=False,
        pip_editables=(),
        init_script=init_script_input(layout, request.build_id, script) if script else None,
        boxes=build_boxes(app, checked.plan, options, (), dirs),
    )
    return Prepared(job, options, spec, _options_note(origin, checked), origin)
