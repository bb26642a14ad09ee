"""Answers written straight from the services' views, for the reads clients poll.

A route that returns a dict has FastAPI validate it against the route's response model, in a
worker thread of its own (the route is sync), then serialize it; the view was first copied
into that dict. For the reads the console and scripts poll (env pages, show, installed,
builds), the view (a dataclass) is serialized at once by pydantic-core, the serializer FastAPI
uses: the same JSON, without the copy, the validation or the extra thread hop (a page of 50
envs went from ~1 ms of that to 0.2). The route still declares its response model for the
schema; tests/test_api_answers.py checks that each such answer is exactly of that type.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi import Response

from codenv.services.read_cache import derived

JSON = "application/json"


def answer(view: Any, *, shared: bool = False) -> Response:
    """A view (a dataclass, or a list of them) as the JSON body of a 200. `shared`: a page the
    read cache hands every request while the data is unchanged, serialized once."""
    if shared:
        return Response(derived(view, "json", lambda: pydantic_core.to_json(view)), media_type=JSON)
    return Response(pydantic_core.to_json(view), media_type=JSON)
