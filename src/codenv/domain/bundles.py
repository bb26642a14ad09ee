"""Bundles: code envs exported from one node to be imported on another, exactly.

A bundle is one tar file. `manifest.json` names the format version, the envs it carries and
the sha256 of every other file; each env has a directory `envs/<name>/` with its spec, init
script, exact lock (`requirements.lock`, hashed), the same lock as PEP 751 `pylock.toml`, the
installed list, and optionally the wheels the lock needs and its resources directory.

What a bundle never carries: credentials (options that hold one are left out, URLs masked,
and the manifest says so) and node-local paths (the core package travels by name and version,
the node that imports it puts its own).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from codenv.domain.errors import InvalidInput
from codenv.domain.locks import LockEntry, parse_lock, render_lock
from codenv.domain.names import NAME_PATTERN, validate_env_name
from codenv.domain.requirements import LineKind, parse_requested
from codenv.domain.secrets import mask_secrets
from codenv.domain.spec import EnvSpec

FORMAT_VERSION = 1
SUPPORTED_FORMATS = (1,)
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# spec.json, requirements.lock and installed.json: a large stack with hashes fits many times.
MAX_TEXT_MEMBER_BYTES = 16 * 1024 * 1024
CORE_PACKAGE = "codenv-runtime"
# What the files of one env in a bundle are called.
SPEC, SCRIPT, LOCK, PYLOCK, INSTALLED = (
    "spec.json",
    "init_script.py",
    "requirements.lock",
    "pylock.toml",
    "installed.json",
)
WHEELS, RESOURCES = "wheels", "resources"
REQUIRED_FILES = (SPEC, LOCK, INSTALLED)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ImportMode(StrEnum):
    """What an import does with each env of a bundle (the seed system's modes)."""

    INSTALL_IF_MISSING = "INSTALL_IF_MISSING"  # add it, or a version of it
    FAIL_IF_MISSING = "FAIL_IF_MISSING"  # the env must exist already: add a version, or fail
    DO_NOTHING = "DO_NOTHING"  # report what the bundle holds; change nothing


@dataclass(frozen=True)
class BundledEnv:
    name: str
    python: str  # the minor: "3.11"
    revision: int  # on the node it was exported from
    core_package: str | None  # its version, when the env has the core package
    with_wheels: bool
    with_resources: bool
    left_out: tuple[str, ...] = ()  # what was left out or masked, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "python": self.python,
            "revision": self.revision,
            "core_package": self.core_package,
            "with_wheels": self.with_wheels,
            "with_resources": self.with_resources,
            "left_out": list(self.left_out),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BundledEnv:
        name = _text(raw, "name")
        validate_env_name(name)
        return cls(
            name=name,
            python=_text(raw, "python"),
            revision=int(raw.get("revision", 0)),
            core_package=raw.get("core_package") or None,
            with_wheels=bool(raw.get("with_wheels")),
            with_resources=bool(raw.get("with_resources")),
            left_out=tuple(str(item) for item in raw.get("left_out", ())),
        )

    def path(self, file: str) -> str:
        return f"envs/{self.name}/{file}"


@dataclass(frozen=True)
class Manifest:
    envs: tuple[BundledEnv, ...]
    files: dict[str, str]  # path in the bundle → sha256
    created_by: str = ""
    created_at: str = ""
    source_node: str = ""  # the kind of node it was exported from
    format: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "format": self.format,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "source_node": self.source_node,
            "envs": [env.to_dict() for env in self.envs],
            "files": dict(sorted(self.files.items())),
        }
        return json.dumps(data, indent=2) + "\n"

    def env(self, name: str) -> BundledEnv:
        for env in self.envs:
            if env.name == name:
                return env
        raise InvalidInput(f"the bundle holds no code env named {name!r}", field="name")


def bundle_file_name(names: list[str] | tuple[str, ...]) -> str:
    """The file `codenv export` writes by default: NAME.codenv.tar for one env. What is no
    env name (`../x`) never becomes part of a path (the export refuses it anyway)."""
    single = len(names) == 1 and NAME_PATTERN.fullmatch(names[0])
    return f"{names[0] if single else 'codenv-envs'}.codenv.tar"


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"bundle manifest: {key!r} is missing or not a string", field="bundle")
    return value


def parse_manifest(data: bytes) -> Manifest:
    """The manifest, checked: a format this node reads, envs and a digest for each file."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"bundle manifest is not JSON: {error}", field="bundle") from error
    if not isinstance(raw, dict):
        raise InvalidInput("bundle manifest is not a JSON object", field="bundle")
    version = raw.get("format")
    if version not in SUPPORTED_FORMATS:
        supported = ", ".join(str(v) for v in SUPPORTED_FORMATS)
        raise InvalidInput(
            f"bundle format {version!r} is not supported here (this codenv reads format "
            f"{supported}): import it with a codenv at least as new as the one that made it",
            field="format",
        )
    files = raw.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(path, str) and isinstance(digest, str) and _SHA256.match(digest)
        for path, digest in files.items()
    ):
        raise InvalidInput("bundle manifest: 'files' must map paths to sha256", field="bundle")
    envs = raw.get("envs")
    if not isinstance(envs, list) or not envs or not all(isinstance(e, dict) for e in envs):
        raise InvalidInput("bundle manifest: 'envs' must list the code envs", field="bundle")
    return Manifest(
        envs=tuple(BundledEnv.from_dict(env) for env in envs),
        files=dict(files),
        created_by=str(raw.get("created_by", "")),
        created_at=str(raw.get("created_at", "")),
        source_node=str(raw.get("source_node", "")),
        format=int(version),
    )


def bundled_spec(data: bytes, name: str) -> EnvSpec:
    """An env's spec.json, or InvalidInput saying the bundle's spec is not one."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise TypeError("not an object")
        return EnvSpec.from_dict(raw)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise InvalidInput(
            f"bundle file {name} is not a code env spec: {error}", field="bundle"
        ) from error


def refuse_local_sources(spec: EnvSpec) -> None:
    """A bundle cannot carry what only exists on this node's disk: name the line."""
    for line in parse_requested(spec.requested):
        if line.kind in (LineKind.EDITABLE, LineKind.ARCHIVE):
            what = "an editable source" if line.kind is LineKind.EDITABLE else "a local archive"
            raise InvalidInput(
                f"requested line {line.lineno}: `{line.text}` is {what} on this node's disk, "
                "which a bundle does not carry: publish it to an index and require it by name",
                field="requested",
                line=line.lineno,
            )


@dataclass(frozen=True)
class PortableSpec:
    spec: EnvSpec
    left_out: tuple[str, ...]


def portable_spec(spec: EnvSpec) -> PortableSpec:
    """The spec as a bundle carries it: options that hold a credential left out (the node
    that imports it uses its own), credentials in its texts masked."""
    left_out: list[str] = []
    install, venv = spec.install_options, spec.venv_options
    if install is not None and any(mask_secrets(token) != token for token in install):
        install = None
        left_out.append("install_options: they hold a credential (the importing node's apply)")
    texts = {}
    for key in ("requested", "description", "resources_init_script"):
        value = getattr(spec, key)
        texts[key] = mask_secrets(value)
        if texts[key] != value:
            left_out.append(f"{key}: credentials in URLs masked")
    portable = EnvSpec.from_dict(
        {**spec.to_dict(), **texts, "install_options": _listed(install), "venv_options": venv}
    )
    return PortableSpec(portable, tuple(left_out))


def _listed(options: tuple[str, ...] | None) -> list[str] | None:
    return None if options is None else list(options)


def portable_lock(lock: str) -> tuple[str, str | None]:
    """The lock with no node-local path: the core package by name and version (its wheel is
    each node's own), credentials masked. Returns the lock and the core package's version."""
    entries: list[LockEntry] = []
    core: str | None = None
    for entry in parse_lock(lock):
        if entry.name == CORE_PACKAGE and entry.url is not None:
            core = _wheel_version(entry.url)
            entries.append(LockEntry(f"{CORE_PACKAGE}=={core}", entry.name, core, None))
            continue
        if entry.url is not None and entry.url.startswith("file:"):
            raise InvalidInput(
                f"the lock installs {entry.name} from a file on this node ({entry.url}): "
                "a bundle cannot carry it",
                field="requested",
            )
        shown = mask_secrets(entry.requirement)
        entries.append(LockEntry(shown, entry.name, entry.version, entry.url, entry.hashes))
    return render_lock(entries), core


def _wheel_version(url: str) -> str:
    # codenv_runtime-0.1.0-py3-none-any.whl
    return url.rsplit("/", 1)[-1].split("-")[1]


def local_lock(portable: str, core_line: str, core_digest: str) -> str:
    """A bundle's lock as this node installs it: the core package from this node's wheel."""
    entries = [
        LockEntry(core_line, entry.name, None, core_line.split(" @ ", 1)[1], (core_digest,))
        if entry.name == CORE_PACKAGE
        else entry
        for entry in parse_lock(portable)
    ]
    return render_lock(entries)


def check_member(path: str) -> None:
    """A path inside a bundle: relative, no `..`, nothing odd."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise InvalidInput(f"bundle member {path!r} is not a plain relative path", field="bundle")
