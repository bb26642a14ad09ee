"""The remote backend's containerized-execution calls (/api/v1/containers, /envs/{name}/images)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote


class RemoteContainers:
    """Mixed into RemoteBackend, whose `_call` sends one request and raises the API's error."""

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        raise NotImplementedError  # RemoteBackend's

    def containers(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/containers"))

    def add_container(self, config: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/containers", json={**config, "env": list(config["env"])}))

    def remove_container(self, name: str) -> None:
        self._call("DELETE", f"/containers/{quote(name, safe='')}")

    def set_containers(self, name: str, containers: str, resources: str) -> dict[str, Any]:
        body = {"containers": containers, "container_resources": resources}
        return dict(self._call("PUT", f"/envs/{quote(name, safe='')}/containers", json=body))

    def images(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/envs/{quote(name, safe='')}/images"))

    def build_images(self, name: str, config: str | None) -> list[str]:
        path = f"/envs/{quote(name, safe='')}/images/build"
        return list(self._call("POST", path, json={"config": config})["build_ids"])
