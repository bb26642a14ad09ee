"""Code envs through the seed system's official client (`dataikuapi` 15.2.0) against a real
`codenv serve` that builds with uv on a loopback index: the whole life of an env as
administrators' scripts drive it (create with core packages and Jupyter, settings read, edit and
save, update and wait, logs, permissions seen by other users, refusals said in words, a failed
update reported as the client expects, futures polled to the end, delete). Raw HTTP for what
the newest client does not send: no `wait`, no Content-Type, lowercase `python`, refusals."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dataikuapi
import httpx
import pytest
from dataikuapi.dss.admin import DSSCodeEnv, DSSDesignCodeEnvSettings
from dataikuapi.dss.future import DSSFuture
from dataikuapi.utils import DataikuException

from support.dss import DOC_PREFIX, PREFIX, admin_token, dss_client, dss_server, user_token
from support.pkgindex import PackageIndex
from support.server import RunningServer

pytestmark = pytest.mark.xdist_group("dss-code-envs")
TINY_SET = {
    "id": "tiny",
    "title": "Tiny",
    "python": {"min": "3.6", "max": "3.99"},
    "variants": {"cpu": ["beta"], "big": ["beta", "alpha>=1"]},
}


@dataclass
class World:
    server: RunningServer
    admin: dataikuapi.DSSClient
    maker: dataikuapi.DSSClient  # may create code envs
    reader: dataikuapi.DSSClient  # in group "readers", no global right
    nobody: dataikuapi.DSSClient  # in no group
    admin_token: str
    interpreter: str  # PYTHON3X of the node's newest Python

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url + PREFIX, auth=(self.admin_token, ""), timeout=180
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, newest: str) -> Iterator[World]:
    root: Path = tmp_path_factory.mktemp("dss-code-envs")
    (root / "index").mkdir()
    with PackageIndex(root / "index") as index:
        index.add_wheel("alpha", "1.0")
        index.add_wheel("beta", "2.0", requires=["alpha>=1.0"])
        # Stands for the real ipykernel: Jupyter support installs it and writes a kernelspec.
        index.add_wheel("ipykernel", "6.0")
        # A package set of the node's own: what a DSS "preset" maps to.
        catalog = root / "home" / "config" / "package_sets.json"
        catalog.parent.mkdir(parents=True)
        catalog.write_text(json.dumps({"sets": [TINY_SET]}))
        with dss_server(root / "home", index.url) as server:
            token = admin_token(server)
            maker = user_token(server, "maker", group="makers", may_create_envs=True)
            reader = user_token(server, "reader", group="readers")
            nobody = user_token(server, "nobody")
            yield World(
                server,
                dss_client(server.url, token),
                dss_client(server.url, maker),
                dss_client(server.url, reader),
                dss_client(server.url, nobody),
                token,
                "PYTHON" + newest.replace(".", ""),
            )


def names(client: dataikuapi.DSSClient) -> set[str]:
    return {item["envName"] for item in client.list_code_envs()}


def lines(text: str) -> set[str]:
    return set(text.split("\n")) - {""}


def test_the_whole_life_of_an_env(world: World) -> None:
    params = {
        "pythonInterpreter": world.interpreter,
        "installCorePackages": True,
        "installJupyterSupport": True,
    }
    env = world.maker.create_code_env("PYTHON", "life_env", "DESIGN_MANAGED", params)
    assert isinstance(env, DSSCodeEnv)

    settings = env.get_settings()
    assert isinstance(settings, DSSDesignCodeEnvSettings)
    raw = settings.get_raw()
    assert {"ipykernel==6.0", "codenv-runtime==0.1.0"} <= lines(raw["actualPackageList"])
    assert raw["kernelSpecName"] == "codenv-life_env" and raw["owner"] == "maker"
    assert raw["desc"]["pythonInterpreter"] == world.interpreter

    raw["specPackageList"] = "beta\n"
    settings.save()
    assert env.get_settings().get_raw()["specPackageList"] == "beta\n"
    result = env.update_packages()
    assert result["messages"]["error"] is False and result["messages"]["success"] is True
    actual = lines(env.get_settings().get_raw()["actualPackageList"])
    assert {"beta==2.0", "alpha==1.0", "ipykernel==6.0"} <= actual

    logs = env.list_logs()
    assert len(logs) == 2 and all(log["totalSize"] > 0 for log in logs)
    assert result["logFileName"] in {log["name"] for log in logs}
    assert "beta" in env.get_log(result["logFileName"])

    result = env.set_jupyter_support(False)
    assert result["messages"]["error"] is False
    assert env.get_settings().get_raw()["kernelSpecName"] is None
    rebuilt = env.update_packages(force_rebuild_env=True)
    assert rebuilt["messages"]["success"] is True and rebuilt["codenv"]["revision"] == 4

    assert env.list_usages() == [] and world.maker.list_code_env_usages() == []
    env.update_images()  # codenv builds no DSS images: a success that does nothing
    with pytest.raises(DataikuException, match="may delete"):
        env.delete()  # the owner may not: only those who manage all code envs may
    deleted = world.admin.get_code_env("PYTHON", "life_env").delete()
    assert deleted["messages"]["error"] is False
    assert "life_env" not in names(world.admin)
    with pytest.raises(DataikuException, match="NotFoundException: no code env named"):
        env.get_settings()


def test_permissions_given_by_the_owner_are_seen_by_other_users(world: World) -> None:
    params = {"pythonInterpreter": world.interpreter, "installCorePackages": False}
    env = world.maker.create_code_env("PYTHON", "shared_env", "DESIGN_MANAGED", params)
    assert "shared_env" not in names(world.reader)

    settings = env.get_settings()
    settings.get_raw()["usableByAll"] = True
    settings.get_raw()["permissions"] = [
        {"group": "readers", "use": True, "update": True, "manageUsers": False}
    ]
    settings.save()
    assert "shared_env" in names(world.reader) and "shared_env" in names(world.nobody)

    # The group grant lets the reader save packages: the unchanged permissions they send
    # back need no right; changing them would.
    mine = world.reader.get_code_env("PYTHON", "shared_env").get_settings()
    assert mine.get_raw()["canUpdateCodeEnv"] is True
    assert mine.get_raw()["canManageUsersCodeEnv"] is False
    mine.get_raw()["specPackageList"] = "alpha\n"
    mine.save()
    mine.get_raw()["usableByAll"] = False
    with pytest.raises(DataikuException, match="may not change the permissions"):
        mine.save()

    # Usable by all: a user in no group may read and save unchanged, not change packages.
    theirs = world.nobody.get_code_env("python", "shared_env").get_settings()
    assert theirs.get_raw()["specPackageList"] == "alpha\n"
    assert theirs.get_raw()["resourcesInitScript"] == ""
    theirs.save()
    theirs.get_raw()["specPackageList"] = "beta\n"
    with pytest.raises(DataikuException, match="UnauthorizedException: you may not change"):
        theirs.save()
    world.admin.get_code_env("PYTHON", "shared_env").delete()


def test_a_user_without_the_create_right_is_told_why(world: World) -> None:
    params = {"pythonInterpreter": world.interpreter}
    with pytest.raises(DataikuException) as refused:
        world.nobody.create_code_env("PYTHON", "not_mine", "DESIGN_MANAGED", params)
    assert "you may not create code envs; ask an administrator" in str(refused.value)
    assert "not_mine" not in names(world.admin)


def test_a_failing_update_is_reported_as_the_client_expects(world: World) -> None:
    params = {"pythonInterpreter": world.interpreter, "installCorePackages": False}
    env = world.admin.create_code_env("PYTHON", "failing_env", "DESIGN_MANAGED", params)
    settings = env.get_settings()
    settings.get_raw()["specPackageList"] = "no-such-package-anywhere\n"
    settings.save()

    # wait=True: the client raises its plain Exception from the result's messages.
    with pytest.raises(Exception, match="Env update failed") as failed:
        env.update_packages()
    assert not isinstance(failed.value, DataikuException)
    assert "no-such-package-anywhere" in str(failed.value)

    # wait=False: the script reads the result and its messages itself.
    future = env.update_packages(wait=False)
    assert isinstance(future, DSSFuture)
    result = future.wait_for_result()
    assert result["messages"]["error"] is True and result["messages"]["fatal"] is True
    message = result["messages"]["messages"][0]
    assert message["severity"] == "ERROR" and message["code"] == "ERR_CODEENV_UPDATE_FAILED"
    assert "no-such-package-anywhere" in env.get_log(result["logFileName"])
    env.delete()


def test_futures_with_wait_false_are_polled_to_the_end(world: World) -> None:
    params = {"pythonInterpreter": world.interpreter, "installCorePackages": False}
    future = world.admin.create_code_env(
        "PYTHON", "future_env", "DESIGN_MANAGED", params, wait=False
    )
    assert isinstance(future, DSSFuture) and future.job_id
    result = future.wait_for_result()
    assert result["messages"]["success"] is True and result["envName"] == "future_env"
    assert future.get_result() == result  # fetched again: the future stays readable

    env = world.admin.get_code_env("PYTHON", "future_env")
    up_to_date = env.update_packages(wait=False)
    assert up_to_date.peek_state()["hasResult"] is True
    assert up_to_date.get_result()["codenv"]["upToDate"] is True

    deleting = env.delete(wait=False)
    assert deleting.get_result()["messages"]["success"] is True
    assert "future_env" not in names(world.admin)


def test_a_preset_is_a_package_set(world: World) -> None:
    with pytest.raises(DataikuException, match=r"unknown preset 'INSTALL_ML'.*tiny"):
        world.admin.create_code_env_from_python_preset("INSTALL_ML")
    created = world.admin.create_code_env_from_python_preset("tiny", prefix="p_")
    assert created["envName"] == "p_tiny" and created["messages"]["success"] is True
    env = world.admin.get_code_env("PYTHON", "p_tiny")
    assert "beta==2.0" in lines(env.get_settings().get_raw()["actualPackageList"])
    again = world.admin.create_code_env_from_python_preset("tiny", prefix="p_")
    assert again["codenv"]["upToDate"] is True
    # An env of that name without the set: the set is added to it and it is updated.
    params = {"pythonInterpreter": world.interpreter, "installCorePackages": False}
    world.admin.create_code_env("PYTHON", "q_tiny", "DESIGN_MANAGED", params)
    future = world.admin.create_code_env_from_python_preset("tiny", prefix="q_", wait=False)
    assert future.wait_for_result()["messages"]["success"] is True
    updated = world.admin.get_code_env("PYTHON", "q_tiny").get_settings().get_raw()
    assert updated["codenv"]["packageSets"] == ["tiny"]
    assert "beta==2.0" in lines(updated["actualPackageList"])
    refused = world.admin.create_code_env_from_python_preset
    with pytest.raises(DataikuException, match="already exists"):
        refused("tiny", prefix="p_", allow_update=False)
    for name in ("p_tiny", "q_tiny"):
        world.admin.get_code_env("PYTHON", name).delete()


# ---- raw HTTP: what the newest client does not send ------------------------------------


def test_an_old_client_without_wait_gets_the_result(world: World) -> None:
    with world.http() as http:
        body = json.dumps({"pythonInterpreter": world.interpreter, "installCorePackages": False})
        created = http.post("/admin/code-envs/PYTHON/old_client", content=body)
        assert created.status_code == 200, created.text
        assert "jobId" not in created.json()
        assert created.json()["messages"]["success"] is True
        gone = http.delete("/admin/code-envs/PYTHON/old_client")
        assert gone.status_code == 200 and gone.json()["messages"]["error"] is False


def test_a_settings_body_without_content_type_lowercase_python_and_the_doc_prefix(
    world: World,
) -> None:
    params = {"pythonInterpreter": world.interpreter, "installCorePackages": False}
    world.admin.create_code_env("PYTHON", "raw_env", "DESIGN_MANAGED", params)
    with world.http() as http:
        shown = http.get("/admin/code-envs/python/raw_env").json()
        shown["specPackageList"] = "alpha\n"
        saved = http.put("/admin/code-envs/python/raw_env", content=json.dumps(shown))
        assert "content-type" not in saved.request.headers
        assert saved.status_code == 200 and saved.json()["specPackageList"] == "alpha\n"
        doc = httpx.get(
            f"{world.server.url}{DOC_PREFIX}/admin/code-envs/PYTHON/raw_env",
            auth=("", world.admin_token),  # the token as Basic password, as DSS's doc says
        )
        assert doc.status_code == 200 and doc.json()["specPackageList"] == "alpha\n"
        logs = http.get("/admin/code-envs/PYTHON/raw_env/logs").json()
        assert http.get(f"/admin/code-envs/PYTHON/raw_env/logs/{logs[0]['name']}").text
        version = http.get("/admin/code-envs/PYTHON/raw_env/PROJ/version").json()
        assert version == {"version": None, "bundleId": None}
    world.admin.get_code_env("PYTHON", "raw_env").delete()


def _refused(response: httpx.Response, words: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["errorType"] == "java.lang.IllegalArgumentException"
    assert words in body["detailedMessage"], body
    return dict(body)


def test_what_codenv_lacks_is_refused_with_400(world: World) -> None:
    python = {"pythonInterpreter": world.interpreter}
    with world.http() as http:
        r_env = _refused(http.post("/admin/code-envs/R/r_env", content="{}"), "Python code envs")
        assert r_env["code"] == "ERR_CODEENV_UNSUPPORTED_OPERATION_FOR_ENV_TYPE"
        conda = http.post("/admin/code-envs/PYTHON/c", content=json.dumps({**python, "conda": 1}))
        assert conda.status_code == 400  # not a boolean: refused as invalid
        conda = http.post(
            "/admin/code-envs/PYTHON/c", content=json.dumps({**python, "conda": True})
        )
        _refused(conda, "conda")
        mode = http.post(
            "/admin/code-envs/PYTHON/c",
            content=json.dumps({"deploymentMode": "DESIGN_NON_MANAGED"}),
        )
        _refused(mode, "DESIGN_NON_MANAGED")
        py2 = http.post(
            "/admin/code-envs/PYTHON/c", content=json.dumps({"pythonInterpreter": "PYTHON27"})
        )
        _refused(py2, "Python 2.7 is not supported")
        _refused(http.post("/admin/code-envs/internal-env/create"), "internal code envs")
        world.admin.create_code_env(
            "PYTHON", "kept_env", "DESIGN_MANAGED", {**python, "installCorePackages": False}
        )
        shown = http.get("/admin/code-envs/PYTHON/kept_env").json()
        _refused(
            http.put(
                "/admin/code-envs/PYTHON/kept_env",
                content=json.dumps({**shown, "specCondaEnvironment": "x"}),
            ),
            "conda",
        )
        _refused(
            http.put(
                "/admin/code-envs/PYTHON/kept_env",
                content=json.dumps({**shown, "allContainerConfs": True}),
            ),
            "container images",
        )
        _refused(
            http.post(
                "/admin/code-envs/PYTHON/kept_env/packages", params={"versionToUpdate": "v1"}
            ),
            "automation versions",
        )
        missing = http.get("/admin/code-envs/R/kept_env")
        assert missing.status_code == 404
        assert "c" not in names(world.admin)
        http.delete("/admin/code-envs/PYTHON/kept_env")


def test_timings_of_reads(world: World) -> None:
    """A settings read and a list stay quick (they are what scripts poll)."""
    params = {"pythonInterpreter": world.interpreter, "installCorePackages": False}
    env = world.admin.create_code_env("PYTHON", "timed_env", "DESIGN_MANAGED", params)
    started = time.monotonic()
    for _ in range(5):
        env.get_settings()
    settings_read = (time.monotonic() - started) / 5
    started = time.monotonic()
    for _ in range(5):
        world.admin.list_code_envs()
    listed = (time.monotonic() - started) / 5
    print(f"\nsettings read {settings_read * 1000:.0f} ms, list {listed * 1000:.0f} ms")
    assert settings_read < 2 and listed < 2
    env.delete()
