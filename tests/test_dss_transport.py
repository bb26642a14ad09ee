"""The DSS API's transport, driven by the seed system's official client (dataikuapi 15.2.0)
and by raw HTTP against a real codenv server: tokens sent as the client and DSS's doc send
them, DSS's error JSON for every failure under its two prefixes (while /api/v1 keeps its
own), futures polled to the end; and env names with `_`, as the seed system allows them.

Builds here use the fake installer (what is tested is the protocol, not an install), except
the `my_env` test, which creates an env through the CLI with uv on the sample index.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dataikuapi.utils import DataikuException
from fastapi import APIRouter, FastAPI, Request

from codenv.api.dss_compat.app import mount_dss_api
from codenv.api.dss_compat.deps import json_body
from codenv.backends.base import Run
from codenv.backends.fake import FakeInstaller
from codenv.domain.spec import EnvSpec
from codenv.http.errors import install_error_handlers
from codenv.services import envs, futures
from codenv.services.actor import Actor
from codenv.services.tokens import authenticate_token
from support.dss import DOC_PREFIX, PREFIX, admin_token, dss_client, dss_server, user_token
from support.pkgindex import PackageIndex
from support.server import ADMIN_PASSWORD, RunningServer

DSS_KEYS = {"errorType", "message", "detailedMessage", "code", "codenvCode", "field"}
UNAUTHORIZED = "com.dataiku.dip.exceptions.UnauthorizedException"
NOT_FOUND = "com.dataiku.dip.server.controllers.NotFoundException"
UNUSED_INDEX = "http://127.0.0.1:9/simple"  # the fake installer never reads it


class Gate:
    """Install hooks of the fake installer: hold a build until released, or fail it."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.fail = threading.Event()

    def install(self, run: Run) -> None:
        from codenv.domain.errors import BuildFailed

        while self.hold.is_set() and not run.cancelled.is_set():
            time.sleep(0.05)
        if self.fail.is_set():
            raise BuildFailed("no matching distribution for broken-package (fake)")


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, gate: Gate) -> Iterator[RunningServer]:
    home = tmp_path_factory.mktemp("dss-transport") / "home"
    installer = FakeInstaller(hooks={"install": gate.install})
    with dss_server(home, UNUSED_INDEX, fake=installer) as running:
        yield running


@pytest.fixture(scope="module")
def tokens(server: RunningServer) -> dict[str, str]:
    return {"admin": admin_token(server), "bob": user_token(server, "bob", group="readers")}


def dss_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) - {"line"} == DSS_KEYS, body
    assert body["message"] == body["detailedMessage"] and body["message"]
    return dict(body)


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


# --- authentication ------------------------------------------------------------------------


def test_the_client_reads_who_its_token_is(server: RunningServer, tokens: dict[str, str]) -> None:
    admin = dss_client(server.url, tokens["admin"]).get_auth_info()
    assert admin["authIdentifier"] == "admin"
    assert admin["secrets"] == [] and admin["userProfile"]
    bob = dss_client(server.url, tokens["bob"]).get_auth_info(with_secrets=True)
    assert (bob["authIdentifier"], bob["groups"]) == ("bob", ["readers"])


def test_a_wrong_token_is_a_readable_dataiku_exception(server: RunningServer) -> None:
    client = dss_client(server.url, "cdv_not-a-real-token-at-all-0000000000")
    with pytest.raises(DataikuException) as caught:
        client.get_auth_info()
    text = str(caught.value)
    assert text.startswith(f"{UNAUTHORIZED}: ") and "token" in text
    assert "Unknown error" not in text and "No message" not in text


@pytest.mark.parametrize("prefix", [PREFIX, DOC_PREFIX])
def test_tokens_are_accepted_as_basic_user_basic_password_and_bearer(
    server: RunningServer, tokens: dict[str, str], prefix: str
) -> None:
    token = tokens["bob"]
    ways = [basic(token, ""), basic("", token), {"Authorization": f"Bearer {token}"}]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for headers in ways:
            answer = http.get(f"{prefix}/auth/info", headers=headers)
            assert answer.status_code == 200, (headers, answer.text)
            assert answer.json()["authIdentifier"] == "bob"


def test_no_token_no_session_and_no_password_on_the_dss_routes(
    server: RunningServer, tokens: dict[str, str]
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        anonymous = dss_error(http.get(f"{PREFIX}/auth/info"), 401)
        assert anonymous["errorType"] == UNAUTHORIZED and "API token" in anonymous["message"]
        # A user name and password are no token.
        refused = dss_error(http.get(f"{PREFIX}/auth/info", headers=basic("admin", "x")), 401)
        assert refused["codenvCode"] == "authentication_failed"
        garbled = http.get(f"{PREFIX}/auth/info", headers={"Authorization": "Basic %%%"})
        assert dss_error(garbled, 401)["errorType"] == UNAUTHORIZED
    # A logged-in browser session is not enough either.
    browser = server.login("admin", ADMIN_PASSWORD)
    try:
        assert browser.get("/api/v1/envs").status_code == 200
        dss_error(browser.get(f"{PREFIX}/auth/info"), 401)
    finally:
        browser.close()


def test_an_admin_token_may_act_as_a_user_and_nobody_else_may(
    server: RunningServer, tokens: dict[str, str]
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        proxied = http.get(
            f"{PREFIX}/auth/info",
            headers={**basic(tokens["admin"], ""), "X-DKU-ProxyUser": "bob"},
        )
        assert proxied.json()["authIdentifier"] == "bob"
        refused = http.get(
            f"{PREFIX}/auth/info", headers={**basic(tokens["bob"], ""), "X-DKU-ProxyUser": "admin"}
        )
        assert "administrator" in dss_error(refused, 403)["message"]


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [PREFIX, DOC_PREFIX])
def test_unknown_routes_and_wrong_methods_answer_dss_errors(
    server: RunningServer, tokens: dict[str, str], prefix: str
) -> None:
    with httpx.Client(base_url=server.url, headers=basic(tokens["bob"], ""), timeout=30) as http:
        missing = dss_error(http.get(f"{prefix}/no/such/call"), 404)
        assert missing["errorType"] == NOT_FOUND
        assert f"GET {prefix}/no/such/call" in missing["message"]
        wrong = dss_error(http.put(f"{prefix}/auth/info", content=b"{}"), 405)
        assert "PUT" in wrong["message"]
        # A query the route cannot read: DSS's 400, not FastAPI's 422.
        invalid = dss_error(http.get(f"{prefix}/futures/x", params={"peek": "maybe"}), 400)
        assert (
            invalid["field"] == "peek"
            and invalid["errorType"] == "java.lang.IllegalArgumentException"
        )


def test_a_body_over_the_limit_is_refused_in_the_dss_shape(
    server: RunningServer, tokens: dict[str, str]
) -> None:
    too_big = b"[" + b"0," * 6_000_000 + b"0]"
    with httpx.Client(base_url=server.url, headers=basic(tokens["bob"], ""), timeout=60) as http:
        refused = dss_error(http.put(f"{PREFIX}/admin/code-envs/PYTHON/x", content=too_big), 413)
    assert refused["code"] == "payload_too_large" and "CODENV_MAX_BODY_BYTES" in refused["message"]


def test_the_client_sees_a_missing_future_as_a_dataiku_exception(
    server: RunningServer, tokens: dict[str, str]
) -> None:
    future = dss_client(server.url, tokens["bob"]).get_future("0123456789abcdef")
    with pytest.raises(DataikuException, match=f"^{NOT_FOUND}: no future '0123456789abcdef'"):
        future.wait_for_result()


def test_api_v1_keeps_its_own_error_shape(server: RunningServer, tokens: dict[str, str]) -> None:
    http = server.client(tokens["bob"])
    try:
        for path, status in (("/api/v1/envs/nope", 404), ("/api/v1/no-such-route", 404)):
            answer = http.get(path)
            assert answer.status_code == status
            assert set(answer.json()) == {"error"}, answer.text
        assert server.client().get("/api/v1/envs").json()["error"]["code"] == (
            "authentication_failed"
        )
        # The DSS routes are not in codenv's schema.
        schema = http.get("/openapi.json").json()
        assert not [path for path in schema["paths"] if "publicapi" in path or "public/api" in path]
    finally:
        http.close()


def bare_app() -> FastAPI:
    """An app with codenv's handlers and the DSS API, plus two routes to reach what the DSS
    routes of this module do not: a JSON body read without Content-Type, and a crash."""
    app = FastAPI()
    install_error_handlers(app)
    extra = APIRouter()

    @extra.post("/echo")
    async def echo(request: Request) -> Any:
        return {"got": await json_body(request, max_bytes=64)}

    @extra.get("/crash")
    def crash() -> None:
        raise RuntimeError("secret internals")

    app.include_router(extra, prefix=PREFIX)
    app.include_router(extra, prefix="/api/v1")
    mount_dss_api(app)
    return app


async def _bodies_and_crashes() -> None:
    transport = httpx.ASGITransport(app=bare_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        sent = await http.post(f"{PREFIX}/echo", content=b'{"a": [1, 2]}')
        assert sent.json() == {"got": {"a": [1, 2]}}
        assert (await http.post(f"{PREFIX}/echo")).json() == {"got": None}
        bad = dss_error(await http.post(f"{PREFIX}/echo", content=b"{not json"), 400)
        assert bad["message"].startswith("request body is not JSON") and bad["field"] == "body"
        too_large = b"[" + b"1," * 40 + b"1]"
        large = dss_error(await http.post(f"{PREFIX}/echo", content=too_large), 400)
        assert "64 bytes" in large["message"]
        crashed = dss_error(await http.get(f"{PREFIX}/crash"), 500)
        assert "secret" not in crashed["message"] and "Traceback" not in crashed["message"]
        assert crashed["errorType"] == "com.dataiku.dip.exceptions.DSSInternalErrorException"
        # Outside the prefixes, codenv's own shape.
        assert set((await http.get("/api/v1/crash")).json()) == {"error"}
        assert set((await http.post("/api/v1/echo", content=b"{")).json()) == {"error"}


def test_json_bodies_without_content_type_bad_json_and_crashes() -> None:
    asyncio.run(_bodies_and_crashes())


# --- futures ---------------------------------------------------------------------------------


def test_a_finished_operation_is_a_real_future(
    server: RunningServer, tokens: dict[str, str]
) -> None:
    result = {"envName": "gone", "messages": {"error": False, "messages": []}}
    bob = Actor(name="bob")
    job = futures.finished_future(server.app, bob, kind="delete", target="gone", result=result)
    client = dss_client(server.url, tokens["bob"])
    # The client fetches it again even when it already had the result (G7).
    assert client.get_future(job).get_result() == result
    with httpx.Client(base_url=server.url, headers=basic(tokens["bob"], ""), timeout=30) as http:
        peeked = http.get(f"{PREFIX}/futures/{job}", params={"peek": "True"}).json()
        assert peeked["hasResult"] is True and "result" not in peeked
        assert peeked["jobId"] == job and peeked["alive"] is False
        # Nothing left to abort.
        assert (
            "nothing to abort" in dss_error(http.delete(f"{PREFIX}/futures/{job}"), 409)["message"]
        )


def test_build_futures_are_polled_to_their_result(
    server: RunningServer, tokens: dict[str, str], newest: str, gate: Gate
) -> None:
    admin = Actor.local_admin()
    created = envs.create_env(server.app, admin, "futured", EnvSpec(python=newest))
    job = futures.future_for_build(
        server.app, admin, created.build_id, kind="create", target="futured"
    )
    assert job == created.build_id
    result = dss_client(server.url, tokens["admin"]).get_future(job).wait_for_result()
    assert result["envName"] == "futured" and result["messages"]["success"] is True
    assert result["messages"]["error"] is False
    assert result["logFileName"] == f"build-{created.build_id}.log"

    gate.fail.set()
    try:
        failing = envs.create_env(server.app, admin, "broken", EnvSpec(python=newest))
        job = futures.future_for_build(
            server.app, admin, failing.build_id, kind="create", target="broken"
        )
        failed = dss_client(server.url, tokens["admin"]).get_future(job).wait_for_result()
    finally:
        gate.fail.clear()
    # A failed build is a result carrying its error, not an HTTP error.
    assert failed["messages"]["error"] is True and failed["messages"]["fatal"] is True
    (message,) = failed["messages"]["messages"]
    assert message["code"] == "ERR_CODEENV_CREATION_FAILED"
    assert "broken-package" in message["message"]


def test_running_futures_are_listed_aborted_and_private(
    server: RunningServer, tokens: dict[str, str], newest: str, gate: Gate
) -> None:
    # The future is the admin user's (the token's), not the local CLI administrator's.
    admin = authenticate_token(server.app, tokens["admin"])
    gate.hold.set()
    try:
        created = envs.create_env(server.app, admin, "held", EnvSpec(python=newest))
        job = futures.future_for_build(
            server.app, admin, created.build_id, kind="create", target="held"
        )
        client = dss_client(server.url, tokens["admin"])
        running = client.list_futures()
        assert [item["jobId"] for item in running] == [job]
        others = dss_client(server.url, admin_token(server)).list_futures(all_users=True)
        assert [item["jobId"] for item in others] == [job]
        assert running[0]["hasResult"] is False and running[0]["alive"] is True
        assert client.list_running_scenarios() == []
        # Another user neither sees nor reaches it.
        bob = dss_client(server.url, tokens["bob"])
        assert bob.list_futures() == [] and bob.list_futures(all_users=True) == []
        with pytest.raises(DataikuException, match="not yours"):
            bob.get_future(job).get_state()
        with pytest.raises(DataikuException, match="not yours"):
            bob.get_future(job).abort()
        client.get_future(job).abort()
        deadline = time.monotonic() + 60
        while not (state := client.get_future(job).get_state())["hasResult"]:
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
    finally:
        gate.hold.clear()
    assert state["aborted"] is True and state["result"] is None
    assert client.list_futures() == []


# --- names with `_` ---------------------------------------------------------------------------


def test_env_names_accept_underscores_and_stay_unique_case_insensitively(
    tmp_path: Path, sample_index: PackageIndex, newest: str
) -> None:
    from conftest import Node

    node = Node(tmp_path / "home", sample_index.url)
    node.run("create", "my_env", "--python", newest, "--no-core-packages")
    assert (node.home / "envs" / "my_env").is_dir()
    assert "my_env" in node.run("list").stdout
    clash = node.run("create", "MY_ENV", "--python", newest, "--no-core-packages", check=False)
    assert clash.returncode != 0 and "already exists" in clash.stderr
    refused = node.run("create", "-_x", "--python", newest, check=False)
    assert refused.returncode != 0


def test_waiting_for_a_future_ends_with_its_build_or_its_timeout(
    server: RunningServer, newest: str, gate: Gate
) -> None:
    admin = Actor.local_admin()
    gate.hold.set()
    try:
        created = envs.create_env(server.app, admin, "waited", EnvSpec(python=newest))
        job = futures.future_for_build(
            server.app, admin, created.build_id, kind="create", target="waited"
        )
        started = time.monotonic()
        pending = asyncio.run(futures.wait_for_future(server.app, admin, job, timeout=0.5))
        assert pending["hasResult"] is False and pending["alive"] is True
        assert 0.4 < time.monotonic() - started < 5
    finally:
        gate.hold.clear()
    done = asyncio.run(futures.wait_for_future(server.app, admin, job, timeout=60))
    assert done["hasResult"] is True and done["result"]["messages"]["success"] is True
