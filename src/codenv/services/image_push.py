"""The registry side of images: the base image (a local OCI layout or a registry's), pushing
an image's blobs and manifest (blobs the registry has are not sent; layers another env
pushed are mounted across repositories), and deleting images by digest."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from codenv.domain.containers import DOCKER_HUB, ContainerConfig, ImageRef, parse_image_ref
from codenv.domain.errors import NotFound, RegistryError
from codenv.images.layers import Descriptor, Layer, blob_path
from codenv.images.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    BaseImage,
    manifest_config,
    manifest_layers,
    pick_platform,
    read_oci_layout,
)
from codenv.images.registry import RegistryClient, RegistryEndpoint
from codenv.services.app import Codenv
from codenv.services.containers import container_config
from codenv.storage.models import ImageRow

Log = Callable[[str], None]
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST)
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_LAYER_BYTES = 16 * 1024**3
REGISTRY_TIMEOUT = 120.0
DELETE_TIMEOUT = 15.0
DOCKER_HUB_API = "registry-1.docker.io"


def endpoint(config: ContainerConfig) -> RegistryEndpoint:
    return RegistryEndpoint(config.registry, config.insecure, config.username, config.password)


@dataclass(frozen=True)
class Base:
    """The base image, and where its layers come from when the target registry lacks them."""

    image: BaseImage
    ref: ImageRef


def load_base(config: ContainerConfig, log: Log) -> Base:
    ref = parse_image_ref(config.base)
    if ref.layout:
        log(f"base image: the local OCI layout {ref.layout}{':' + ref.tag if ref.tag else ''}")
        return Base(read_oci_layout(Path(ref.layout), ref.tag or None), ref)
    log(f"base image: {ref.registry}/{ref.repository}:{ref.reference}")
    with RegistryClient(_base_endpoint(config, ref), log=log, timeout=REGISTRY_TIMEOUT) as client:
        manifest = _manifest_json(client, ref.repository, ref.reference)
        if "manifests" in manifest:
            chosen = pick_platform(manifest)
            manifest = _manifest_json(client, ref.repository, chosen.digest)
        config_descriptor = manifest_config(manifest)
        raw = client.read_blob(ref.repository, config_descriptor.digest, max_bytes=MAX_CONFIG_BYTES)
    image = BaseImage(config=json.loads(raw), layers=manifest_layers(manifest), layer_paths={})
    return Base(image, ref)


def _base_endpoint(config: ContainerConfig, ref: ImageRef) -> RegistryEndpoint:
    """The base's registry: the config's own credentials when it is the same registry."""
    if ref.registry == config.registry:
        return endpoint(config)
    if ref.registry == DOCKER_HUB:
        # Docker Hub's API is served by this host, not by the name references use.
        return RegistryEndpoint(DOCKER_HUB_API)
    return RegistryEndpoint(ref.registry, config.insecure and ref.registry.startswith("127."))


def _manifest_json(client: RegistryClient, repository: str, reference: str) -> dict[str, Any]:
    fetched = client.get_manifest(repository, reference, MANIFESTS)
    loaded: dict[str, Any] = json.loads(fetched.body)
    return loaded


def mount_sources(app: Codenv, config: ContainerConfig, repository: str) -> dict[str, list[str]]:
    """For each layer digest codenv pushed to this registry, the repositories holding it."""
    with app.db.session() as session:
        rows = session.execute(
            select(ImageRow.repository, ImageRow.layer_digests).where(
                ImageRow.registry_host == config.registry,
                ImageRow.digest.is_not(None),
                ImageRow.deleting.is_(False),
            )
        ).all()
    sources: dict[str, list[str]] = {}
    for held_in, digests in rows:
        if held_in == repository:
            continue
        for digest in digests:
            listed = sources.setdefault(digest, [])
            if held_in not in listed and len(listed) < 3:
                listed.append(held_in)
    return sources


@dataclass(frozen=True)
class Pushed:
    digest: str
    sent_bytes: int


def push_image(
    client: RegistryClient,
    repository: str,
    tag: str,
    blobs: Sequence[tuple[Descriptor, Callable[[], Any]]],
    manifest: bytes,
    mounts: dict[str, list[str]],
) -> Pushed:
    """Push every blob (present: skipped; mountable: mounted), then the manifest by tag."""
    sent = 0
    for descriptor, opener in blobs:
        how = client.push_blob(
            repository,
            descriptor.digest,
            descriptor.size,
            opener,
            mount_from=mounts.get(descriptor.digest, ()),
        )
        if how == "uploaded":
            sent += descriptor.size
    digest = client.put_manifest(repository, tag, manifest, OCI_MANIFEST)
    return Pushed(digest, sent)


def base_blob_sources(
    base: Base, config: ContainerConfig, work: Path, log: Log
) -> list[tuple[Descriptor, Callable[[], Any]]]:
    """The base's layers, each with a way to read it: from the local layout, or fetched from
    the base's registry into `work` (only when the target registry lacks it)."""
    if base.ref.layout:
        return [(d, layer_opener(base.image.layer_paths[d.digest])) for d in base.image.layers]
    fetched = work / "base-blobs"
    sources = []
    for descriptor in base.image.layers:
        sources.append((descriptor, _fetcher(base, config, descriptor, fetched, log)))
    return sources


def layer_opener(path: Path) -> Callable[[], Any]:
    return lambda: path.open("rb")


def _fetcher(
    base: Base, config: ContainerConfig, descriptor: Descriptor, blobs: Path, log: Log
) -> Callable[[], Any]:
    def fetch() -> Any:
        path = blob_path(blobs, descriptor.digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with RegistryClient(_base_endpoint(config, base.ref), log=log) as client:
                client.fetch_blob(
                    base.ref.repository, descriptor.digest, path, max_bytes=MAX_LAYER_BYTES
                )
        return path.open("rb")

    return fetch


def layer_sources(layers: Sequence[Layer]) -> list[tuple[Descriptor, Callable[[], Any]]]:
    return [(layer.descriptor, layer_opener(layer.path)) for layer in layers]


def delete_pushed(
    app: Codenv, config_name: str, registry: str, repository: str, digest: str
) -> None:
    """Delete one pushed image by digest (every tag on it goes). An image whose config was
    removed, or moved to another registry, cannot be reached: RegistryError says so."""
    try:
        config = container_config(app, config_name)
    except NotFound:
        raise RegistryError(
            f"container config {config_name!r} was removed: delete {registry}/{repository}"
            f"@{digest} in the registry itself",
            field="config",
        ) from None
    if config.registry != registry:
        raise RegistryError(
            f"container config {config_name!r} now pushes to {config.registry}: delete "
            f"{registry}/{repository}@{digest} in the registry itself",
            field="config",
        )
    with RegistryClient(endpoint(config), timeout=DELETE_TIMEOUT, retries=1) as client:
        client.delete_manifest(repository, digest)
