"""Containerized execution in the console: Administration > Containers (the container configs:
list, add, remove; administrators only) and the env page's Containerized execution tab (which
configs the env is built for, what its images get of its resources, its images with their
build logs, Build images).

The services check every right again (a forced post is the 403 page); errors of a form are
shown in place, beside the field they name. A registry password is never shown: not in the
list, not in the form drawn again after an error.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from codenv.domain.containers import (
    DEFAULT_ENV_PATH,
    MAX_CREDENTIAL_CHARS,
    MAX_ENV_VALUE_CHARS,
    MAX_ENV_VARS,
    MAX_REF_CHARS,
    ContainerSelection,
)
from codenv.domain.errors import CodenvError, InvalidInput
from codenv.domain.names import MAX_NAME_CHARS
from codenv.http.deps import Submitted, SubmittedDep, Viewer, ViewerDep
from codenv.services import containers, images
from codenv.services.actor import require_admin
from codenv.services.containers import ContainerConfigInfo, NewContainerConfig
from codenv.services.images import EnvImages
from codenv.web.admin_pages import admin_context
from codenv.web.env_pages import page_context
from codenv.web.render import ConsoleRoute, render_form, see_other

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)

# The API's limits (api/routes_containers.py), for the same fields typed in a form.
MAX_PAIR_CHARS = MAX_ENV_VALUE_CHARS + 130
MAX_ENV_PATH_CHARS = 200
MAX_USERNAME_CHARS = 256
MAX_SELECTION_CHARS = 4096
FIELD_LIMITS = {
    "name": MAX_NAME_CHARS,
    "base": MAX_REF_CHARS,
    "registry": MAX_REF_CHARS,
    "env_path": MAX_ENV_PATH_CHARS,
    "username": MAX_USERNAME_CHARS,
    "password": MAX_CREDENTIAL_CHARS,
    "env": MAX_ENV_VARS * (MAX_PAIR_CHARS + 2),
}
# What the add form shows again after an error: everything typed but the password.
TYPED_FIELDS = ("name", "base", "registry", "env", "env_path", "username")
MODES = ("none", "all", "selected")
RESOURCES = (
    ("init", "Run the init script while building the image (its files and env vars)"),
    ("copy", "Copy this node's resources directory and env vars into the image"),
    ("none", "Nothing: the image has no resources directory"),
)
NOTICES = {
    "saved": "Saved. The images are built at the next update of the env, or now with Build images.",
    "building": "Image builds queued: reload this page to follow their status; each one's "
    "log is linked in the table.",
}


def _limited(form: Submitted, field: str, limit: int) -> str:
    """A form field, refused (naming it) past the API's limit for the same field."""
    value = form.text(field)
    if len(value) > limit:
        raise InvalidInput(f"{field}: at most {limit} characters", field=field)
    return value


# Administration > Containers -------------------------------------------------------------------


def _configs_page(viewer: Viewer, failed: CodenvError | None = None, **context: Any) -> Response:
    require_admin(viewer.actor, "manage container configs")
    values: dict[str, Any] = {"saved": None, "typed": {"env_path": DEFAULT_ENV_PATH}}
    values.update(context)
    return render_form(
        "admin_containers.html",
        failed,
        configs=containers.list_container_configs(viewer.app, viewer.actor),
        limits=FIELD_LIMITS,
        **admin_context(viewer, "containers", **values),
    )


@router.get("/admin/containers")
def config_list(viewer: ViewerDep) -> Response:
    return _configs_page(viewer)


def _env_lines(text: str) -> tuple[str, ...]:
    lines = tuple(line.strip() for line in text.splitlines() if line.strip())
    for line in lines:
        if len(line) > MAX_PAIR_CHARS:
            key = line.partition("=")[0][:40]  # the value may be a secret: never echoed
            raise InvalidInput(f"environment variable {key!r}: too long", field="env")
    return lines


def _new_config(form: Submitted) -> NewContainerConfig:
    typed = {field: _limited(form, field, limit) for field, limit in FIELD_LIMITS.items()}
    return NewContainerConfig(
        name=typed["name"].strip(),
        base=typed["base"].strip(),
        registry=typed["registry"].strip(),
        insecure=form.flag("insecure"),
        env=_env_lines(typed["env"]),
        env_path=typed["env_path"].strip() or DEFAULT_ENV_PATH,
        username=typed["username"].strip(),
        password=typed["password"],
    )


@router.post("/admin/containers")
def add_config(form: SubmittedDep) -> Response:
    try:
        added = containers.add_container_config(form.app, form.actor, _new_config(form))
    except CodenvError as error:
        # Each field as typed (cut to its limit), but never the password.
        typed = {f: form.text(f)[: FIELD_LIMITS[f]] for f in TYPED_FIELDS}
        return _configs_page(form, error, typed={**typed, "insecure": form.flag("insecure")})
    return _configs_page(form, saved=f"Container config {added.name} was added.")


@router.post("/admin/containers/{name}/remove")
def remove_config(name: str, form: SubmittedDep) -> Response:
    try:
        containers.remove_container_config(form.app, form.actor, name)
    except CodenvError as error:
        return _configs_page(form, error, error_name=name)
    return _configs_page(form, saved=f"Container config {name} was removed.")


# The env page's Containerized execution tab --------------------------------------------------


def _choices(
    shown: EnvImages, configs: list[ContainerConfigInfo], checked: set[str]
) -> list[dict[str, Any]]:
    """The configs to tick: those that exist (with the repository the env's images go to),
    then those the env still selects that no longer exist (flagged)."""
    offered = [
        {
            "name": config.name,
            "repository": f"{config.registry}/{shown.repository_name}",
            "insecure": config.insecure,
            "checked": config.name in checked,
            "missing": False,
        }
        for config in configs
    ]
    offered += [
        {
            "name": name,
            "repository": None,
            "insecure": False,
            "checked": name in checked,
            "missing": True,
        }
        for name in shown.missing_configs
    ]
    return offered


def _saved_form(shown: EnvImages) -> dict[str, Any]:
    mode = shown.containers if shown.containers in ("none", "all") else "selected"
    configs = [*shown.selected, *shown.missing_configs] if mode == "selected" else []
    return {"mode": mode, "configs": configs, "resources": shown.resources}


def _containers_page(
    viewer: Viewer,
    name: str,
    failed: CodenvError | None = None,
    notice: str | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    """The tab; the error of the form sent shown beside it: the choice's form when `typed`
    (what was sent) is given, else the images' buttons."""
    context = page_context(viewer, name, "containers")
    shown = images.env_images(viewer.app, viewer.actor, name)
    configs = containers.list_container_configs(viewer.app, viewer.actor)
    chosen = typed or _saved_form(shown)
    return render_form(
        "env_containers.html",
        failed,
        shown=shown,
        choices=_choices(shown, configs, set(chosen["configs"])),
        chosen=chosen,
        modes=MODES,
        resource_modes=RESOURCES,
        # Rebuild is offered for the images build_images makes: the active revision's.
        rebuildable=set(shown.selected),
        failed_form="choice" if typed else "build",
        notice=NOTICES.get(notice or ""),
        **context,
    )


@router.get("/envs/{name}/containers")
def containers_tab(name: str, viewer: ViewerDep, notice: str | None = None) -> Response:
    return _containers_page(viewer, name, notice=notice)


def _typed_selection(form: Submitted) -> dict[str, Any]:
    names = [value.strip() for value in form.lists.get("config", []) if value.strip()]
    return {"mode": form.text("mode"), "configs": names, "resources": form.text("resources")}


def _selection(typed: dict[str, Any]) -> ContainerSelection:
    """The form's choice as the CLI's `none` / `all` / `C1,C2`, parsed by the same rules."""
    mode, names = typed["mode"], typed["configs"]
    if mode not in MODES:
        raise InvalidInput("choose none, all, or selected configs", field="containers")
    text = ",".join(names) if mode == "selected" else mode
    if len(text) > MAX_SELECTION_CHARS:
        raise InvalidInput(f"at most {MAX_SELECTION_CHARS} characters", field="containers")
    if mode == "selected" and not names:
        raise InvalidInput("tick at least one container config, or choose none", field="containers")
    return ContainerSelection.parse(text, typed["resources"] or None)


@router.post("/envs/{name}/containers")
def save_containers(name: str, form: SubmittedDep) -> Response:
    typed = _typed_selection(form)
    try:
        images.set_containers(form.app, form.actor, name, _selection(typed))
    except CodenvError as error:
        return _containers_page(form, name, error, typed=typed)
    return see_other(f"/envs/{name}/containers?notice=saved")


@router.post("/envs/{name}/images/build")
def build_images(name: str, form: SubmittedDep) -> Response:
    try:
        config = _limited(form, "config", MAX_NAME_CHARS).strip() or None
        images.build_images(form.app, form.actor, name, config)
    except CodenvError as error:
        return _containers_page(form, name, error)
    return see_other(f"/envs/{name}/containers?notice=building")
