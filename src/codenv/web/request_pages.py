"""Code env requests in the console: the request form (Python, package sets with their contents,
requested packages), the requester's "My requests", and an administrator's edit of a pending
request before approving it (the inbox itself: admin_pages.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from codenv.domain.errors import CodenvError
from codenv.domain.spec import EnvSpec, SetRef
from codenv.http.deps import Submitted, SubmittedDep, Viewer, ViewerDep
from codenv.http.errors import ShownError
from codenv.http.params import RowId
from codenv.services import interpreters, requests
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.web.admin_pages import admin_context, requests_listed
from codenv.web.paging import PAGE_SIZE
from codenv.web.render import ConsoleRoute, render, render_form, see_other, viewer_context

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)

NOT_INSTALLED = (
    "Only the Python versions installed on this node are offered. For another version, an "
    "administrator must install that Python, with its development headers."
)


def offered_pythons(app: Codenv, actor: Actor) -> list[dict[str, Any]]:
    """The node's Pythons, oldest first, one per minor version."""
    found = interpreters.list_pythons(app, actor)
    offered = []
    for minor in found.minors():
        chosen = found.for_minor(minor)
        if chosen is not None:
            offered.append(
                {
                    "minor": minor,
                    "version": chosen.version,
                    "deprecated": chosen.deprecated,
                    "headers": chosen.has_headers,
                }
            )
    return offered


def default_python(pythons: list[dict[str, Any]]) -> str:
    """The newest supported (not deprecated) Python a form starts with."""
    return next((p["minor"] for p in reversed(pythons) if not p["deprecated"]), "")


def set_choices(app: Codenv) -> list[dict[str, Any]]:
    """Every package set (one entry per variant) with the packages it adds."""
    return [
        {
            "value": package_set.id if len(package_set.variants) == 1 else f"{package_set.id}:{v}",
            "label": package_set.title
            if len(package_set.variants) == 1
            else f"{package_set.title} ({v})",
            "range": package_set.python_range,
            "description": package_set.description,
            "lines": package_set.lines(v),
        }
        for package_set in app.catalog.sets
        for v in package_set.variants
    ]


def _spec_of(form: Submitted) -> EnvSpec:
    return EnvSpec(
        python=form.text("python"),
        package_sets=tuple(SetRef.parse(value) for value in form.lists.get("set", []) if value),
        requested=form.text("requested"),
    )


def _form_page(viewer: Viewer, status: int = 200, **context: Any) -> Response:
    pythons = offered_pythons(viewer.app, viewer.actor)
    values: dict[str, Any] = {
        "name": "",
        "python": default_python(pythons),
        "sets_chosen": [],
        "requested": "",
        "message": "",
        "error": None,
        "sent": None,
        "editing": None,
    }
    values.update(context)
    return render(
        "request.html",
        status=status,
        pythons=pythons,
        sets=set_choices(viewer.app),
        not_installed=NOT_INSTALLED,
        **values,
        **viewer_context(viewer),
    )


def _typed(form: Submitted) -> dict[str, Any]:
    """The form's fields as typed, to show it again."""
    return {
        "python": form.text("python"),
        "sets_chosen": form.lists.get("set", []),
        "requested": form.text("requested"),
        "message": form.text("message"),
    }


@router.get("/requests/new")
def request_form(viewer: ViewerDep) -> Response:
    return _form_page(viewer)


@router.post("/requests/new")
def submit_request(form: SubmittedDep) -> Response:
    name = form.text("name").strip()
    try:
        sent = requests.submit_request(
            form.app, form.actor, name, _spec_of(form), form.text("message")
        )
    except CodenvError as refused:
        # Even a refusal (requests turned off) answers this form in place: it says whom to ask.
        error = ShownError.of(refused)
        return _form_page(form, error.status, name=name, error=error, **_typed(form))
    return _form_page(form, sent=sent)


@router.get("/requests/mine")
def my_requests(
    viewer: ViewerDep, status: str = "", after: str = "", limit: int = PAGE_SIZE
) -> Response:
    """One page of the viewer's own requests, pending first, filtered by status."""
    listed, failed = requests_listed(
        viewer, "/requests/mine", mine=True, status=status, after=after, limit=limit
    )
    return render_form("my_requests.html", failed, **listed, **viewer_context(viewer))


def _edit_page(viewer: Viewer, request_id: int, status: int = 200, **context: Any) -> Response:
    shown = requests.get_request(viewer.app, viewer.actor, request_id)
    values: dict[str, Any] = {
        "python": shown.spec["python"],
        "sets_chosen": shown.spec.get("package_sets", []),
        "requested": shown.spec.get("requested", ""),
        "message": shown.message,
        "error": None,
    }
    values.update(context)
    pythons = offered_pythons(viewer.app, viewer.actor)
    return render(
        "admin_request_edit.html",
        status=status,
        request=shown,
        pythons=pythons,
        sets=set_choices(viewer.app),
        **admin_context(viewer, "requests", **values),
    )


@router.get("/admin/requests/{request_id}/edit")
def edit_request(request_id: RowId, viewer: ViewerDep) -> Response:
    require_admin(viewer.actor, "edit requests")
    return _edit_page(viewer, request_id)


@router.post("/admin/requests/{request_id}/edit")
def save_request(request_id: RowId, form: SubmittedDep) -> Response:
    try:
        requests.update_request(
            form.app, form.actor, request_id, _spec_of(form), form.text("message")
        )
    except CodenvError as refused:
        error = ShownError.of(refused)
        return _edit_page(form, request_id, error.status, error=error, **_typed(form))
    return see_other(f"/admin/requests?edited={request_id}")
