"""Use cases about the node's Python interpreters: list, add, remove, choose for a spec."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import select

from codenv.domain.errors import InvalidSpec, NotFound
from codenv.domain.pythons import Interpreter
from codenv.interpreters import Discovery, check_addable, discover
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.services.audit import add_entry
from codenv.storage.models import InterpreterRow


def discovery(app: Codenv) -> Discovery:
    with app.db.session() as session:
        added = tuple(session.scalars(select(InterpreterRow.path)))
    return discover(
        configured=app.settings.configured_pythons + added,
        cache_file=app.settings.cache_dir / "interpreters.json",
    )


def list_pythons(app: Codenv, actor: Actor) -> Discovery:
    return discovery(app)


def pythons_shown(app: Codenv, actor: Actor) -> dict[str, Any]:
    """The interpreters as `actor` may see them: the server's paths (and the interpreters
    refused, with their paths) for administrators only."""
    found = discovery(app)
    if actor.is_admin:
        return {
            "interpreters": [item.to_dict() for item in found.found],
            "refused": [asdict(item) for item in found.refused],
        }
    shown = [{**item.to_dict(), "path": None} for item in found.found]
    return {"interpreters": shown, "refused": []}


def add_python(app: Codenv, actor: Actor, path: str) -> Interpreter:
    require_admin(actor, "add interpreters")
    interpreter = check_addable(path)
    with app.db.session() as session:
        if session.get(InterpreterRow, interpreter.path) is None:
            session.add(InterpreterRow(path=interpreter.path, added_by=actor.name))
            add_entry(session, actor, "interpreter.add", interpreter.path)
    return interpreter


def remove_python(app: Codenv, actor: Actor, path: str) -> None:
    require_admin(actor, "remove interpreters")
    with app.db.session() as session:
        row = session.get(InterpreterRow, path)
        if row is None:
            raise NotFound(f"{path} was not added by an administrator", field="path")
        session.delete(row)
        add_entry(session, actor, "interpreter.remove", path)


def interpreter_for(found: Discovery, minor: str) -> Interpreter:
    interpreter = found.for_minor(minor)
    if interpreter is None:
        raise InvalidSpec(
            f"Python {minor} is not installed on this node "
            f"(installed: {', '.join(found.minors()) or 'none'}); an administrator must "
            "install it, with its development headers",
            field="python",
        )
    return interpreter
