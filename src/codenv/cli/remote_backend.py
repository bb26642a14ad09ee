"""The CLI going through a codenv server's REST API (remote mode: `--url` and a token).

It returns the same data as the local backend, so both modes print the same output; an API
error becomes the same CodenvError (same message, field and exit code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from codenv.domain.errors import CodenvError
from codenv.domain.spec import EnvSpec, SpecChanges

LOCAL_ONLY = "runs on the node itself: use it there, without --url"


def _error_classes() -> dict[str, type[CodenvError]]:
    found: dict[str, type[CodenvError]] = {}
    pending: list[type[CodenvError]] = [CodenvError]
    while pending:
        kind = pending.pop()
        found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise CodenvError(
            f"the server answered {response.status_code}: {response.text[:200]}"
        ) from None
    kind = _error_classes().get(error.get("code"), CodenvError)
    failure = CodenvError.__new__(kind)
    CodenvError.__init__(failure, error.get("message", ""), field=error.get("field"))
    raise failure


def _spec_body(spec: EnvSpec) -> dict[str, Any]:
    data = spec.to_dict()
    return {
        key: data[key]
        for key in (
            "python",
            "install_core_packages",
            "install_jupyter_support",
            "package_sets",
            "requested",
            "description",
        )
    }


def _changes_body(changes: SpecChanges) -> dict[str, Any]:
    body = {key: getattr(changes, key) for key in changes.__dataclass_fields__}
    return {key: list(value) if isinstance(value, tuple) else value for key, value in body.items()}


class RemoteBackend:
    remote = True

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url.rstrip("/") + "/api/v1",
            timeout=600,
            headers={"Authorization": f"Bearer {token}"},
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        _raise_for(response)
        return response.json() if response.content else None

    def pythons(self) -> dict[str, Any]:
        return dict(self._call("GET", "/pythons"))

    def add_python(self, path: str) -> dict[str, Any]:
        return dict(self._call("POST", "/pythons", json={"path": path}))

    def remove_python(self, path: str) -> None:
        raise CodenvError(f"removing an interpreter {LOCAL_ONLY}")

    def sets(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/sets"))

    def create(self, name: str, spec: EnvSpec) -> dict[str, Any]:
        return dict(self._call("POST", "/envs", json={"name": name, **_spec_body(spec)}))

    def save(self, name: str, changes: SpecChanges) -> dict[str, Any]:
        return dict(self._call("PATCH", f"/envs/{name}/spec", json=_changes_body(changes))["spec"])

    def update(self, name: str, upgrade_all: bool, rebuild: bool) -> dict[str, Any]:
        body = {"upgrade_all": upgrade_all, "rebuild": rebuild}
        return dict(self._call("POST", f"/envs/{name}/update", json=body))

    def show(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/envs/{name}"))

    def list_envs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/envs"))

    def delete(self, name: str, delete_resources: bool) -> None:
        self._call("DELETE", f"/envs/{name}", params={"delete_resources": delete_resources})

    def installed(self, name: str, revision: int | None) -> dict[str, Any]:
        params = {"revision": revision} if revision is not None else {}
        return dict(self._call("GET", f"/envs/{name}/installed", params=params))

    def revisions(self, name: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/envs/{name}/revisions"))

    def rollback(self, name: str, number: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/envs/{name}/rollback", json={"revision": number}))

    def builds(self, name: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/envs/{name}/builds"))

    def build(self, build_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/builds/{build_id}"))

    def read_log(self, build_id: str, offset: int) -> tuple[str, int]:
        response = self.http.get(f"/builds/{build_id}/log", params={"offset": offset})
        _raise_for(response)
        return response.text, int(response.headers["X-Log-Offset"])

    def build_done(self, build_id: str) -> None:
        return None

    def get_script(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/envs/{name}/resources/script"))

    def set_script(
        self, name: str, script: str | None, on_update: bool | None, on_api_node: bool | None
    ) -> dict[str, Any]:
        body = {"script": script, "run_on_update": on_update, "run_on_api_node": on_api_node}
        return dict(self._call("PUT", f"/envs/{name}/resources/script", json=body))

    def run_init(self, name: str) -> str:
        return str(self._call("POST", f"/envs/{name}/resources/init")["build_id"])

    def env_vars(self, name: str) -> dict[str, str]:
        return dict(self._call("GET", f"/envs/{name}/resources/vars"))

    def list_files(self, name: str, path: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/envs/{name}/resources/files", params={"path": path}))

    def put_file(
        self, name: str, local: Path, dest: str | None, unzip: bool
    ) -> list[dict[str, Any]]:
        target = dest if dest is not None else ("" if unzip else local.name)
        with local.open("rb") as handle:
            return list(
                self._call(
                    "PUT",
                    f"/envs/{name}/resources/files/{target}",
                    content=handle,
                    params={"unzip": unzip},
                )
            )

    def get_file(self, name: str, path: str, local: Path) -> Path:
        target = local / Path(path).name if local.is_dir() else local
        with self.http.stream("GET", f"/envs/{name}/resources/content/{path}") as response:
            if not response.is_success:
                response.read()
                _raise_for(response)
            with target.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        return target

    def remove_file(self, name: str, path: str) -> None:
        self._call("DELETE", f"/envs/{name}/resources/files/{path}")

    def settings(self) -> dict[str, Any]:
        return dict(self._call("GET", "/settings"))

    def set_install_options(self, tokens: list[str]) -> list[str]:
        return list(
            self._call("PUT", "/settings/install-options", json={"tokens": tokens})[
                "install_options"
            ]
        )

    def set_venv_options(self, tokens: list[str]) -> list[str]:
        return list(
            self._call("PUT", "/settings/venv-options", json={"tokens": tokens})["venv_options"]
        )

    def set_requests(self, allow: bool) -> None:
        self._call("PUT", "/settings/requests", json={"allow": allow})

    def kernels(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/kernels"))
