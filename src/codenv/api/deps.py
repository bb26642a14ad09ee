"""FastAPI dependencies: the application context and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from codenv.api.auth import authenticate, require_actor
from codenv.services.actor import Actor
from codenv.services.app import Codenv


@dataclass(frozen=True)
class Call:
    app: Codenv
    actor: Actor


def codenv_of(request: Request) -> Codenv:
    app: Codenv = request.app.state.codenv
    return app


def _caller(request: Request) -> Call:
    app = codenv_of(request)
    actor = authenticate(app, request, request.app.state.secret_key)
    return Call(app, require_actor(actor))


Caller = Annotated[Call, Depends(_caller)]
