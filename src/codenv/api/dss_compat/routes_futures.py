"""Futures (§2.2, §3): what `DSSFuture` polls, peeks at and aborts; `list_futures`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from codenv.api.dss_compat.deps import DssCaller
from codenv.services.futures import abort_future, future_state, list_futures

router = APIRouter()
# Query parameters keep the client's camelCase names (withScenarios, allUsers, peek...).


@router.get("/futures/")
def list_all(
    call: DssCaller,
    withScenarios: bool = False,
    withNotScenarios: bool = True,
    allUsers: bool = False,
) -> list[dict[str, Any]]:
    """The caller's running futures; scenarios (`list_running_scenarios`) are none."""
    if not withNotScenarios:
        return []
    return list_futures(call.app, call.actor, all_users=allUsers)


@router.get("/futures/{job_id}")
def get_state(call: DssCaller, job_id: str, peek: bool = False) -> dict[str, Any]:
    return future_state(call.app, call.actor, job_id, peek=peek)


@router.delete("/futures/{job_id}")
def abort(call: DssCaller, job_id: str) -> dict[str, Any]:
    """Cancel the future's build: the answer is its state (`aborted` once it stopped)."""
    abort_future(call.app, call.actor, job_id)
    return future_state(call.app, call.actor, job_id, peek=True)
