"""The default installer: uv, with one shared cache on the envs' filesystem (hard links)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from uv import find_uv_bin

from codenv.backends.base import InstalledPackage, clean_environ, run_logged
from codenv.backends.index_probe import refused_index
from codenv.backends.uv_options import UvOptions, translate
from codenv.builds.logs import BuildLog
from codenv.domain.errors import BuildFailed
from codenv.domain.install_options import index_urls, parse_options
from codenv.domain.plan import Plan

# What uv says when an offline install misses something in the cache (metadata or a file).
_NOT_CACHED = ("network was disabled", "network connectivity is disabled")


class UvInstaller:
    name = "uv"

    def __init__(self, cache_dir: Path, timeout: float = 3600) -> None:
        self.uv = find_uv_bin()
        self.cache_dir = cache_dir
        self.timeout = timeout

    @property
    def environ(self) -> dict[str, str]:
        return clean_environ(
            {
                "UV_CACHE_DIR": str(self.cache_dir),
                # Never fetch an interpreter: envs use the node's own, by absolute path.
                "UV_PYTHON_DOWNLOADS": "never",
                "UV_NO_CONFIG": "1",
                "UV_LINK_MODE": "hardlink",
                "UV_NO_PROGRESS": "1",
            }
        )

    def _run(self, what: str, args: list[str], log: BuildLog, plan: Plan | None = None) -> None:
        """Run uv; a failure that a refused index password explains says so."""
        options = translate(plan.install_options) if plan else UvOptions()
        env = {**self.environ, **options.environ}
        try:
            run_logged(what, [self.uv, *args, *options.args], log, env, self.timeout)
        except BuildFailed as error:
            refused = (
                refused_index(index_urls(parse_options(plan.install_options))) if plan else None
            )
            if refused is None:
                raise
            raise BuildFailed(f"{what} failed: {refused}\n{error.message}") from error

    def resolve(
        self, plan: Plan, requirements: Path, lock: Path, upgrade: bool, log: BuildLog
    ) -> None:
        for note in translate(plan.install_options).notes:
            log.write(f"note: {note}")
        args = [
            "pip",
            "compile",
            str(requirements),
            "--output-file",
            str(lock),
            "--python",
            plan.interpreter,
            "--generate-hashes",
            "--no-header",
            "--quiet",
        ]
        if upgrade:
            args.append("--upgrade")
        self._run("resolving", args, log, plan)

    def create_venv(self, plan: Plan, target: Path, log: BuildLog) -> None:
        args = [
            "venv",
            str(target),
            "--python",
            plan.interpreter,
            "--no-project",
            *plan.venv_options,
        ]
        self._run("creating the venv", args, log)

    def install(self, plan: Plan, lock: Path, python: Path, log: BuildLog) -> None:
        args = ["pip", "sync", str(lock), "--python", str(python)]
        options = translate(plan.install_options)
        # The lock pins every version and hash: when the shared cache holds them all, installing
        # needs no index at all, which saves uv's revalidation of every index page. The index
        # options also name the cache entries uv looks in, offline or not.
        held: list[str] = []
        try:
            run_logged(
                "installing",
                [self.uv, *args, *options.args, "--offline"],
                log,
                {**self.environ, **options.environ},
                self.timeout,
                held=held,
            )
        except BuildFailed as error:
            if not any(marker in error.message.lower() for marker in _NOT_CACHED):
                for line in held:
                    log.write(line)
                raise
        else:
            log.write("installed from the shared cache (no index access needed)")
            return
        log.write("some packages are not in the shared cache yet: installing from the index")
        self._run("installing", args, log, plan)

    def check(self, python: Path, log: BuildLog) -> None:
        self._run("checking", ["pip", "check", "--python", str(python)], log)

    def installed(self, python: Path) -> list[InstalledPackage]:
        result = subprocess.run(
            [self.uv, "pip", "list", "--format", "json", "--python", str(python)],
            capture_output=True,
            text=True,
            env=self.environ,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise BuildFailed(f"listing installed packages failed: {result.stderr.strip()}")
        return [
            InstalledPackage(item["name"], item["version"], item.get("editable_project_location"))
            for item in json.loads(result.stdout)
        ]
