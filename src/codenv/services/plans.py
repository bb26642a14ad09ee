"""From a saved spec to a validated plan, with what only the node knows (interpreters, files)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from codenv.builds.wheel import core_package_version, ensure_core_wheel
from codenv.domain.plan import Plan, make_plan
from codenv.domain.requirements import LineKind, RequirementLine
from codenv.domain.spec import BasePackage, EnvSpec, SpecContext, base_packages, validate_spec
from codenv.interpreters import Discovery
from codenv.services.app import Codenv
from codenv.services.interpreters import discovery, interpreter_for


@dataclass(frozen=True)
class NodeSpecContext(SpecContext):
    core_wheel: str = ""


@dataclass(frozen=True)
class CheckedSpec:
    spec: EnvSpec
    plan: Plan
    base: tuple[BasePackage, ...]


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _archive_digests(lines: tuple[RequirementLine, ...]) -> dict[str, str]:
    # A local archive replaced by another with the same name must still trigger a rebuild.
    return {
        line.path: _sha256(line.path)
        for line in lines
        if line.kind is LineKind.ARCHIVE and line.path is not None
    }


def spec_context(app: Codenv, found: Discovery) -> NodeSpecContext:
    core_wheel = ensure_core_wheel(app.settings.wheels_dir)
    return NodeSpecContext(
        installed_pythons=found.minors(),
        catalog=app.catalog,
        path_exists=os.path.exists,
        core_version=core_package_version(),
        core_line=f"codenv-runtime @ {core_wheel.as_uri()}",
        core_wheel=str(core_wheel),
    )


def check_spec(app: Codenv, spec: EnvSpec, found: Discovery | None = None) -> CheckedSpec:
    """Validate `spec` completely and compute its plan; raises InvalidSpec naming the field."""
    found = found or discovery(app)
    context = spec_context(app, found)
    requested = validate_spec(spec, context)
    interpreter = interpreter_for(found, spec.python)
    base = base_packages(spec, context.core_version, context.core_line)
    digests = _archive_digests(requested)
    if spec.install_core_packages:
        digests[context.core_wheel] = _sha256(context.core_wheel)
    options = ("--index-url", app.settings.index_url)
    plan = make_plan(spec, interpreter, app.catalog, base, requested, digests, options)
    return CheckedSpec(spec, plan, base)
