"""What /api/v1 answers, typed: the OpenAPI schema's 2xx responses, and so generated clients.

Each type mirrors the JSON a service's view gives (`to_dict()`), key for key and in the same
order (pydantic writes a TypedDict's keys in declaration order). They are strict and closed:
a view that gains a key, or a value of another type, makes the route fail loudly (a 500 in the
tests) instead of the key being dropped or the value converted on the way out;
tests/test_openapi_client.py checks each mirror against its dataclass.

A key marked NotRequired may be absent: specs stored by an older codenv lack the fields added
since, and a package is `editable` only in revisions that recorded it.
"""

from __future__ import annotations

from typing import Any, NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

# Closed and strict: see the module's docstring.
closed = with_config(ConfigDict(extra="forbid", strict=True))


@closed
class Build(TypedDict):
    id: str
    env: str
    status: str
    step: str
    upgrade_all: bool
    rebuild: bool
    requested_by: str
    revision: int | None
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    kind: str
    worker: str | None
    host: str | None


@closed
class Spec(TypedDict):
    """A code env's spec as shown (credentials in URLs masked)."""

    python: str
    install_core_packages: bool
    install_jupyter_support: bool
    package_sets: list[str]
    requested: str
    description: str
    resources_init_script: NotRequired[str]
    run_init_script_on_update: NotRequired[bool]
    run_init_script_on_api_node: NotRequired[bool]
    install_options: NotRequired[list[str] | None]
    venv_options: NotRequired[list[str] | None]
    install_seed_packages: NotRequired[bool | None]


@closed
class Capabilities(TypedDict):
    may_use: bool
    may_update: bool
    may_manage_users: bool
    may_delete: bool


@closed
class Package(TypedDict):
    name: str
    version: str
    editable: NotRequired[str | None]


@closed
class PackageChange(TypedDict):
    name: str
    before: str
    after: str


@closed
class Drift(TypedDict):
    added: list[Package]
    removed: list[Package]
    changed: list[PackageChange]


@closed
class OptionsSource(TypedDict):
    install: str
    venv: str
    node_wins: bool
    described: str


@closed
class Env(TypedDict):
    name: str
    owner: str
    status: str
    spec: Spec
    base_packages: list[str]
    python: str
    interpreter: str | None
    active_revision: int | None
    spec_differs: bool
    size_bytes: int
    path: str
    created_at: str | None
    last_build: Build | None
    capabilities: Capabilities
    drift: Drift | None
    options_source: OptionsSource | None


@closed
class EnvSummary(TypedDict):
    """A row of a page of envs: an Env without its spec and what only `show` tells."""

    name: str
    owner: str
    status: str
    python: str
    interpreter: str | None
    active_revision: int | None
    spec_differs: bool
    size_bytes: int
    created_at: str | None
    last_build: Build | None
    capabilities: Capabilities


@closed
class Created(TypedDict):
    env: str
    build_id: str


@closed
class Deleted(TypedDict):
    env: str
    kept_resources: str | None


@closed
class UpdateResult(TypedDict):
    env: str
    build_id: str | None
    up_to_date: bool
    message: str


@closed
class SpecSaved(TypedDict):
    spec: Spec
    update: UpdateResult | None


@closed
class PackagesDiff(TypedDict):
    previous: int
    added: list[Package]
    removed: list[Package]
    changed: list[PackageChange]


@closed
class Installed(TypedDict):
    env: str
    revision: int
    packages: list[Package]
    diff: PackagesDiff | None
    warnings: list[str]
    drift: Drift | None


@closed
class Origin(TypedDict):
    """Where an imported revision came from: the bundle and the env it was exported from."""

    bundle: str
    bundle_sha256: str
    source_env: str
    source_revision: int
    source_node: str
    exported_at: str
    imported_at: str
    with_wheels: bool
    offline: bool


@closed
class Revision(TypedDict):
    number: int
    active: bool
    pruned: bool
    build_id: str
    python: str
    plan_hash: str
    packages: int
    size_bytes: int
    created_at: str | None
    origin: Origin | None


@closed
class Grant(TypedDict):
    group: str
    level: str


@closed
class Permissions(TypedDict):
    env: str
    owner: str
    usable_by_all: bool
    grants: list[Grant]
    caller_level: str


@closed
class InitScript(TypedDict):
    env: str
    script: str
    run_on_update: bool
    run_on_api_node: bool


@closed
class InitStarted(TypedDict):
    env: str
    build_id: str


@closed
class FileEntry(TypedDict):
    path: str
    kind: str
    size: int
    modified: float


@with_config(ConfigDict(extra="allow", strict=True))
class Kernel(TypedDict):
    """A Jupyter kernelspec (kernel.json, with its directory's name and path): open, as the
    kernelspec format is."""

    name: str
    path: str
    argv: NotRequired[list[str]]
    display_name: NotRequired[str]
    language: NotRequired[str]
    env: NotRequired[dict[str, str]]
    metadata: NotRequired[dict[str, Any]]


@closed
class ImportedEnv(TypedDict):
    env: str
    action: str
    message: str
    build_id: str | None
    version: int | None
    created: bool


@closed
class ImportReport(TypedDict):
    bundle: str
    envs: list[ImportedEnv]


@closed
class ContainerConfig(TypedDict):
    name: str
    base: str
    registry: str
    insecure: bool
    env: dict[str, str]
    env_path: str
    resources_path: str
    username: str
    password_set: bool
    created_by: str
    created_at: str


@closed
class Image(TypedDict):
    config: str
    revision: int
    status: str
    repository: str
    tag: str
    digest: str | None
    reference: str | None
    size_bytes: int
    pushed_bytes: int
    build_id: str | None
    error: str | None
    updated_at: str | None


@closed
class EnvImages(TypedDict):
    env: str
    repository_name: str
    containers: str
    resources: str
    selected: list[str]
    missing_configs: list[str]
    active_revision: int | None
    images: list[Image]


@closed
class ImageBuilds(TypedDict):
    build_ids: list[str]


# Pages of a list (`limit` or `cursor` given): `next_cursor` gets the next one (null: this one
# is the last).
@closed
class EnvPage(TypedDict):
    items: list[EnvSummary]
    next_cursor: str | None


@closed
class BuildPage(TypedDict):
    items: list[Build]
    next_cursor: str | None


@closed
class RevisionPage(TypedDict):
    items: list[Revision]
    next_cursor: str | None
