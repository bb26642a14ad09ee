"""What running code in an env needs: its interpreter, its env vars, its Jupyter kernel."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from codenv.core_package.codenv_runtime.resources import load_env_vars_file
from codenv.domain.errors import NotFound
from codenv.domain.spec import EnvSpec
from codenv.envdirs import kernels
from codenv.envdirs.layout import EnvLayout
from codenv.services.actor import Actor, require_use
from codenv.services.app import Codenv
from codenv.storage import queries


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


@dataclass(frozen=True)
class RunContext:
    python: Path
    environ: dict[str, str]


def run_context(app: Codenv, actor: Actor, name: str) -> RunContext:
    """The interpreter and environment a command in the env's active revision runs with."""
    with app.db.session() as session:
        env = queries.require_env(session, name)
        require_use(actor, env)
        if env.active_revision is None:
            raise NotFound(
                f"code env {env.name!r} has never built successfully; "
                f"run `codenv update {env.name}` first",
                field="name",
            )
        layout = EnvLayout.of(app.settings.envs_dir, env.name)
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    environ.update(env_vars(layout))
    bin_dir = layout.current / "bin"
    environ["VIRTUAL_ENV"] = str(layout.current)
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}"
    return RunContext(layout.python(), environ)
