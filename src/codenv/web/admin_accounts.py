"""Accounts in the console: everyone's own password (/account), and the administrators' Users
and groups tab, whose tables carry each row's actions (reset a password, disable, enable,
delete a user; edit a group's rights, remove a member).

Every action calls the accounts service, which checks the administrator right again; its
error is shown in place, above the table it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from codenv.domain.errors import CodenvError, InvalidInput
from codenv.http.deps import Submitted, SubmittedDep, Viewer, ViewerDep
from codenv.http.sessions import start_session
from codenv.services import accounts
from codenv.services.accounts import RIGHTS
from codenv.web.admin_pages import admin_context
from codenv.web.render import ConsoleRoute, render_form, see_other, viewer_context

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)

PASSWORD_CHANGED = "Your password was changed; your other browser sessions were ended."  # noqa: S105 (a message, not a password)


# Your own password --------------------------------------------------------------------------


def _account_page(viewer: Viewer, failed: CodenvError | None = None, saved: str = "") -> Response:
    return render_form("account.html", failed, saved=saved, **viewer_context(viewer))


@router.get("/account")
def account(viewer: ViewerDep, changed: str = "") -> Response:
    return _account_page(viewer, saved=PASSWORD_CHANGED if changed else "")


@router.post("/account/password")
def change_password(request: Request, form: SubmittedDep) -> Response:
    new, repeated = form.text("new_password"), form.text("repeat_password")
    try:
        if new != repeated:
            raise InvalidInput("the two new passwords differ", field="repeat_password")
        accounts.set_password(
            form.app,
            form.actor,
            form.actor.name,
            new,
            current_password=form.text("current_password"),
        )
    except CodenvError as error:
        return _account_page(form, error)
    # Changing the password ended every session of the user, this one too: this browser
    # gets a new one, the others go to the login page.
    response = see_other("/account?changed=1")
    start_session(request, response, form.app, form.actor)
    return response


# Users and groups ---------------------------------------------------------------------------


def _users_page(viewer: Viewer, failed: CodenvError | None = None, **context: Any) -> Response:
    values: dict[str, Any] = {"form": None, "saved": None, "fields": {}}
    values.update(context)
    return render_form(
        "admin_users.html",
        failed,
        users=accounts.list_users(viewer.app, viewer.actor),
        groups=accounts.list_groups(viewer.app, viewer.actor),
        rights=RIGHTS,
        **admin_context(viewer, "users", **values),
    )


@router.get("/admin/users")
def users(viewer: ViewerDep) -> Response:
    return _users_page(viewer)


@router.post("/admin/users")
def create_user(form: SubmittedDep) -> Response:
    name = form.text("name").strip()
    try:
        accounts.create_user(
            form.app,
            form.actor,
            name,
            form.text("password") or None,
            display_name=form.text("display_name").strip(),
            groups=form.lists.get("groups", []),
        )
    except CodenvError as error:
        fields = {"name": name, "display_name": form.text("display_name")}
        return _users_page(form, error, form="user", fields=fields)
    return _users_page(form, saved=f"User {name} was created.")


def _row_action(form: Submitted, table: str, act: Callable[[], object], saved: str) -> Response:
    """Run one row's action; its error goes above the table (`users` or `groups`)."""
    try:
        act()
    except CodenvError as error:
        return _users_page(form, error, form=table)
    return _users_page(form, saved=saved)


@router.post("/admin/users/{name}/password")
def reset_password(name: str, form: SubmittedDep) -> Response:
    new = form.text("new_password")
    saved = f"The password of {name} was reset; their browser sessions were ended."
    return _row_action(
        form, "users", lambda: accounts.set_password(form.app, form.actor, name, new), saved
    )


@router.post("/admin/users/{name}/disable")
def disable_user(name: str, form: SubmittedDep) -> Response:
    saved = (
        f"{name} is disabled: their sessions were ended and their API tokens are refused "
        "until they are enabled again; their code envs stay as they are."
    )
    return _row_action(
        form, "users", lambda: accounts.update_user(form.app, form.actor, name, active=False), saved
    )


@router.post("/admin/users/{name}/enable")
def enable_user(name: str, form: SubmittedDep) -> Response:
    saved = f"{name} is enabled again: they can log in, and their API tokens work again."
    return _row_action(
        form, "users", lambda: accounts.update_user(form.app, form.actor, name, active=True), saved
    )


@router.post("/admin/users/{name}/delete")
def delete_user(name: str, form: SubmittedDep) -> Response:
    saved = f"User {name} was deleted, with their API tokens, sessions and memberships."
    return _row_action(
        form, "users", lambda: accounts.delete_user(form.app, form.actor, name), saved
    )


@router.post("/admin/groups")
def create_group(form: SubmittedDep) -> Response:
    name = form.text("name").strip()
    try:
        accounts.create_group(
            form.app,
            form.actor,
            name,
            description=form.text("description").strip(),
            **{right: form.flag(right) for right in RIGHTS},
        )
    except CodenvError as error:
        fields = {"name": name, "description": form.text("description")}
        return _users_page(form, error, form="group", fields=fields)
    return _users_page(form, saved=f"Group {name} was created.")


@router.post("/admin/groups/{name}/rights")
def set_group_rights(name: str, form: SubmittedDep) -> Response:
    saved = f"The rights of group {name} were saved; members have them at their next request."
    return _row_action(
        form,
        "groups",
        lambda: accounts.set_group_rights(
            form.app,
            form.actor,
            name,
            administrator=form.flag("administrator"),
            may_create_envs=form.flag("may_create_envs"),
            may_manage_all_envs=form.flag("may_manage_all_envs"),
        ),
        saved,
    )


@router.post("/admin/groups/{name}/members/{member}/remove")
def remove_member(name: str, member: str, form: SubmittedDep) -> Response:
    saved = f"{member} is no longer a member of {name}."
    return _row_action(
        form,
        "groups",
        lambda: accounts.remove_member(form.app, form.actor, name, member),
        saved,
    )


@router.post("/admin/groups/members")
def add_member(form: SubmittedDep) -> Response:
    group, member = form.text("group"), form.text("user")
    saved = f"{member} is now a member of {group}."
    return _row_action(
        form, "groups", lambda: accounts.add_member(form.app, form.actor, group, member), saved
    )
