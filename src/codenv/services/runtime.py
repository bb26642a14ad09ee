"""What running code in an env needs: its interpreter, its env vars, its Jupyter kernels.

`NAME@N` names revision N of env NAME (a version, on automation nodes): `codenv run`, `path`
and the version kernelspecs use that revision's interpreter whichever one is active; the
resources env vars are the env's, the same for every revision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codenv.core_package.codenv_runtime.resources import load_env_vars_file
from codenv.domain.errors import NotFound
from codenv.domain.names import split_version
from codenv.domain.spec import EnvSpec
from codenv.envdirs import kernels
from codenv.envdirs.layout import EnvLayout
from codenv.services.actor import Actor, require_use
from codenv.services.app import Codenv
from codenv.storage import queries
from codenv.storage.models import CodeEnvRow


def env_vars(layout: EnvLayout) -> dict[str, str]:
    """The resources env vars in force, resolved (paths made absolute)."""
    if not layout.env_vars_file.exists():
        return {}
    return dict(load_env_vars_file(str(layout.env_vars_file), str(layout.resources_dir)))


def refresh_kernel(app: Codenv, env_name: str, spec: EnvSpec) -> None:
    """Rewrite (or remove) the env's kernelspec after anything that may change it."""
    layout = EnvLayout.of(app.settings.envs_dir, env_name)
    if spec.install_jupyter_support:
        kernels.write_kernelspec(
            app.settings.kernels_dir, env_name, layout.python(), env_vars(layout)
        )
    else:
        kernels.remove_kernelspec(app.settings.kernels_dir, env_name)


def refresh_version_kernels(app: Codenv, env_id: int) -> None:
    """One kernelspec per kept imported revision with Jupyter support, none for the others:
    rewritten whole each time (idempotent), so a removed version loses its kernel."""
    with app.db.session() as session:
        env = session.get(CodeEnvRow, env_id)
        if env is None:
            return
        name = env.name
        wanted = {
            row.number
            for row in env.revisions
            if row.origin is not None
            and not row.pruned
            and row.spec.get("install_jupyter_support", False)
        }
    layout = EnvLayout.of(app.settings.envs_dir, name)
    variables = env_vars(layout)
    for number in sorted(wanted):
        if layout.python(number).exists():
            kernels.write_kernelspec(
                app.settings.kernels_dir, name, layout.python(number), variables, number
            )
    for number in kernels.version_kernelspecs(app.settings.kernels_dir, name):
        if number not in wanted:
            drop_version_kernel(app, name, number)


def drop_version_kernel(app: Codenv, env_name: str, number: int) -> None:
    """Remove a version's kernelspec, and its link in the user's Jupyter (where `codenv
    kernels install NAME@N` put it), which would dangle."""
    kernels.remove_kernelspec(app.settings.kernels_dir, env_name, number)
    user_dir = kernels.jupyter_user_kernels_dir(os.environ)
    kernels.uninstall_kernelspec(app.settings.kernels_dir, env_name, user_dir, number)


def no_such_revision(env: CodeEnvRow, number: int) -> NotFound:
    """The error for a revision that is not kept, naming those that are."""
    kept = ", ".join(f"{env.name}@{row.number}" for row in env.revisions if not row.pruned)
    return NotFound(
        f"code env {env.name!r} has no revision {number} (never built, or removed); "
        f"its revisions: {kept or 'none'}",
        field="revision",
    )


def drop_version_kernels(app: Codenv, env_name: str) -> None:
    """Remove the kernelspecs of all the env's versions (the env is deleted)."""
    for number in kernels.version_kernelspecs(app.settings.kernels_dir, env_name):
        drop_version_kernel(app, env_name, number)


def require_kept(app: Codenv, env: CodeEnvRow, number: int) -> None:
    """NotFound, naming the revisions there are, unless revision `number` is kept on disk."""
    row = next((row for row in env.revisions if row.number == number), None)
    layout = EnvLayout.of(app.settings.envs_dir, env.name)
    if row is None or row.pruned or not layout.python(number).exists():
        raise no_such_revision(env, number)


@dataclass(frozen=True)
class RunContext:
    python: Path
    environ: dict[str, str]


def run_context(app: Codenv, actor: Actor, ref: str) -> RunContext:
    """The interpreter and environment a command runs with: in the env's active revision, or
    in revision N for `NAME@N`."""
    name, number = split_version(ref)
    with app.db.session() as session:
        env = queries.require_env(session, name)
        require_use(actor, env)
        if number is not None:
            require_kept(app, env, number)
        elif env.active_revision is None:
            raise NotFound(
                f"code env {env.name!r} has never built successfully; "
                f"run `codenv update {env.name}` first",
                field="name",
            )
        layout = EnvLayout.of(app.settings.envs_dir, env.name)
    root = layout.current if number is None else layout.revision(number)
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    environ.update(env_vars(layout))
    environ["VIRTUAL_ENV"] = str(root)
    environ["PATH"] = f"{root / 'bin'}{os.pathsep}{environ.get('PATH', '')}"
    return RunContext(layout.python(number), environ)
