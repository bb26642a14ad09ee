"""The DSS API's test harness: a real codenv server (uvicorn on loopback, as `codenv serve`
runs it), users with API tokens, and the seed system's official client (`dataikuapi`) on it.

    with dss_server(tmp_path / "home", sample_index.url) as server:
        admin = dss_client(server.url, admin_token(server))
        bob_token = user_token(server, "bob", group="makers", may_create_envs=True)
        bob = dss_client(server.url, bob_token)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import dataikuapi
import pytest

import support.server
from codenv.backends.fake import FakeInstaller
from codenv.services import tokens
from codenv.services.actor import Actor
from codenv.services.app import open_codenv
from support.access import user_in
from support.server import RunningServer, running_server

PREFIX = "/dip/publicapi"  # where DSSClient sends every call
DOC_PREFIX = "/public/api"  # what DSS's REST doc names


@contextmanager
def dss_server(
    home: Path,
    index_url: str,
    *,
    fake: bool | FakeInstaller = False,
    environ: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """A running codenv server; `fake` builds with the fake installer (or the one given, its
    hooks set by the test; no index used), else with uv on `index_url`."""
    if fake is False:
        with running_server(home, index_url, environ) as running:
            yield running
        return
    installer = fake if isinstance(fake, FakeInstaller) else FakeInstaller()
    with pytest.MonkeyPatch.context() as patch:
        opened = partial(open_codenv, installer=installer, editables=installer)
        patch.setattr(support.server, "open_codenv", opened)
        with running_server(home, index_url, environ) as running:
            yield running


def token_of(server: RunningServer, user: str) -> str:
    """A new API token of `user`, made through the services as an administrator would."""
    made = tokens.create_token(server.app, Actor.local_admin(), name="dss-tests", user=user)
    return made.secret


def admin_token(server: RunningServer) -> str:
    """A token of `admin`, the server's initial administrator."""
    return token_of(server, "admin")


def user_token(
    server: RunningServer, name: str, *, group: str | None = None, **rights: bool
) -> str:
    """A new user (in a new group with `rights`, when `group` is given) and a token of theirs."""
    user_in(server.app, Actor.local_admin(), name, group=group, **rights)
    return token_of(server, name)


def dss_client(url: str, token: str, **options: Any) -> dataikuapi.DSSClient:
    """The official client as scripts make it: `DSSClient(host, api_key=TOKEN)`."""
    return dataikuapi.DSSClient(url, api_key=token, **options)
