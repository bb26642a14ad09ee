"""The API's routers: one shape for every /api/v1 router."""

from __future__ import annotations

from fastapi import APIRouter

from codenv.api.errors import ERROR_RESPONSES
from codenv.api.schemas import operation_id
from codenv.http.one_hop import OneHopRoute


def api_router(*tags: str) -> APIRouter:
    """An /api/v1 router: operation ids from the routes' names, the error answers declared on
    every operation, callers found in each route's own worker thread (`OneHopRoute`)."""
    return APIRouter(
        route_class=OneHopRoute,
        prefix="/api/v1",
        tags=list(tags) or None,
        generate_unique_id_function=operation_id,
        responses=ERROR_RESPONSES,
    )
