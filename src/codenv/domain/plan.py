"""make_plan(): the pure, hashable result of spec + interpreter + settings.

A plan holds every requirement line and option a build will use. Two plans with the same hash
build the same env, which is what lets an unchanged update return at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from codenv.domain.catalog import Catalog
from codenv.domain.pythons import Interpreter
from codenv.domain.requirements import RequirementLine
from codenv.domain.secrets import mask_secrets
from codenv.domain.spec import BasePackage, EnvSpec


@dataclass(frozen=True)
class Plan:
    python_version: str
    interpreter: str
    base: tuple[str, ...]
    sets: tuple[str, ...]
    requested: tuple[str, ...]
    archive_digests: tuple[tuple[str, str], ...] = ()
    install_options: tuple[str, ...] = ()
    venv_options: tuple[str, ...] = ()
    # Set when the build runs the resources init script: a changed script changes the plan.
    init_script_digest: str = ""

    @property
    def requirement_lines(self) -> tuple[str, ...]:
        return self.base + self.sets + self.requested

    @property
    def has_editables(self) -> bool:
        return any(line.startswith("-e ") for line in self.requirement_lines)

    @property
    def python_minor(self) -> tuple[int, int]:
        major, minor = self.python_version.split(".")[:2]
        return int(major), int(minor)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def masked(self) -> dict[str, Any]:
        """The plan as it may be shown: credentials inside URLs replaced by ***."""
        data = self.to_dict()
        for key in ("base", "sets", "requested", "install_options", "venv_options"):
            data[key] = [mask_secrets(line) for line in data[key]]
        return data

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Plan:
        return cls(
            python_version=raw["python_version"],
            interpreter=raw["interpreter"],
            base=tuple(raw["base"]),
            sets=tuple(raw["sets"]),
            requested=tuple(raw["requested"]),
            archive_digests=tuple((path, digest) for path, digest in raw["archive_digests"]),
            install_options=tuple(raw.get("install_options", ())),
            venv_options=tuple(raw.get("venv_options", ())),
            init_script_digest=raw.get("init_script_digest", ""),
        )

    @property
    def hash(self) -> str:
        # Empty fields are left out, so a field added in a later release (empty by default)
        # does not change the hash of plans built before it.
        data = {key: value for key, value in self.to_dict().items() if value not in ("", ())}
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def make_plan(
    spec: EnvSpec,
    interpreter: Interpreter,
    catalog: Catalog,
    base: tuple[BasePackage, ...],
    requested: tuple[RequirementLine, ...],
    archive_digests: dict[str, str],
    install_options: tuple[str, ...] = (),
    venv_options: tuple[str, ...] = (),
) -> Plan:
    """Everything a build of `spec` with `interpreter` will install, in a stable order.

    `archive_digests` maps each local archive the plan installs to its sha256, so that an
    archive replaced under the same name changes the plan.
    """
    set_lines: list[str] = []
    for ref in spec.package_sets:
        set_lines.extend(catalog.get(ref.id).lines(ref.variant))
    return Plan(
        python_version=interpreter.version,
        interpreter=interpreter.path,
        base=tuple(package.line() for package in base),
        sets=tuple(set_lines),
        requested=tuple(line.install_line for line in requested),
        archive_digests=tuple(sorted(archive_digests.items())),
        install_options=install_options,
        venv_options=venv_options,
        init_script_digest=init_script_digest(spec),
    )


def init_script_on_update(spec: EnvSpec) -> str:
    """The init script an update of `spec` runs, or "" when an update runs none."""
    script = spec.resources_init_script
    return script if spec.run_init_script_on_update and script.strip() else ""


def init_script_digest(spec: EnvSpec) -> str:
    """The digest of the init script an update runs, or "" when an update runs none."""
    script = init_script_on_update(spec)
    return hashlib.sha256(script.encode()).hexdigest() if script else ""


# From Python 3.7 on, setuptools has PEP 660 hooks and uv installs every editable.
UV_EDITABLE_MIN = (3, 7)


def editables_needing_pip(plan: Plan, has_setup_py: Callable[[str], bool]) -> tuple[str, ...]:
    """The editable paths of `plan` that pip installs: setup.py projects on Python 3.6, whose
    last setuptools cannot build editables the PEP 660 way uv needs."""
    if plan.python_minor >= UV_EDITABLE_MIN:
        return ()
    paths = (line.removeprefix("-e ") for line in plan.requested if line.startswith("-e "))
    return tuple(path for path in paths if has_setup_py(path))
