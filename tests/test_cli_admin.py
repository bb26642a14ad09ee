"""What administrators run the node with, through the real CLI in local mode and against a real
server (remote mode), with the same output: cancelling builds, the node's settings, the kept
resources of deleted envs and browser sessions."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codenv.services.actor import Actor
from conftest import Node
from support.access import PASSWORD, user_in
from support.pkgindex import PackageIndex
from support.samples import slow_archive
from support.server import RunningServer, running_server

CANCELLING = "cancelling: the build stops within a second or so"


class Both:
    """One home, driven by the CLI in local mode (`local`) and through its server (`remote`)."""

    def __init__(self, local: Node, remote: Node, server: RunningServer) -> None:
        self.local, self.remote, self.server = local, remote, server

    def same(self, *args: str, check: bool = True) -> str:
        """What both modes print (stdout, or for a failure: exit code and stderr), once."""
        here, there = (mode.run(*args, check=check) for mode in (self.local, self.remote))
        assert (here.returncode, here.stdout, here.stderr) == (
            there.returncode,
            there.stdout,
            there.stderr,
        ), args
        return here.stdout if here.returncode == 0 else f"{here.returncode} {here.stderr}"


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex) -> Iterator[Both]:
    base = tmp_path_factory.mktemp("cli-admin")
    local = Node(base / "home", sample_index.url)
    # One build at a time: a second one waits in the queue, where it is cancelled at once.
    with running_server(local.home, sample_index.url, {"CODENV_MAX_PARALLEL_BUILDS": "1"}) as up:
        extra = {"CODENV_URL": up.url, "CODENV_TOKEN": up.admin_token()}
        yield Both(local, Node(base / "elsewhere", sample_index.url, extra), up)


def _builds(node: Node, name: str) -> list[dict[str, object]]:
    return list(json.loads(node.run("builds", name, "--json").stdout))


def _wait_for(node: Node, name: str, status: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while (latest := _builds(node, name)[0])["status"] != status:
        assert time.monotonic() < deadline, f"the build of {name} never became {status}"
        time.sleep(0.2)
    return latest


def _active(node: Node, name: str) -> object:
    return json.loads(node.run("show", name, "--json").stdout)["active_revision"]


def test_cancel_a_running_build_keeps_the_previous_revision(node: Node, newest: str) -> None:
    node.run("create", "demo", "--python", newest, "--no-core-packages")
    slow = slow_archive(node.allow_local_sources(), "slowpkg", "1.0", seconds=60)
    node.run("save", "demo", "--add", str(slow))
    build_id = node.run("update", "demo", "--no-wait").stdout.strip()
    _wait_for(node, "demo", "running")

    asked = node.run("cancel", build_id)
    assert asked.stdout == f"build {build_id} of demo: {CANCELLING}\n"
    started = time.monotonic()
    followed = node.run("logs", "demo", "--follow", check=False)
    assert time.monotonic() - started < 20
    assert (followed.returncode, followed.stderr) == (
        4,
        f"error: build {build_id} was cancelled\n",
    )

    (latest, first) = _builds(node, "demo")
    assert (latest["id"], latest["status"], first["status"]) == (build_id, "cancelled", "succeeded")
    assert _active(node, "demo") == 1
    assert not (node.home / "envs" / "demo" / "revisions" / "2").exists()
    again = node.run("cancel", build_id, "--json", check=False)
    assert (again.returncode, again.stderr) == (
        5,
        f"error [build]: build {build_id} is already cancelled\n",
    )
    assert json.loads(again.stdout)["error"]["code"] == "conflict"


def test_cancel_in_both_modes(both: Both, newest: str) -> None:
    local, remote = both.local, both.remote
    remote.run("create", "runner", "--python", newest, "--no-core-packages")
    slow = slow_archive(local.allow_local_sources(), "slowremote", "1.0", seconds=60)
    remote.run("save", "runner", "--add", str(slow))
    waiting = remote.popen("update", "runner")
    running = str(_wait_for(remote, "runner", "running")["id"])
    queued = remote.run(
        "create", "waiter", "--python", newest, "--no-core-packages", "--no-wait"
    ).stdout.strip()

    cancelled = json.loads(local.run("cancel", queued, "--json").stdout)
    assert (cancelled["id"], cancelled["status"]) == (queued, "cancelled")
    assert remote.run("cancel", running).stdout == f"build {running} of runner: {CANCELLING}\n"
    assert waiting.wait(timeout=30) == 4  # the update that waited for it, told so
    assert waiting.stderr and waiting.stderr.read().endswith(
        f"error: build {running} was cancelled\n"
    )
    ended = remote.run("logs", "runner", "--follow", check=False)
    assert (ended.returncode, ended.stderr) == (4, f"error: build {running} was cancelled\n")
    assert _active(local, "runner") == 1 and _active(local, "waiter") is None

    assert both.same("cancel", queued, check=False) == (
        f"5 error [build]: build {queued} is already cancelled\n"
    )
    assert both.same("cancel", "nothing", check=False) == "3 error [build]: no build 'nothing'\n"


def test_settings_in_both_modes(both: Both, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    sources.mkdir()
    both.remote.run("settings", "set-trusted-proxies", "10.0.0.0/8", "192.0.2.1")
    set_roots = both.local.run("settings", "set-local-source-roots", str(sources))
    assert set_roots.stdout == f"local source roots: {sources.resolve()}\n"
    off = both.local.run("settings", "set-sandbox", "off")
    assert off.stdout == "sandbox: off\n" and "warning: the sandbox is off" in off.stderr

    shown = both.same("settings", "show").splitlines()
    assert shown[:2] == ["sandbox: off", shown[1]] and shown[1].startswith("warning: ")
    assert f"allowed_local_source_roots: {sources.resolve()}" in shown
    assert "trusted_proxies: 10.0.0.0/8 192.0.2.1/32" in shown
    settings = json.loads(both.same("settings", "show", "--json"))
    assert settings["sandbox"] == "off"

    assert both.remote.run("settings", "set-sandbox", "required").stdout == "sandbox: required\n"
    assert both.same("settings", "show").startswith("sandbox: required\nnode_kind: design\n")
    for command in (
        ("settings", "set-local-source-roots", "relative/dir"),
        ("settings", "set-trusted-proxies", "not-an-address"),
    ):
        failed = both.same(*command, check=False)
        assert failed.startswith("2 error [") and failed.count("\n") == 1, failed
    assert both.same("settings", "set-sandbox", "sometimes", check=False).startswith("2 ")
    both.local.run("settings", "set-local-source-roots")
    cleared = both.remote.run("settings", "set-trusted-proxies").stdout
    assert cleared == "trusted proxies: (none)\n"


def _kept_line(stdout: str, name: str) -> str:
    found = re.fullmatch(
        rf"deleted {name}\nits resources are kept as ({name}-\d{{8}}T\d{{6}}Z), for "
        rf"administrators: `codenv resources kept` lists them, `codenv resources adopt "
        rf"\1 NAME` gives them to an env\n",
        stdout,
    )
    assert found, stdout
    return found.group(1)


def test_kept_resources_in_both_modes(both: Both, newest: str, tmp_path: Path) -> None:
    local, remote = both.local, both.remote
    data = tmp_path / "model.bin"
    data.write_text("weights")
    for name in ("keepone", "keeptwo", "scratch", "heir"):
        remote.run("create", name, "--python", newest, "--no-core-packages")
    for name in ("keepone", "keeptwo", "scratch"):
        remote.run("resources", "put", name, str(data))

    one = _kept_line(remote.run("delete", "keepone", "--yes", "--keep-resources").stdout, "keepone")
    two = _kept_line(local.run("delete", "keeptwo", "--yes", "--keep-resources").stdout, "keeptwo")
    gone = remote.run("delete", "scratch", "--yes", "--delete-resources")
    assert gone.stdout == "deleted scratch\n"

    listed = json.loads(both.same("resources", "kept", "--json"))
    assert [(item["id"], item["env"], item["env_vars"]) for item in listed] == [
        (one, "keepone", False),
        (two, "keeptwo", False),
    ]
    table = both.same("resources", "kept")
    assert one in table and "keeptwo" in table

    adopted = local.run("resources", "adopt", one, "heir")
    assert adopted.stdout == f"heir: its resources are now those kept as {one}\n"
    assert (local.home / "envs" / "heir" / "resources" / "model.bin").read_text() == "weights"
    taken = both.same("resources", "adopt", two, "heir", check=False)
    assert taken == "5 error [name]: code env 'heir' has resources of its own already\n"

    assert remote.run("resources", "drop", two, "--yes").stdout == f"dropped {two}\n"
    assert json.loads(both.same("resources", "kept", "--json")) == []
    assert both.same("resources", "drop", two, "--yes", check=False) == (
        f"3 error [kept]: no kept resources named {two!r}\n"
    )


def test_a_name_with_dots_or_slashes_reaches_no_other_route(both: Both) -> None:
    """Remote mode puts names and ids in request paths: `..` or `/` in one names nothing."""
    for args in (
        ("show", "../sessions"),
        ("resources", "drop", "..", "--yes"),
        ("builds", ".."),
        ("cancel", "../../sessions/1"),
    ):
        failed = both.remote.run(*args, check=False)
        assert failed.returncode == 3 and failed.stderr.count("\n") == 1, (args, failed.stderr)


@pytest.fixture
def plain_session(both: Both) -> Iterator[str]:
    """A user logged in to the console in a browser (a session), and the user's API token."""
    user_in(both.server.app, Actor.local_admin(), "plainuser")
    browser = both.server.login("plainuser", PASSWORD)
    try:
        token = browser.post("/api/v1/tokens", json={"name": "mine"}).json()["secret"]
        yield str(token)
    finally:
        browser.close()


def test_sessions_in_both_modes(both: Both, plain_session: str) -> None:
    local, remote = both.local, both.remote
    listed = json.loads(both.same("sessions", "list", "--json"))
    assert {item["user"] for item in listed} >= {"admin", "plainuser"}
    (mine,) = json.loads(both.same("sessions", "list", "--user", "plainuser", "--json"))
    table = both.same("sessions", "list")
    assert f"│ {mine['id']} " in table and "plainuser" in table

    ended = local.run("sessions", "end", str(mine["id"]))
    assert ended.stdout == f"ended session {mine['id']} of plainuser\n"
    assert json.loads(both.same("sessions", "list", "--user", "plainuser", "--json")) == []
    assert both.same("sessions", "end", str(mine["id"]), check=False) == (
        f"3 error [session]: no session #{mine['id']}\n"
    )

    admins = len(json.loads(remote.run("sessions", "list", "--user", "admin", "--json").stdout))
    all_of_admin = remote.run("sessions", "end", "--user", "admin")
    assert all_of_admin.stdout == f"ended {admins} session{'' if admins == 1 else 's'} of admin\n"
    assert json.loads(both.same("sessions", "list", "--json")) == []
    assert both.same("sessions", "end", check=False).startswith("2 error [session]: give ")
    assert both.same("sessions", "end", "--user", "nobody", check=False) == (
        "3 error [user]: no user named 'nobody'\n"
    )

    plain = Node(
        remote.home, remote.index_url, {**remote.environ_extra, "CODENV_TOKEN": plain_session}
    )
    for args in (
        ("sessions", "list"),
        ("sessions", "end", "--user", "admin"),
        ("resources", "kept"),
    ):
        refused = plain.run(*args, check=False)
        assert refused.returncode == 5 and "only an administrator may" in refused.stderr, args
