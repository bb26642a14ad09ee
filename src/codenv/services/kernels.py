"""Exposing envs with Jupyter support to Jupyter installations."""

from __future__ import annotations

import os
from pathlib import Path

from codenv.domain.errors import Conflict
from codenv.domain.spec import EnvSpec
from codenv.envdirs import kernels
from codenv.services.actor import Actor, env_for, may_use
from codenv.services.app import Codenv
from codenv.services.runtime import refresh_kernel
from codenv.storage import queries


def target_dir(prefix: Path | None) -> Path:
    """Jupyter's kernels dir: the user's, or an installation's under `prefix`."""
    if prefix is None:
        return kernels.jupyter_user_kernels_dir(os.environ)
    return kernels.prefix_kernels_dir(prefix)


def list_kernels(app: Codenv, actor: Actor) -> list[dict[str, object]]:
    with app.db.session() as session:
        usable = {env.name.lower() for env in queries.all_envs(session) if may_use(actor, env)}
    return [
        spec
        for spec in kernels.list_kernelspecs(app.settings.kernels_dir)
        if str(spec["name"]).removeprefix(kernels.PREFIX) in usable
    ]


def install_kernel(app: Codenv, actor: Actor, name: str, prefix: Path | None = None) -> Path:
    with app.db.session() as session:
        env = env_for(session, actor, name)
        spec, env_name, built = EnvSpec.from_dict(env.spec), env.name, env.active_revision
    if not spec.install_jupyter_support:
        raise Conflict(
            f"code env {env_name!r} has no Jupyter support; "
            f"`codenv save {env_name} --jupyter --update` adds it",
            field="name",
        )
    if built is None:
        raise Conflict(f"code env {env_name!r} has never built successfully", field="name")
    refresh_kernel(app, env_name, spec)
    return kernels.install_kernelspec(app.settings.kernels_dir, env_name, target_dir(prefix))


def remove_kernel(app: Codenv, actor: Actor, name: str, prefix: Path | None = None) -> bool:
    with app.db.session() as session:
        env = env_for(session, actor, name)
        env_name = env.name
    return kernels.uninstall_kernelspec(app.settings.kernels_dir, env_name, target_dir(prefix))
