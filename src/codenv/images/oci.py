"""OCI image JSON: descriptors, image configs, manifests, indexes and the local image layout.

Everything codenv writes is canonical JSON (sorted keys, no spaces), so identical inputs give
identical bytes and therefore identical digests. Everything it reads (a base image's index,
manifest and config) is size-capped, its digests verified and its blob paths confined to the
layout's `blobs/`; a broken base is an `InvalidInput` on the `base` field.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codenv.domain.errors import InvalidInput
from codenv.images.layers import Descriptor, write_blob

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYOUT_VERSION = "1.0.0"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
EPOCH = "1970-01-01T00:00:00Z"

# The same bytes under two names: a Docker v2 layer is an OCI layer of the same compression.
_OCI_LAYER_TYPES = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": (
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ),
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    ),
}
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_LAYER_BYTES = 32 * 1024**3
MAX_LAYERS = 127
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")
_FIELD = "base"


@dataclass(frozen=True)
class BaseImage:
    """The image an env's image is built on."""

    config: Mapping[str, Any]
    layers: tuple[Descriptor, ...]
    # digest -> blob file when the base is a local layout; {} when it lives in a registry.
    layer_paths: Mapping[str, Path]


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _refuse(message: str) -> InvalidInput:
    return InvalidInput(message, field=_FIELD)


def parse_descriptor(value: Any, what: str) -> Descriptor:
    """A descriptor JSON object, validated (media type, digest, size, annotations)."""
    if not isinstance(value, dict):
        raise _refuse(f"{what}: a descriptor must be an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not 0 < len(media_type) <= 255:
        raise _refuse(f"{what}: missing or invalid mediaType")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise _refuse(f"{what}: invalid digest {str(digest)[:80]!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_LAYER_BYTES:
        raise _refuse(f"{what}: invalid size {str(size)[:40]!r}")
    annotations = value.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in annotations.items()
    ):
        raise _refuse(f"{what}: annotations must map strings to strings")
    return Descriptor(media_type, digest, size, dict(annotations))


def _manifest_object(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(manifest, Mapping) or manifest.get("schemaVersion") != 2:
        raise _refuse("the base's manifest is not a schemaVersion 2 manifest")
    media_type = manifest.get("mediaType", OCI_MANIFEST)
    if media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise _refuse(f"the base's manifest has an unsupported mediaType {str(media_type)[:80]!r}")
    return manifest


def manifest_config(manifest: Mapping[str, Any]) -> Descriptor:
    """The config descriptor of a manifest JSON (OCI or Docker v2)."""
    return parse_descriptor(_manifest_object(manifest).get("config"), "manifest config")


def manifest_layers(manifest: Mapping[str, Any]) -> tuple[Descriptor, ...]:
    """The layer descriptors of a manifest JSON (OCI or Docker v2), validated."""
    layers = _manifest_object(manifest).get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
        raise _refuse(f"the base's manifest needs a list of at most {MAX_LAYERS} layers")
    manifest_config(manifest)
    return tuple(parse_descriptor(layer, f"layer {number}") for number, layer in enumerate(layers))


def _index_entries(index: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if not isinstance(index, Mapping) or index.get("schemaVersion") != 2:
        raise _refuse("the base's index is not a schemaVersion 2 index")
    media_type = index.get("mediaType", OCI_INDEX)
    entries = index.get("manifests")
    if media_type not in (OCI_INDEX, DOCKER_LIST) or not isinstance(entries, list):
        raise _refuse("the base's index is neither an OCI index nor a Docker manifest list")
    if len(entries) > 1024 or not all(isinstance(entry, dict) for entry in entries):
        raise _refuse("the base's index has malformed or too many manifests")
    return entries


def _platform(entry: Mapping[str, Any]) -> tuple[str, str]:
    platform = entry.get("platform")
    if not isinstance(platform, dict):
        return ("", "")
    return (str(platform.get("os", "")), str(platform.get("architecture", "")))


def pick_platform(
    index: Mapping[str, Any], os: str = "linux", architecture: str = "amd64"
) -> Descriptor:
    """The manifest for one platform in an index (OCI) or a manifest list (Docker)."""
    entries = _index_entries(index)
    for number, entry in enumerate(entries):
        if _platform(entry) == (os, architecture):
            return parse_descriptor(entry, f"index entry {number}")
    found = sorted({"/".join(_platform(entry)) for entry in entries if any(_platform(entry))})
    raise _refuse(
        f"the base image has no {os}/{architecture} manifest"
        + (f" (it has {', '.join(found)})" if found else "")
    )


def image_config(
    base_config: Mapping[str, Any],
    *,
    diff_ids: Sequence[str],
    env: Mapping[str, str],
    labels: Mapping[str, str],
    history: Sequence[str],
    created: str = EPOCH,
) -> bytes:
    """The base's image config with new layers, env vars, labels and history; canonical JSON.

    `diff_ids` and `history` (one `created_by` text per layer) describe the new layers, in
    order. `env` overrides the base's variables of the same name (the caller gives PATH in
    full); the others are appended in sorted order.
    """
    if len(diff_ids) != len(history):
        raise InvalidInput("one history entry is needed per new layer", field="history")
    for diff_id in diff_ids:
        if not _DIGEST.fullmatch(diff_id):
            raise InvalidInput(f"invalid diff_id {diff_id[:80]!r}", field="diff_ids")
    config = copy.deepcopy(dict(base_config))
    rootfs = config.get("rootfs") or {"type": "layers", "diff_ids": []}
    base_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(base_ids, list):
        raise _refuse("the base's config has no rootfs.diff_ids")
    config["rootfs"] = {"type": "layers", "diff_ids": [*base_ids, *diff_ids]}
    runtime = config.get("config") or {}
    if not isinstance(runtime, dict):
        raise _refuse("the base's config has a malformed 'config' object")
    runtime["Env"] = _merged_env(runtime.get("Env") or [], env)
    base_labels = runtime.get("Labels") or {}
    if not isinstance(base_labels, dict):
        raise _refuse("the base's config has malformed Labels")
    runtime["Labels"] = {**base_labels, **labels}
    config["config"] = runtime
    base_history = config.get("history") or []
    if not isinstance(base_history, list):
        raise _refuse("the base's config has a malformed history")
    new_history = [{"created": created, "created_by": text} for text in history]
    config["history"] = [*base_history, *new_history]
    config["created"] = created
    return canonical_json(config)


def _merged_env(base: Any, env: Mapping[str, str]) -> list[str]:
    if not isinstance(base, list) or not all(isinstance(item, str) for item in base):
        raise _refuse("the base's config has a malformed Env")
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise InvalidInput(f"invalid environment variable {key[:80]!r}", field="env")
    merged = [
        f"{item.partition('=')[0]}={env[item.partition('=')[0]]}"
        if item.partition("=")[0] in env
        else item
        for item in base
    ]
    present = {item.partition("=")[0] for item in base}
    merged += [f"{key}={env[key]}" for key in sorted(env) if key not in present]
    return merged


def image_manifest(
    config: Descriptor,
    layers: Sequence[Descriptor],
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """An OCI image manifest (schemaVersion 2), canonical JSON.

    Docker v2 layer media types (a base pulled from a Docker registry) are written as their
    OCI names: the blobs are the same bytes, and a manifest then mixes no two vocabularies.
    """
    if config.media_type not in (OCI_CONFIG, DOCKER_CONFIG):
        raise InvalidInput(f"not an image config: {config.media_type[:80]}", field="config")
    if len(layers) > MAX_LAYERS:
        raise InvalidInput(f"an image has at most {MAX_LAYERS} layers", field="layers")
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {**config.to_dict(), "mediaType": OCI_CONFIG},
        "layers": [
            {
                **layer.to_dict(),
                "mediaType": _OCI_LAYER_TYPES.get(layer.media_type, layer.media_type),
            }
            for layer in layers
        ],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return canonical_json(manifest)


def _read_blob(blobs: Path, descriptor: Descriptor, what: str, *, verify: bool = True) -> Path:
    """The blob file of `descriptor`, confined to `blobs/`, of the size the descriptor says."""
    algorithm, _, encoded = descriptor.digest.partition(":")
    path = blobs / algorithm / encoded
    try:
        resolved = path.resolve(strict=True)
        size = resolved.stat().st_size
    except OSError:
        raise _refuse(f"the base layout lacks the {what} blob {descriptor.digest}") from None
    if not resolved.is_relative_to(blobs.resolve()) or not resolved.is_file():
        raise _refuse(f"the {what} blob {descriptor.digest} is outside the layout's blobs")
    if size != descriptor.size:
        raise _refuse(
            f"the {what} blob {descriptor.digest} has {size} bytes, not {descriptor.size}"
        )
    return resolved


def _read_json_blob(blobs: Path, descriptor: Descriptor, what: str) -> Any:
    if descriptor.size > MAX_JSON_BYTES:
        raise _refuse(f"the base's {what} is larger than {MAX_JSON_BYTES} bytes")
    data = _read_blob(blobs, descriptor, what).read_bytes()[: MAX_JSON_BYTES + 1]
    algorithm, _, encoded = descriptor.digest.partition(":")
    if hashlib.new(algorithm, data).hexdigest() != encoded:
        raise _refuse(f"the base's {what} does not match its digest {descriptor.digest}")
    return _parse_json(data, what)


def _parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refuse(f"the base's {what} is not valid JSON") from None


def _read_index_json(path: Path) -> Mapping[str, Any]:
    layout_file, index_file = path / "oci-layout", path / "index.json"
    try:
        with layout_file.open("rb") as handle:
            marker = _parse_json(handle.read(4096), "oci-layout file")
        with index_file.open("rb") as handle:
            data = handle.read(MAX_JSON_BYTES + 1)
    except OSError:
        raise _refuse(f"{path} is not an OCI image layout (oci-layout, index.json)") from None
    if not isinstance(marker, dict) or "imageLayoutVersion" not in marker:
        raise _refuse(f"{path}/oci-layout has no imageLayoutVersion")
    if len(data) > MAX_JSON_BYTES:
        raise _refuse(f"{path}/index.json is larger than {MAX_JSON_BYTES} bytes")
    index = _parse_json(data, "index.json")
    _index_entries(index)
    return index  # type: ignore[no-any-return]


def _choose(index: Mapping[str, Any], tag: str | None) -> Descriptor:
    entries = _index_entries(index)
    tags = sorted(str((entry.get("annotations") or {}).get(REF_NAME, "")) for entry in entries)
    if tag is not None:
        chosen = [e for e in entries if (e.get("annotations") or {}).get(REF_NAME) == tag]
        if not chosen:
            named = ", ".join(t for t in tags if t) or "none"
            raise _refuse(f"the base layout has no image tagged {tag!r} (tags: {named})")
        return parse_descriptor(chosen[0], f"index entry {tag!r}")
    if len(entries) == 1:
        return parse_descriptor(entries[0], "index entry")
    if entries and all(any(_platform(entry)) for entry in entries):
        return pick_platform(index)
    raise _refuse(f"the base layout holds {len(entries)} images: name one with a tag")


def read_oci_layout(path: Path, tag: str | None = None) -> BaseImage:
    """A base image from a local OCI image layout (what `skopeo copy ... oci:DIR:TAG` writes).

    The manifest is the one tagged `tag` (annotation org.opencontainers.image.ref.name), or
    the only one; a nested index is followed to its linux/amd64 manifest.
    """
    blobs = path / "blobs"
    descriptor = _choose(_read_index_json(path), tag)
    for _depth in range(3):
        if descriptor.media_type not in (OCI_INDEX, DOCKER_LIST):
            break
        nested = _read_json_blob(blobs, descriptor, "index")
        descriptor = pick_platform(nested)
    if descriptor.media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise _refuse(f"the base layout's entry is not an image manifest: {descriptor.media_type}")
    manifest = _read_json_blob(blobs, descriptor, "manifest")
    layers = manifest_layers(manifest)
    config = _read_json_blob(blobs, manifest_config(manifest), "config")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise _refuse("the base's config does not list one rootfs diff_id per layer")
    paths = {layer.digest: _read_blob(blobs, layer, "layer") for layer in layers}
    return BaseImage(config=config, layers=layers, layer_paths=paths)


def write_oci_layout(
    path: Path, manifest: bytes, config: bytes, layer_blobs: Sequence[Path], tag: str
) -> None:
    """Write (or add `tag` to) an OCI image layout that podman and skopeo read (`oci:PATH:TAG`).

    `layer_blobs` are blob files named by their sha256 hex digest (what `write_layer` and
    `read_oci_layout` give); they are hard-linked in when possible, copied otherwise.
    """
    blobs = path / "blobs"
    by_hex = {blob.name: blob for blob in layer_blobs}
    config_descriptor = write_blob(config, blobs, OCI_CONFIG)
    if manifest_config(json.loads(manifest)).digest != config_descriptor.digest:
        raise InvalidInput("the manifest does not name this config", field="config")
    for layer in manifest_layers(json.loads(manifest)):
        target = blobs / "sha256" / layer.digest.partition(":")[2]
        source = by_hex.get(target.name)
        if source is None:
            raise InvalidInput(f"no blob file given for layer {layer.digest}", field="layers")
        if not target.exists():
            _link_or_copy(source, target)
    manifest_descriptor = write_blob(manifest, blobs, OCI_MANIFEST)
    entry = {**manifest_descriptor.to_dict(), "annotations": {REF_NAME: tag}}
    index_file = path / "index.json"
    kept = []
    if index_file.exists():
        kept = [
            item
            for item in _index_entries(_read_index_json(path))
            if (item.get("annotations") or {}).get(REF_NAME) != tag
        ]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [*kept, entry]}
    (path / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    temporary = path / ".index.json.tmp"
    temporary.write_bytes(canonical_json(index))
    os.replace(temporary, index_file)


def _link_or_copy(source: Path, target: Path) -> None:
    temporary = target.with_name(f".tmp-{target.name}")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    os.replace(temporary, target)
