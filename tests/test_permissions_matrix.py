"""The permission rules, table-driven: every role, every operation, three kinds of env.

An env a role may not use does not exist for it (NotFound, worded as for a missing name); one
it may use but not change answers PermissionDenied; the rest succeed. Runs on SQLite and on
PostgreSQL, against real builds (inline queue, the sample index on loopback).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from codenv.domain.errors import NotFound, PermissionDenied
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.services import builds, envs, logs, permissions, resources, revisions
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from support.access import opened, user_in
from support.databases import fresh_database_url
from support.pkgindex import PackageIndex

ROLES = ("plain", "use", "update", "manage_users", "owner", "manage_all", "admin")
KINDS = ("private", "public", "other")

# What each role may do on each kind of env:
#   private: created by `owner`, groups granted use / update / manage_users;
#   public:  created by `admin`, usable by all;
#   other:   created by `admin`, no grants (the creator right shows nothing of others' envs).
NONE, READ, WRITE, MANAGE, ALL = "none", "read", "write", "manage", "all"
TABLE = {
    #                private  public  other
    "plain":        (NONE,    READ,   NONE),
    "use":          (READ,    READ,   NONE),
    "update":       (WRITE,   READ,   NONE),
    "manage_users": (MANAGE,  READ,   NONE),
    "owner":        (MANAGE,  READ,   NONE),
    "manage_all":   (ALL,     ALL,    ALL),
    "admin":        (ALL,     ALL,    ALL),
}  # fmt: skip
LEVEL = {(role, kind): TABLE[role][KINDS.index(kind)] for role in ROLES for kind in KINDS}
READ_OPS = ("show", "list", "builds", "log", "revisions", "installed", "files", "permissions")
WRITE_OPS = ("save", "update", "rollback", "init_script", "put_file", "remove_file", "run_init")
MANAGE_OPS = ("set_permissions",)
ALL_OPS = ("delete",)
ALLOWED = {
    NONE: set(),
    READ: set(READ_OPS),
    WRITE: {*READ_OPS, *WRITE_OPS},
    MANAGE: {*READ_OPS, *WRITE_OPS, *MANAGE_OPS},
    ALL: {*READ_OPS, *WRITE_OPS, *MANAGE_OPS, *ALL_OPS},
}
OPS = (*READ_OPS, *WRITE_OPS, *MANAGE_OPS, *ALL_OPS)


@dataclass
class World:
    app: Codenv
    python: str
    actors: dict[str, Actor]
    build_ids: dict[str, str]
    workdir: Path
    counter: Iterator[int] = field(default_factory=itertools.count)

    def make_env(self, kind: str) -> str:
        """A new, built env of `kind` (for deleting)."""
        name = f"{kind}-{next(self.counter)}"
        creator = self.actors["owner" if kind == "private" else "admin"]
        _create(self, creator, name, kind)
        return name


def _create(world: World, creator: Actor, name: str, kind: str) -> str:
    spec = EnvSpec(python=world.python, install_core_packages=False)
    created = envs.create_env(world.app, creator, name, spec)
    assert builds.get_build(world.app, creator, created.build_id).status == "succeeded"
    grants = [("g-use", "use"), ("g-update", "update"), ("g-manage", "manage_users")]
    permissions.set_permissions(
        world.app,
        world.actors["admin"],
        name,
        usable_by_all=kind == "public",
        grants=grants if kind == "private" else [],
    )
    return created.build_id


def _actors(app: Codenv) -> dict[str, Actor]:
    local = Actor.local_admin()
    return {
        "plain": user_in(app, local, "plain"),
        "use": user_in(app, local, "user-use", group="g-use"),
        "update": user_in(app, local, "user-update", group="g-update"),
        "manage_users": user_in(app, local, "user-manage", group="g-manage"),
        "owner": user_in(app, local, "creator", group="creators", may_create_envs=True),
        "manage_all": user_in(app, local, "manager", group="managers", may_manage_all_envs=True),
        "admin": user_in(app, local, "boss", group="admins", administrator=True),
    }


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sample_index: PackageIndex,
    newest: str,
) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("matrix")
    with (
        fresh_database_url(request.param, workdir) as url,
        opened(workdir / "home", url, sample_index.url) as app,
    ):
        actors = _actors(app)
        world = World(app, newest, actors, {}, workdir)
        for kind in KINDS:
            creator = actors["owner" if kind == "private" else "admin"]
            world.build_ids[kind] = _create(world, creator, kind, kind)
        yield world


def _operation(world: World, op: str, kind: str) -> Callable[[Actor], object]:
    app, name = world.app, kind
    source = world.workdir / "upload.txt"
    source.write_text("data\n")
    calls: dict[str, Callable[[Actor], object]] = {
        "show": lambda a: envs.show_env(app, a, name),
        "builds": lambda a: builds.list_builds(app, a, name),
        "log": lambda a: logs.read_log(app, a, world.build_ids[kind]),
        "revisions": lambda a: revisions.list_revisions(app, a, name),
        "installed": lambda a: revisions.installed_packages(app, a, name),
        "files": lambda a: resources.list_files(app, a, name),
        "permissions": lambda a: permissions.get_permissions(app, a, name),
        "save": lambda a: envs.save_spec(app, a, name, SpecChanges(description="changed")),
        "update": lambda a: builds.request_update(app, a, name),
        "rollback": lambda a: revisions.rollback(app, a, name, 1),
        "init_script": lambda a: resources.set_init_script(app, a, name, run_on_update=True),
        "put_file": lambda a: resources.put_files(app, a, name, source, "up.txt", unzip=False),
        "remove_file": lambda a: _put_and_remove(app, a, name),
        "run_init": lambda a: resources.run_init_script_now(app, a, name),
        "set_permissions": lambda a: permissions.set_permissions(
            app, a, name, usable_by_all=kind == "public"
        ),
    }
    return calls[op]


def _put_and_remove(app: Codenv, actor: Actor, name: str) -> None:
    admin = Actor.local_admin()
    target = app.settings.envs_dir / name / "resources"
    target.mkdir(parents=True, exist_ok=True)
    source = app.settings.home / "doomed.txt"
    source.write_text("x")
    resources.put_files(app, admin, name, source, "doomed.txt", unzip=False)
    resources.remove_file(app, actor, name, "doomed.txt")


CASES = [(role, kind, op) for kind in KINDS for role in ROLES for op in OPS if op != "list"]


@pytest.mark.parametrize(("role", "kind", "op"), CASES)
def test_operation(world: World, role: str, kind: str, op: str) -> None:
    actor = world.actors[role]
    level = LEVEL[(role, kind)]
    if op == "delete":
        name = world.make_env(kind)

        def call(a: Actor) -> object:
            return envs.delete_env(world.app, a, name, delete_resources=True)
    else:
        name, call = kind, _operation(world, op, kind)
    if op in ALLOWED[level]:
        call(actor)
    elif level == NONE:
        with pytest.raises(NotFound) as refused:
            call(actor)
        if op != "log":
            # Worded exactly as for a name that does not exist: nothing tells them apart.
            assert refused.value.message == f"no code env named {name!r}"
            assert refused.value.field == "name"
    else:
        with pytest.raises(PermissionDenied):
            call(actor)


@pytest.mark.parametrize("role", ROLES)
def test_list_shows_only_usable_envs(world: World, role: str) -> None:
    listed = {info.name for info in envs.list_envs(world.app, world.actors[role])}
    expected = {kind for kind in KINDS if LEVEL[(role, kind)] != NONE}
    # Envs made for the delete cases may also be listed; the three shared ones decide.
    assert listed & set(KINDS) == expected


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("plain", False),
        ("use", False),
        ("update", False),
        ("manage_users", False),
        ("owner", True),
        ("manage_all", False),
        ("admin", True),
    ],
)
def test_creating_needs_the_create_right(world: World, role: str, allowed: bool) -> None:
    spec = EnvSpec(python=world.python, install_core_packages=False)
    name = f"made-by-{role.replace('_', '-')}"
    if allowed:
        envs.create_env(world.app, world.actors[role], name, spec)
        assert envs.show_env(world.app, world.actors[role], name).owner == world.actors[role].name
    else:
        with pytest.raises(PermissionDenied):
            envs.create_env(world.app, world.actors[role], name, spec)
