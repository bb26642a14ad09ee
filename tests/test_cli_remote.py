"""Remote mode: the CLI through a server (`--url`, token) prints what local mode prints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from codenv.api.schemas import SaveSpecBody, SpecBody
from codenv.cli.progress import follow_log
from codenv.cli.remote_backend import RemoteBackend, error_of
from codenv.domain.errors import TooManyAttempts
from codenv.domain.spec import EnvSpec, SpecChanges, apply_changes
from conftest import Node
from support.pkgindex import PackageIndex
from support.server import RunningServer, running_server


@pytest.fixture
def served(tmp_path: Path, sample_index: PackageIndex) -> Iterator[tuple[Node, RunningServer]]:
    node = Node(tmp_path / "home", sample_index.url)
    with running_server(node.home, sample_index.url) as server:
        yield node, server


def test_remote_mode_matches_local_mode(served: tuple[Node, RunningServer], newest: str) -> None:
    node, server = served
    remote = Node(
        node.home.parent / "elsewhere",
        node.index_url,
        {"CODENV_URL": server.url, "CODENV_TOKEN": server.admin_token()},
    )

    built = remote.run("create", "demo", "--python", newest, "--no-core-packages")
    assert "demo: revision 1 is active" in built.stdout and "==> " in built.stderr
    remote.run("save", "demo", "--add", "beta", "--update")
    for command in (
        ("list",),
        ("show", "demo"),
        ("installed", "demo"),
        ("revisions", "demo"),
        ("sets",),
        ("show", "demo", "--json"),
        ("builds", "demo", "--json"),
    ):
        assert remote.run(*command).stdout == node.run(*command).stdout, command
    assert remote.run("logs", "demo").stdout == node.run("logs", "demo").stdout

    missing = remote.run("show", "nothing", check=False)
    assert (missing.returncode, missing.stderr) == (
        3,
        "error [name]: no code env named 'nothing'\n",
    )
    invalid = remote.run("save", "demo", "--add", "beta[", check=False)
    assert invalid.returncode == 2 and "error [add]: --add 'beta['" in invalid.stderr
    rolled = remote.run("rollback", "demo", "1", "--json")
    assert json.loads(rolled.stdout)["number"] == 1
    local_only = remote.run("run", "demo", "--", "python", "-V", check=False)
    assert local_only.returncode == 1 and "runs on the node itself" in local_only.stderr
    assert not (node.home.parent / "elsewhere").exists(), "remote mode touched no local home"


def test_remote_mode_needs_a_token(served: tuple[Node, RunningServer]) -> None:
    node, server = served
    remote = Node(node.home, node.index_url, {"CODENV_URL": server.url, "CODENV_TOKEN": ""})
    refused = remote.run("list", check=False)
    assert refused.returncode == 1 and "needs an API token" in refused.stderr
    remote.environ_extra["CODENV_TOKEN"] = "cdv_not-a-real-token"
    assert remote.run("list", check=False).returncode == 5


def test_remote_backend_sends_every_spec_field(
    served: tuple[Node, RunningServer], newest: str, sample_index: PackageIndex
) -> None:
    """What local mode hands to the services reaches them through the API too, field by field."""
    _, server = served
    spec = EnvSpec(
        python=newest,
        requested="alpha\n",
        description="every field",
        resources_init_script="print('init')\n",
        run_init_script_on_update=False,
        run_init_script_on_api_node=False,
        install_options=("--index-url", sample_index.url),
        venv_options=(),
    )
    backend = RemoteBackend(server.url, server.admin_token())
    try:
        build_id = backend.create("every", spec)["build_id"]
        log = "".join(follow_log(backend, build_id, 0.1))  # until the build has ended
        assert backend.build(build_id)["status"] == "succeeded", log
        assert backend.show("every")["spec"] == spec.to_dict()

        changes = SpecChanges(
            description="saved",
            resources_init_script="print('saved')\n",
            run_init_script_on_update=True,
            run_init_script_on_api_node=True,
            venv_options=("--system-site-packages",),
        )
        expected = apply_changes(spec, changes).to_dict()
        assert backend.save("every", changes) == expected
        assert backend.show("every")["spec"] == expected
    finally:
        backend.close()


def test_the_api_takes_every_spec_field() -> None:
    """A field added to the spec (or to its changes) is one the remote CLI can send."""
    assert set(EnvSpec.__dataclass_fields__) <= set(SpecBody.model_fields)
    assert set(SpecChanges.__dataclass_fields__) <= set(SaveSpecBody.model_fields)


def test_too_many_attempts_keeps_retry_after(served: tuple[Node, RunningServer]) -> None:
    _, server = served
    with server.client() as client:
        for _ in range(30):
            answer = client.post("/api/v1/session", json={"name": "admin", "password": "wrong"})
            if answer.status_code == 429:
                break
    assert answer.status_code == 429
    error = error_of(answer)
    assert isinstance(error, TooManyAttempts)
    assert error.retry_after == int(answer.headers["Retry-After"]) > 0
