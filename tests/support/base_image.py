"""A small Debian bookworm base image for the image tests, made here and cached between runs.

mmdebstrap writes a root file system with just what a pyenv CPython needs to run (libssl,
libffi, sqlite, readline, expat, ncurses, uuid, libstdc++, zlib, bz2, lzma, CA certificates)
as a tar; codenv's own layer and OCI code turn it into a one-layer OCI image layout, tag
`base`. The layout is cached outside the clone, under
``${CODENV_TEST_CACHE:-~/.cache/codenv-tests}/base-image-<key>/``, where the key changes with
the package list, the suite and `LAYOUT_VERSION`; concurrent test processes (pytest -n 2)
build it once (a file lock; built in a temporary directory, then renamed into place).

Without mmdebstrap, root or the Debian mirror the tests skip, except under CI=true, where
that is a failure.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from codenv.images.layers import Descriptor, gzip_tar_layer
from codenv.images.oci import (
    EPOCH,
    OCI_CONFIG,
    canonical_json,
    image_manifest,
    write_oci_layout,
)

SUITE = "bookworm"
PACKAGES = (
    "ca-certificates",
    "libbz2-1.0",
    "libexpat1",
    "libffi8",
    "liblzma5",
    "libncursesw6",
    "libreadline8",
    "libsqlite3-0",
    "libssl3",
    "libstdc++6",
    "libuuid1",
    "zlib1g",
)
TAG = "base"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Bump when the way the layout is made changes: the cache key changes with it.
LAYOUT_VERSION = 1
SOURCE_DATE_EPOCH = "1700000000"
BUILD_TIMEOUT = 900


class BaseImageError(RuntimeError):
    """mmdebstrap could not make the base root file system."""


def mirror() -> str:
    return os.environ.get("CODENV_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def cache_root() -> Path:
    configured = os.environ.get("CODENV_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "codenv-tests"


def cache_key() -> str:
    recipe = {"suite": SUITE, "packages": PACKAGES, "layout": LAYOUT_VERSION}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def layout_path() -> Path:
    return cache_root() / f"base-image-{cache_key()}"


def base_image_available() -> str | None:
    """Why the base image cannot be had here (a skip reason), or None when it can."""
    if (layout_path() / "index.json").is_file():
        return None
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed (scripts/test-image-setup installs it as root)"
    if os.geteuid() != 0:
        return "making the base image with mmdebstrap needs root here"
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the image tests must run)", pytrace=False)
    pytest.skip(reason)


def require_base_image() -> Path:
    """The base layout; skips the calling test (fails it under CI=true) when it cannot be made."""
    reason = base_image_available()
    if reason is not None:
        _unavailable(reason)
    try:
        return base_image_layout()
    except BaseImageError as error:
        _unavailable(str(error))
        raise  # not reached: skip and fail raise


def base_image_layout() -> Path:
    """The cached layout directory (tag `base`), made first if needed (~30 s, ~45 MB)."""
    final = layout_path()
    if (final / "index.json").is_file():
        return final
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"base-image-{cache_key()}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "index.json").is_file():  # another process made it while we waited
            return final
        for stale in root.glob(f".build-{cache_key()}-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".build-{cache_key()}-", dir=root))
        try:
            layout = work / "layout"
            make_layout(_debootstrap(work / "rootfs.tar"), layout)
            shutil.rmtree(final, ignore_errors=True)
            os.rename(layout, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def _debootstrap(tar: Path) -> Path:
    argv = [
        "mmdebstrap",
        "--variant=essential",
        f"--include={','.join(PACKAGES)}",
        "--skip=output/dev",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--format=tar",
        SUITE,
        str(tar),
        mirror(),
    ]
    environ = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    started = time.monotonic()
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, env=environ, timeout=BUILD_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise BaseImageError(f"mmdebstrap took more than {BUILD_TIMEOUT} s") from None
    if result.returncode != 0:
        raise BaseImageError(f"mmdebstrap failed ({result.returncode}): {result.stderr[-2000:]}")
    print(f"base image: mmdebstrap took {time.monotonic() - started:.1f} s")
    return tar


def make_layout(tar: Path, layout: Path) -> None:
    """A root file system tar as a one-layer linux/amd64 OCI layout tagged `base`."""
    layer = gzip_tar_layer(tar, layout / "blobs", f"mmdebstrap {SUITE} {' '.join(PACKAGES)}")
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": EPOCH,
            "config": {"Env": [f"PATH={PATH}"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [{"created": EPOCH, "created_by": layer.created_by}],
        }
    )
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = image_manifest(Descriptor(OCI_CONFIG, digest, len(config)), [layer.descriptor])
    write_oci_layout(layout, manifest, config, [layer.path], TAG)
