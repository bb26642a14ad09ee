"""Helpers for the access tests: a codenv opened on a chosen database, users in groups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from codenv.backends.fake import FakeInstaller
from codenv.services import accounts
from codenv.services.actor import Actor
from codenv.services.app import Codenv, open_codenv
from codenv.services.authentication import load_actor
from codenv.settings import load_settings

PASSWORD = "correct horse battery"


@contextmanager
def opened(home: Path, database_url: str, index_url: str) -> Iterator[Codenv]:
    """A codenv on `home` and `database_url` whose builds run inline, in the caller's thread,
    with the fake installer: access rules do not depend on what an installer does."""
    environ = {"CODENV_DATABASE_URL": database_url, "CODENV_INDEX_URL": index_url}
    fake = FakeInstaller()
    app = open_codenv(load_settings(home, environ), "inline", installer=fake, editables=fake)
    try:
        yield app
    finally:
        app.close()


def user_in(
    app: Codenv,
    admin: Actor,
    name: str,
    *,
    group: str | None = None,
    password: str | None = PASSWORD,
    **rights: bool,
) -> Actor:
    """A new user (in a new group with `rights`, when `group` is given), as their Actor."""
    if group is not None:
        accounts.create_group(app, admin, group, **rights)
    info = accounts.create_user(app, admin, name, password, groups=[group] if group else [])
    return load_actor(app, info.id, source="test")
