"""The CLI acting on a home directly (local mode), as the node's administrator: every call is
a service call, with the same views the API returns (see `cli.backend.Backend`).

Each method imports the service module it calls: a command loads the use cases it runs, not
every build, sandbox and installer module (start-up time; tests/test_cli_startup.py).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codenv.cli.backend import Backend
from codenv.services.actor import Actor
from codenv.services.app import open_codenv
from codenv.settings import load_settings

if TYPE_CHECKING:
    from codenv.domain.spec import EnvSpec, SpecChanges
    from codenv.services.app import Codenv, QueueKind


class LocalBackend(Backend):
    remote = False

    def __init__(self, home: Path | None, queue: QueueKind) -> None:
        self.app: Codenv = open_codenv(load_settings(home), queue=queue)
        self.actor = Actor.local_admin()

    def close(self) -> None:
        self.app.close()

    def pythons(self) -> dict[str, Any]:
        from codenv.services import interpreters

        found = interpreters.list_pythons(self.app, self.actor)
        return {
            "interpreters": [item.to_dict() for item in found.found],
            "refused": [asdict(item) for item in found.refused],
        }

    def add_python(self, path: str) -> dict[str, Any]:
        from codenv.services import interpreters

        return interpreters.add_python(self.app, self.actor, path).to_dict()

    def remove_python(self, path: str) -> None:
        from codenv.services import interpreters

        interpreters.remove_python(self.app, self.actor, path)

    def sets(self) -> list[dict[str, Any]]:
        return [item.to_dict() for item in self.app.catalog.sets]

    def create(self, name: str, spec: EnvSpec) -> dict[str, Any]:
        from codenv.services import envs

        return envs.create_env(self.app, self.actor, name, spec).to_dict()

    def save(self, name: str, changes: SpecChanges) -> dict[str, Any]:
        from codenv.services import envs

        return envs.save_spec(self.app, self.actor, name, changes).to_dict()

    def update(self, name: str, upgrade_all: bool, rebuild: bool) -> dict[str, Any]:
        from codenv.services import builds

        return builds.request_update(
            self.app, self.actor, name, upgrade_all=upgrade_all, rebuild=rebuild
        ).to_dict()

    def show(self, name: str) -> dict[str, Any]:
        from codenv.services import envs

        return envs.show_env(self.app, self.actor, name).to_dict()

    def list_envs(self) -> list[dict[str, Any]]:
        from codenv.services import envs

        return [info.to_dict() for info in envs.list_envs(self.app, self.actor)]

    def env_page(self, query: dict[str, Any]) -> dict[str, Any]:
        from codenv.services import env_listing, listing

        filters = env_listing.EnvFilter(
            **{key: query.get(key) for key in ("owner", "status", "python", "prefix")}
        )
        return env_listing.find_envs(
            self.app,
            self.actor,
            filters,
            limit=query.get("limit") or listing.DEFAULT_LIMIT,
            cursor=query.get("cursor"),
            sort=query.get("sort") or "name",
        ).to_dict()

    def delete(self, name: str, delete_resources: bool) -> str | None:
        from codenv.services import envs

        return envs.delete_env(self.app, self.actor, name, delete_resources=delete_resources)

    def installed(self, name: str, revision: int | None) -> dict[str, Any]:
        from codenv.services.installed import show_installed

        return show_installed(self.app, self.actor, name, revision).to_dict()

    def revisions(self, name: str) -> list[dict[str, Any]]:
        from codenv.services import revisions

        return [item.to_dict() for item in revisions.list_revisions(self.app, self.actor, name)]

    def rollback(self, name: str, number: int) -> dict[str, Any]:
        from codenv.services import revisions

        return revisions.rollback(self.app, self.actor, name, number).to_dict()

    def remove_revision(self, name: str, number: int) -> dict[str, Any]:
        from codenv.services import revisions

        return revisions.remove_revision(self.app, self.actor, name, number).to_dict()

    def builds(self, name: str) -> list[dict[str, Any]]:
        from codenv.services import builds

        return [item.to_dict() for item in builds.list_builds(self.app, self.actor, name)]

    def build_page(self, name: str, query: dict[str, Any]) -> dict[str, Any]:
        from codenv.services import listing

        return listing.find_builds(
            self.app,
            self.actor,
            name,
            limit=query.get("limit") or listing.DEFAULT_LIMIT,
            cursor=query.get("cursor"),
            status=query.get("status"),
            kind=query.get("kind"),
        ).to_dict()

    def build(self, build_id: str) -> dict[str, Any]:
        from codenv.services import builds

        return builds.get_build(self.app, self.actor, build_id).to_dict()

    def read_log(self, build_id: str, offset: int) -> tuple[str, int]:
        from codenv.services import logs

        return logs.read_log(self.app, self.actor, build_id, offset)

    def build_done(self, build_id: str) -> None:
        self.app.queue.wait(build_id)

    def cancel(self, build_id: str) -> dict[str, Any]:
        from codenv.services import builds

        return builds.cancel_build(self.app, self.actor, build_id).to_dict()

    def get_script(self, name: str) -> dict[str, Any]:
        from codenv.services import resources

        return resources.get_init_script(self.app, self.actor, name).to_dict()

    def containers(self) -> list[dict[str, Any]]:
        from codenv.services import containers

        return [c.to_dict() for c in containers.list_container_configs(self.app, self.actor)]

    def add_container(self, config: dict[str, Any]) -> dict[str, Any]:
        from codenv.services import containers

        new = containers.NewContainerConfig(**config)
        return containers.add_container_config(self.app, self.actor, new).to_dict()

    def remove_container(self, name: str) -> None:
        from codenv.services import containers

        containers.remove_container_config(self.app, self.actor, name)

    def set_containers(self, name: str, containers: str, resources: str) -> dict[str, Any]:
        from codenv.domain.containers import ContainerSelection
        from codenv.services import images

        selection = ContainerSelection.parse(containers, resources)
        return images.set_containers(self.app, self.actor, name, selection).to_dict()

    def images(self, name: str) -> dict[str, Any]:
        from codenv.services import images

        return images.env_images(self.app, self.actor, name).to_dict()

    def build_images(self, name: str, config: str | None) -> list[str]:
        from codenv.services import images

        return images.build_images(self.app, self.actor, name, config)

    def set_script(
        self, name: str, script: str | None, on_update: bool | None, on_api_node: bool | None
    ) -> dict[str, Any]:
        from codenv.services import resources

        return resources.set_init_script(
            self.app,
            self.actor,
            name,
            script=script,
            run_on_update=on_update,
            run_on_api_node=on_api_node,
        ).to_dict()

    def run_init(self, name: str) -> str:
        from codenv.services import resources

        return resources.run_init_script_now(self.app, self.actor, name)

    def env_vars(self, name: str) -> dict[str, str]:
        from codenv.services import resources

        return resources.resource_env_vars(self.app, self.actor, name)

    def list_files(self, name: str, path: str) -> list[dict[str, Any]]:
        from codenv.services import resources

        return [e.to_dict() for e in resources.list_files(self.app, self.actor, name, path)]

    def put_file(
        self, name: str, local: Path, dest: str | None, unzip: bool
    ) -> list[dict[str, Any]]:
        from codenv.services import resources

        entries = resources.put_files(self.app, self.actor, name, local, dest, unzip=unzip)
        return [entry.to_dict() for entry in entries]

    def get_file(self, name: str, path: str, local: Path) -> Path:
        from codenv.services import resources

        return resources.get_file(self.app, self.actor, name, path, local)

    def remove_file(self, name: str, path: str) -> None:
        from codenv.services import resources

        resources.remove_file(self.app, self.actor, name, path)

    def settings(self) -> dict[str, Any]:
        from codenv.services import node_settings

        return node_settings.show_settings(self.app, self.actor)

    def set_install_options(self, tokens: list[str]) -> list[str]:
        from codenv.services import node_settings

        return list(node_settings.set_install_options(self.app, self.actor, tokens))

    def set_venv_options(self, tokens: list[str]) -> list[str]:
        from codenv.services import node_settings

        return list(node_settings.set_venv_options(self.app, self.actor, tokens))

    def set_requests(self, allow: bool) -> None:
        from codenv.services import node_settings

        node_settings.set_requests_allowed(self.app, self.actor, allow)

    def set_sandbox(self, mode: str) -> str:
        from codenv.services import boxes

        return boxes.set_sandbox_mode(self.app, self.actor, mode)

    def set_local_source_roots(self, roots: list[str]) -> list[str]:
        from codenv.services import node_settings

        return node_settings.set_local_source_roots(self.app, self.actor, roots)

    def set_trusted_proxies(self, proxies: list[str]) -> list[str]:
        from codenv.services import node_settings

        return node_settings.set_trusted_proxies(self.app, self.actor, proxies)

    def node(self) -> dict[str, Any]:
        from codenv.services import node_info

        return node_info.node_info(self.app, self.actor).to_dict()

    def set_node_kind(self, kind: str) -> str:
        from codenv.services import node_settings

        return node_settings.set_node_kind(self.app, self.actor, kind).value

    def set_prevent_override(self, prevent: bool) -> bool:
        from codenv.services import node_settings

        return node_settings.set_prevent_override(self.app, self.actor, prevent)

    def kernels(self) -> list[dict[str, Any]]:
        from codenv.services import kernels

        return kernels.list_kernels(self.app, self.actor)

    def kept(self) -> list[dict[str, Any]]:
        from codenv.services import kept_resources

        return [item.to_dict() for item in kept_resources.list_kept(self.app, self.actor)]

    def adopt_kept(self, kept_id: str, env: str) -> None:
        from codenv.services import kept_resources

        kept_resources.adopt_kept(self.app, self.actor, kept_id, env)

    def drop_kept(self, kept_id: str) -> None:
        from codenv.services import kept_resources

        kept_resources.drop_kept(self.app, self.actor, kept_id)

    def sessions(self, user: str | None) -> list[dict[str, Any]]:
        from codenv.services import sessions

        found = sessions.list_sessions(self.app, self.actor, user=user)
        return [item.to_dict() for item in found]

    def end_session(self, session_id: int) -> dict[str, Any]:
        from codenv.services import sessions

        return sessions.end_session_by_id(self.app, self.actor, session_id).to_dict()

    def end_user_sessions(self, user: str) -> int:
        from codenv.services import sessions

        return sessions.end_user_sessions(self.app, self.actor, user)

    def export_bundle(
        self, names: list[str], revision: int | None, wheels: bool, resources: bool, out: Path
    ) -> dict[str, Any]:
        from codenv.services.bundle_export import ExportRequest, export_bundle

        request = ExportRequest(tuple(names), revision, wheels, resources)
        return export_bundle(self.app, self.actor, request, out).to_dict()

    def import_bundle(
        self, file: Path, as_name: str | None, offline: bool, mode: str
    ) -> dict[str, Any]:
        from codenv.domain.bundles import ImportMode
        from codenv.services.bundle_import import ImportRequest, import_bundle

        request = ImportRequest(as_name, offline, ImportMode(mode))
        return import_bundle(self.app, self.actor, file, request).to_dict()
