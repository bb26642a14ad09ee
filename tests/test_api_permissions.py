"""The permission matrix over real HTTP: every role by every operation, forced ones included.

One server (uvicorn on loopback) for the module, set up through the API as an administrator:

* groups `g-use`, `g-update`, `g-manage` granted use / update / manage_users on `private`;
* `creator` (group `creators`, may create code envs) creates and owns `private`;
* `manager` (group `managers`, may manage all code envs), `boss` (group `admins`,
  administrator), `plain` (no group);
* envs `private` (owned by `creator`, the three grants), `public` (usable by all) and `other`
  (no grants), built once; a throwaway env per allowed delete.

Every role calls with an API token of its own (anonymous: no credentials at all). Expected:
401 for anonymous everywhere; 404 (worded as for a missing env) for an env the role may not
use; 403 for one it may use but not change as asked; the route's 2xx otherwise. The requests a
user's page would never offer (a "use" user saving a spec, a plain user granting itself rights,
a creator deleting its env, a browser POST without its CSRF token, …) are sent as well.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.access import PASSWORD
from support.pkgindex import PackageIndex
from support.server import RunningServer, running_server, wait_for_build

pytestmark = pytest.mark.xdist_group("api-permissions")

API = "/api/v1"
ROLES = ("anonymous", "plain", "use", "update", "manage_users", "owner", "manage_all", "admin")
KINDS = ("private", "public", "other")
# role → (user, its group, the group's global rights); the group grants on `private` follow.
USERS: dict[str, tuple[str, str | None, dict[str, bool]]] = {
    "plain": ("plain", None, {}),
    "use": ("user-use", "g-use", {}),
    "update": ("user-update", "g-update", {}),
    "manage_users": ("user-manage", "g-manage", {}),
    "owner": ("creator", "creators", {"may_create_envs": True}),
    "manage_all": ("manager", "managers", {"may_manage_all_envs": True}),
    "admin": ("boss", "admins", {"administrator": True}),
}
GRANTS = [["g-use", "use"], ["g-update", "update"], ["g-manage", "manage_users"]]

# --- the env operations: what each role may do on each kind of env ------------------------

NONE, USE, UPDATE, MANAGE, ALL = 0, 1, 2, 3, 4
ACCESS = {
    #                private  public  other
    "plain":        (NONE,    USE,    NONE),
    "use":          (USE,     USE,    NONE),
    "update":       (UPDATE,  USE,    NONE),
    "manage_users": (MANAGE,  USE,    NONE),
    "owner":        (MANAGE,  USE,    NONE),
    "manage_all":   (ALL,     ALL,    ALL),
    "admin":        (ALL,     ALL,    ALL),
}  # fmt: skip
# operation → (the level it needs, its status when allowed)
ENV_OPS = {
    "show":            (USE,    200),
    "installed":       (USE,    200),
    "revisions":       (USE,    200),
    "builds":          (USE,    200),
    "build":           (USE,    200),
    "log":             (USE,    200),
    "log_stream":      (USE,    200),
    "get_permissions": (USE,    200),
    "get_script":      (UPDATE, 200),  # it may hold secrets
    "vars":            (USE,    200),
    "ls":              (USE,    200),
    "download":        (USE,    200),
    "save":            (UPDATE, 200),
    "update":          (UPDATE, 200),
    "rollback":        (UPDATE, 200),
    "put_script":      (UPDATE, 200),
    "run_init":        (UPDATE, 202),
    "upload":          (UPDATE, 200),
    "remove_file":     (UPDATE, 204),
    "set_permissions": (MANAGE, 200),
    "delete":          (ALL,    200),
}  # fmt: skip


def level(role: str, kind: str) -> int:
    return ACCESS[role][KINDS.index(kind)]


def expected_env_status(role: str, kind: str, op: str) -> int:
    if role == "anonymous":
        return 401
    need, allowed = ENV_OPS[op]
    have = level(role, kind)
    if have >= need:
        return allowed
    return 404 if have == NONE else 403


# --- the node-wide operations: op → expected status per role ------------------------------

GLOBAL_OPS = {
    #                     anon plain  use  upd  mgr  owner m-all admin
    "me":                (401, 200,  200, 200, 200, 200,  200,  200),
    "pythons":           (401, 200,  200, 200, 200, 200,  200,  200),
    "sets":              (401, 200,  200, 200, 200, 200,  200,  200),
    "kernels":           (401, 200,  200, 200, 200, 200,  200,  200),
    "create_env":        (401, 403,  403, 403, 403, 202,  403,  202),
    "submit_request":    (401, 201,  201, 201, 201, 201,  201,  201),
    "read_request":      (401, 200,  404, 404, 404, 404,  404,  200),  # plain's own request
    "inbox":             (401, 403,  403, 403, 403, 403,  403,  200),
    "approve":           (401, 403,  403, 403, 403, 403,  403,  200),
    "reject":            (401, 403,  403, 403, 403, 403,  403,  200),
    "list_users":        (401, 403,  403, 403, 403, 403,  403,  200),
    "create_user":       (401, 403,  403, 403, 403, 403,  403,  201),
    "change_user":       (401, 403,  403, 403, 403, 403,  403,  200),
    "set_password":      (401, 404,  404, 404, 404, 404,  404,  204),  # someone else's
    "list_groups":       (401, 403,  403, 403, 403, 403,  403,  200),
    "create_group":      (401, 403,  403, 403, 403, 403,  403,  201),  # an administrators' one
    "group_rights":      (401, 403,  403, 403, 403, 403,  403,  200),
    "join_admins":       (401, 403,  403, 403, 403, 403,  403,  200),
    "token_for_other":   (401, 403,  403, 403, 403, 403,  403,  201),
    "all_tokens":        (401, 403,  403, 403, 403, 403,  403,  200),
    "revoke_other":      (401, 404,  404, 404, 404, 404,  404,  200),
    "audit":             (401, 403,  403, 403, 403, 403,  403,  200),
    "settings":          (401, 403,  403, 403, 403, 403,  403,  200),
    "install_options":   (401, 403,  403, 403, 403, 403,  403,  200),
    "venv_options":      (401, 403,  403, 403, 403, 403,  403,  200),
    "allow_requests":    (401, 403,  403, 403, 403, 403,  403,  200),
    "add_python":        (401, 403,  403, 403, 403, 403,  403,  201),
}  # fmt: skip
ERROR_CODES = {401: "authentication_failed", 403: "permission_denied", 404: "not_found"}


@dataclass
class World:
    server: RunningServer
    setup: httpx.Client  # the initial administrator's token: arranges and checks, never tested
    clients: dict[str, httpx.Client]
    python: str
    build_ids: dict[str, str]  # kind → the build that made it
    doomed: dict[tuple[str, str], str]  # (role, kind) → an env for that role to delete
    requests: dict[str, int] = field(default_factory=dict)  # "approve"/"reject"/"read" → id
    victim_token: int = 0  # one of `admin`'s tokens, for the revoke case
    interpreter: str = ""
    install_options: list[str] = field(default_factory=list)
    venv_options: list[str] = field(default_factory=list)


def _ok(response: httpx.Response) -> Any:
    assert response.is_success, f"{response.request.method} {response.url}: {response.text}"
    return response.json() if response.content else None


def _create(client: httpx.Client, name: str, python: str) -> str:
    body = {"name": name, "python": python, "install_core_packages": False, "requested": "alpha"}
    return str(_ok(client.post(f"{API}/envs", json=body))["build_id"])


def _set_kind(setup: httpx.Client, name: str, kind: str) -> None:
    body = {"usable_by_all": kind == "public", "grants": GRANTS if kind == "private" else []}
    _ok(setup.put(f"{API}/envs/{name}/permissions", json=body))


def _accounts(setup: httpx.Client) -> dict[str, str]:
    """The users and groups, and an API token per role (role → secret)."""
    secrets: dict[str, str] = {}
    for role, (user, group, rights) in USERS.items():
        if group is not None:
            _ok(setup.post(f"{API}/groups", json={"name": group, **rights}))
        body = {"name": user, "password": PASSWORD, "groups": [group] if group else []}
        _ok(setup.post(f"{API}/users", json=body))
        token = _ok(setup.post(f"{API}/tokens", json={"name": "matrix", "user": user}))
        secrets[role] = str(token["secret"])
    _ok(setup.post(f"{API}/users", json={"name": "spare", "password": PASSWORD}))
    return secrets


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, sample_index: PackageIndex, newest: str
) -> Iterator[World]:
    home = tmp_path_factory.mktemp("api-permissions") / "home"
    with running_server(home, sample_index.url) as server:
        setup = server.client(server.admin_token())
        secrets = _accounts(setup)
        clients = {role: server.client(secrets.get(role)) for role in ROLES}
        creator = clients["owner"]
        builds = {
            "private": _create(creator, "private", newest),
            "public": _create(setup, "public", newest),
            "other": _create(setup, "other", newest),
        }
        doomed: dict[tuple[str, str], str] = {}
        pending = list(builds.values())
        for role in ROLES[1:]:
            for kind in KINDS:
                if level(role, kind) == ALL:
                    name = doomed[(role, kind)] = f"doomed-{kind}-{role.replace('_', '-')}"
                    pending.append(_create(creator if kind == "private" else setup, name, newest))
        for build_id in pending:
            assert wait_for_build(setup, build_id)["status"] == "succeeded"
        for name in [*KINDS, *doomed.values()]:
            _set_kind(setup, name, name.split("-")[1] if name.startswith("doomed-") else name)
        for kind in KINDS:
            shared = f"{API}/envs/{kind}/resources/files/shared.txt"
            _ok(setup.put(shared, content=b"shared\n"))

        world = World(server, setup, clients, newest, builds, doomed)
        _ok(setup.put(f"{API}/settings/requests", json={"allow": True}))
        for purpose in ("approve", "reject", "read"):
            body = {"name": f"asked-{purpose}", "python": newest, "install_core_packages": False}
            world.requests[purpose] = int(
                _ok(clients["plain"].post(f"{API}/requests", json=body))["id"]
            )
        admin_login = server.login("admin", "admin-password-for-tests")
        victim = _ok(admin_login.post(f"{API}/tokens", json={"name": "victim"}))
        admin_login.close()
        world.victim_token = int(str(victim["id"]))
        settings = setup.get(f"{API}/settings").json()
        world.install_options = settings["install_options"]
        world.venv_options = settings["venv_options"]
        pythons = setup.get(f"{API}/pythons").json()["interpreters"]
        world.interpreter = next(
            item["path"] for item in pythons if item["version"].startswith(f"{newest}.")
        )
        try:
            yield world
        finally:
            for client in (setup, *clients.values()):
                client.close()


# --- the env operations, each one HTTP call -------------------------------------------------

EnvCall = Callable[[World, httpx.Client, str, str], httpx.Response]


def _env(kind: str, rest: str = "") -> str:
    return f"{API}/envs/{kind}{rest}"


def _run_init(w: World, c: httpx.Client, role: str, kind: str) -> httpx.Response:
    response = c.post(_env(kind, "/resources/init"))
    if response.status_code == 202:  # its build holds the env: let it end before going on
        wait_for_build(w.setup, response.json()["build_id"])
    return response


def _update(w: World, c: httpx.Client, role: str, kind: str) -> httpx.Response:
    response = c.post(_env(kind, "/update"), json={"rebuild": False})
    if response.status_code == 200:  # "already up to date": nothing was queued
        assert response.json()["up_to_date"] is True, response.text
    return response


def _remove_file(w: World, c: httpx.Client, role: str, kind: str) -> httpx.Response:
    _ok(w.setup.put(_env(kind, "/resources/files/doomed.txt"), content=b"x"))
    return c.delete(_env(kind, "/resources/files/doomed.txt"))


def _delete(w: World, c: httpx.Client, role: str, kind: str) -> httpx.Response:
    # Allowed: a throwaway env of that kind; refused: the shared one, which must survive.
    return c.delete(_env(w.doomed.get((role, kind), kind)), params={"delete_resources": True})


ENV_CALLS: dict[str, EnvCall] = {
    "show": lambda w, c, r, k: c.get(_env(k)),
    "installed": lambda w, c, r, k: c.get(_env(k, "/installed")),
    "revisions": lambda w, c, r, k: c.get(_env(k, "/revisions")),
    "builds": lambda w, c, r, k: c.get(_env(k, "/builds")),
    "build": lambda w, c, r, k: c.get(f"{API}/builds/{w.build_ids[k]}"),
    "log": lambda w, c, r, k: c.get(f"{API}/builds/{w.build_ids[k]}/log"),
    "log_stream": lambda w, c, r, k: c.get(f"{API}/builds/{w.build_ids[k]}/log/stream"),
    "get_permissions": lambda w, c, r, k: c.get(_env(k, "/permissions")),
    "get_script": lambda w, c, r, k: c.get(_env(k, "/resources/script")),
    "vars": lambda w, c, r, k: c.get(_env(k, "/resources/vars")),
    "ls": lambda w, c, r, k: c.get(_env(k, "/resources/files")),
    "download": lambda w, c, r, k: c.get(_env(k, "/resources/content/shared.txt")),
    "save": lambda w, c, r, k: c.patch(_env(k, "/spec"), json={"description": f"by {r}"}),
    "update": _update,
    "rollback": lambda w, c, r, k: c.post(_env(k, "/rollback"), json={"revision": 1}),
    "put_script": lambda w, c, r, k: c.put(
        _env(k, "/resources/script"), json={"run_on_update": True}
    ),
    "run_init": _run_init,
    "upload": lambda w, c, r, k: c.put(_env(k, "/resources/files/x.txt"), content=b"data\n"),
    "remove_file": _remove_file,
    # The permissions as they are: an allowed call changes nothing for the later cases.
    "set_permissions": lambda w, c, r, k: c.put(
        _env(k, "/permissions"), json={"usable_by_all": k == "public"}
    ),
    "delete": _delete,
}
assert set(ENV_CALLS) == set(ENV_OPS)


def _check_error(response: httpx.Response, status: int) -> None:
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == ERROR_CODES[status], body


ENV_CASES = [
    pytest.param(role, kind, op, id=f"{kind}-{role}-{op}-{expected_env_status(role, kind, op)}")
    for kind in KINDS
    for role in ROLES
    for op in ENV_OPS
]


@pytest.mark.parametrize(("role", "kind", "op"), ENV_CASES)
def test_env_operation(world: World, role: str, kind: str, op: str) -> None:
    expected = expected_env_status(role, kind, op)
    response = ENV_CALLS[op](world, world.clients[role], role, kind)
    assert response.status_code == expected, f"{role} {op} on {kind}: {response.text[:300]}"
    if expected in ERROR_CODES:
        _check_error(response, expected)
    if expected == 404 and op not in ("build", "log", "log_stream"):
        # Worded exactly as for a name that does not exist: nothing tells them apart.
        assert response.json()["error"]["message"] == f"no code env named {kind!r}"
    if op == "delete":
        gone = world.setup.get(_env(world.doomed.get((role, kind), kind))).status_code
        assert gone == (404 if expected == 200 else 200)


@pytest.mark.parametrize("role", ROLES)
def test_listing_shows_only_usable_envs(world: World, role: str) -> None:
    response = world.clients[role].get(f"{API}/envs")
    if role == "anonymous":
        assert response.status_code == 401
        _check_error(response, 401)
        return
    assert response.status_code == 200
    listed = {env["name"] for env in response.json()}
    # Throwaway and requested envs may be listed too; the three shared ones decide.
    assert listed & set(KINDS) == {kind for kind in KINDS if level(role, kind) != NONE}


@pytest.mark.parametrize("role", [role for role in ROLES if role != "anonymous"])
def test_capabilities_say_what_the_matrix_allows(world: World, role: str) -> None:
    """The env view's capability flags (what pages show controls for) follow the same rules."""
    listed = {env["name"]: env for env in world.clients[role].get(f"{API}/envs").json()}
    for kind in KINDS:
        have = level(role, kind)
        if have == NONE:
            continue
        expected = {
            "may_use": True,
            "may_update": have >= UPDATE,
            "may_manage_users": have >= MANAGE,
            "may_delete": have >= ALL,
        }
        shown = world.clients[role].get(_env(kind)).json()
        assert shown["capabilities"] == expected, (role, kind)
        assert listed[kind]["capabilities"] == expected, (role, kind)


# --- the node-wide operations -----------------------------------------------------------------

GlobalCall = Callable[[World, httpx.Client, str], httpx.Response]


def _slug(role: str) -> str:
    return role.replace("_", "-")


def _create_env(w: World, c: httpx.Client, role: str) -> httpx.Response:
    body = {
        "name": f"made-by-{_slug(role)}",
        "python": w.python,
        "install_core_packages": False,
        "requested": "alpha",
    }
    response = c.post(f"{API}/envs", json=body)
    if response.status_code == 202:
        assert wait_for_build(w.setup, response.json()["build_id"])["status"] == "succeeded"
        owner = _ok(w.setup.get(f"{API}/envs/made-by-{_slug(role)}"))["owner"]
        assert owner == USERS[role][0]
    return response


def _approve(w: World, c: httpx.Client, role: str) -> httpx.Response:
    response = c.post(f"{API}/requests/{w.requests['approve']}/approve")
    if response.status_code == 200:
        assert wait_for_build(w.setup, response.json()["build_id"])["status"] == "succeeded"
    return response


def _submit(w: World, c: httpx.Client, role: str) -> httpx.Response:
    body = {
        "name": f"wanted-by-{_slug(role)}",
        "python": w.python,
        "install_core_packages": False,
        "message": "please",
    }
    return c.post(f"{API}/requests", json=body)


GLOBAL_CALLS: dict[str, GlobalCall] = {
    "me": lambda w, c, r: c.get(f"{API}/me"),
    "pythons": lambda w, c, r: c.get(f"{API}/pythons"),
    "sets": lambda w, c, r: c.get(f"{API}/sets"),
    "kernels": lambda w, c, r: c.get(f"{API}/kernels"),
    "create_env": _create_env,
    "submit_request": _submit,
    "read_request": lambda w, c, r: c.get(f"{API}/requests/{w.requests['read']}"),
    "inbox": lambda w, c, r: c.get(f"{API}/requests"),
    "approve": _approve,
    "reject": lambda w, c, r: c.post(
        f"{API}/requests/{w.requests['reject']}/reject", json={"reason": "not now"}
    ),
    "list_users": lambda w, c, r: c.get(f"{API}/users"),
    "create_user": lambda w, c, r: c.post(
        f"{API}/users", json={"name": f"new-{_slug(r)}", "password": PASSWORD, "groups": ["admins"]}
    ),
    "change_user": lambda w, c, r: c.patch(f"{API}/users/spare", json={"display_name": r}),
    "set_password": lambda w, c, r: c.put(
        f"{API}/users/spare/password", json={"new_password": "taken over by " + r}
    ),
    "list_groups": lambda w, c, r: c.get(f"{API}/groups"),
    "create_group": lambda w, c, r: c.post(
        f"{API}/groups", json={"name": f"mine-{_slug(r)}", "administrator": True}
    ),
    # Rights and memberships the administrator already has: an allowed call changes nothing.
    "group_rights": lambda w, c, r: c.patch(f"{API}/groups/admins", json={"administrator": True}),
    "join_admins": lambda w, c, r: c.put(
        f"{API}/groups/admins/members/{USERS.get(r, ('boss',))[0]}"
    ),
    "token_for_other": lambda w, c, r: c.post(
        f"{API}/tokens", json={"name": f"stolen-by-{_slug(r)}", "user": "admin"}
    ),
    "all_tokens": lambda w, c, r: c.get(f"{API}/tokens", params={"all_users": True}),
    "revoke_other": lambda w, c, r: c.delete(f"{API}/tokens/{w.victim_token}"),
    "audit": lambda w, c, r: c.get(f"{API}/audit"),
    "settings": lambda w, c, r: c.get(f"{API}/settings"),
    "install_options": lambda w, c, r: c.put(
        f"{API}/settings/install-options", json={"tokens": w.install_options}
    ),
    "venv_options": lambda w, c, r: c.put(
        f"{API}/settings/venv-options", json={"tokens": w.venv_options}
    ),
    "allow_requests": lambda w, c, r: c.put(f"{API}/settings/requests", json={"allow": True}),
    "add_python": lambda w, c, r: c.post(f"{API}/pythons", json={"path": w.interpreter}),
}
assert set(GLOBAL_CALLS) == set(GLOBAL_OPS)

GLOBAL_CASES = [
    pytest.param(role, op, id=f"{role}-{op}-{GLOBAL_OPS[op][ROLES.index(role)]}")
    for op in GLOBAL_OPS
    for role in ROLES
]


@pytest.mark.parametrize(("role", "op"), GLOBAL_CASES)
def test_node_operation(world: World, role: str, op: str) -> None:
    expected = GLOBAL_OPS[op][ROLES.index(role)]
    response = GLOBAL_CALLS[op](world, world.clients[role], role)
    assert response.status_code == expected, f"{role} {op}: {response.text[:300]}"
    if expected in ERROR_CODES:
        _check_error(response, expected)


# --- forced requests, spelled out, with a check that nothing changed ------------------------


@dataclass(frozen=True)
class Forced:
    role: str
    method: str
    path: str
    body: object
    status: int
    # A GET (by the setup administrator) whose answer must be the same before and after.
    witness: str


FORCED = {
    "plain user sets the permissions of a usable-by-all env": Forced(
        "plain", "PUT", "/envs/public/permissions",
        {"grants": [["g-use", "manage_users"]]}, 403, "/envs/public/permissions",
    ),
    "plain user makes a hidden env usable by all": Forced(
        "plain", "PUT", "/envs/other/permissions", {"usable_by_all": True}, 404,
        "/envs/other/permissions",
    ),
    "use user saves the spec": Forced(
        "use", "PATCH", "/envs/private/spec", {"add": ["beta"]}, 403, "/envs/private",
    ),
    "use user saves and updates": Forced(
        "use", "PATCH", "/envs/private/spec", {"add": ["beta"], "update": True}, 403,
        "/envs/private/builds",
    ),
    "use user writes the init script": Forced(
        "use", "PUT", "/envs/private/resources/script", {"script": "rm -rf ~"}, 403,
        "/envs/private/resources/script",
    ),
    "use user runs the init script": Forced(
        "use", "POST", "/envs/private/resources/init", None, 403, "/envs/private/builds",
    ),
    "update user grants itself manage_users": Forced(
        "update", "PUT", "/envs/private/permissions",
        {"grants": [["g-update", "manage_users"]]}, 403, "/envs/private/permissions",
    ),
    "update user takes the env over": Forced(
        "update", "PUT", "/envs/private/permissions", {"owner": "user-update"}, 403,
        "/envs/private/permissions",
    ),
    "manage_users user takes the env over": Forced(
        "manage_users", "PUT", "/envs/private/permissions", {"owner": "user-manage"}, 403,
        "/envs/private/permissions",
    ),
    "creator deletes its own env": Forced(
        "owner", "DELETE", "/envs/private", None, 403, "/envs/private",
    ),
    "manage_users user deletes the env": Forced(
        "manage_users", "DELETE", "/envs/private", None, 403, "/envs/private",
    ),
    "creator rolls back an env it cannot see": Forced(
        "owner", "POST", "/envs/other/rollback", {"revision": 1}, 404, "/envs/other",
    ),
    "plain user deletes an env it cannot see": Forced(
        "plain", "DELETE", "/envs/other", None, 404, "/envs/other",
    ),
    "manage-all user creates an env": Forced(
        "manage_all", "POST", "/envs",
        {"name": "sneaky", "python": "3", "install_core_packages": False}, 403, "/envs",
    ),
    "plain user creates an administrators' group": Forced(
        "plain", "POST", "/groups", {"name": "coup", "administrator": True}, 403, "/groups",
    ),
    "creator joins the administrators": Forced(
        "owner", "PUT", "/groups/admins/members/creator", None, 403, "/groups",
    ),
    "manage-all user makes its group administrators": Forced(
        "manage_all", "PATCH", "/groups/managers", {"administrator": True}, 403, "/groups",
    ),
    "plain user makes a token for the administrator": Forced(
        "plain", "POST", "/tokens", {"name": "mine", "user": "admin"}, 403, "/tokens?all_users=1",
    ),
    "creator approves a request": Forced(
        "owner", "POST", "/requests/{approve}/approve", None, 403, "/requests",
    ),
    "manage-all user changes the install options": Forced(
        "manage_all", "PUT", "/settings/install-options",
        {"tokens": ["--index-url", "http://evil.invalid/simple"]}, 403, "/settings",
    ),
    "anonymous deletes an env": Forced(
        "anonymous", "DELETE", "/envs/public", None, 401, "/envs/public",
    ),
}  # fmt: skip


def _stable(answer: object) -> object:
    """The answer without the tokens' `last_used_at`, which using a token may move."""
    if isinstance(answer, list):
        return [_stable(item) for item in answer]
    if isinstance(answer, dict):
        return {k: _stable(v) for k, v in answer.items() if k != "last_used_at"}
    return answer


@pytest.mark.parametrize("case", list(FORCED), ids=list(FORCED))
def test_forced_request_is_refused_and_changes_nothing(world: World, case: str) -> None:
    forced = FORCED[case]
    path = API + forced.path.format(approve=world.requests["approve"])
    before = _stable(world.setup.get(API + forced.witness).json())
    kwargs = {} if forced.body is None else {"json": forced.body}
    response = world.clients[forced.role].request(forced.method, path, **kwargs)
    assert response.status_code == forced.status, response.text[:300]
    _check_error(response, forced.status)
    assert _stable(world.setup.get(API + forced.witness).json()) == before


def test_hidden_env_answers_exactly_as_a_missing_one(world: World) -> None:
    plain = world.clients["plain"]
    for route in ("", "/installed", "/revisions", "/builds", "/permissions", "/resources/files"):
        hidden = plain.get(_env("other", route))
        missing = plain.get(_env("nowhere", route))
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == {
            "error": {**missing.json()["error"], "message": "no code env named 'other'"}
        }
    build = plain.get(f"{API}/builds/{world.build_ids['other']}")
    nothing = plain.get(f"{API}/builds/no-such-build")
    assert build.status_code == nothing.status_code == 404
    assert build.json()["error"]["field"] == nothing.json()["error"]["field"] == "build"


def test_bad_credentials_are_anonymous(world: World) -> None:
    forged = world.server.client("cdv_not-a-real-token")
    try:
        for method, path in (("GET", "/envs"), ("GET", "/envs/public"), ("DELETE", "/envs/public")):
            response = forged.request(method, API + path)
            assert response.status_code == 401
            _check_error(response, 401)
    finally:
        forged.close()
    assert world.setup.get(_env("public")).status_code == 200


def test_browser_session_changes_need_the_csrf_header(world: World) -> None:
    browser = world.server.login("creator", PASSWORD)
    try:
        csrf = browser.headers.pop("X-CSRF-Token")
        before = _ok(world.setup.get(_env("private")))
        refused = [
            browser.patch(_env("private", "/spec"), json={"description": "forged"}),
            browser.post(_env("private", "/update"), json={}),
            browser.put(_env("private", "/permissions"), json={"usable_by_all": True}),
            browser.put(_env("private", "/resources/files/forged.txt"), content=b"x"),
            browser.delete(_env("private", "/resources/files/shared.txt")),
            browser.post(f"{API}/tokens", json={"name": "forged"}),
        ]
        for response in refused:
            assert response.status_code == 403, response.text
            _check_error(response, 403)
            assert response.json()["error"]["field"] == "csrf"
        browser.headers["X-CSRF-Token"] = "not-the-session-token"
        wrong = browser.patch(_env("private", "/spec"), json={"description": "forged"})
        assert wrong.status_code == 403 and wrong.json()["error"]["field"] == "csrf"
        assert _ok(world.setup.get(_env("private"))) == before
        assert world.setup.get(_env("private", "/resources/content/shared.txt")).status_code == 200
        assert browser.get(_env("private")).status_code == 200  # reading needs no CSRF token
        browser.headers["X-CSRF-Token"] = csrf
        allowed = browser.patch(_env("private", "/spec"), json={"description": "by the browser"})
        assert allowed.status_code == 200, allowed.text
    finally:
        browser.close()


# --- refusals come before any work (found by this matrix, then fixed) ------------------------


@pytest.mark.parametrize(
    ("role", "kind", "status"), [("plain", "other", 404), ("use", "private", 403)]
)
def test_refused_upload_is_not_written_anywhere(
    world: World, role: str, kind: str, status: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the server runs in this process
    probe = f"probe-{uuid.uuid4().hex}.bin"
    written: list[Path] = []

    def body() -> Iterator[bytes]:
        yield b"x" * 1_000_000
        time.sleep(0.3)
        written.extend(tmp_path.glob(f"codenv-upload-*/{probe}"))
        yield b"x" * 1_000_000

    response = world.clients[role].put(_env(kind, f"/resources/files/{probe}"), content=body())
    assert response.status_code == status
    assert written == [], "the refused upload was written to the server's disk"


def test_refused_download_leaves_nothing_behind(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    response = world.clients["plain"].get(_env("other", "/resources/content/shared.txt"))
    assert response.status_code == 404
    assert list(tmp_path.glob("codenv-download-*")) == []
