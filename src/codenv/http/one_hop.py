"""One hop from the event loop to a worker thread per request.

FastAPI runs a plain (sync) dependency in a worker thread, then a plain route in another hop.
Finding the caller (a token's or a session's row) is such a dependency on nearly every route,
and each hop hands the GIL back and forth under load: ~0.1 ms of CPU per request and a fifth
of the p95 of a read under 20 clients. A dependency made by `found_in_route_thread` only
holds the request; `OneHopRoute` finds its value in the route's own worker thread, just
before the route runs. Failures are the same exceptions, raised from the route. The route's
parameters are checked before that: an anonymous request with a malformed one gets its 422
(the schema is public) rather than a 401; bodies are size-limited before both (http/limits).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

LATE = "an async route or a dependency cannot take a value found in the route's thread"


@dataclass(frozen=True)
class _Pending:
    find: Callable[[Request], Any]
    request: Request


_FOUND_LATE: set[Callable[..., Any]] = set()


def found_in_route_thread(find: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Any]]:
    """A dependency whose value `find` finds in the worker thread of the route (a plain one,
    of a `OneHopRoute`) that takes it; never on the event loop."""

    async def pending(request: Request) -> _Pending:
        return _Pending(find, request)

    _FOUND_LATE.add(pending)
    return pending


class OneHopRoute(APIRoute):
    """A route whose parameters from `found_in_route_thread` are found in its worker thread."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        plain = inspect.isfunction(endpoint) and not (
            inspect.iscoroutinefunction(endpoint) or inspect.isgeneratorfunction(endpoint)
        )
        super().__init__(path, _finding(endpoint) if plain else endpoint, **kwargs)
        _check(self.dependant, path, direct=plain)


def _finding(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def run(**values: Any) -> Any:
        found = {k: v.find(v.request) if isinstance(v, _Pending) else v for k, v in values.items()}
        return endpoint(**found)

    return run


def _check(dependant: Dependant, path: str, *, direct: bool) -> None:
    """Only a plain route's own parameters may be found late: anywhere else (an async route,
    a dependency) the value would be found on the event loop, or never."""
    for needed in dependant.dependencies:
        if needed.call in _FOUND_LATE and not direct:
            raise TypeError(f"{path}: {LATE}")
        _check(needed, path, direct=False)
