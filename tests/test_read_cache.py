"""Pages kept while the data is unchanged (services/read_cache.py): a page read again costs one
small query, and any change, however and wherever it is written, shows on the next read.

On SQLite and PostgreSQL, with the rows of test_scale_queries.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from sqlalchemy import update

from codenv.domain.errors import InvalidInput, NotFound, PermissionDenied
from codenv.services import permissions
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.env_listing import EnvFilter, find_envs
from codenv.services.listing import find_builds
from codenv.services.read_cache import ENTRIES, ReadCache, derived
from codenv.storage.db import Database
from codenv.storage.models import BuildRow, CodeEnvRow
from support.databases import database_url  # noqa: F401
from test_scale_queries import ADMIN, LONER, MEMBER, count_queries, seed
from test_scale_queries import app as scale_app  # noqa: F401 (a fixture, on both databases)


@pytest.fixture
def app(scale_app: Codenv) -> Codenv:  # noqa: F811
    return scale_app


def names(app: Codenv, actor: Actor) -> list[str]:
    return [row.name for row in find_envs(app, actor, limit=50).items]


def statements(app: Codenv, read: Callable[[Codenv], object]) -> int:
    return count_queries(app, read, fresh=False)


def test_a_page_read_again_costs_only_the_version_and_is_the_same(app: Codenv) -> None:
    seed(app, 0, 60)
    first = find_envs(app, MEMBER, limit=20)
    again = statements(app, lambda a: find_envs(a, MEMBER, limit=20))
    assert again == 1  # the data version's, nothing else
    assert find_envs(app, MEMBER, limit=20) == first
    builds_first = find_builds(app, MEMBER, "env00007", limit=2)
    assert statements(app, lambda a: find_builds(a, MEMBER, "env00007", limit=2)) == 1
    assert find_builds(app, MEMBER, "env00007", limit=2) == builds_first


def test_each_reader_gets_their_own_page(app: Codenv) -> None:
    seed(app, 0, 30)

    def expected(owner: int, group: bool) -> list[str]:  # the rules of test_scale_queries' rows
        kept = [i for i in range(30) if i % 20 == owner or i % 3 == 0 or (group and i % 7 == 0)]
        return [f"Env{i:05d}" for i in kept]

    for _ in range(2):
        assert names(app, LONER) == expected(4, group=False)
        assert names(app, MEMBER) == expected(3, group=True)
        assert len(names(app, ADMIN)) == 30
    # What a page row says the reader may do is theirs too.
    row = find_envs(app, MEMBER, EnvFilter(prefix="env00000"), limit=1).items[0]
    assert not row.capabilities.may_update
    row = find_envs(app, ADMIN, EnvFilter(prefix="env00000"), limit=1).items[0]
    assert row.capabilities.may_update


def test_changes_through_the_services_show_at_once(app: Codenv) -> None:
    seed(app, 0, 30)
    assert "Env00001" not in names(app, LONER)
    permissions.set_permissions(app, ADMIN, "Env00001", usable_by_all=True)
    assert "Env00001" in names(app, LONER)
    reader = Actor(name="user9", groups=frozenset({"team2"}))
    assert "Env00002" not in names(app, reader)
    with pytest.raises((NotFound, PermissionDenied)):
        find_builds(app, reader, "Env00002", limit=5)
    permissions.set_permissions(app, ADMIN, "Env00002", grants=[("team2", "use")])
    assert "Env00002" in names(app, reader)
    assert find_builds(app, reader, "Env00002", limit=5).items


def test_changes_by_another_process_show_at_once(app: Codenv) -> None:
    seed(app, 0, 30)
    page = find_builds(app, ADMIN, "Env00003", limit=1)
    assert page.items[0].status != "cancelled"
    assert "Env00000" in names(app, LONER)  # usable by all
    # Another process with its own engine: no cache of this one hears of it.
    code = (
        "import sys\n"
        "from sqlalchemy import update\n"
        "from codenv.storage.db import Database\n"
        "from codenv.storage.models import BuildRow as B, CodeEnvRow as E\n"
        "with Database(sys.argv[1]).session() as s:\n"
        "    s.execute(update(B).where(B.id == sys.argv[2]).values(status='cancelled'))\n"
        "    s.execute(update(E).where(E.name == 'Env00000').values(usable_by_all=False))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, app.settings.database_url, page.items[0].id], check=True
    )
    assert find_builds(app, ADMIN, "Env00003", limit=1).items[0].status == "cancelled"
    assert "Env00000" not in names(app, LONER)


def test_refusals_and_bad_input_are_never_kept(app: Codenv) -> None:
    seed(app, 0, 30)
    for _ in range(2):
        with pytest.raises(InvalidInput) as refused:
            find_envs(app, MEMBER, EnvFilter(status="sleepy"), limit=5)
        assert refused.value.field == "status"
        with pytest.raises((NotFound, PermissionDenied)):
            find_builds(app, LONER, "Env00002", limit=5)
    other = Database(app.settings.database_url)
    try:
        with other.session() as session:  # granted behind this process's back
            session.execute(
                update(CodeEnvRow).where(CodeEnvRow.name == "Env00002").values(owner="user4")
            )
    finally:
        other.dispose()
    assert find_builds(app, LONER, "Env00002", limit=5).items


def test_the_cache_keeps_a_bounded_number_of_answers() -> None:
    version = [0]
    cache = ReadCache(lambda: version[0], entries=ENTRIES)
    computed: list[int] = []

    def compute(n: int) -> Callable[[], int]:
        return lambda: computed.append(n) or n

    for n in range(ENTRIES * 3):
        assert cache.read(n, compute(n)) == n
    assert cache.read(ENTRIES * 3 - 1, compute(-1)) == ENTRIES * 3 - 1  # the newest is kept
    assert cache.read(0, compute(0)) == 0 and computed.count(0) == 2  # the oldest went out
    assert len(cache._entries) == ENTRIES
    version[0] += 1
    assert cache.read(0, compute(0)) == 0 and computed.count(0) == 3  # a new version: read


def test_unchanged_builds_pages_do_not_hide_a_new_build(app: Codenv) -> None:
    seed(app, 0, 10)
    before = find_builds(app, ADMIN, "Env00004", limit=50).items
    with app.db.session() as session:
        row = session.get(BuildRow, before[0].id)
        assert row is not None
        session.add(
            BuildRow(
                id="fresh-build",
                env_id=row.env_id,
                env_name=row.env_name,
                status="queued",
                step="queued",
                upgrade_all=False,
                rebuild=False,
                requested_by="user1",
                holder="",
                created_at=row.created_at.replace(year=2030),
            )
        )
    after = find_builds(app, ADMIN, "Env00004", limit=50).items
    assert [b.id for b in after] == ["fresh-build", *(b.id for b in before)]


def test_what_is_drawn_from_a_kept_answer_is_drawn_once_per_answer() -> None:
    made: list[str] = []
    first, equal = {"page": 1}, {"page": 1}

    def draw(page: dict[str, int]) -> Callable[[], str]:
        return lambda: made.append("drawn") or f"<tr>{page['page']}</tr>"

    assert derived(first, "rows", draw(first)) == "<tr>1</tr>"
    assert derived(first, "rows", draw(first)) == "<tr>1</tr>" and len(made) == 1
    # Another object, though equal: a new answer of the cache (the data changed), drawn again.
    assert derived(equal, "rows", draw(equal)) == "<tr>1</tr>" and len(made) == 2
    assert derived(first, "json", draw(first)) and len(made) == 3
