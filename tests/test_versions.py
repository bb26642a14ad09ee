"""Versioned envs on automation nodes (issue 12, point 4), end to end with real bundles.

A design node builds an env with Jupyter support twice (beta, then beta and delta) and exports
each revision with its wheels; an automation node (retention 0) imports both: version 1 and
version 2. Both stay usable at once (`run NAME@1`, `path NAME@1`, `installed --revision 1`),
each has its kernelspec, neither is pruned, each says which bundle it came from; version 1 is
removed by name (the active one is refused), after which `NAME@1` fails naming what is left.
Then the same over the API and the console, with rights checked; and pruning, on an env with
revisions of both kinds, keeps the imported ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codenv.domain.errors import InvalidInput
from codenv.domain.names import revision_of, split_version
from codenv.domain.spec import EnvSpec
from codenv.envdirs.layout import EnvLayout
from codenv.services import permissions
from codenv.services.activation import prune_revisions
from codenv.services.actor import Actor
from codenv.services.audit import list_audit
from codenv.services.envs import add_env
from codenv.storage.models import CodeEnvRow, RevisionRow
from conftest import Node
from support.access import PASSWORD, user_in
from support.pkgindex import PackageIndex
from support.server import ADMIN_PASSWORD, console_login, post_form, running_server

pytestmark = pytest.mark.xdist_group("versions")
HAS_DELTA = "import importlib.util; print(importlib.util.find_spec('delta') is not None)"


@dataclass(frozen=True)
class Bundles:
    index_url: str
    v1: Path  # demo: beta (and alpha)
    v2: Path  # demo: beta, delta


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory, newest: str) -> Iterator[Bundles]:
    root = tmp_path_factory.mktemp("versions")
    (root / "index").mkdir()
    with PackageIndex(root / "index") as index:
        index.add_wheel("alpha", "1.0")
        index.add_wheel("beta", "2.0", requires=["alpha>=1.0"])
        index.add_wheel("delta", "1.0")
        index.add_wheel("ipykernel", "6.0")  # stands in for Jupyter support: never started
        design = Node(root / "design", index.url, {"COLUMNS": "200"})  # tables unfolded
        design.run("create", "demo", "--python", newest, "--jupyter", "--no-core-packages")
        design.run("save", "demo", "--add", "beta", "--update")
        design.run("export", "demo", "--with-wheels", "-o", str(root / "v1.codenv.tar"))
        design.run("save", "demo", "--add", "delta", "--update")
        design.run("export", "demo", "--with-wheels", "-o", str(root / "v2.codenv.tar"))
        built_here = json.loads(design.run("revisions", "demo", "--json").stdout)
        assert [r["origin"] for r in built_here] == [None, None, None]
        assert "built here" in design.run("revisions", "demo").stdout
        yield Bundles(index.url, root / "v1.codenv.tar", root / "v2.codenv.tar")


def automation_node(home: Path, index_url: str) -> Node:
    """An automation node keeping no revision built here past the active one."""
    config = home / "config" / "server.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"nodeType": "automation"}))
    return Node(home, index_url, {"CODENV_RETENTION": "0", "COLUMNS": "200"})


def imported(bundles: Bundles, home: Path) -> Node:
    node = automation_node(home, bundles.index_url)
    for file in (bundles.v1, bundles.v2):
        node.run("import", str(file))
    return node


def _error(result: Any) -> dict[str, Any]:
    return dict(json.loads(result.stdout)["error"])


def test_versions_run_side_by_side_and_go_by_name(bundles: Bundles, tmp_path: Path) -> None:
    node = imported(bundles, tmp_path / "automation")
    listed = json.loads(node.run("revisions", "demo", "--json").stdout)
    assert [(r["number"], r["active"], r["pruned"]) for r in listed] == [
        (2, True, False),
        (1, False, False),  # retention 0, and still kept: an imported version
    ]
    assert [r["origin"]["bundle"] for r in listed] == ["v2.codenv.tar", "v1.codenv.tar"]
    assert [r["origin"]["source_revision"] for r in listed] == [3, 2]
    assert all(r["origin"]["source_env"] == "demo" and r["origin"]["imported_at"] for r in listed)
    table = node.run("revisions", "demo").stdout
    assert "v1.codenv.tar" in table and "demo revision 2" in table and "built here" not in table

    # Both versions usable at once: each runs in its own revision, with the env's env vars.
    assert node.run("run", "demo@1", "--", "python", "-c", HAS_DELTA).stdout.strip() == "False"
    assert node.run("run", "demo", "--", "python", "-c", HAS_DELTA).stdout.strip() == "True"
    venv = "import os; print(os.environ['VIRTUAL_ENV'])"
    ran = node.run("run", "demo@1", "--", "python", "-c", venv).stdout.strip()
    assert ran == str(node.home / "envs" / "demo" / "revisions" / "1")
    path = node.run("path", "demo@1").stdout.strip()
    assert path == str(node.home / "envs" / "demo" / "revisions" / "1" / "bin" / "python")
    assert node.run("path", "demo").stdout.strip().endswith("/current/bin/python")
    one = json.loads(node.run("installed", "demo", "--revision", "1", "--json").stdout)
    names = {p["name"] for p in one["packages"]}
    assert one["revision"] == 1 and {"alpha", "beta"} <= names and "delta" not in names
    assert json.loads(node.run("installed", "demo@1", "--json").stdout)["revision"] == 1
    assert json.loads(node.run("installed", "demo@2", "--json").stdout)["revision"] == 2

    # A kernelspec for the env (active revision) and one per version.
    kernels = node.home / "kernels"
    assert sorted(p.name for p in kernels.iterdir()) == [
        "codenv-demo",
        "codenv-demo.v1",
        "codenv-demo.v2",
    ]
    spec = json.loads((kernels / "codenv-demo.v1" / "kernel.json").read_text())
    assert spec["display_name"] == "Python (codenv demo v1)"
    assert spec["argv"][0] == path
    assert spec["metadata"]["codenv"] == {"env": "demo", "version": 1}
    listed_kernels = json.loads(node.run("kernels", "list", "--json").stdout)
    assert {k["name"] for k in listed_kernels} == {
        "codenv-demo",
        "codenv-demo.v1",
        "codenv-demo.v2",
    }

    # A version's kernel links into a Jupyter installation like the env's.
    node.environ_extra["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter")
    node.run("kernels", "install", "demo@1")
    link = tmp_path / "jupyter" / "kernels" / "codenv-demo.v1"
    assert link.is_symlink() and (link / "kernel.json").exists()
    assert node.run("kernels", "install", "demo@5", check=False).returncode == 3

    # A rollback settles again (prune included): nothing imported is pruned.
    back = node.run("rollback", "demo", "1").stdout
    assert "codenv run demo@N" in back and "codenv update" not in back  # no update here
    node.run("rollback", "demo", "2")
    assert not any(r["pruned"] for r in json.loads(node.run("revisions", "demo", "--json").stdout))

    # The active version cannot be removed; another one can, by name.
    refused = node.run("revisions", "remove", "demo", "2", "--json", check=False)
    assert refused.returncode == 5, refused.stderr
    assert _error(refused)["code"] == "conflict"
    assert "revision 2 is the active version of 'demo'" in _error(refused)["message"]
    removed = json.loads(node.run("revisions", "remove", "demo", "1", "--json").stdout)
    assert (removed["number"], removed["pruned"]) == (1, True)
    assert not (node.home / "envs" / "demo" / "revisions" / "1").exists()
    assert not (kernels / "codenv-demo.v1").exists() and (kernels / "codenv-demo.v2").exists()
    assert not link.is_symlink()  # no dangling link left in the user's Jupyter
    after = json.loads(node.run("revisions", "demo", "--json").stdout)
    assert [(r["number"], r["pruned"]) for r in after] == [(2, False), (1, True)]
    assert after[1]["origin"]["bundle"] == "v1.codenv.tar"  # the record stays: history

    gone = node.run("run", "demo@1", "--", "python", "-c", "print(1)", check=False)
    assert gone.returncode == 3
    assert "code env 'demo' has no revision 1" in gone.stderr and "demo@2" in gone.stderr
    assert node.run("path", "demo@7", check=False).returncode == 3
    again = node.run("revisions", "remove", "demo", "1", check=False)
    assert again.returncode == 3 and "its revisions: demo@2" in again.stderr
    bad = node.run("path", "demo@one", check=False)
    assert bad.returncode == 2 and "NAME@N" in bad.stderr
    app = node.app()
    entries = list_audit(app, Actor.local_admin(), action="env.revision.remove")
    assert [(e.target, e.details) for e in entries] == [("demo", {"revision": 1})]
    app.close()

    # Deleting the env takes every kernel of it along.
    node.run("kernels", "install", "demo@2")
    node.run("delete", "demo", "--yes", "--delete-resources")
    assert list(kernels.iterdir()) == []
    assert list((tmp_path / "jupyter" / "kernels").iterdir()) == []


def test_versions_over_the_api_and_the_console(bundles: Bundles, tmp_path: Path) -> None:
    node = imported(bundles, tmp_path / "automation")
    environ = {"CODENV_RETENTION": "0"}
    with running_server(node.home, bundles.index_url, environ) as server:
        admin = Actor.local_admin()
        user_in(server.app, admin, "reader")
        permissions.set_permissions(server.app, admin, "demo", usable_by_all=True)
        api = server.client(server.admin_token())
        listed = api.get("/api/v1/envs/demo/revisions").json()
        assert [r["origin"]["bundle"] for r in listed] == ["v2.codenv.tar", "v1.codenv.tar"]
        assert api.get("/api/v1/envs/demo/revisions/1").json()["origin"]["source_revision"] == 2
        assert api.get("/api/v1/envs/demo@1/installed").json()["revision"] == 1
        clash = api.get("/api/v1/envs/demo@1/installed", params={"revision": 2})
        assert clash.status_code == 422 and clash.json()["error"]["field"] == "revision"

        reader = server.login("reader", PASSWORD)
        denied = reader.delete("/api/v1/envs/demo/revisions/1")
        assert denied.status_code == 403, denied.text
        active = api.delete("/api/v1/envs/demo/revisions/2")
        assert active.status_code == 409 and "active version" in active.json()["error"]["message"]

        console = console_login(server, "admin", ADMIN_PASSWORD)
        page = console.get("/envs/demo/revisions").text
        assert "v1.codenv.tar" in page and "demo revision 2" in page
        assert 'data-remove-revision="1"' in page and 'data-remove-revision="2"' not in page
        forced = post_form(console, "/envs/demo/revisions/2/remove", {})
        assert forced.status_code == 409 and "active version" in forced.text
        done = post_form(console, "/envs/demo/revisions/1/remove", {})
        assert done.status_code == 303, done.text
        page = console.get("/envs/demo/revisions").text
        assert re.search(r'data-revision="1">.*?pruned', page, re.S)
        assert 'data-remove-revision="1"' not in page

        missing = api.delete("/api/v1/envs/demo/revisions/1")
        assert missing.status_code == 404 and "demo@2" in missing.json()["error"]["message"]
        audited = api.get("/api/v1/audit", params={"action": "env.revision.remove"}).json()
        assert [(e["target"], e["actor"]) for e in audited] == [("demo", "admin")]
        for client in (api, reader, console):
            client.close()


def test_pruning_keeps_imported_revisions(
    tmp_path: Path, sample_index: PackageIndex, admin: Actor, newest: str
) -> None:
    """Retention 1: of the revisions built here, the newest one past the active stays; every
    imported one stays, however old."""
    app = Node(tmp_path / "home", sample_index.url, {"CODENV_RETENTION": "1"}).app()
    add_env(app, admin, "mixed", EnvSpec(python=newest))
    layout = EnvLayout.of(app.settings.envs_dir, "mixed")
    origin = {"bundle": "b.codenv.tar", "source_env": "mixed", "source_revision": 1}
    kinds = {1: origin, 2: None, 3: origin, 4: None, 5: None, 6: None}
    with app.db.session() as session:
        env = session.query(CodeEnvRow).filter_by(name="mixed").one()
        for number, came_from in kinds.items():
            session.add(
                RevisionRow(
                    env_id=env.id, number=number, build_id=f"b{number}", plan={},
                    plan_hash="", spec={}, lock="", installed=[], origin=came_from,
                )
            )  # fmt: skip
            layout.revision(number).mkdir(parents=True)
        env.active_revision = 6
        env_id = env.id
    assert prune_revisions(app, env_id) == [4, 2]
    assert sorted(int(p.name) for p in layout.revisions_dir.iterdir()) == [1, 3, 5, 6]
    app.close()


@pytest.mark.parametrize(
    ("ref", "revision", "expected"),
    [
        ("demo", None, ("demo", None)),
        ("demo", 3, ("demo", 3)),
        ("demo@3", None, ("demo", 3)),
        ("demo@3", 3, ("demo", 3)),
    ],
)
def test_name_at_version(ref: str, revision: int | None, expected: tuple[str, int | None]) -> None:
    assert revision_of(ref, revision) == expected


@pytest.mark.parametrize(
    "ref", ["demo@", "demo@0", "demo@-1", "demo@x", "demo@1@2", "demo@٣", "a@" + "9" * 30]
)
def test_a_wrong_version_is_refused(ref: str) -> None:
    with pytest.raises(InvalidInput):
        split_version(ref)
    with pytest.raises(InvalidInput):
        revision_of("demo@1", 2)
