"""Dependencies of the DSS API's routes: the caller (`DssCaller`) and a JSON body read without
trusting `Content-Type` (the client sends none, §1.3).

`dss_caller` touches the database, so it is a plain function FastAPI runs in a worker thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from codenv.api.dss_compat.auth import authenticate_dss
from codenv.domain.errors import InvalidInput
from codenv.http.auth import codenv_of
from codenv.services.actor import Actor
from codenv.services.app import Codenv

MAX_JSON_BYTES = 1_000_000


@dataclass(frozen=True)
class DssCall:
    app: Codenv
    actor: Actor


def dss_caller(request: Request) -> DssCall:
    app = codenv_of(request)
    return DssCall(app, authenticate_dss(app, request))


DssCaller = Annotated[DssCall, Depends(dss_caller)]


async def json_body(request: Request, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The request's body parsed as JSON whatever its Content-Type; None for an empty body.

    A 400 DSS error for a body over `max_bytes` or that is not JSON."""
    raw = await request.body()  # cached: a second call reads the same bytes
    if len(raw) > max_bytes:
        raise InvalidInput(f"request body over its limit of {max_bytes} bytes", field="body")
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"request body is not JSON: {error}", field="body") from None
