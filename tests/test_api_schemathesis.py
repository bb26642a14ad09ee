"""Property-based run of the REST API against its own OpenAPI schema (schemathesis).

The real server runs on loopback; schemathesis loads `/openapi.json` from it and, for every
operation, sends generated requests, valid and invalid ones, as the administrator (an API token
in the Authorization header). Every response must not be a 5xx, must have a status code and a
content type the schema declares, and must match the schema declared for that status: errors
included, which are `{"error": {"code", "message", "field"}}` (JSON) everywhere.

Path parameters draw, about half of the time, from the names of things that exist (an env with
a finished build, a resource file, a user, a group, a request), so the generated cases reach the
handlers' real work and not only their 404s; the rest of the time they are anything.

Bounded for CI (about a minute on 2 cores): few examples per operation, derandomized (the same
cases on every run), no shrinking, a deadline per case, no stateful phase.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from codenv.services import tokens
from codenv.services.authentication import load_actor
from support.pkgindex import PackageIndex
from support.server import RunningServer, running_server, wait_for_build

MAX_EXAMPLES = 6
ENV = "demo"
# Path parameters are single segments (schemathesis generates no "/" in them); queries are not.
RESOURCE_FILE = "readme.txt"  # read by GET .../content/{path}
SCRATCH_FILE = "scratch.txt"  # for DELETE .../files/{path}, which runs before that read
RESOURCE_DIR = "notes"
ODD_SEGMENTS = ["..", ".", RESOURCE_DIR]
ODD_PATHS = ["../outside", "/etc/passwd", "notes/../../x", "notes/inner.txt"]
# Operations that would start a build on the env the others read, or take it away. They still
# get generated cases (validation errors, unknown names: 404), only never with its name:
# - POST .../resources/init runs the (fuzzed) init script as code on this machine;
# - POST .../update and PATCH .../spec (with update) start builds that take seconds each and
#   would keep the env busy (409) for the operations after them;
# - DELETE /envs/{name} would delete it.
# Creating envs (POST /envs) needs an installed Python's version, which generated bodies never
# have, so it is exercised for its validation paths only. Approving the one pending request
# does start one build (of another env), which is the approve path working.
NEVER_ON_THE_ENV = [
    ("POST", "/api/v1/envs/{name}/resources/init"),
    ("POST", "/api/v1/envs/{name}/update"),
    ("PATCH", "/api/v1/envs/{name}/spec"),
    ("DELETE", "/api/v1/envs/{name}"),
]


def _toml_list(values: list[str]) -> str:
    return json.dumps(values)


def _config(build_id: str, request_id: int) -> SchemathesisConfig:
    """Which operation draws which names; the first `[[operations]]` that matches decides."""
    never = _toml_list([f"{method} {path}" for method, path in NEVER_ON_THE_ENV])
    return SchemathesisConfig.from_str(
        f"""
seed = 20240601

[generation]
mode = "all"
max-examples = {MAX_EXAMPLES}
deterministic = true
no-shrink = true

[phases.stateful]
enabled = false

[dictionaries]
absent.values = ["no-such-env", "x", "Bad Name"]
env.values = ["{ENV}"]
accounts.values = ["ana", "team"]
users.values = ["ana", "admin"]
builds.values = ["{build_id}"]
requests.values = [{request_id}]
readable.values = ["{RESOURCE_FILE}"]
writable.values = {_toml_list([RESOURCE_FILE, *ODD_SEGMENTS])}
deletable.values = {_toml_list([SCRATCH_FILE, *ODD_SEGMENTS])}
queried.values = {_toml_list([RESOURCE_DIR, *ODD_PATHS])}

[parameters]
"path.build_id" = {{ dictionary = "builds", probability = 0.5 }}
"path.request_id" = {{ dictionary = "requests", probability = 0.5 }}

[[operations]]
include-name = {never}
parameters = {{ "path.name" = {{ dictionary = "absent", probability = 0.5 }} }}

[[operations]]
include-name = "DELETE /api/v1/envs/{{name}}/resources/files/{{path}}"
parameters = {{ "path.name" = {{ dictionary = "env", probability = 0.6 }}, \
"path.path" = {{ dictionary = "deletable", probability = 0.8 }} }}

[[operations]]
include-name = "GET /api/v1/envs/{{name}}/resources/content/{{path}}"
parameters = {{ "path.name" = {{ dictionary = "env", probability = 0.6 }}, \
"path.path" = {{ dictionary = "readable", probability = 0.6 }} }}

[[operations]]
include-path-regex = "^/api/v1/envs/[{{]name[}}]"
parameters = {{ "path.name" = {{ dictionary = "env", probability = 0.6 }}, \
"path.path" = {{ dictionary = "writable", probability = 0.8 }}, \
"query.path" = {{ dictionary = "queried", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/api/v1/(users|groups)/"
parameters = {{ "path.name" = {{ dictionary = "accounts", probability = 0.5 }}, \
"path.user" = {{ dictionary = "users", probability = 0.5 }} }}
"""
    )


class Admin:
    """The administrator's token; minted again if a generated case revoked it."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.secret = server.admin_token()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def renew_if_revoked(self) -> None:
        with self.server.client(self.secret) as client:
            if client.get("/api/v1/me").status_code != 401:
                return
        actor = load_actor(self.server.app, 1, source="tests")
        self.secret = tokens.create_token(self.server.app, actor, name="renewed").secret


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex
) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("schemathesis") / "home"
    with running_server(home, sample_index.url) as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Admin:
    return Admin(server)


@pytest.fixture(scope="module")
def api_schema(server: RunningServer, admin: Admin, newest: str) -> schemathesis.BaseSchema:
    """The served schema, after making things to read: a built env with a resource file, a
    user, a group and a pending request."""
    with server.client(admin.secret) as client:
        spec = {"python": newest, "install_core_packages": False, "requested": "alpha"}
        created = client.post("/api/v1/envs", json={"name": ENV, **spec})
        assert created.status_code == 202, created.text
        build_id = created.json()["build_id"]
        assert wait_for_build(client, build_id)["status"] == "succeeded"
        for path in (RESOURCE_FILE, SCRATCH_FILE, f"{RESOURCE_DIR}/inner.txt"):
            uploaded = client.put(f"/api/v1/envs/{ENV}/resources/files/{path}", content=b"hi")
            assert uploaded.status_code == 200, uploaded.text
        client.post("/api/v1/users", json={"name": "ana", "password": "ana-password-123"})
        client.post("/api/v1/groups", json={"name": "team", "may_create_envs": True})
        client.put("/api/v1/settings/requests", json={"allow": True})
        asked = client.post("/api/v1/requests", json={"name": "wanted", **spec, "message": "hi"})
        assert asked.status_code == 201, asked.text
        config = _config(build_id, asked.json()["id"])
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json", config=config)


Seen = Counter[tuple[str, int]]


@pytest.fixture(scope="module")
def seen(server: RunningServer) -> Iterator[Seen]:
    """The (operation, status) pairs answered; afterwards, checks that the run reached every
    operation and that every read (GET) answered 2xx at least once, so the generated cases were
    not all turned away at the door. (A teardown check, not a test after this one: xdist's
    groups do not keep two tests on one worker with this pytest.)"""
    answered: Seen = Counter()
    yield answered
    with server.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    labels = {f"{method.upper()} {path}" for path, ops in paths.items() for method in ops}
    by_label: dict[str, Counter[int]] = {}
    for (label, status), count in answered.items():
        by_label.setdefault(label, Counter())[status] += count
    print(json.dumps({label: dict(sorted(c.items())) for label, c in sorted(by_label.items())}))
    assert labels == set(by_label), f"not exercised: {sorted(labels - set(by_label))}"
    reads = {label for label in labels if label.startswith("GET ")}
    never_ok = {label for label in reads if not any(200 <= s < 300 for s in by_label[label])}
    assert not never_ok, f"reads that never succeeded: {sorted(never_ok)}"


@pytest.fixture(autouse=True)
def _pytest_9_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy (fixture) schema reads `node._nodeid`, gone in pytest 9."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


lazy_schema = schemathesis.pytest.from_fixture("api_schema")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@lazy_schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=timedelta(seconds=10),
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: Case, admin: Admin, seen: Seen) -> None:
    # case.call_and_validate(), in two steps so that every answer is counted, failing or not.
    response = case.call(headers=admin.headers(), timeout=30)
    seen[(case.operation.label, response.status_code)] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=admin.headers())
    finally:
        admin.renew_if_revoked()
