"""Reads whose cost does not grow with the envs shown: the same number of queries for 10 and
1,000 envs, pages that see every env once, filters and permissions done by the database.

Every test runs on SQLite and on PostgreSQL; the rows are inserted directly (the fake
installer serves `show`'s look at the live env)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from codenv.backends.fake import FakeInstaller
from codenv.domain.errors import InvalidInput, PermissionDenied
from codenv.services import accounts, audit, builds, env_listing, envs, listing, requests, revisions
from codenv.services.actor import Actor, may_use
from codenv.services.app import Codenv, open_codenv
from codenv.services.env_listing import EnvFilter, find_envs
from codenv.services.installed import show_installed
from codenv.services.read_cache import ReadCache
from codenv.settings import load_settings
from codenv.storage.models import (
    AuditRow,
    BuildRow,
    CodeEnvRow,
    EnvGrantRow,
    EnvRequestRow,
    GroupRow,
    MembershipRow,
    RevisionRow,
    UserRow,
)
from support.databases import database_url  # noqa: F401

START = datetime(2024, 1, 1, tzinfo=UTC)
ADMIN = Actor.local_admin()
MEMBER = Actor(name="user3", groups=frozenset({"Team"}))
LONER = Actor(name="user4")
UPDATER = Actor(name="USER5", groups=frozenset({"team2"}))
MANAGER = Actor(name="boss", may_manage_all=True)
STATUSES = ["not built", "failed", "building", envs.LAST_UPDATE_FAILED, "out of date", "ready"]


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Codenv]:  # noqa: F811
    fake = FakeInstaller(versions={"alpha": "1.0"})
    environ = {"CODENV_INDEX_URL": "http://127.0.0.1:9/simple", "CODENV_DATABASE_URL": database_url}
    opened = open_codenv(load_settings(tmp_path / "home", environ), "inline", fake, fake)
    with opened.db.session() as session:
        for name in ("team", "team2"):
            session.add(GroupRow(name=name, name_key=name))
        for number in range(20):
            session.add(UserRow(name=f"user{number}", name_key=f"user{number}"))
        session.flush()
        groups = {g.name: g.id for g in session.scalars(select(GroupRow))}
        for user in session.scalars(select(UserRow)):
            session.add(MembershipRow(group_id=groups["team"], user_id=user.id))
    yield opened
    opened.close()


def _rows(start: int, count: int) -> Iterator[dict[str, Any]]:
    for i in range(start, start + count):
        spec = {"python": "3.11" if i % 2 else "3.12", "requested": "alpha\n"}
        yield {
            "name": f"Env{i:05d}",
            "name_key": f"env{i:05d}",
            "owner": f"user{i % 20}",
            "spec": spec,
            "active_revision": 2 if i % 6 >= 2 else None,
            "usable_by_all": i % 3 == 0,
            "created_at": START + timedelta(seconds=i),
            "updated_at": START,
            "settled": True,
        }


def _builds(env_id: int, name: str, i: int) -> list[dict[str, Any]]:
    last = {1: "failed", 2: "running", 3: "failed"}.get(i % 6, "succeeded")
    made = [
        {"status": "succeeded", "kind": "update"},
        {"status": "succeeded", "kind": "init"},
        {"status": last, "kind": "update"},
        # An image build has a status of its own: never the env's.
        {"status": "failed", "kind": "image"},
    ]
    if i % 6 == 0:
        return []
    at = START + timedelta(seconds=i)
    return [
        {
            "id": uuid.uuid4().hex,
            "env_id": env_id,
            "env_name": name,
            "requested_by": "user1",
            "created_at": at + timedelta(milliseconds=n),
            "step": "done",
            **build,
        }
        for n, build in enumerate(made)
    ]


def seed(app: Codenv, start: int, count: int) -> None:
    """`count` envs, each kind of status in turn, with 2 revisions, 4 builds, grants,
    requests and audit entries; inserted in bulk."""
    with app.db.session() as session:
        session.execute(insert(CodeEnvRow), list(_rows(start, count)))
        made = session.execute(
            select(CodeEnvRow.id, CodeEnvRow.name).where(
                CodeEnvRow.name_key.between(f"env{start:05d}", f"env{start + count - 1:05d}")
            )
        ).all()
        groups = {g.name: g.id for g in session.scalars(select(GroupRow))}
        revs, built, grants, asked, logged = [], [], [], [], []
        for env_id, name in made:
            i = int(name[3:])
            spec = {"python": "3.11" if i % 2 else "3.12", "requested": "alpha\n"}
            for number in (1, 2):
                shown = {**spec, "requested": "beta\n"} if i % 6 == 4 else spec
                revs.append(_revision(env_id, number, shown))
            built += _builds(env_id, name, i)
            if i % 7 == 0:
                grants.append({"env_id": env_id, "group_id": groups["team"], "level": "use"})
            if i % 11 == 0:
                grants.append({"env_id": env_id, "group_id": groups["team2"], "level": "update"})
            asked.append(
                {"name": f"r{i}", "requester": "user1", "spec": spec, "status": "approved"}
            )
            logged.append({"actor": "user1", "action": "env.create", "target": name, "details": {}})
        session.execute(insert(RevisionRow), revs)
        session.execute(insert(BuildRow), built)
        if grants:
            session.execute(insert(EnvGrantRow), grants)
        session.execute(insert(EnvRequestRow), asked)
        session.execute(insert(AuditRow), logged)


def _revision(env_id: int, number: int, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "env_id": env_id,
        "number": number,
        "build_id": f"b{env_id}-{number}",
        "plan": {"python_version": spec["python"], "interpreter": "/usr/bin/python3"},
        "plan_hash": "0" * 64,
        "spec": spec,
        "lock": "alpha==1.0\n" * 200,
        "installed": [{"name": f"p{n}", "version": "1.0"} for n in range(40)],
        "size_bytes": 1000,
        "warnings": [],
    }


READS: dict[str, Callable[[Codenv], object]] = {
    "list (admin)": lambda app: envs.list_envs(app, ADMIN),
    "list (member)": lambda app: envs.list_envs(app, MEMBER),
    "page (admin)": lambda app: find_envs(app, ADMIN, limit=50),
    "page (member)": lambda app: find_envs(app, MEMBER, limit=50),
    "page, filtered": lambda app: find_envs(
        app, UPDATER, EnvFilter(status="ready", python="3.11", prefix="env0"), limit=20
    ),
    "page by owner": lambda app: find_envs(app, ADMIN, EnvFilter(owner="USER3"), sort="owner"),
    "page, newest": lambda app: find_envs(app, MEMBER, sort="-created", limit=10),
    "show": lambda app: envs.show_env(app, ADMIN, "env00003"),
    "installed": lambda app: show_installed(app, MEMBER, "env00003"),
    "revisions": lambda app: revisions.list_revisions(app, MEMBER, "env00003"),
    "revisions page": lambda app: listing.find_revisions(app, MEMBER, "env00003", limit=1),
    "builds": lambda app: builds.list_builds(app, MEMBER, "env00003"),
    "builds page": lambda app: listing.find_builds(app, MEMBER, "env00003", limit=2),
    "requests": lambda app: requests.list_requests(app, ADMIN),
    "requests page": lambda app: listing.find_requests(app, ADMIN, status="approved"),
    "my requests page": lambda app: listing.find_requests(app, MEMBER, mine=True, limit=5),
    "pending requests (every admin page)": lambda app: requests.pending_count(app, ADMIN),
    "audit": lambda app: audit.list_audit(app, ADMIN),
    "audit page": lambda app: listing.find_audit(app, ADMIN, action="env.*", limit=50),
    "users": lambda app: accounts.list_users(app, ADMIN),
    "users page": lambda app: listing.find_users(app, ADMIN, prefix="user1", limit=5),
}


def count_queries(app: Codenv, read: Callable[[Codenv], object], *, fresh: bool = True) -> int:
    """The statements of `read`; `fresh`: with nothing kept from reads before."""
    if fresh:
        app.reads = ReadCache(app.db.data_version)
    seen: list[str] = []

    def before(*args: Any) -> None:
        seen.append(args[2])

    event.listen(app.db.engine, "before_cursor_execute", before)
    try:
        read(app)
    finally:
        event.remove(app.db.engine, "before_cursor_execute", before)
    return len(seen)


def test_every_read_makes_as_many_queries_for_1000_envs_as_for_10(app: Codenv) -> None:
    seed(app, 0, 10)
    for read in READS.values():  # what a home does once (the node settings' first import)
        read(app)
    small = {label: count_queries(app, read) for label, read in READS.items()}
    seed(app, 10, 990)
    large = {label: count_queries(app, read) for label, read in READS.items()}
    assert large == small
    # A page is one statement (the caller's grants are a column of it) after the data
    # version's; the unpaged list, with specs, one more for the grants of a user who is no
    # administrator.
    assert small["list (admin)"] == 1
    assert small["page (admin)"] == small["page (member)"] == 2
    assert small["list (member)"] == 2
    # The most: show's env, revision and last build, and the node's settings, each read after
    # the data version's.
    assert max(small.values()) <= 6, small


def _all_pages(app: Codenv, actor: Actor, **options: Any) -> list[str]:
    names: list[str] = []
    cursor = None
    while True:
        page = find_envs(app, actor, cursor=cursor, **options)
        names += [info.name for info in page.items]
        if page.next_cursor is None:
            return names
        assert len(page.items) == options.get("limit", listing.DEFAULT_LIMIT)
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", list(env_listing.ENV_SORTS))
def test_pages_show_every_env_once_in_order(app: Codenv, sort: str) -> None:
    seed(app, 0, 250)
    names = _all_pages(app, ADMIN, limit=40, sort=sort)
    assert sorted(names) == sorted(info.name for info in envs.list_envs(app, ADMIN))
    assert len(names) == 250
    if sort in ("name", "-name"):
        assert names == sorted(names, reverse=sort == "-name")


def test_pages_stay_stable_when_envs_are_added_between_them(app: Codenv) -> None:
    seed(app, 100, 100)
    first = find_envs(app, ADMIN, limit=30)
    seed(app, 0, 50)  # before the cursor
    seed(app, 300, 50)  # after it
    names = [info.name for info in first.items]
    cursor = first.next_cursor
    while cursor is not None:
        page = find_envs(app, ADMIN, limit=30, cursor=cursor)
        names += [info.name for info in page.items]
        cursor = page.next_cursor
    expected = [f"Env{i:05d}" for i in [*range(100, 200), *range(300, 350)]]
    assert names == expected


def test_filters_agree_with_the_rows_shown(app: Codenv) -> None:
    seed(app, 0, 120)
    every = envs.list_envs(app, ADMIN)
    assert {info.status for info in every} == set(STATUSES)
    for status in STATUSES:
        found = _all_pages(app, ADMIN, filters=EnvFilter(status=status), limit=7)
        assert found == [info.name for info in every if info.status == status], status
        # The plain list (no page): the same envs, full rows.
        plain = env_listing.all_envs(app, ADMIN, EnvFilter(status=status))
        assert [info.name for info in plain] == found and all(info.spec for info in plain)
    by_owner = _all_pages(app, ADMIN, filters=EnvFilter(owner="User7"))
    assert by_owner == [info.name for info in every if info.owner == "user7"]
    python = _all_pages(app, ADMIN, filters=EnvFilter(python="3.11"))
    assert python == [info.name for info in every if info.python == "3.11"]
    prefix = _all_pages(app, ADMIN, filters=EnvFilter(prefix="ENV001"))
    assert prefix == [f"Env{i:05d}" for i in range(100, 120)]
    # No wildcard of LIKE (PostgreSQL) or GLOB (SQLite) is one, nor LIKE's escape character.
    for literal in ("env_", "env%", "env/", "e%0", "e*", "env?0", "[e]nv", "e[n]v"):
        assert _all_pages(app, ADMIN, filters=EnvFilter(prefix=literal)) == [], literal


def test_the_list_shows_each_user_exactly_the_envs_they_may_use(app: Codenv) -> None:
    seed(app, 0, 200)
    with app.db.session() as session:
        rows = session.scalars(select(CodeEnvRow)).all()
        for actor in (ADMIN, MEMBER, LONER, UPDATER, MANAGER, Actor(name="nobody")):
            usable = sorted((env.name for env in rows if may_use(actor, env)), key=str.casefold)
            assert _all_pages(app, actor, limit=33) == usable, actor.name
            every = envs.list_envs(app, actor)
            assert [info.name for info in every] == usable
            # What the caller may do with each env: the page's grants column agrees with the
            # rules of services.actor, applied to the full rows.
            page = find_envs(app, actor, limit=500).items
            assert [row.capabilities for row in page] == [info.capabilities for info in every]


def test_list_rows_match_show_and_never_look_at_the_live_env(
    app: Codenv, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(app, 0, 12)
    shown = {name: envs.show_env(app, ADMIN, name) for name in ("env00004", "env00005")}

    def refused(*_args: object) -> None:
        raise AssertionError("the list ran the installer on a live env")

    monkeypatch.setattr("codenv.services.installed.live_drift", refused)
    listed = {info.name.lower(): info for info in envs.list_envs(app, ADMIN)}
    for name, info in shown.items():
        row = listed[name].to_dict()
        assert row == {**info.to_dict(), "base_packages": [], "drift": None, "options_source": None}
    assert listed["env00004"].status == "out of date"
    paged = find_envs(app, ADMIN, limit=12).to_dict()
    assert [item["name"] for item in paged["items"]] == [info.name for info in listed.values()]
    # A page's row is the full row without the spec and what only `show` tells.
    for item in paged["items"]:
        full = listed[item["name"].lower()].to_dict()
        assert "spec" not in item and "path" not in item
        assert item == {key: full[key] for key in item}


def test_other_lists_page_and_filter(app: Codenv) -> None:
    seed(app, 0, 30)
    page = listing.find_builds(app, ADMIN, "env00003", limit=3)
    rest = listing.find_builds(app, ADMIN, "env00003", limit=3, cursor=page.next_cursor)
    assert [b.kind for b in page.items] == ["image", "update", "init"]
    assert [b.kind for b in rest.items] == ["update"] and rest.next_cursor is None
    failed = listing.find_builds(app, ADMIN, "env00003", status="failed", kind="update")
    assert [b.status for b in failed.items] == ["failed"]
    revs = listing.find_revisions(app, ADMIN, "env00003", limit=1)
    assert [r.number for r in revs.items] == [2] and revs.items[0].packages == 40
    older = listing.find_revisions(app, ADMIN, "env00003", limit=1, cursor=revs.next_cursor)
    assert [r.number for r in older.items] == [1] and older.next_cursor is None
    logged = listing.find_audit(app, ADMIN, target="Env00007")
    assert [entry.target for entry in logged.items] == ["Env00007"]
    users = listing.find_users(app, ADMIN, prefix="USER1", limit=20)
    assert [u.name for u in users.items] == ["user1"] + [f"user1{n}" for n in range(10)]
    assert users.items[0].groups == ["team"]
    asked = listing.find_requests(app, ADMIN, status="approved", limit=25)
    assert len(asked.items) == 25 and asked.next_cursor is not None
    more = listing.find_requests(app, ADMIN, status="approved", cursor=asked.next_cursor)
    assert len(more.items) == 5 and more.next_cursor is None
    # Anyone pages their own requests (user1 asked for all 30), and only those.
    requester = Actor(name="user1")
    own = listing.find_requests(app, requester, mine=True, limit=20)
    rest_own = listing.find_requests(app, requester, mine=True, cursor=own.next_cursor)
    names = [r.name for r in [*own.items, *rest_own.items]]
    assert names == [f"r{i}" for i in reversed(range(30))] and rest_own.next_cursor is None
    assert listing.find_requests(app, MEMBER, mine=True).items == ()
    with pytest.raises(PermissionDenied):
        listing.find_requests(app, requester, limit=5)
    with pytest.raises(InvalidInput) as refused:
        listing.find_requests(app, ADMIN, cursor=own.next_cursor)
    assert refused.value.field == "cursor"


def test_a_cursor_from_another_list_or_sort_is_refused(app: Codenv) -> None:
    seed(app, 0, 5)
    by_name = find_envs(app, ADMIN, limit=2)
    with pytest.raises(InvalidInput) as refused:
        find_envs(app, ADMIN, limit=2, sort="-created", cursor=by_name.next_cursor)
    assert refused.value.field == "cursor"
    with pytest.raises(InvalidInput) as refused:
        listing.find_audit(app, ADMIN, cursor=by_name.next_cursor)
    assert refused.value.field == "cursor"


def _codenv(app: Codenv, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "CODENV_HOME": str(app.settings.home),
        "CODENV_DATABASE_URL": app.settings.database_url,
        "CODENV_INDEX_URL": "http://127.0.0.1:9/simple",
    }
    return subprocess.run(
        [sys.executable, "-m", "codenv", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def test_the_cli_pages_and_filters_the_list_and_the_builds(app: Codenv) -> None:
    seed(app, 0, 12)
    first = _codenv(app, "list", "--limit", "5", "--python", "3.11")
    assert first.returncode == 0, first.stderr
    assert "Env00001" in first.stdout and "Env00011" not in first.stdout
    hint = first.stderr.strip().splitlines()[-1]
    assert hint.startswith("more: --cursor ")
    rest = _codenv(app, "list", "--json", "--python", "3.11", "--cursor", hint.split()[-1])
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert [row["name"] for row in json.loads(rest.stdout)["items"]] == ["Env00011"]
    every = _codenv(app, "list", "--json", "--all", "--limit", "2", "--status", "ready")
    assert [row["name"] for row in json.loads(every.stdout)] == ["Env00005", "Env00011"]
    refused = _codenv(app, "list", "--status", "done")
    assert refused.returncode == 2 and "status" in refused.stderr
    failed = _codenv(app, "builds", "env00003", "--json", "--status", "failed", "--limit", "1")
    page = json.loads(failed.stdout)
    assert [(b["kind"], b["status"]) for b in page["items"]] == [("image", "failed")]
    assert page["next_cursor"] is not None


def _plan(app: Codenv, filters: EnvFilter, sort: str, index: str) -> str:
    """The database's plan of a page of envs (as the administrator sees them), made to use
    `index` where it can (the plan of 1,000 rows may prefer another; what is asked is whether
    the index serves): SQLite is told to, PostgreSQL is kept from scans of the table and, for
    a filter, from reading the names' index in order while filtering each row."""
    statement = env_listing._page_statement(env_listing._Shape.of(ADMIN, filters, sort))
    values = {**env_listing._params(ADMIN, filters), "limit": 50}
    compiled = statement.params(**values).compile(
        dialect=app.db.engine.dialect, compile_kwargs={"render_postcompile": True}
    )
    params = compiled.params
    with app.db.engine.connect() as connection:
        if app.db.engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")
            if filters != EnvFilter():
                connection.exec_driver_sql("SET enable_indexscan = off")
            rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", params)
            return "\n".join(row[0] for row in rows)
        ordered = tuple(params[name] for name in compiled.positiontup or ())
        # SQLAlchemy writes no hint for SQLite. INDEXED BY may still scan the whole index.
        sql = str(compiled).replace("FROM code_envs", f"FROM code_envs INDEXED BY {index}", 1)
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ordered)
        return "\n".join(str(row[-1]) for row in rows)


def test_the_lists_filters_and_sorts_are_served_by_indexes(app: Codenv) -> None:
    seed(app, 0, 1000)
    rare = [{**row, "spec": {"python": "3.8"}} for row in _rows(1000, 5)]
    with app.db.session() as session:
        session.execute(insert(CodeEnvRow), rare)
    with app.db.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    # Filters look their rows up in the index; sorts read it in order (no sort step).
    names = {"sqlite": "sqlite_autoindex_code_envs_1", "postgresql": "ix_code_envs_name_prefix"}
    lookups = {
        EnvFilter(python="3.8"): "ix_code_envs_python",
        EnvFilter(owner="user7"): "ix_code_envs_owner_key",
        EnvFilter(prefix="ENV001"): names[app.db.engine.dialect.name],
    }
    for filters, index in lookups.items():
        plan = _plan(app, filters, "name", index)
        looked_up = rf"SEARCH code_envs USING INDEX {index}\b|(on|using) {index}\b.*\n\s+Index Cond"
        assert re.search(looked_up, plan), (filters, plan)
        assert "SCAN code_envs" not in plan and "Seq Scan" not in plan, (filters, plan)
    for sort, index in (("owner", "ix_code_envs_owner_name"), ("-created", "ix_code_envs_created")):
        plan = _plan(app, EnvFilter(), sort, index)
        assert re.search(rf"(USING INDEX|using) {index}\b", plan), (sort, plan)
        assert "TEMP B-TREE FOR ORDER BY" not in plan and "Sort Key" not in plan, (sort, plan)
    found = _all_pages(app, ADMIN, filters=EnvFilter(python="3.8"))
    assert found == [f"Env{i:05d}" for i in range(1000, 1005)]
