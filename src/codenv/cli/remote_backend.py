"""The CLI going through a codenv server's REST API (remote mode: `--url` and a token).

It returns the same data as the local backend (both implement `cli.backend.Backend`), so both
modes print the same output; an API error becomes the same CodenvError (same class, message,
field, line and exit code), and a server that cannot be reached is `Unavailable`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from codenv.cli.backend import Backend
from codenv.cli.remote_containers import RemoteContainers
from codenv.domain.errors import CodenvError, InvalidInput, TooManyAttempts, Unavailable
from codenv.domain.secrets import mask_secrets

if TYPE_CHECKING:
    from codenv.domain.spec import EnvSpec, SpecChanges

LOCAL_ONLY = "runs on the node itself: use it there, without --url"
TOKEN_VARIABLE = "CODENV_TOKEN"  # noqa: S105 (a variable name)


def token_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("codenv", appauthor=False)) / "token"


def read_token() -> str:
    """The API token: CODENV_TOKEN, else the user's config file (`codenv login` writes it)."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token and token_file().exists():
        token = token_file().read_text("utf-8").strip()
    if not token:
        raise CodenvError(
            f"remote mode needs an API token: set {TOKEN_VARIABLE} or write it to {token_file()}",
            field="token",
        )
    return token


def checked_url(url: str) -> str:
    """The server's URL, refused unless it is http(s)://host[:port][/prefix]."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            f"the server URL must start with http:// or https://, like http://127.0.0.1:8765 "
            f"(got {mask_secrets(url)!r})",
            field="url",
        )
    return url.strip().rstrip("/")


def _error_classes() -> dict[str, type[CodenvError]]:
    found: dict[str, type[CodenvError]] = {}
    pending: list[type[CodenvError]] = [CodenvError]
    while pending:
        kind = pending.pop()
        found.setdefault(kind.code, kind)
        pending.extend(kind.__subclasses__())
    return found


def error_of(response: httpx.Response) -> CodenvError:
    """The CodenvError an API error response stands for, with what it carries."""
    try:
        error = response.json()["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        return CodenvError(f"the server answered {response.status_code}: {response.text[:200]}")
    kind = _error_classes().get(error.get("code"), CodenvError)
    if issubclass(kind, TooManyAttempts):
        wait = response.headers.get("Retry-After", "")
        return TooManyAttempts(message, retry_after=int(wait) if wait.isdigit() else 0)
    failure = kind(message, field=error.get("field"))
    failure.line = error.get("line")
    return failure


def _raise_for(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_of(response)


def segment(value: str | int) -> str:
    """`value` as one segment of a request's path: a name or an id with `/` or dots in it
    names nothing on the server, instead of reaching another route (`../envs/x`)."""
    text = quote(str(value), safe="")
    return text.replace(".", "%2E") if text in (".", "..") else text


def _changes_body(changes: SpecChanges) -> dict[str, Any]:
    body = {key: getattr(changes, key) for key in changes.__dataclass_fields__}
    return {key: list(value) if isinstance(value, tuple) else value for key, value in body.items()}


def _page_params(query: dict[str, Any]) -> dict[str, Any]:
    """A page's query parameters: those given, with a limit (the server's page shape)."""
    params = {key: value for key, value in query.items() if value is not None}
    params.setdefault("limit", 100)
    return params


class RemoteBackend(RemoteContainers, Backend):
    remote = True

    def __init__(self, url: str, token: str) -> None:
        self.url = checked_url(url)
        self.http = httpx.Client(
            base_url=self.url + "/api/v1",
            timeout=600,
            headers={"Authorization": f"Bearer {token}"},
        )

    @classmethod
    def connect(cls, url: str) -> RemoteBackend:
        """The server at `url` with the caller's token (the URL is checked first)."""
        return cls(checked_url(url), read_token())

    def close(self) -> None:
        self.http.close()

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Transport failures (refused, unknown host, timeout...) as one Unavailable error."""
        try:
            yield
        except httpx.TransportError as error:
            reason = (str(error) or type(error).__name__).splitlines()[0]
            raise Unavailable(
                f"cannot reach the codenv server at {mask_secrets(self.url)}: {reason}",
                field="url",
            ) from error

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._reaching():
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
        # The whole spec and every change: the server refuses a field it does not know (422)
        # instead of dropping it.
        return dict(self._call("POST", "/envs", json={"name": name, **spec.to_dict()}))

    def save(self, name: str, changes: SpecChanges) -> dict[str, Any]:
        return dict(
            self._call("PATCH", f"/envs/{segment(name)}/spec", json=_changes_body(changes))["spec"]
        )

    def update(self, name: str, upgrade_all: bool, rebuild: bool) -> dict[str, Any]:
        body = {"upgrade_all": upgrade_all, "rebuild": rebuild}
        return dict(self._call("POST", f"/envs/{segment(name)}/update", json=body))

    def show(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/envs/{segment(name)}"))

    def list_envs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/envs"))

    def env_page(self, query: dict[str, Any]) -> dict[str, Any]:
        # With `limit` (always sent here) the server answers a page, not the plain list.
        return dict(self._call("GET", "/envs", params=_page_params(query)))

    def delete(self, name: str, delete_resources: bool) -> str | None:
        params = {"delete_resources": delete_resources}
        deleted = self._call("DELETE", f"/envs/{segment(name)}", params=params)
        return None if deleted is None else deleted["kept_resources"]

    def installed(self, name: str, revision: int | None) -> dict[str, Any]:
        params = {"revision": revision} if revision is not None else {}
        return dict(self._call("GET", f"/envs/{segment(name)}/installed", params=params))

    def revisions(self, name: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/envs/{segment(name)}/revisions"))

    def rollback(self, name: str, number: int) -> dict[str, Any]:
        return dict(
            self._call("POST", f"/envs/{segment(name)}/rollback", json={"revision": number})
        )

    def remove_revision(self, name: str, number: int) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/envs/{segment(name)}/revisions/{number}"))

    def builds(self, name: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/envs/{segment(name)}/builds"))

    def build_page(self, name: str, query: dict[str, Any]) -> dict[str, Any]:
        path = f"/envs/{segment(name)}/builds"
        return dict(self._call("GET", path, params=_page_params(query)))

    def build(self, build_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/builds/{segment(build_id)}"))

    def read_log(self, build_id: str, offset: int) -> tuple[str, int]:
        with self._reaching():
            response = self.http.get(f"/builds/{segment(build_id)}/log", params={"offset": offset})
        _raise_for(response)
        return response.text, int(response.headers["X-Log-Offset"])

    def build_done(self, build_id: str) -> None:
        return None

    def cancel(self, build_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/builds/{segment(build_id)}/cancel"))

    def export_bundle(
        self, names: list[str], revision: int | None, wheels: bool, resources: bool, out: Path
    ) -> dict[str, Any]:
        body = {
            "envs": names,
            "all": not names,
            "revision": revision,
            "with_wheels": wheels,
            "with_resources": resources,
        }
        # The server answers once the whole bundle is built (downloading wheels may take longer
        # than any read timeout; its build timeout bounds it). Written beside `out` and renamed
        # when whole: an interrupted download leaves nothing.
        partial = out.with_name(f".{out.name}.{os.getpid()}.part")
        try:
            with (
                self._reaching(),
                self.http.stream(
                    "POST", "/bundles/export", json=body, timeout=httpx.Timeout(600, read=None)
                ) as response,
            ):
                if not response.is_success:
                    response.read()
                    _raise_for(response)
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
            partial.replace(out)
        finally:
            partial.unlink(missing_ok=True)
        return {"path": str(out), "size_bytes": out.stat().st_size, "envs": self._envs_of(out)}

    @staticmethod
    def _envs_of(bundle: Path) -> list[dict[str, Any]]:
        """The envs of a downloaded bundle as a local export describes them, from its manifest
        (the last member: the ones before are skipped, not read)."""
        import tarfile

        from codenv.domain import bundles

        try:
            with tarfile.open(bundle, "r:") as tar:
                member = tar.getmember(bundles.MANIFEST)
                source = tar.extractfile(member)
                if source is None or member.size > bundles.MAX_MANIFEST_BYTES:
                    raise KeyError(bundles.MANIFEST)
                manifest = bundles.parse_manifest(source.read())
        except (tarfile.TarError, KeyError) as error:
            raise CodenvError(f"the server sent no codenv bundle: {error}") from error
        return [
            {**env.to_dict(), "wheels": sum(1 for p in manifest.files if p.startswith(wheels))}
            for env in manifest.envs
            for wheels in [env.path(f"{bundles.WHEELS}/")]
        ]

    def import_bundle(
        self, file: Path, as_name: str | None, offline: bool, mode: str
    ) -> dict[str, Any]:
        if not file.is_file():  # as the local import says it
            raise InvalidInput(f"no bundle file at {file}", field="file")
        params: dict[str, Any] = {"offline": offline, "mode": mode}
        if as_name is not None:
            params["as_name"] = as_name
        with file.open("rb") as handle:
            upload = {"file": (file.name, handle, "application/x-tar")}
            return dict(self._call("POST", "/bundles/import", params=params, files=upload))

    def get_script(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/envs/{segment(name)}/resources/script"))

    def set_script(
        self, name: str, script: str | None, on_update: bool | None, on_api_node: bool | None
    ) -> dict[str, Any]:
        body = {"script": script, "run_on_update": on_update, "run_on_api_node": on_api_node}
        return dict(self._call("PUT", f"/envs/{segment(name)}/resources/script", json=body))

    def run_init(self, name: str) -> str:
        return str(self._call("POST", f"/envs/{segment(name)}/resources/init")["build_id"])

    def env_vars(self, name: str) -> dict[str, str]:
        return dict(self._call("GET", f"/envs/{segment(name)}/resources/vars"))

    def list_files(self, name: str, path: str) -> list[dict[str, Any]]:
        return list(
            self._call("GET", f"/envs/{segment(name)}/resources/files", params={"path": path})
        )

    def put_file(
        self, name: str, local: Path, dest: str | None, unzip: bool
    ) -> list[dict[str, Any]]:
        target = dest if dest is not None else ("" if unzip else local.name)
        with local.open("rb") as handle:
            return list(
                self._call(
                    "PUT",
                    f"/envs/{segment(name)}/resources/files/{target}",
                    content=handle,
                    params={"unzip": unzip},
                )
            )

    def get_file(self, name: str, path: str, local: Path) -> Path:
        target = local / Path(path).name if local.is_dir() else local
        with (
            self._reaching(),
            self.http.stream("GET", f"/envs/{segment(name)}/resources/content/{path}") as response,
        ):
            if not response.is_success:
                response.read()
                _raise_for(response)
            with target.open("wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
        return target

    def remove_file(self, name: str, path: str) -> None:
        self._call("DELETE", f"/envs/{segment(name)}/resources/files/{path}")

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

    def set_sandbox(self, mode: str) -> str:
        return str(self._call("PUT", "/settings/sandbox", json={"mode": mode})["sandbox"])

    def set_local_source_roots(self, roots: list[str]) -> list[str]:
        saved = self._call("PUT", "/settings/local-source-roots", json={"roots": roots})
        return list(saved["allowed_local_source_roots"])

    def set_trusted_proxies(self, proxies: list[str]) -> list[str]:
        saved = self._call("PUT", "/settings/trusted-proxies", json={"proxies": proxies})
        return list(saved["trusted_proxies"])

    def node(self) -> dict[str, Any]:
        return dict(self._call("GET", "/node"))

    def set_node_kind(self, kind: str) -> str:
        return str(self._call("PUT", "/settings/node-kind", json={"kind": kind})["node_kind"])

    def set_prevent_override(self, prevent: bool) -> bool:
        saved = self._call("PUT", "/settings/prevent-override", json={"prevent": prevent})
        return bool(saved["prevent_override_from_imported_envs"])

    def kernels(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/kernels"))

    def kept(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/kept-resources"))

    def adopt_kept(self, kept_id: str, env: str) -> None:
        self._call("POST", f"/kept-resources/{segment(kept_id)}/adopt", json={"env": env})

    def drop_kept(self, kept_id: str) -> None:
        self._call("DELETE", f"/kept-resources/{segment(kept_id)}")

    def sessions(self, user: str | None) -> list[dict[str, Any]]:
        params = {"user": user} if user is not None else {}
        return list(self._call("GET", "/sessions", params=params))

    def end_session(self, session_id: int) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/sessions/{segment(session_id)}"))

    def end_user_sessions(self, user: str) -> int:
        return int(self._call("DELETE", f"/users/{segment(user)}/sessions")["ended"])
