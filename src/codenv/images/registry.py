"""A client of the OCI distribution API (a registry's /v2/): blobs pushed in chunks or mounted
from another repository, manifests put, fetched and deleted, tags listed.

Every failure is a `RegistryError` in words a user can act on, secrets masked. Authentication,
retries and the wording of failures are in `registry_auth`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import httpx

from codenv.domain.errors import RegistryError
from codenv.images.registry_auth import (
    RegistryHttp,
    Transient,
    raise_transient,
    read_capped,
    registry_error,
    registry_words,
)

MANIFEST_MAX_BYTES = 4 * 1024 * 1024  # what distribution accepts in a PUT
_TAG_PAGES_MAX = 1000
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")


@dataclass(frozen=True)
class RegistryEndpoint:
    host: str  # "127.0.0.1:5000", "registry.example.com" (host[:port], no scheme)
    insecure: bool = False  # True: plain http (loopback registries, tests); False: https
    username: str = ""
    password: str = field(default="", repr=False)  # never in repr, logs or error messages

    def __post_init__(self) -> None:
        if not _HOST.fullmatch(self.host):
            raise registry_error(
                f"{self.host[:200]!r} is not a registry host: give host[:port], no scheme or path"
            )


@dataclass(frozen=True)
class FetchedManifest:
    media_type: str
    body: bytes
    digest: str  # "sha256:<hex>" of body


def validate_repository(repository: str) -> str:
    """The name, or RegistryError(field="repository") when a registry would refuse it
    (distribution 2.8 answers 500 to uppercase)."""
    if len(repository) > 255 or not _REPOSITORY.fullmatch(repository):
        raise registry_error(
            f"{repository[:300]!r} is not a registry repository name: lowercase letters and"
            " digits, '.', '_' or '-' between them, '/' between components, at most 255",
            field="repository",
        )
    return repository


def _check_digest(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise registry_error(f"{digest[:200]!r} is not a sha256 or sha512 digest", field="digest")
    return digest


def _digest_of(like: str, body: bytes = b"") -> hashlib._Hash:
    """A hasher of the algorithm of the digest `like`, fed body."""
    return hashlib.new(like.partition(":")[0], body)


def _name(hasher: hashlib._Hash) -> str:
    return f"{hasher.name}:{hasher.hexdigest()}"


def _human(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    return f"{size / 1000:.1f} kB" if size >= 1000 else f"{size} B"


def _short(digest: str) -> str:
    return digest[:19] + "…"


class RegistryClient:
    """One registry, one connection pool; use as a context manager (or call close)."""

    def __init__(
        self,
        endpoint: RegistryEndpoint,
        *,
        log: Callable[[str], None] | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        chunk_bytes: int = 16 * 1024 * 1024,
        transport: httpx.BaseTransport | None = None,  # tests: httpx.MockTransport
    ) -> None:
        self.endpoint = endpoint
        self._log = log or (lambda _line: None)
        self._chunk_bytes = max(chunk_bytes, 1)
        self._http = RegistryHttp(
            endpoint, log=self._log, timeout=timeout, retries=retries, transport=transport
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def check(self) -> None:
        """The registry answers /v2/ and accepts the credentials; RegistryError otherwise."""
        with closing(self._http.send("GET", "/v2/", scopes=())) as response:
            if response.status_code == 404:
                raise registry_error(f"{self.endpoint.host} is not a registry (no /v2/ API)")
            if response.status_code != 200:
                raise self._http.failed(response, "answering /v2/")

    def blob_exists(self, repository: str, digest: str) -> bool:
        return self._blob_exists(validate_repository(repository), _check_digest(digest), "pull")

    def push_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        open_blob: Callable[[], BinaryIO],
        mount_from: Sequence[str] = (),
    ) -> str:
        """Put one blob in repository: "present" (it was there), "mounted" (from one of
        mount_from, not sent again) or "uploaded" (in chunks; open_blob is called per attempt)."""
        validate_repository(repository)
        _check_digest(digest)
        sources = [validate_repository(source) for source in mount_from if source != repository]
        if self._blob_exists(repository, digest, "pull,push"):
            self._log(f"{_short(digest)} already in {repository}")
            return "present"
        session = None
        for position, source in enumerate(sources):
            session = self._mount(repository, digest, source, keep=position == len(sources) - 1)
            if session == "mounted":
                self._log(f"mounted {_short(digest)} {_human(size)} from {source}")
                return "mounted"
        sessions = [session]  # the one a mount opened serves the first attempt only

        def attempt() -> None:
            self._upload(repository, digest, size, open_blob, sessions.pop() if sessions else None)

        self._http.restarting(attempt)
        self._log(f"pushed {_short(digest)} {_human(size)} to {repository}")
        return "uploaded"

    def fetch_blob(self, repository: str, digest: str, dest: Path, *, max_bytes: int) -> None:
        """Stream the blob to dest (through dest + ".part"), verified, at most max_bytes."""
        validate_repository(repository)
        _check_digest(digest)
        partial = dest.with_name(dest.name + ".part")
        try:
            self._http.restarting(lambda: self._download(repository, digest, partial, max_bytes))
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)

    def read_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        """A small blob (an image config) in memory, verified, at most max_bytes."""
        validate_repository(repository)
        _check_digest(digest)
        url = f"/v2/{repository}/blobs/{digest}"
        scopes = (f"repository:{repository}:pull",)
        with closing(self._http.send("GET", url, scopes=scopes, follow=True)) as response:
            if response.status_code != 200:
                raise self._blob_failed(response, repository, digest)
            body = read_capped(response, max_bytes)
        if body is None:
            raise self._too_large(repository, digest, max_bytes)
        self._verify(digest, _name(_digest_of(digest, body)), f"blob {digest} of {repository}")
        return body

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """Store a manifest under a tag (or its digest); returns its digest."""
        validate_repository(repository)
        _check_reference(reference)
        if len(body) > MANIFEST_MAX_BYTES:
            raise registry_error(f"the manifest is larger than {_human(MANIFEST_MAX_BYTES)}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        url = f"/v2/{repository}/manifests/{reference}"
        scopes = (f"repository:{repository}:pull,push",)
        headers = {"Content-Type": media_type}
        response = self._http.send("PUT", url, scopes=scopes, content=body, headers=headers)
        with closing(response):
            if response.status_code not in (200, 201, 202):
                raise self._http.failed(response, f"storing the image {repository}:{reference}")
            answered = response.headers.get("Docker-Content-Digest", "")
        if answered.startswith("sha256:"):
            self._verify(answered, digest, f"manifest stored as {repository}:{reference}")
        return digest

    def get_manifest(
        self,
        repository: str,
        reference: str,
        accept: Sequence[str],
        *,
        max_bytes: int = MANIFEST_MAX_BYTES,
    ) -> FetchedManifest:
        """A manifest or an index, by tag or digest, of one of the accepted media types."""
        validate_repository(repository)
        name = repository + ("@" if ":" in _check_reference(reference) else ":") + reference
        url = f"/v2/{repository}/manifests/{reference}"
        scopes = (f"repository:{repository}:pull",)
        headers = {"Accept": ", ".join(accept)}
        with closing(self._http.send("GET", url, scopes=scopes, headers=headers)) as response:
            if response.status_code == 404:
                # The registry's words say when the image exists in a type not accepted.
                words = registry_words(response)
                raise registry_error(f"no image {name} in registry {self.endpoint.host} ({words})")
            if response.status_code != 200:
                raise self._http.failed(response, f"reading the image {name}")
            body = read_capped(response, max_bytes)
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            answered = response.headers.get("Docker-Content-Digest", "")
        if body is None:
            raise registry_error(f"the manifest of {name} is larger than {_human(max_bytes)}")
        for claimed in (answered, reference):
            if _DIGEST.fullmatch(claimed):
                self._verify(claimed, _name(_digest_of(claimed, body)), f"manifest of {name}")
        media_type = _media_type(content_type, body)
        if media_type not in accept:
            raise registry_error(
                f"the image {name} is a {media_type or 'manifest of unknown type'},"
                f" not one of {', '.join(accept)}"
            )
        return FetchedManifest(media_type, body, "sha256:" + hashlib.sha256(body).hexdigest())

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete a manifest (and its tags) by digest; False when it was already gone."""
        validate_repository(repository)
        url = f"/v2/{repository}/manifests/{_check_digest(digest)}"
        scopes = (f"repository:{repository}:delete",)
        with closing(self._http.send("DELETE", url, scopes=scopes)) as response:
            if response.status_code == 404:
                return False
            if response.status_code == 405:
                raise registry_error(f"the registry {self.endpoint.host} does not allow deletes")
            if response.status_code not in (200, 202, 204):
                raise self._http.failed(response, f"deleting {repository}@{digest}")
            return True

    def tags(self, repository: str) -> list[str]:
        """The repository's tags; [] for a repository the registry does not know."""
        validate_repository(repository)
        scopes = (f"repository:{repository}:pull",)
        url: str | None = f"/v2/{repository}/tags/list"
        found: list[str] = []
        for _page in range(_TAG_PAGES_MAX):
            if url is None:
                break
            with closing(self._http.send("GET", url, scopes=scopes)) as response:
                if response.status_code == 404:
                    return []
                if response.status_code != 200:
                    raise self._http.failed(response, f"listing the tags of {repository}")
                found += _tags_of(read_capped(response, MANIFEST_MAX_BYTES), repository)
                url = response.links.get("next", {}).get("url")
        return found

    def _blob_exists(self, repository: str, digest: str, actions: str) -> bool:
        url = f"/v2/{repository}/blobs/{digest}"
        scopes = (f"repository:{repository}:{actions}",)
        with closing(self._http.send("HEAD", url, scopes=scopes, follow=True)) as response:
            if response.status_code not in (200, 404):
                raise self._http.failed(response, f"looking for {_short(digest)} in {repository}")
            return response.status_code == 200

    def _mount(self, repository: str, digest: str, source: str, *, keep: bool) -> str | None:
        """ "mounted", or the upload session the registry opened instead (when keep)."""
        url = httpx.URL(f"/v2/{repository}/blobs/uploads/")
        url = url.copy_merge_params({"mount": digest, "from": source})
        scopes = (f"repository:{repository}:pull,push", f"repository:{source}:pull")
        with closing(self._http.send("POST", str(url), scopes=scopes)) as response:
            if response.status_code == 201:
                return "mounted"
            if response.status_code != 202:
                raise self._http.failed(response, f"mounting {_short(digest)} from {source}")
            location = self._http.location(response)
        if keep:
            return location
        self._cancel(location, repository)
        return None

    def _upload(
        self,
        repository: str,
        digest: str,
        size: int,
        open_blob: Callable[[], BinaryIO],
        location: str | None,
    ) -> None:
        """One attempt: an upload session, PATCH per chunk, PUT ?digest= to finish."""
        scopes = (f"repository:{repository}:pull,push",)
        location = location or self._start_upload(repository, scopes)
        hasher, offset = _digest_of(digest), 0
        with open_blob() as blob:
            while chunk := blob.read(self._chunk_bytes):
                hasher.update(chunk)
                location = self._patch(location, chunk, offset, scopes)
                offset += len(chunk)
        if offset != size or _name(hasher) != digest:
            self._cancel(location, repository)
            raise registry_error(
                f"the blob pushed as {_short(digest)} ({_human(size)}) holds other content"
                f" ({_human(offset)}): it changed, or its digest or size is wrong",
                field="digest",
            )
        url = httpx.URL(location).copy_merge_params({"digest": digest})
        with closing(self._http.send("PUT", str(url), scopes=scopes, retry=False)) as response:
            raise_transient(response, "finishing an upload")
            if response.status_code not in (201, 204):
                raise self._http.failed(response, f"finishing the upload of {_short(digest)}")

    def _start_upload(self, repository: str, scopes: tuple[str, ...]) -> str:
        url = f"/v2/{repository}/blobs/uploads/"
        with closing(self._http.send("POST", url, scopes=scopes, retry=False)) as response:
            raise_transient(response, "starting an upload")
            if response.status_code != 202:
                raise self._http.failed(response, f"starting an upload to {repository}")
            return self._http.location(response)

    def _patch(self, location: str, chunk: bytes, offset: int, scopes: tuple[str, ...]) -> str:
        last = offset + len(chunk) - 1
        headers = {"Content-Type": "application/octet-stream", "Content-Range": f"{offset}-{last}"}
        response = self._http.send(
            "PATCH", location, scopes=scopes, content=chunk, headers=headers, retry=False
        )
        with closing(response):
            raise_transient(response, "uploading a chunk", also=(416,))
            if response.status_code != 202:
                raise self._http.failed(response, "uploading a chunk")
            end = response.headers.get("Range", "").rpartition("-")[2]
            if end.isdigit() and int(end) != last:
                raise Transient(f"the registry holds {int(end) + 1} bytes, not {last + 1}")
            return self._http.location(response)

    def _cancel(self, location: str, repository: str) -> None:
        """Best effort: an abandoned session is purged by the registry anyway."""
        scopes = (f"repository:{repository}:pull,push",)
        with suppress(RegistryError, Transient):
            self._http.send("DELETE", location, scopes=scopes, retry=False).close()

    def _download(self, repository: str, digest: str, partial: Path, max_bytes: int) -> None:
        url = f"/v2/{repository}/blobs/{digest}"
        scopes = (f"repository:{repository}:pull",)
        hasher, size = _digest_of(digest), 0
        response = self._http.send("GET", url, scopes=scopes, follow=True, retry=False)
        with closing(response), partial.open("wb") as out:
            raise_transient(response, f"downloading {_short(digest)}")
            if response.status_code != 200:
                raise self._blob_failed(response, repository, digest)
            try:
                for chunk in response.iter_bytes(1024 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise self._too_large(repository, digest, max_bytes)
                    hasher.update(chunk)
                    out.write(chunk)
            except httpx.TransportError as error:
                raise Transient(f"{type(error).__name__} downloading {_short(digest)}") from None
        self._verify(digest, _name(hasher), f"blob {digest} of {repository}")

    def _verify(self, expected: str, actual: str, what: str) -> None:
        if actual != expected:
            raise registry_error(
                f"the {what} from registry {self.endpoint.host} has the digest {actual},"
                f" not {expected}: corrupted or altered",
                field="digest",
            )

    def _blob_failed(self, response: httpx.Response, repository: str, digest: str) -> RegistryError:
        if response.status_code == 404:
            return registry_error(f"no blob {digest} in {repository} at {self.endpoint.host}")
        return self._http.failed(response, f"sending {_short(digest)}")

    def _too_large(self, repository: str, digest: str, max_bytes: int) -> RegistryError:
        return registry_error(
            f"the blob {_short(digest)} of {repository} is larger than {_human(max_bytes)}",
            field="size",
        )


def _check_reference(reference: str) -> str:
    if not (_TAG.fullmatch(reference) or _DIGEST.fullmatch(reference)):
        raise registry_error(f"{reference[:200]!r} is neither a tag nor a digest", field="tag")
    return reference


def _media_type(content_type: str, body: bytes) -> str:
    """The Content-Type, or, when the registry sent a generic one, the body's `mediaType`."""
    if content_type and content_type not in ("application/json", "application/octet-stream"):
        return content_type
    try:
        declared = json.loads(body).get("mediaType")
    except (ValueError, AttributeError):
        declared = None
    return declared if isinstance(declared, str) else content_type


def _tags_of(body: bytes | None, repository: str) -> list[str]:
    try:
        tags = json.loads(body or b"").get("tags") or []
    except (ValueError, AttributeError):
        raise registry_error(f"the registry sent an unreadable tag list of {repository}") from None
    return [tag for tag in tags if isinstance(tag, str)]
