"""Containerized execution, the pure rules: container configs (base image, registry, the
env's path in the image), which configs an env is built for, and how an env's name becomes
an image repository name.

A config names a base image, either in a registry (`host[:port]/repo[:tag][@digest]`) or a
local OCI image layout (`oci:/path[:tag]`, skopeo's syntax), and where images go
(`HOST[:PORT]/REPO`): the image of env E, revision N is `HOST[:PORT]/REPO/<repository name of
E>:r<N>`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath

from codenv.domain.errors import InvalidInput

MAX_REF_CHARS = 512
MAX_ENV_VARS = 64
MAX_ENV_VALUE_CHARS = 4096
MAX_CREDENTIAL_CHARS = 4096
DEFAULT_ENV_PATH = "/opt/codenv/env"
RESOURCES_PATH_NAME = "resources"  # the resources dir lands beside the env: <env_path>-resources
CONFIG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# The distribution spec's path component, and a host with an optional port.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*)(?::[0-9]{1,5})?"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_PATH = re.compile(r"(/[A-Za-z0-9._-]+)+")
# Where an env may not go: the image's own system, and what a container runtime mounts.
_SYSTEM_DIRS: tuple[str, ...] = ("bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "proc")
_SYSTEM_DIRS += (
    "run",
    "sbin",
    "sys",
    "tmp",
    "usr/bin",
    "usr/lib",
    "usr/sbin",
    "usr/include",
    "var",
)
DOCKER_HUB = "docker.io"
OCI_LAYOUT = "oci:"


class ContainerResources(StrEnum):
    """What an image gets of the env's resources directory."""

    INIT = "init"  # the init script runs while the image is built: its files and env vars
    COPY = "copy"  # this node's resources directory and env vars, copied in
    NONE = "none"


@dataclass(frozen=True)
class ImageRef:
    """A base image: in a registry (`registry`, `repository`, `tag` or `digest`), or a local
    OCI layout (`layout`, `tag`)."""

    registry: str = ""
    repository: str = ""
    tag: str = ""
    digest: str = ""
    layout: str = ""

    @property
    def reference(self) -> str:
        """What the registry is asked for: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"


@dataclass(frozen=True)
class ContainerConfig:
    name: str
    base: str
    registry: str  # host[:port]
    repository: str  # the repository prefix under which each env gets its own ("" allowed)
    insecure: bool = False  # plain HTTP (a registry on loopback)
    env: tuple[tuple[str, str], ...] = ()
    env_path: str = DEFAULT_ENV_PATH
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def resources_path(self) -> str:
        return f"{self.env_path}-{RESOURCES_PATH_NAME}"

    def image_repository(self, env_name: str) -> str:
        name = repository_name(env_name)
        return f"{self.repository}/{name}" if self.repository else name


def validate_config_name(name: str, *, field: str = "name") -> str:
    if not CONFIG_NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid container config name {name[:80]!r}: 1 to 64 letters, digits, '-' or "
            "'_', starting with a letter or digit",
            field=field,
        )
    return name


def parse_registry(text: str) -> tuple[str, str]:
    """`HOST[:PORT]/REPO` → (host, repository prefix); REPO may be empty or nested."""
    value = text.strip().removeprefix("https://").removeprefix("http://").rstrip("/")
    host, _, repository = value.partition("/")
    if len(value) > MAX_REF_CHARS or not _HOST.fullmatch(host):
        raise InvalidInput(
            f"registry {text[:80]!r}: give HOST[:PORT]/REPO (for example 127.0.0.1:5000/codenv)",
            field="registry",
        )
    if repository and not REPOSITORY.fullmatch(repository):
        raise InvalidInput(
            f"registry repository {repository[:80]!r}: lowercase letters, digits and '.', '_', "
            "'-' between them, components separated by '/'",
            field="registry",
        )
    return host, repository


def parse_image_ref(text: str) -> ImageRef:
    """A base image: `oci:/abs/path[:tag]`, or `[host[:port]/]repository[:tag][@sha256:…]`
    (no host: Docker Hub, `library/` for a one-component name)."""
    if len(text) > MAX_REF_CHARS or not text.strip():
        raise InvalidInput("base image: give a registry reference or oci:/path", field="base")
    if text.startswith(OCI_LAYOUT):
        return _layout_ref(text.removeprefix(OCI_LAYOUT))
    name, _, digest = text.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise InvalidInput(f"base image digest {digest[:80]!r}: sha256:<64 hex>", field="base")
    head, _, last = name.rpartition("/")
    tag = ""
    if ":" in last:
        last, tag = last.split(":", 1)
    path = f"{head}/{last}" if head else last
    first, _, rest = path.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, path if "/" in path else f"library/{path}"
    if not _HOST.fullmatch(registry) or not REPOSITORY.fullmatch(repository):
        raise InvalidInput(f"base image {text[:80]!r} is no image reference", field="base")
    if tag and not _TAG.fullmatch(tag):
        raise InvalidInput(f"base image tag {tag[:80]!r} is no valid tag", field="base")
    return ImageRef(registry=registry, repository=repository, tag=tag, digest=digest)


def _layout_ref(rest: str) -> ImageRef:
    path, _, tag = rest.partition(":")
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts or "\0" in path:
        raise InvalidInput("a local base image is oci:/absolute/path[:tag]", field="base")
    if tag and not _TAG.fullmatch(tag):
        raise InvalidInput(f"base image tag {tag[:80]!r} is no valid tag", field="base")
    return ImageRef(layout=str(pure), tag=tag)


def parse_env_pairs(pairs: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """`K=V` pairs; keys unique, sizes bounded."""
    if len(pairs) > MAX_ENV_VARS:
        raise InvalidInput(f"at most {MAX_ENV_VARS} environment variables", field="env")
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _ENV_KEY.fullmatch(key):
            raise InvalidInput(f"environment variable {pair[:80]!r}: give KEY=VALUE", field="env")
        if len(value) > MAX_ENV_VALUE_CHARS or "\0" in value:
            raise InvalidInput(f"environment variable {key}: value too long", field="env")
        if key in found:
            raise InvalidInput(f"environment variable {key} is given twice", field="env")
        found[key] = value
    return tuple(found.items())


def validate_env_path(path: str) -> str:
    """Where the env lives in the image: absolute, plain, out of the image's system dirs."""
    pure = PurePosixPath(path)
    relative = str(pure.relative_to("/")) if pure.is_absolute() else ""
    if len(path) > 200 or not _PATH.fullmatch(path) or ".." in pure.parts or len(pure.parts) < 3:
        raise InvalidInput(
            f"env path {path[:80]!r}: an absolute path at least two levels deep, such as "
            f"{DEFAULT_ENV_PATH}",
            field="env_path",
        )
    if any(relative == d or relative.startswith(f"{d}/") for d in _SYSTEM_DIRS):
        raise InvalidInput(f"env path {path!r} is inside the image's system", field="env_path")
    return str(pure)


def validate_credentials(username: str, password: str) -> None:
    if len(username) > 256 or len(password) > MAX_CREDENTIAL_CHARS:
        raise InvalidInput("registry credentials are too long", field="username")
    if password and not username:
        raise InvalidInput("a registry password needs a user name", field="username")
    if any(c in username for c in ":\n\r\0"):
        raise InvalidInput("a registry user name has no ':' nor line breaks", field="username")


def parse_resources(text: str) -> ContainerResources:
    try:
        return ContainerResources(text)
    except ValueError:
        raise InvalidInput(
            f"container resources {text[:40]!r}: init, copy or none", field="container_resources"
        ) from None


def repository_name(env_name: str) -> str:
    """The image repository name of an env: the name itself when it is already a valid
    lowercase repository component (`my-env`, `my_env`); else (capitals, a leading or
    trailing `_`, `___`) its lowercase slug, '.' and 8 hex digits of the name's SHA-256. Env
    names hold no '.', so the two forms never meet."""
    if REPOSITORY.fullmatch(env_name) and "/" not in env_name:
        return env_name
    slug = re.sub(r"[^a-z0-9]+", "-", env_name.lower()).strip("-") or "env"
    digest = hashlib.sha256(env_name.encode("utf-8")).hexdigest()[:8]
    return f"{slug}.{digest}"


def image_tag(revision: int) -> str:
    return f"r{revision}"


@dataclass(frozen=True)
class ContainerSelection:
    """The seed system's "Containerized execution": no config, all configs, or selected ones.

    "all" means the configs that exist when an image build is requested: a config added
    later is built for an "all" env when that env is updated or asked to build its images."""

    mode: str = "none"  # none | all | selected
    configs: tuple[str, ...] = ()
    resources: ContainerResources = ContainerResources.NONE

    @classmethod
    def parse(cls, text: str, resources: str | None = None) -> ContainerSelection:
        """The CLI's `none`, `all` or `C1,C2`."""
        value = text.strip()
        shown = parse_resources(resources or ContainerResources.NONE.value)
        if value in ("none", "all"):
            return cls(value, (), shown)
        names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
        if not names:
            raise InvalidInput("containers: none, all, or config names", field="containers")
        for name in names:
            validate_config_name(name, field="containers")
        return cls("selected", names, shown)

    @classmethod
    def from_dict(cls, data: dict[str, object] | None) -> ContainerSelection:
        if not data:
            return cls()
        configs = data.get("configs") or []
        return cls(
            str(data.get("mode", "none")),
            tuple(str(name) for name in configs) if isinstance(configs, list) else (),
            ContainerResources(str(data.get("resources", "none"))),
        )

    def to_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "configs": list(self.configs), "resources": self.resources}

    def chosen(self, existing: list[str]) -> list[str]:
        """The configs the env is built for among those that exist now."""
        if self.mode == "all":
            return list(existing)
        return [name for name in self.configs if name in existing]

    def missing(self, existing: list[str]) -> list[str]:
        """Selected configs that no longer exist (flagged on the env)."""
        return [name for name in self.configs if name not in existing]

    def describe(self) -> str:
        if self.mode == "selected":
            return ", ".join(self.configs)
        return self.mode
