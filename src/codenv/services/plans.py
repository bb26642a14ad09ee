"""From a saved spec to a validated plan, with what only the node knows (interpreters, files)."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codenv.domain.install_options import (
    INSTALL_OPTIONS,
    VENV_OPTIONS,
    Option,
    parse_options,
    to_tokens,
    with_default_index,
)
from codenv.domain.nodes import NodeKind
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
from codenv.services.node_settings import (
    PREVENT_OVERRIDE,
    code_envs_settings,
    node_kind,
    prevent_override,
)


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
    options_source: OptionsSource  # where `options` (and the plan's venv options) came from


def file_sha256(path: str) -> str:
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
        line.path: file_sha256(os.path.realpath(line.path))
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


def core_requirement(app: Codenv) -> tuple[str, str, Path]:
    """The core package's version, its requirement line and its wheel on this node."""
    core_wheel = ensure_core_wheel(app.settings.wheels_dir)
    return core_package_version(), f"codenv-runtime @ {core_wheel.as_uri()}", core_wheel


def spec_context(app: Codenv, found: Discovery) -> NodeSpecContext:
    core_version, core_line, core_wheel = core_requirement(app)
    return NodeSpecContext(
        installed_pythons=found.minors(),
        catalog=app.catalog,
        inspect_path=inspect_path,
        local_source_roots=local_source_roots(app),
        seed_packages=app.settings.seed_packages,
        core_version=core_version,
        core_line=core_line,
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
        digests[context.core_wheel] = file_sha256(context.core_wheel)
    options = effective_options(app, spec)
    plan = make_plan(
        spec,
        interpreter,
        app.catalog,
        base,
        requested,
        digests,
        to_tokens(options.install),
        options.venv,
    )
    pip_editables = editables_needing_pip(plan, _has_setup_py)
    return CheckedSpec(spec, plan, base, options.install, pip_editables, options.source)


def _has_setup_py(path: str) -> bool:
    return os.path.exists(os.path.join(path, "setup.py"))


def global_options(app: Codenv) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The node's install and venv options (`config/server.json`), as stored."""
    settings = code_envs_settings(app)
    return (
        tuple(settings.get("pipInstallExtraOptions", ())),
        tuple(settings.get("virtualenvCreateExtraOptions", ())),
    )


NODE, ENV = "node", "env"


@dataclass(frozen=True)
class OptionsSource:
    """Where a build's install and venv options come from: NODE (`config/server.json`) or ENV
    (the spec: written here on a design node, carried by an imported env elsewhere)."""

    install: str
    venv: str
    kind: NodeKind
    # On an API node with preventOverrideFromImportedEnvs: the node's options win.
    node_wins: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "install": self.install,
            "venv": self.venv,
            "node_wins": self.node_wins,
            "described": describe_options_source(self),
        }


def options_source(app: Codenv, spec: EnvSpec) -> OptionsSource:
    """Which options a build of `spec` uses; the spec's own ones unless none are set (they are
    inherited) or an API node's preventOverrideFromImportedEnvs makes the node's win."""
    kind = node_kind(app)
    node_wins = kind.node_options_may_win and prevent_override(app)

    def source(own: tuple[str, ...] | None) -> str:
        return NODE if node_wins or own is None else ENV

    return OptionsSource(source(spec.install_options), source(spec.venv_options), kind, node_wins)


def describe_options_source(source: OptionsSource, which: str = "install") -> str:
    """For the build log and `show`: where the install (or, `which="venv"`, venv) options come
    from, e.g. "from the node's config/server.json (preventOverrideFromImportedEnvs)"."""
    if (source.venv if which == "venv" else source.install) == NODE:
        reason = f" ({PREVENT_OVERRIDE})" if source.node_wins else ""
        return f"from the node's config/server.json{reason}"
    return "from the env's spec" if source.kind.designs_envs else "from the imported env"


@dataclass(frozen=True)
class EffectiveOptions:
    install: tuple[Option, ...]  # parsed, with the default index
    venv: tuple[str, ...]  # tokens
    source: OptionsSource


def effective_options(app: Codenv, spec: EnvSpec) -> EffectiveOptions:
    """The options a build of `spec` uses (see `options_source`), with the default index."""
    node_install, node_venv = global_options(app)
    source = options_source(app, spec)
    install = parse_options(
        node_install if source.install == NODE else spec.install_options or (),
        INSTALL_OPTIONS,
        field="install_options",
    )
    venv = parse_options(
        node_venv if source.venv == NODE else spec.venv_options or (),
        VENV_OPTIONS,
        field="venv_options",
    )
    return EffectiveOptions(
        with_default_index(install, app.settings.index_url), to_tokens(venv), source
    )
