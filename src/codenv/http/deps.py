"""Request dependencies: the application context and who is calling.

`Caller` is an API route's authenticated caller; `Viewer` the logged-in user of a console page;
`Submitted` the same with a console form's fields, its CSRF token already checked. Finding the
caller touches the database, so it never runs on the event loop: for a plain (sync) route it
runs in the route's own worker thread, just before the route (`OneHopRoute`); an async route,
which must refuse a caller before it receives a large body, takes `CallerBeforeBody` or
`ViewerBeforeBody`, found in a worker thread of their own before the route starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from codenv.http.auth import authenticate, check_form_token, session_of
from codenv.http.auth import codenv_of as codenv_of  # noqa: PLC0414 (re-exported)
from codenv.http.errors import LoginRequired
from codenv.http.one_hop import found_in_route_thread
from codenv.http.staging import read_form
from codenv.services.actor import Actor
from codenv.services.app import Codenv


@dataclass(frozen=True)
class Call:
    app: Codenv
    actor: Actor


def _caller(request: Request) -> Call:
    app = codenv_of(request)
    return Call(app, authenticate(app, request))


@dataclass(frozen=True)
class Viewer:
    """The caller of a console page."""

    app: Codenv
    actor: Actor
    csrf: str
    session_id: int


@dataclass(frozen=True)
class Submitted(Viewer):
    """The caller of a console form, with the form's fields (CSRF already checked)."""

    fields: dict[str, str]
    lists: dict[str, list[str]]

    def text(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def flag(self, name: str) -> bool:
        return self.fields.get(name, "") in ("on", "true", "1", "yes")


def _viewer(request: Request) -> Viewer:
    session = session_of(request)
    if session is None:
        raise LoginRequired
    return Viewer(codenv_of(request), session.actor, session.csrf, session.id)


ViewerDep = Annotated[Viewer, Depends(found_in_route_thread(_viewer))]
ViewerBeforeBody = Annotated[Viewer, Depends(_viewer)]


async def _submitted(request: Request, viewer: ViewerBeforeBody) -> Submitted:
    form = await read_form(request)
    await form.close()  # only its text fields are used
    check_form_token(form, viewer.csrf)
    lists: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            lists.setdefault(key, []).append(value)
    fields = {key: values[-1] for key, values in lists.items()}
    return Submitted(viewer.app, viewer.actor, viewer.csrf, viewer.session_id, fields, lists)


Caller = Annotated[Call, Depends(found_in_route_thread(_caller))]
CallerBeforeBody = Annotated[Call, Depends(_caller)]
SubmittedDep = Annotated[Submitted, Depends(_submitted)]
