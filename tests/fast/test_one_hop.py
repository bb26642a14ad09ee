"""Finding the caller in the route's own worker thread (http/one_hop.py): one hop from the
event loop per request, never a database read on the loop, never a route left without its
caller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute

from codenv.http import one_hop
from codenv.http.app import create_app
from codenv.http.one_hop import OneHopRoute, found_in_route_thread
from codenv.settings import load_settings

SEEN: list[tuple[str, int]] = []  # (who, thread)


def _find(request: Request) -> str:
    if request.headers.get("x-refuse"):
        raise PermissionError("refused")
    SEEN.append(("finder", threading.get_ident()))
    return "caller"


Found = Annotated[str, Depends(found_in_route_thread(_find))]


def _needs(found: Found) -> str:
    return found


def test_a_plain_route_finds_its_caller_in_its_own_worker_thread() -> None:
    SEEN.clear()
    router = APIRouter(route_class=OneHopRoute)

    @router.get("/who")
    def who(found: Found, limit: int = 5) -> dict[str, object]:
        SEEN.append(("route", threading.get_ident()))
        return {"found": found, "limit": limit}

    app = FastAPI()
    app.router.routes.extend(router.routes)

    @app.middleware("http")
    async def on_the_loop(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        SEEN.append(("loop", threading.get_ident()))
        return await call_next(request)

    first, refused = asyncio.run(_get_twice(app))
    assert first.json() == {"found": "caller", "limit": 7}
    threads = dict(SEEN[:3])
    assert threads["finder"] == threads["route"] != threads["loop"]
    assert refused.status_code == 500
    assert [who for who, _ in SEEN[3:]] == ["loop"]  # the route never ran without its caller


async def _get_twice(app: FastAPI) -> tuple[httpx.Response, httpx.Response]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = await client.get("/who", params={"limit": 7})
        return first, await client.get("/who", headers={"x-refuse": "1"})


def test_an_async_route_or_a_dependency_cannot_take_a_caller_found_late() -> None:
    router = APIRouter(route_class=OneHopRoute)
    with pytest.raises(TypeError, match="/upload: an async route"):

        @router.put("/upload")
        async def upload(found: Found) -> None:
            return None

    with pytest.raises(TypeError, match="/nested: an async route or a dependency"):

        @router.get("/nested")
        def nested(value: Annotated[str, Depends(_needs)]) -> str:
            return value


def test_every_route_of_the_server_that_takes_a_caller_finds_it(tmp_path: Path) -> None:
    """A route of another class would be handed the pending request instead of its caller."""
    app = create_app(load_settings(tmp_path / "home"))
    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    late = [route for route in routes if _takes_late(route)]
    assert len(late) > 100
    assert all(isinstance(route, OneHopRoute) for route in late)


def _takes_late(route: APIRoute) -> bool:
    return any(needed.call in one_hop._FOUND_LATE for needed in route.dependant.dependencies)
