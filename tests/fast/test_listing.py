"""The pure parts of paged lists: cursors, limits, the names of refused inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from codenv.domain.errors import InvalidInput
from codenv.services import listing
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.env_listing import EnvFilter, find_envs
from codenv.services.listing import Page
from codenv.storage.queries import decode_cursor, encode_cursor


def test_a_cursor_gives_back_the_key_it_was_made_of() -> None:
    moment = datetime(2024, 5, 1, 12, 30, 1, 123456, tzinfo=UTC)
    cursor = encode_cursor("envs-created", [moment, 42])
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor
    assert decode_cursor(cursor, "envs-created", [datetime, int]) == [moment, 42]
    assert decode_cursor(encode_cursor("users", ["ann"]), "users", [str]) == ["ann"]


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        encode_cursor("users", ["ann"]),  # another list's
        encode_cursor("envs-created", ["not a time", 1]),
        encode_cursor("envs-created", [1, 1]),
        encode_cursor("envs-created", ["2024-01-01T00:00:00"]),  # a part missing
        "x" * 600,
    ],
)
def test_a_foreign_or_broken_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decode_cursor(cursor, "envs-created", [datetime, int])
    assert refused.value.field == "cursor"


def test_a_page_as_data() -> None:
    class Item:
        def to_dict(self) -> dict[str, int]:
            return {"n": 1}

    assert Page([Item()], "c").to_dict() == {"items": [{"n": 1}], "next_cursor": "c"}
    assert Page([], None).to_dict() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda app, actor: find_envs(app, actor, limit=0), "limit"),
        (lambda app, actor: find_envs(app, actor, limit=listing.MAX_LIMIT + 1), "limit"),
        (lambda app, actor: find_envs(app, actor, sort="size"), "sort"),
        (lambda app, actor: find_envs(app, actor, EnvFilter(status="done")), "status"),
        (lambda app, actor: find_envs(app, actor, EnvFilter(prefix="x" * 300)), "prefix"),
        (lambda app, actor: find_envs(app, actor, cursor="garbage"), "cursor"),
        (lambda app, actor: listing.find_audit(app, actor, limit=-1), "limit"),
        (lambda app, actor: listing.find_requests(app, actor, status="lost"), "status"),
        (lambda app, actor: listing.find_users(app, actor, cursor="%%%"), "cursor"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    app: Codenv, admin: Actor, call: object, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        call(app, admin)  # type: ignore[operator]
    assert refused.value.field == field


def test_an_empty_node_lists_one_empty_page(app: Codenv, admin: Actor) -> None:
    assert find_envs(app, admin).to_dict() == {"items": [], "next_cursor": None}
    assert find_envs(app, Actor(name="ann"), limit=1).items == ()
