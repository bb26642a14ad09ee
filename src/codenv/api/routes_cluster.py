"""/api/v1/status: workers, claimed builds, the queue and execution nodes (administrators),
as `codenv status --json` shows them."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from codenv.api.responses import closed
from codenv.api.routers import api_router
from codenv.http.deps import Caller
from codenv.services.cluster import cluster_status

router = api_router()


@closed
class Worker(TypedDict):
    name: str
    host: str
    queues: list[str]
    concurrency: int
    started_at: str | None
    last_seen_at: str | None
    seen_seconds_ago: float | None
    alive: bool


@closed
class ClaimedBuild(TypedDict):
    id: str
    env: str
    kind: str
    status: str
    step: str
    worker: str | None
    host: str | None
    started_at: str | None
    lease_expires_at: str | None
    expires_in_seconds: float


@closed
class Broker(TypedDict):
    queue: str
    messages: int | None
    error: str | None


@closed
class Queue(TypedDict):
    queued: int
    broker: Broker | None


@closed
class FailedEnv(TypedDict):
    env: str
    revision: int
    error: str


@closed
class NodeEnvs(TypedDict):
    agreement: list[str]
    behind: list[str]
    failed: list[FailedEnv]


@closed
class ExecutionNode(TypedDict):
    name: str
    host: str
    pythons: list[str]
    poll_seconds: int | None
    last_seen_at: str | None
    seen_seconds_ago: float | None
    envs: NodeEnvs


@closed
class Status(TypedDict):
    lease_seconds: int
    workers: list[Worker]
    builds: list[ClaimedBuild]
    queue: Queue
    nodes: list[ExecutionNode]


@router.get("/status", tags=["node"], response_model=Status)
def show_status(call: Caller) -> dict[str, Any]:
    """Build workers (alive while their heartbeat is younger than a lease), builds claimed
    under a lease, queued builds (and the broker queue's messages when a broker is set), and
    each execution node (`codenv sync`) with its envs in agreement with the active revisions,
    behind them, or failed installing them. Administrators only."""
    return cluster_status(call.app, call.actor)
