"""The OCI distribution client against a real registry on loopback (docker-registry 2.8 started by
scripts/registry), and its Bearer-token flow against a registry faked with httpx.MockTransport."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from codenv.domain.errors import RegistryError
from codenv.images.registry import FetchedManifest, RegistryClient, RegistryEndpoint
from support.registry import RunningRegistry, registry, running_registry  # noqa: F401

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
PASSWORD = "pw-Very-Secret-7781"


@pytest.fixture(scope="module")
def open_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with running_registry(tmp_path_factory.mktemp("open")) as running:
        yield running


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    users = {"alice": PASSWORD}
    with running_registry(tmp_path_factory.mktemp("auth"), users=users) as running:
        yield running


def blob(size: int) -> tuple[bytes, str]:
    data = os.urandom(size)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def opener(data: bytes) -> Callable[[], io.BytesIO]:
    return lambda: io.BytesIO(data)


def push(client: RegistryClient, repository: str, data: bytes, digest: str) -> str:
    return client.push_blob(repository, digest, len(data), opener(data))


class Recording(httpx.BaseTransport):
    """The real transport, recording each request and failing the ones `fail` picks, once each."""

    def __init__(self, fail: Callable[[httpx.Request, int], bool] = lambda _r, _n: False) -> None:
        self.inner = httpx.HTTPTransport()
        self.fail = fail
        self.seen: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path))
        if self.fail(request, len(self.seen)):
            return httpx.Response(503, json={"errors": [{"code": "UNAVAILABLE", "message": "x"}]})
        return self.inner.handle_request(request)

    def count(self, method: str) -> int:
        return sum(1 for seen, _path in self.seen if seen == method)


def image(client: RegistryClient, repository: str, layer_size: int) -> tuple[bytes, str, str]:
    """Push a config and a layer, put an OCI manifest tagged v1: (manifest, digest, layer)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": os.urandom(8).hex()})
    config_digest = "sha256:" + hashlib.sha256(config.encode()).hexdigest()
    push(client, repository, config.encode(), config_digest)
    layer, layer_digest = blob(layer_size)
    push(client, repository, layer, layer_digest)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    return manifest, client.put_manifest(repository, "v1", manifest, OCI_MANIFEST), layer_digest


# --- blobs -----------------------------------------------------------------------------------


def test_chunked_push_then_present(open_registry: RunningRegistry, tmp_path: Path) -> None:
    data, digest = blob(300 * 1024)
    transport, lines = Recording(), list[str]()
    endpoint = open_registry.endpoint()
    with RegistryClient(
        endpoint, chunk_bytes=64 * 1024, transport=transport, log=lines.append
    ) as c:
        assert not c.blob_exists("chunks/one", digest)
        assert push(c, "chunks/one", data, digest) == "uploaded"
        assert transport.count("PATCH") == 5  # 300 KiB in 64 KiB chunks
        assert c.blob_exists("chunks/one", digest)
        assert push(c, "chunks/one", data, digest) == "present"
        assert transport.count("PATCH") == 5
        c.fetch_blob("chunks/one", digest, tmp_path / "back", max_bytes=len(data))
    assert (tmp_path / "back").read_bytes() == data
    assert any(line.startswith("pushed sha256:") and "307.2 kB" in line for line in lines)


def test_mount_from_another_repository_sends_nothing_again(open_registry: RunningRegistry) -> None:
    data, digest = blob(256 * 1024)
    transport = Recording()
    with RegistryClient(open_registry.endpoint(), transport=transport) as client:
        push(client, "mount/source", data, digest)
        before, patches = open_registry.storage_bytes(), transport.count("PATCH")
        outcome = client.push_blob(
            "mount/target",
            digest,
            len(data),
            opener(data),
            mount_from=["mount/none", "mount/source"],
        )
        assert outcome == "mounted"
        assert transport.count("PATCH") == patches
        assert open_registry.storage_bytes() - before < 4096  # a link, not the blob
        assert client.blob_exists("mount/target", digest)


def test_mount_refused_uses_the_session_the_registry_opened(open_registry: RunningRegistry) -> None:
    data, digest = blob(10_000)
    transport = Recording()
    with RegistryClient(open_registry.endpoint(), transport=transport) as client:
        outcome = client.push_blob(
            "mount/late", digest, len(data), opener(data), mount_from=["mount/never"]
        )
        assert outcome == "uploaded"
        assert transport.count("POST") == 1  # the mount's 202 session carried the upload
        assert client.read_blob("mount/late", digest, max_bytes=len(data)) == data


def test_fetch_verifies_digest_and_size(open_registry: RunningRegistry, tmp_path: Path) -> None:
    data, digest = blob(50_000)
    dest = tmp_path / "blob"
    with RegistryClient(open_registry.endpoint()) as client:
        push(client, "verify/me", data, digest)
        with pytest.raises(RegistryError) as large:
            client.fetch_blob("verify/me", digest, dest, max_bytes=len(data) - 1)
        assert large.value.field == "size"
        with pytest.raises(RegistryError):
            client.read_blob("verify/me", digest, max_bytes=1000)
        stored = open_registry.blob_file(digest)
        stored.write_bytes(bytes(b ^ 1 for b in stored.read_bytes()))  # same size, altered
        with pytest.raises(RegistryError) as altered:
            client.fetch_blob("verify/me", digest, dest, max_bytes=len(data))
        assert altered.value.field == "digest" and "corrupted or altered" in altered.value.message
        with pytest.raises(RegistryError, match="corrupted or altered"):
            client.read_blob("verify/me", digest, max_bytes=len(data))
        with pytest.raises(RegistryError, match="no blob"):
            client.fetch_blob("verify/me", blob(10)[1], dest, max_bytes=100)
    assert list(tmp_path.iterdir()) == []  # neither dest nor a .part left behind


def test_a_blob_whose_content_is_not_its_digest_is_refused(open_registry: RunningRegistry) -> None:
    data, _digest = blob(1000)
    wrong = blob(1000)[1]
    with RegistryClient(open_registry.endpoint()) as client:
        with pytest.raises(RegistryError) as error:
            push(client, "verify/wrong", data, wrong)
        assert error.value.field == "digest"
        assert not client.blob_exists("verify/wrong", wrong)


# --- manifests -------------------------------------------------------------------------------


def test_manifest_put_get_tags_delete_and_gc(registry: RunningRegistry) -> None:  # noqa: F811
    with RegistryClient(registry.endpoint()) as client:
        manifest, digest, layer_digest = image(client, "apps/env-one", 200 * 1024)
        assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
        by_tag = client.get_manifest("apps/env-one", "v1", [OCI_MANIFEST, OCI_INDEX])
        assert by_tag == FetchedManifest(OCI_MANIFEST, manifest, digest)
        assert client.get_manifest("apps/env-one", digest, [OCI_MANIFEST]).body == manifest
        assert client.tags("apps/env-one") == ["v1"]
        assert client.tags("apps/unknown") == []

        assert client.delete_manifest("apps/env-one", digest) is True
        with pytest.raises(RegistryError, match=r"no image apps/env-one:v1 in registry"):
            client.get_manifest("apps/env-one", "v1", [OCI_MANIFEST])
        assert client.delete_manifest("apps/env-one", digest) is False
        assert client.tags("apps/env-one") == []
        before = registry.storage_bytes()
        registry.garbage_collect()
        assert before - registry.storage_bytes() >= 200 * 1024
        assert not client.blob_exists("apps/env-one", layer_digest)


def test_indexes_and_docker_manifests_are_read(open_registry: RunningRegistry) -> None:
    with RegistryClient(open_registry.endpoint()) as client:
        manifest, digest, _layer = image(client, "apps/multi", 1000)
        entry = {
            "digest": digest,
            "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
        }
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [{"mediaType": OCI_MANIFEST, **entry}],
            }
        ).encode()
        client.put_manifest("apps/multi", "index", index, OCI_INDEX)
        fetched = client.get_manifest("apps/multi", "index", [OCI_MANIFEST, OCI_INDEX, DOCKER_LIST])
        assert fetched.media_type == OCI_INDEX and fetched.body == index
        with pytest.raises(RegistryError, match="accept header does not support OCI indexes"):
            client.get_manifest("apps/multi", "index", [DOCKER_MANIFEST])

        config = json.loads(manifest)["config"]
        docker = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {**config, "mediaType": "application/vnd.docker.container.image.v1+json"},
                "layers": [],
            }
        ).encode()
        client.put_manifest("apps/multi", "docker", docker, DOCKER_MANIFEST)
        accepted = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
        assert client.get_manifest("apps/multi", "docker", accepted).media_type == DOCKER_MANIFEST
        assert sorted(client.tags("apps/multi")) == ["docker", "index", "v1"]


def test_registry_words_are_kept(open_registry: RunningRegistry) -> None:
    missing = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(5)[1]}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {**missing, "size": 5},
            "layers": [],
        }
    ).encode()
    with (
        RegistryClient(open_registry.endpoint()) as client,
        pytest.raises(RegistryError, match="MANIFEST_BLOB_UNKNOWN") as error,
    ):
        client.put_manifest("apps/broken", "v1", manifest, OCI_MANIFEST)
    assert error.value.status == 502 and error.value.field == "registry"


def test_invalid_repository_is_refused_before_sending() -> None:
    def nothing(_request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    endpoint = RegistryEndpoint("registry.example")
    with RegistryClient(endpoint, transport=httpx.MockTransport(nothing)) as client:
        for name in ("Team/Env", "env-", "a//b", "a" * 256, "../x"):
            with pytest.raises(RegistryError) as error:
                client.blob_exists(name, blob(1)[1])
            assert error.value.field == "repository"
        with pytest.raises(RegistryError) as tag:
            client.get_manifest("ok", "bad tag", [OCI_MANIFEST])
        assert tag.value.field == "tag"
    with pytest.raises(RegistryError):
        RegistryEndpoint("https://registry.example/path")


# --- failures and retries --------------------------------------------------------------------


def test_unreachable_registry_fails_fast_in_words() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    endpoint = RegistryEndpoint(f"127.0.0.1:{port}", insecure=True)
    started = time.monotonic()
    with (
        RegistryClient(endpoint, timeout=2, retries=1) as client,
        pytest.raises(RegistryError, match=rf"127\.0\.0\.1:{port} did not answer"),
    ):
        client.check()
    assert time.monotonic() - started < 3


def test_transient_failures_are_retried(open_registry: RunningRegistry) -> None:
    first_check = lambda request, n: n == 1  # noqa: E731
    second_patch = lambda request, n: request.method == "PATCH" and n == 4  # noqa: E731
    lines: list[str] = []
    endpoint = open_registry.endpoint()
    transport = Recording(fail=first_check)
    with RegistryClient(endpoint, transport=transport, log=lines.append) as client:
        client.check()
    assert transport.count("GET") == 2 and any("HTTP 503; retry 1/4" in x for x in lines)

    data, digest = blob(200 * 1024)
    transport = Recording(fail=second_patch)  # HEAD, POST, PATCH, PATCH (503)
    with RegistryClient(endpoint, transport=transport, chunk_bytes=64 * 1024) as client:
        assert push(client, "flaky/one", data, digest) == "uploaded"
        assert transport.count("POST") == 2  # the upload restarted from a new session
        assert client.read_blob("flaky/one", digest, max_bytes=len(data)) == data


# --- credentials -----------------------------------------------------------------------------


def test_basic_auth_with_htpasswd(auth_registry: RunningRegistry) -> None:
    lines: list[str] = []
    data, digest = blob(20_000)
    with RegistryClient(auth_registry.endpoint("alice", PASSWORD), log=lines.append) as client:
        client.check()
        assert push(client, "private/env", data, digest) == "uploaded"
        assert client.tags("private/env") == []
    assert lines and all(PASSWORD not in line for line in lines)


def test_refused_credentials_are_named_and_never_shown(auth_registry: RunningRegistry) -> None:
    lines: list[str] = []
    wrong = RegistryEndpoint(
        auth_registry.host, insecure=True, username="alice", password=PASSWORD + "x"
    )
    assert PASSWORD not in repr(wrong)
    with RegistryClient(wrong, log=lines.append, retries=1) as client:
        for call in (client.check, lambda: client.blob_exists("private/env", blob(1)[1])):
            with pytest.raises(RegistryError) as error:
                call()
            assert "refused the credentials of user alice" in error.value.message
            shown = json.dumps(error.value.to_dict()) + str(error.value) + repr(error.value)
            assert PASSWORD not in shown
    assert PASSWORD not in "\n".join(lines) + auth_registry.log()

    with (
        RegistryClient(auth_registry.endpoint()) as anonymous,
        pytest.raises(RegistryError, match="needs credentials"),
    ):
        anonymous.check()


class TokenRegistry:
    """A registry answering Bearer challenges, and its token service on another host."""

    REALM = "https://auth.example/token"

    def __init__(self, realm: str = REALM, token_key: str = "token") -> None:
        self.realm, self.token_key = realm, token_key
        self.valid: set[str] = set()
        self.issued: list[list[str]] = []  # the scopes of each token
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "auth.example":
            return self.token(request)
        sent = request.headers.get("Authorization", "")
        if sent.removeprefix("Bearer ") not in self.valid:
            challenge = (
                f'Bearer realm="{self.realm}",service="reg.example",scope="repository:r:pull"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if request.url.path == "/v2/":
            return httpx.Response(200, json={})
        return httpx.Response(200, json={"name": "r", "tags": ["a", "b"]})

    def token(self, request: httpx.Request) -> httpx.Response:
        basic = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != basic:
            return httpx.Response(401, json={"details": "incorrect username or password"})
        assert request.url.params["service"] == "reg.example"
        value = f"tok{len(self.issued)}"
        self.valid.add(value)
        self.issued.append(request.url.params.get_list("scope"))
        return httpx.Response(200, json={self.token_key: value, "expires_in": 300})

    def authorizations(self, host: str) -> list[str]:
        return [r.headers.get("Authorization", "") for r in self.requests if r.url.host == host]


def token_client(fake: TokenRegistry, password: str = PASSWORD) -> RegistryClient:
    endpoint = RegistryEndpoint("reg.example", username="alice", password=password)
    return RegistryClient(endpoint, transport=httpx.MockTransport(fake), retries=0)


@pytest.mark.parametrize("token_key", ["token", "access_token"])
def test_bearer_tokens_are_fetched_cached_and_refetched(token_key: str) -> None:
    fake = TokenRegistry(token_key=token_key)
    with token_client(fake) as client:
        assert client.tags("r") == ["a", "b"]
        assert fake.authorizations("reg.example")[0] == ""  # nothing sent before a challenge
        assert fake.issued == [["repository:r:pull"]]
        assert client.tags("r") == ["a", "b"]
        assert len(fake.issued) == 1  # cached for its scope
        client.check()  # another scope (none): another token
        assert len(fake.issued) == 2
        fake.valid.clear()  # the registry stops taking the tokens: fetched again, once
        assert client.tags("r") == ["a", "b"]
        assert len(fake.issued) == 3
    registry_auth = fake.authorizations("reg.example")
    assert all(value == "" or value.startswith("Bearer tok") for value in registry_auth)
    assert all(value.startswith("Basic ") for value in fake.authorizations("auth.example"))


def test_bearer_refusals_are_clear() -> None:
    lines: list[str] = []
    fake = TokenRegistry()
    endpoint = RegistryEndpoint("reg.example", username="alice", password=PASSWORD + "x")
    transport = httpx.MockTransport(fake)
    with (
        RegistryClient(endpoint, transport=transport, log=lines.append) as client,
        pytest.raises(RegistryError, match="refused the credentials of user alice") as error,
    ):
        client.tags("r")
    assert PASSWORD not in str(error.value) + "\n".join(lines)

    plain = TokenRegistry(realm="http://auth.example/token")
    with token_client(plain) as client, pytest.raises(RegistryError, match="plain http"):
        client.check()
    assert plain.authorizations("auth.example") == []  # the credentials never left


def test_upload_locations_keep_their_query_and_other_hosts_get_no_credentials() -> None:
    data, digest = blob(3000)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "reg.example" and "Authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        if request.method == "HEAD":
            return httpx.Response(404)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "https://store.example/up/1?_state=s1"})
        if request.method == "PATCH":
            return httpx.Response(202, headers={"Location": "/up/1?_state=s2", "Range": "0-2999"})
        return httpx.Response(201, headers={"Docker-Content-Digest": digest})

    endpoint = RegistryEndpoint("reg.example", username="alice", password=PASSWORD)
    with RegistryClient(endpoint, transport=httpx.MockTransport(answer)) as client:
        assert push(client, "r", data, digest) == "uploaded"
    patch, put = seen[-2], seen[-1]
    assert patch.url == httpx.URL("https://store.example/up/1?_state=s1")
    assert "Authorization" not in patch.headers and patch.headers["Content-Range"] == "0-2999"
    # a relative Location is the registry's own: the credentials go along
    assert put.url.host == "reg.example" and put.url.params["_state"] == "s2"
    assert put.url.params["digest"] == digest and put.headers["Authorization"].startswith("Basic ")


def test_media_types_are_checked_against_accept() -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()

    def answer(request: httpx.Request) -> httpx.Response:
        # a registry that labels every manifest as plain JSON
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    with RegistryClient(
        RegistryEndpoint("reg.example"), transport=httpx.MockTransport(answer)
    ) as c:
        assert c.get_manifest("r", "latest", [OCI_MANIFEST, OCI_INDEX]).media_type == OCI_INDEX
        with pytest.raises(RegistryError, match=r"is a application/vnd.oci.image.index.v1\+json"):
            c.get_manifest("r", "latest", [OCI_MANIFEST])
        with pytest.raises(RegistryError, match="corrupted or altered"):
            c.get_manifest("r", blob(1)[1], [OCI_INDEX])  # by digest: the body must match it


def test_an_empty_blob_is_pushed(open_registry: RunningRegistry) -> None:
    digest = "sha256:" + hashlib.sha256(b"").hexdigest()
    with RegistryClient(open_registry.endpoint()) as client:
        assert push(client, "empty/blob", b"", digest) == "uploaded"
        assert client.read_blob("empty/blob", digest, max_bytes=10) == b""
