"""/api/v1 containerized execution: container configs (administrators), each env's container
selection, its images and image builds (their logs are builds' logs: /builds/{id}/log)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Response, status
from pydantic import BaseModel, Field

from codenv.api.responses import ContainerConfig, EnvImages, ImageBuilds
from codenv.api.routers import api_router
from codenv.api.schemas import Name
from codenv.domain.containers import (
    MAX_CREDENTIAL_CHARS,
    MAX_ENV_VALUE_CHARS,
    MAX_ENV_VARS,
    MAX_REF_CHARS,
    ContainerResources,
    ContainerSelection,
)
from codenv.http.deps import Caller
from codenv.services import containers, images

router = api_router("containers")
Pair = Annotated[str, Field(max_length=MAX_ENV_VALUE_CHARS + 130)]


class ContainerConfigBody(BaseModel):
    name: Name
    base: str = Field(
        max_length=MAX_REF_CHARS, description="host[:port]/repo[:tag][@digest], or oci:/path[:tag]"
    )
    registry: str = Field(max_length=MAX_REF_CHARS, description="HOST[:PORT]/REPO")
    insecure: bool = Field(False, description="plain HTTP (a registry on loopback)")
    env: list[Pair] = Field(default_factory=list, max_length=MAX_ENV_VARS, description="K=V")
    env_path: str = Field("/opt/codenv/env", max_length=200, description="the env in the image")
    username: str = Field("", max_length=256)
    password: str = Field("", max_length=MAX_CREDENTIAL_CHARS, description="never shown again")


class ContainersBody(BaseModel):
    containers: str = Field(max_length=4096, description="none, all, or C1,C2")
    container_resources: ContainerResources = ContainerResources.NONE


class ImagesBuildBody(BaseModel):
    config: Name | None = Field(None, description="one config; none: every config of the env")


@router.get("/containers", response_model=list[ContainerConfig])
def list_configs(call: Caller) -> list[dict[str, Any]]:
    return [c.to_dict() for c in containers.list_container_configs(call.app, call.actor)]


@router.post("/containers", status_code=status.HTTP_201_CREATED, response_model=ContainerConfig)
def add_config(body: ContainerConfigBody, call: Caller) -> dict[str, Any]:
    """Administrators. The password is stored like other secrets: never shown, never logged."""
    new = containers.NewContainerConfig(
        body.name,
        body.base,
        body.registry,
        body.insecure,
        tuple(body.env),
        body.env_path,
        body.username,
        body.password,
    )
    return containers.add_container_config(call.app, call.actor, new).to_dict()


@router.delete("/containers/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove_config(name: str, call: Caller) -> Response:
    containers.remove_container_config(call.app, call.actor, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/envs/{name}/images", response_model=EnvImages)
def env_images(name: str, call: Caller) -> dict[str, Any]:
    """The env's container selection and its images: config, repository, tag, digest,
    status, size; configs it selects that no longer exist are in `missing_configs`."""
    return images.env_images(call.app, call.actor, name).to_dict()


@router.put("/envs/{name}/containers", response_model=EnvImages)
def set_containers(name: str, body: ContainersBody, call: Caller) -> dict[str, Any]:
    """Which container configs the env is built for; builds nothing until the next update
    or images build."""
    selection = ContainerSelection.parse(body.containers, body.container_resources)
    return images.set_containers(call.app, call.actor, name, selection).to_dict()


@router.post(
    "/envs/{name}/images/build", status_code=status.HTTP_202_ACCEPTED, response_model=ImageBuilds
)
def build_images(name: str, call: Caller, body: ImagesBuildBody | None = None) -> dict[str, Any]:
    """Build the active revision's images again (all of the env's configs, or one)."""
    config = body.config if body else None
    return {"build_ids": images.build_images(call.app, call.actor, name, config)}
