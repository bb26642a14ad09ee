"""The General tab: what the env is, and (update right) its description, Python version,
core-package and Jupyter options and its own install options, saved like the Packages tab
(Save, or Save and update)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from codenv.domain.errors import CodenvError
from codenv.domain.spec import SpecChanges
from codenv.envdirs.kernels import kernel_name
from codenv.http.deps import Submitted, SubmittedDep, Viewer, ViewerDep
from codenv.services import builds, envs
from codenv.services.views import EnvInfo
from codenv.web.admin_pages import split_options
from codenv.web.env_pages import page_context
from codenv.web.render import ConsoleRoute, render_form, see_other
from codenv.web.request_pages import offered_pythons

router: APIRouter = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
NOTICES = {
    "saved": "Saved. Update the env to apply the changes.",
    "up-to-date": "Already up to date: nothing to build.",
}


def _general_page(
    viewer: Viewer,
    name: str,
    failed: CodenvError | None = None,
    notice: str | None = None,
    typed: dict[str, Any] | None = None,
) -> Response:
    context = page_context(viewer, name, "general")
    env: EnvInfo = context["env"]
    kernel = kernel_name(env.name) if env.spec.get("install_jupyter_support") else None
    options = env.spec.get("install_options")
    shown = {
        "description": env.spec.get("description", ""),
        "python": env.spec.get("python", ""),
        "core": env.spec.get("install_core_packages", True),
        "jupyter": env.spec.get("install_jupyter_support", False),
        "inherit_options": options is None,
        "options_text": " ".join(options or []),
    }
    shown.update(typed or {})
    return render_form(
        "env_general.html",
        failed,
        kernel=kernel,
        notice=NOTICES.get(notice or ""),
        pythons=offered_pythons(viewer.app, viewer.actor),
        form=shown,
        **context,
    )


@router.get("/envs/{name}")
def general(name: str, viewer: ViewerDep, notice: str | None = None) -> Response:
    return _general_page(viewer, name, notice=notice)


def _typed(form: Submitted) -> dict[str, Any]:
    return {
        "description": form.text("description"),
        "python": form.text("python"),
        "core": form.flag("core"),
        "jupyter": form.flag("jupyter"),
        "inherit_options": form.flag("inherit_options"),
        "options_text": form.text("install_options"),
    }


def _changes(typed: dict[str, Any]) -> SpecChanges:
    inherit = bool(typed["inherit_options"])
    return SpecChanges(
        description=typed["description"].replace("\r\n", "\n"),
        python=typed["python"],
        install_core_packages=typed["core"],
        install_jupyter_support=typed["jupyter"],
        install_options=None if inherit else tuple(split_options(typed["options_text"])),
        inherit_install_options=inherit,
    )


@router.post("/envs/{name}/general")
def save_general(name: str, form: SubmittedDep) -> Response:
    typed = _typed(form)
    try:
        envs.save_spec(form.app, form.actor, name, _changes(typed))
        if form.text("action") != "update":
            return see_other(f"/envs/{name}?notice=saved")
        result = builds.request_update(form.app, form.actor, name)
    except CodenvError as error:
        return _general_page(form, name, error, typed=typed)
    if result.build_id is None:
        return see_other(f"/envs/{name}?notice=up-to-date")
    return see_other(f"/envs/{name}/revisions?build={result.build_id}")
