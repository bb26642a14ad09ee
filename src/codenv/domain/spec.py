"""The spec: what an env's owner asks for. Validated here, before anything is built."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from codenv.domain.catalog import Catalog
from codenv.domain.errors import InvalidSpec
from codenv.domain.install_options import INSTALL_OPTIONS, VENV_OPTIONS, parse_options
from codenv.domain.limits import check_spec_sizes
from codenv.domain.pythons import format_minor, parse_minor
from codenv.domain.requirements import (
    LineKind,
    RequirementLine,
    is_continued,
    parse_requested,
    requirement_name,
)

CORE_PACKAGE = "codenv-runtime"
T = TypeVar("T")


@dataclass(frozen=True)
class SetRef:
    id: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> SetRef:
        set_id, _, variant = text.strip().partition(":")
        if not set_id:
            raise InvalidSpec(f"package set reference {text!r} is empty", field="sets")
        return cls(set_id, variant or None)

    def __str__(self) -> str:
        return f"{self.id}:{self.variant}" if self.variant else self.id


@dataclass(frozen=True)
class EnvSpec:
    python: str
    install_core_packages: bool = True
    install_jupyter_support: bool = False
    package_sets: tuple[SetRef, ...] = ()
    requested: str = ""
    description: str = ""
    resources_init_script: str = ""
    run_init_script_on_update: bool = True
    run_init_script_on_api_node: bool = True
    # None: inherit the node's options; a tuple (maybe empty) overrides them.
    install_options: tuple[str, ...] | None = None
    venv_options: tuple[str, ...] | None = None
    # pip, setuptools and wheel, as a venv has them; None: the node's default.
    install_seed_packages: bool | None = None

    def __post_init__(self) -> None:
        # " 3.11 " typed in a form is the same version; stored specs compare equal.
        object.__setattr__(self, "python", self.python.strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "install_core_packages": self.install_core_packages,
            "install_jupyter_support": self.install_jupyter_support,
            "package_sets": [str(ref) for ref in self.package_sets],
            "requested": self.requested,
            "description": self.description,
            "resources_init_script": self.resources_init_script,
            "run_init_script_on_update": self.run_init_script_on_update,
            "run_init_script_on_api_node": self.run_init_script_on_api_node,
            "install_options": _listed(self.install_options),
            "venv_options": _listed(self.venv_options),
            "install_seed_packages": self.install_seed_packages,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EnvSpec:
        return cls(
            python=raw["python"],
            install_core_packages=raw.get("install_core_packages", True),
            install_jupyter_support=raw.get("install_jupyter_support", False),
            package_sets=tuple(SetRef.parse(text) for text in raw.get("package_sets", [])),
            requested=raw.get("requested", ""),
            description=raw.get("description", ""),
            resources_init_script=raw.get("resources_init_script", ""),
            run_init_script_on_update=raw.get("run_init_script_on_update", True),
            run_init_script_on_api_node=raw.get("run_init_script_on_api_node", True),
            install_options=_tupled(raw.get("install_options")),
            venv_options=_tupled(raw.get("venv_options")),
            install_seed_packages=raw.get("install_seed_packages"),
        )


def _listed(options: tuple[str, ...] | None) -> list[str] | None:
    return None if options is None else list(options)


def _tupled(options: list[str] | None) -> tuple[str, ...] | None:
    return None if options is None else tuple(options)


@dataclass(frozen=True)
class BasePackage:
    """A package the system adds from the spec's options; read-only for users."""

    name: str
    requirement: str
    pinned_version: str | None = None
    install_line: str = field(default="", compare=False)

    def line(self) -> str:
        return self.install_line or self.requirement


def jupyter_requirement(python: tuple[int, int]) -> str:
    # ipykernel 6 needs Python 3.7; 5.5 is the last line that installs on 3.6.
    return "ipykernel>=5.5,<6" if python < (3, 7) else "ipykernel>=6"


# What `python -m venv` / virtualenv give an env, in the newest versions that support its
# Python (the resolver picks them by Requires-Python: 3.6 gets pip 21.3, setuptools 59.6 …).
# setuptools 82 dropped pkg_resources, which packages of every era still import.
SEED_PACKAGES = (("pip", "pip"), ("setuptools", "setuptools<82"), ("wheel", "wheel"))


def _seeds(spec: EnvSpec, seed_default: bool) -> list[BasePackage]:
    wanted = seed_default if spec.install_seed_packages is None else spec.install_seed_packages
    if not wanted:
        return []
    # A requested pin of one of them (setuptools<58 for an old stack) replaces the seed.
    named = {requirement_name(line.strip()) for line in spec.requested.splitlines()}
    return [BasePackage(name, line) for name, line in SEED_PACKAGES if name not in named]


def base_packages(
    spec: EnvSpec, core_version: str, core_line: str, seed_default: bool = False
) -> tuple[BasePackage, ...]:
    python = parse_minor(spec.python)
    packages: list[BasePackage] = _seeds(spec, seed_default)
    if spec.install_core_packages:
        packages.append(
            BasePackage(CORE_PACKAGE, f"{CORE_PACKAGE}=={core_version}", core_version, core_line)
        )
    if spec.install_jupyter_support:
        packages.append(BasePackage("ipykernel", jupyter_requirement(python)))
    return tuple(packages)


def _check_base_conflicts(lines: Iterable[RequirementLine], base: Iterable[BasePackage]) -> None:
    by_name = {package.name: package for package in base}
    for line in lines:
        package = by_name.get(line.name or "")
        if package is None:
            continue
        if line.kind is not LineKind.NAMED:
            raise InvalidSpec(
                f"line {line.lineno}: {package.name} is a base package ({package.requirement}); "
                "it cannot be replaced by a URL or archive",
                field="requested",
                line=line.lineno,
            )
        specifier = Requirement(line.text).specifier
        if package.pinned_version and not specifier.contains(package.pinned_version, True):
            raise InvalidSpec(
                f"line {line.lineno}: {line.text!r} conflicts with the base package "
                f"{package.requirement}",
                field="requested",
                line=line.lineno,
            )


@dataclass(frozen=True)
class SpecContext:
    """What validation needs to know about the node, given by the service layer."""

    installed_pythons: tuple[str, ...]
    catalog: Catalog
    inspect_path: Callable[[str], LocalPath]
    core_version: str
    core_line: str
    # Directories local sources may come from (symlinks resolved); none: no local sources.
    local_source_roots: tuple[str, ...] = ()
    max_archive_bytes: int = 1 << 30
    seed_packages: bool = False  # the node's default for specs that do not say


@dataclass(frozen=True)
class LocalPath:
    """What the node found at a local path of a requirement line."""

    real_path: str  # every symlink resolved
    kind: str  # "file", "dir", "missing" or "other" (a device, a socket...)
    size: int = 0


ROOTS_SETTING = "codeEnvsSettings.allowedLocalSourceRoots"


def _check_python(spec: EnvSpec, context: SpecContext) -> tuple[int, int]:
    python = parse_minor(spec.python)
    if format_minor(python) not in context.installed_pythons:
        installed = ", ".join(context.installed_pythons) or "none"
        raise InvalidSpec(
            f"Python {spec.python} is not installed on this node (installed: {installed}); "
            "an administrator must install it, with its development headers",
            field="python",
        )
    return python


def _check_sets(spec: EnvSpec, python: tuple[int, int], context: SpecContext) -> None:
    seen: set[str] = set()
    for ref in spec.package_sets:
        package_set = context.catalog.get(ref.id)
        package_set.lines(ref.variant)
        if ref.id in seen:
            raise InvalidSpec(f"package set {ref.id!r} is listed twice", field="sets")
        seen.add(ref.id)
        if not package_set.supports(python):
            compatible = [
                v for v in context.installed_pythons if package_set.supports(parse_minor(v))
            ]
            raise InvalidSpec(
                f"package set {package_set.title!r} supports Python {package_set.python_range}, "
                f"not {format_minor(python)}; compatible installed versions: "
                f"{', '.join(compatible) or 'none'}",
                field="sets",
            )


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _local_path_problem(line: RequirementLine, found: LocalPath, context: SpecContext) -> str:
    """Why `line`'s local path may not be used ("" when it may). Containment is checked first,
    so the answer never tells whether a path outside the allowed directories exists."""
    roots = context.local_source_roots
    if not roots:
        return (
            f"local sources ({line.path}) are not allowed on this node; an administrator can "
            f"allow directories for them in the node settings ({ROOTS_SETTING})"
        )
    if not any(_under(posixpath.normpath(found.real_path), root) for root in roots):
        return (
            f"{line.path} is outside the directories allowed for local sources "
            f"({', '.join(roots)}; setting {ROOTS_SETTING})"
        )
    wanted = "dir" if line.kind is LineKind.EDITABLE else "file"
    if found.kind == "missing":
        return f"local path {line.path} does not exist on this node"
    if found.kind != wanted:
        what = "a directory" if wanted == "dir" else "a regular file"
        return f"local path {line.path} must be {what}"
    if wanted == "file" and found.size > context.max_archive_bytes:
        return f"local archive {line.path} is larger than {context.max_archive_bytes} bytes"
    return ""


def _check_paths(lines: Iterable[RequirementLine], context: SpecContext) -> None:
    for line in lines:
        if line.path is None:
            continue
        problem = _local_path_problem(line, context.inspect_path(line.path), context)
        if problem:
            raise InvalidSpec(f"line {line.lineno}: {problem}", field="requested", line=line.lineno)


def _check_resources(spec: EnvSpec) -> None:
    if spec.resources_init_script.strip() and not spec.install_core_packages:
        raise InvalidSpec(
            "a resources init script needs the core package (codenv-runtime gives it "
            "codenv_runtime.resources): turn core packages on, or remove the script",
            field="resources_init_script",
        )


def _check_options(spec: EnvSpec) -> None:
    if spec.install_options is not None:
        parse_options(spec.install_options, INSTALL_OPTIONS, field="install_options")
    if spec.venv_options is not None:
        parse_options(spec.venv_options, VENV_OPTIONS, field="venv_options")


def validate_spec(spec: EnvSpec, context: SpecContext) -> tuple[RequirementLine, ...]:
    """Check a spec completely; returns the parsed requested lines."""
    check_spec_sizes(spec)
    _check_resources(spec)
    _check_options(spec)
    python = _check_python(spec, context)
    _check_sets(spec, python, context)
    lines = parse_requested(spec.requested)
    _check_paths(lines, context)
    base = base_packages(spec, context.core_version, context.core_line, context.seed_packages)
    _check_base_conflicts(lines, base)
    return lines


@dataclass(frozen=True)
class SpecChanges:
    """What `save` changes in a spec; None / empty leaves that part as it is."""

    requested: str | None = None
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    add_sets: tuple[str, ...] = ()
    remove_sets: tuple[str, ...] = ()
    python: str | None = None
    install_core_packages: bool | None = None
    install_jupyter_support: bool | None = None
    install_seed_packages: bool | None = None
    description: str | None = None
    resources_init_script: str | None = None
    run_init_script_on_update: bool | None = None
    run_init_script_on_api_node: bool | None = None
    install_options: tuple[str, ...] | None = None
    inherit_install_options: bool = False
    venv_options: tuple[str, ...] | None = None
    inherit_venv_options: bool = False


def _remove_requested(text: str, names: tuple[str, ...]) -> str:
    wanted = {canonicalize_name(name) for name in names}
    parsed = {line.lineno: line for line in parse_requested(text)}
    found = {line.name for line in parsed.values() if line.name in wanted}
    missing = sorted(wanted - found)
    if missing:
        raise InvalidSpec(f"no requested package named {', '.join(missing)}", field="remove")
    # A removed requirement takes its continuation lines (ending in a backslash) with it.
    kept: list[str] = []
    dropping = continued = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if not continued:
            dropping = number in parsed and parsed[number].name in wanted
        continued = is_continued(raw)
        if not dropping:
            kept.append(raw)
    return "\n".join(kept) + ("\n" if kept else "")


def _changed_sets(spec: EnvSpec, changes: SpecChanges) -> tuple[SetRef, ...]:
    removed = {SetRef.parse(text).id for text in changes.remove_sets}
    unknown = removed - {ref.id for ref in spec.package_sets}
    if unknown:
        raise InvalidSpec(f"the env has no package set {', '.join(sorted(unknown))}", field="sets")
    kept = [ref for ref in spec.package_sets if ref.id not in removed]
    return (*kept, *(SetRef.parse(text) for text in changes.add_sets))


def apply_changes(spec: EnvSpec, changes: SpecChanges) -> EnvSpec:
    requested = spec.requested if changes.requested is None else changes.requested
    if changes.remove:
        requested = _remove_requested(requested, changes.remove)
    if changes.add:
        prefix = requested if not requested or requested.endswith("\n") else requested + "\n"
        requested = prefix + "".join(f"{line}\n" for line in changes.add)
    return EnvSpec(
        python=changes.python or spec.python,
        install_core_packages=_pick(changes.install_core_packages, spec.install_core_packages),
        install_seed_packages=(
            spec.install_seed_packages
            if changes.install_seed_packages is None
            else changes.install_seed_packages
        ),
        install_jupyter_support=_pick(
            changes.install_jupyter_support, spec.install_jupyter_support
        ),
        package_sets=_changed_sets(spec, changes),
        requested=requested,
        description=_pick(changes.description, spec.description),
        resources_init_script=_pick(changes.resources_init_script, spec.resources_init_script),
        run_init_script_on_update=_pick(
            changes.run_init_script_on_update, spec.run_init_script_on_update
        ),
        run_init_script_on_api_node=_pick(
            changes.run_init_script_on_api_node, spec.run_init_script_on_api_node
        ),
        install_options=_options(
            spec.install_options, changes.install_options, changes.inherit_install_options
        ),
        venv_options=_options(
            spec.venv_options, changes.venv_options, changes.inherit_venv_options
        ),
    )


def _options(
    old: tuple[str, ...] | None, new: tuple[str, ...] | None, inherit: bool
) -> tuple[str, ...] | None:
    if inherit:
        return None
    return old if new is None else new


def _pick(new: T | None, old: T) -> T:
    return old if new is None else new
