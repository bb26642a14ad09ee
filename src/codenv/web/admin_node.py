"""Administration pages about the node's people and leftovers: browser sessions (who is logged in
where; end one, or all of a user's) and the kept resources of deleted code envs (adopt into an
env, or delete). Administrators only: the services refuse anyone else (403 page)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from codenv.domain.errors import CodenvError
from codenv.http.deps import SubmittedDep, Viewer, ViewerDep
from codenv.http.params import RowId
from codenv.services import kept_resources, sessions
from codenv.web.admin_pages import admin_context
from codenv.web.render import ConsoleRoute, render, render_form, see_other

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)


def _sessions_page(viewer: Viewer, saved: str | None = None) -> Response:
    return render(
        "admin_sessions.html",
        sessions=sessions.list_sessions(viewer.app, viewer.actor),
        current=viewer.session_id,
        **admin_context(viewer, "sessions", saved=saved),
    )


@router.get("/admin/sessions")
def session_list(viewer: ViewerDep) -> Response:
    return _sessions_page(viewer)


@router.post("/admin/sessions/{session_id}/end")
def end_session(session_id: RowId, form: SubmittedDep) -> Response:
    ended = sessions.end_session_by_id(form.app, form.actor, session_id)
    if session_id == form.session_id:
        return see_other("/login")
    return _sessions_page(form, saved=f"The session of {ended.user} from {ended.source} ended.")


@router.post("/admin/users/{name}/sessions/end")
def end_user_sessions(name: str, form: SubmittedDep) -> Response:
    count = sessions.end_user_sessions(form.app, form.actor, name)
    return _sessions_page(form, saved=f"{count} session(s) of {name} ended.")


def _kept_page(viewer: Viewer, failed: CodenvError | None = None, **context: Any) -> Response:
    values: dict[str, Any] = {"saved": None, "error_id": None, "env": ""}
    values.update(context)
    return render_form(
        "admin_kept.html",
        failed,
        kept=kept_resources.list_kept(viewer.app, viewer.actor),
        **admin_context(viewer, "kept", **values),
    )


@router.get("/admin/kept-resources")
def kept_list(viewer: ViewerDep) -> Response:
    return _kept_page(viewer)


@router.post("/admin/kept-resources/{kept_id}/adopt")
def adopt(kept_id: str, form: SubmittedDep) -> Response:
    env = form.text("env").strip()
    try:
        kept_resources.adopt_kept(form.app, form.actor, kept_id, env)
    except CodenvError as error:
        return _kept_page(form, error, error_id=kept_id, env=env)
    return _kept_page(form, saved=f"Code env {env} now has the resources {kept_id}.")


@router.post("/admin/kept-resources/{kept_id}/drop")
def drop(kept_id: str, form: SubmittedDep) -> Response:
    kept_resources.drop_kept(form.app, form.actor, kept_id)
    return _kept_page(form, saved=f"The resources {kept_id} were deleted.")
