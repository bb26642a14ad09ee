"""Exposing envs with Jupyter support to Jupyter installations: the env's kernel (its active
revision) and, for `NAME@N`, the kernel of version N."""

from __future__ import annotations

import os
from pathlib import Path

from codenv.domain.errors import Conflict, NotFound
from codenv.domain.names import split_version
from codenv.domain.spec import EnvSpec
from codenv.envdirs import kernels
from codenv.services.actor import Actor, env_for, may_use
from codenv.services.app import Codenv
from codenv.services.runtime import refresh_kernel, refresh_version_kernels
from codenv.storage import queries


def target_dir(prefix: Path | None) -> Path:
    """Jupyter's kernels dir: the user's, or an installation's under `prefix`."""
    if prefix is None:
        return kernels.jupyter_user_kernels_dir(os.environ)
    return kernels.prefix_kernels_dir(prefix)


def _env_of(spec: dict[str, object]) -> str:
    about = spec.get("metadata")
    codenv = about.get("codenv") if isinstance(about, dict) else None
    env = codenv.get("env") if isinstance(codenv, dict) else None
    return str(env) if env is not None else str(spec["name"]).removeprefix(kernels.PREFIX)


def list_kernels(app: Codenv, actor: Actor) -> list[dict[str, object]]:
    with app.db.session() as session:
        usable = {env.name.lower() for env in queries.all_envs(session) if may_use(actor, env)}
    return [
        spec
        for spec in kernels.list_kernelspecs(app.settings.kernels_dir)
        if _env_of(spec).lower() in usable
    ]


def _env_kernel(app: Codenv, env_name: str, spec: EnvSpec, built: int | None) -> None:
    if not spec.install_jupyter_support:
        raise Conflict(
            f"code env {env_name!r} has no Jupyter support; "
            f"`codenv save {env_name} --jupyter --update` adds it",
            field="name",
        )
    if built is None:
        raise Conflict(f"code env {env_name!r} has never built successfully", field="name")
    refresh_kernel(app, env_name, spec)


def _version_kernel(app: Codenv, env_id: int, env_name: str, number: int) -> None:
    refresh_version_kernels(app, env_id)
    if number not in kernels.version_kernelspecs(app.settings.kernels_dir, env_name):
        raise NotFound(
            f"{env_name}@{number} has no kernel: only kept imported versions with Jupyter "
            "support have one (`codenv kernels list`)",
            field="name",
        )


def install_kernel(app: Codenv, actor: Actor, ref: str, prefix: Path | None = None) -> Path:
    """Link the env's kernel (or, for `NAME@N`, version N's) into a Jupyter installation."""
    name, number = split_version(ref)
    with app.db.session() as session:
        env = env_for(session, actor, name)
        spec, env_name, built, env_id = (
            EnvSpec.from_dict(env.spec),
            env.name,
            env.active_revision,
            env.id,
        )
    if number is None:
        _env_kernel(app, env_name, spec, built)
    else:
        _version_kernel(app, env_id, env_name, number)
    return kernels.install_kernelspec(
        app.settings.kernels_dir, env_name, target_dir(prefix), number
    )


def remove_kernel(app: Codenv, actor: Actor, ref: str, prefix: Path | None = None) -> bool:
    name, number = split_version(ref)
    with app.db.session() as session:
        env = env_for(session, actor, name)
        env_name = env.name
    return kernels.uninstall_kernelspec(
        app.settings.kernels_dir, env_name, target_dir(prefix), number
    )
