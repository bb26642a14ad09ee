"""From a saved spec to a validated plan, with what only the node knows (interpreters, files)."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass

from codenv.domain.install_options import (
    INSTALL_OPTIONS,
    VENV_OPTIONS,
    Option,
    parse_options,
    to_tokens,
    with_default_index,
)
from codenv.domain.plan import Plan, editables_needing_pip, make_plan
from codenv.domain.requirements import LineKind, RequirementLine
from codenv.domain.spec import (
    BasePackage,
    EnvSpec,
    LocalPath,
    SpecContext,
    base_packages,
    validate_spec,
)
from codenv.envdirs.core_wheel import core_package_version, ensure_core_wheel
from codenv.interpreters import Discovery
from codenv.services.app import Codenv
from codenv.services.interpreters import discovery, interpreter_for
from codenv.services.node_settings import code_envs_settings


@dataclass(frozen=True)
class NodeSpecContext(SpecContext):
    core_wheel: str = ""


@dataclass(frozen=True)
class CheckedSpec:
    spec: EnvSpec
    plan: Plan
    base: tuple[BasePackage, ...]
    options: tuple[Option, ...]  # the plan's install options, parsed (once)
    pip_editables: tuple[str, ...]  # editables pip installs (setup.py projects on 3.6)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    # Only regular files that validation accepted reach here: O_NOFOLLOW refuses a symlink
    # swapped in meanwhile, O_NONBLOCK a FIFO.
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _archive_digests(lines: tuple[RequirementLine, ...]) -> dict[str, str]:
    # A local archive replaced by another with the same name must still trigger a rebuild.
    return {
        line.path: _sha256(os.path.realpath(line.path))
        for line in lines
        if line.kind is LineKind.ARCHIVE and line.path is not None
    }


def inspect_path(path: str) -> LocalPath:
    """The facts validation needs about a local path (never opens or reads it)."""
    real = os.path.realpath(path)
    try:
        found = os.stat(real)
    except OSError:
        return LocalPath(real, "missing")
    if stat.S_ISREG(found.st_mode):
        return LocalPath(real, "file", found.st_size)
    return LocalPath(real, "dir" if stat.S_ISDIR(found.st_mode) else "other")


def local_source_roots(app: Codenv) -> tuple[str, ...]:
    """The directories an administrator allowed local sources from, symlinks resolved."""
    roots = code_envs_settings(app).get("allowedLocalSourceRoots", [])
    return tuple(os.path.realpath(root) for root in roots if isinstance(root, str) and root)


def spec_context(app: Codenv, found: Discovery) -> NodeSpecContext:
    core_wheel = ensure_core_wheel(app.settings.wheels_dir)
    return NodeSpecContext(
        installed_pythons=found.minors(),
        catalog=app.catalog,
        inspect_path=inspect_path,
        local_source_roots=local_source_roots(app),
        seed_packages=app.settings.seed_packages,
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
    base = base_packages(spec, context.core_version, context.core_line, context.seed_packages)
    digests = _archive_digests(requested)
    if spec.install_core_packages:
        digests[context.core_wheel] = _sha256(context.core_wheel)
    install, venv = effective_options(app, spec)
    plan = make_plan(
        spec, interpreter, app.catalog, base, requested, digests, to_tokens(install), venv
    )
    pip_editables = editables_needing_pip(plan, _has_setup_py)
    return CheckedSpec(spec, plan, base, install, pip_editables)


def _has_setup_py(path: str) -> bool:
    return os.path.exists(os.path.join(path, "setup.py"))


def global_options(app: Codenv) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The node's install and venv options (`config/server.json`), as stored."""
    settings = code_envs_settings(app)
    return (
        tuple(settings.get("pipInstallExtraOptions", ())),
        tuple(settings.get("virtualenvCreateExtraOptions", ())),
    )


def effective_options(app: Codenv, spec: EnvSpec) -> tuple[tuple[Option, ...], tuple[str, ...]]:
    """The options a build of `spec` uses: its own, or the node's; with the default index.

    Install options come back parsed, venv options as tokens."""
    node_install, node_venv = global_options(app)
    install = parse_options(
        node_install if spec.install_options is None else spec.install_options,
        INSTALL_OPTIONS,
        field="install_options",
    )
    venv = parse_options(
        node_venv if spec.venv_options is None else spec.venv_options,
        VENV_OPTIONS,
        field="venv_options",
    )
    return with_default_index(install, app.settings.index_url), to_tokens(venv)
