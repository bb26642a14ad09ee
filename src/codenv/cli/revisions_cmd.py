"""`codenv installed | revisions [list | remove] | rollback | builds | logs | cancel` and the
detached build worker."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from codenv.cli.context import EnvName, EnvRef, JsonOption, ListByDefault, print_json, state
from codenv.cli.envs_cmd import Cursor, FollowAll, Limit, show_pages
from codenv.cli.progress import follow_log as follow
from codenv.cli.progress import outcome
from codenv.cli.render import builds_table, installed_view, revisions_table
from codenv.domain.errors import NotFound
from codenv.domain.names import revision_of

if TYPE_CHECKING:
    from codenv.cli.backend import Backend


def installed(
    name: EnvRef,
    revision: Annotated[int | None, typer.Option("--revision", help="Default: active.")] = None,
    json_output: bool = JsonOption,
) -> None:
    """Packages actually installed in a revision, as recorded after its build."""
    cli = state(json_output)
    found = cli.backend().installed(*revision_of(name, revision))
    cli.emit(found, lambda: installed_view(found))


revisions_app = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="The env's revisions (versions, on automation nodes): `codenv revisions NAME` lists "
    "them; `codenv revisions remove NAME N` removes one.",
)


@revisions_app.command("list")
def list_revisions(name: EnvName, json_output: bool = JsonOption) -> None:
    """The env's revisions, newest first; * marks the active one; each says where it came from
    (a bundle, or built here)."""
    cli = state(json_output)
    found = cli.backend().revisions(name)
    cli.emit(found, lambda: revisions_table(found))


@revisions_app.command("remove")
def remove_revision(
    name: EnvName,
    number: Annotated[int, typer.Argument(help="The revision (`codenv revisions NAME`).")],
    json_output: bool = JsonOption,
) -> None:
    """Remove revision NUMBER (not the active one): its directory and its Jupyter kernel go,
    its record stays. Imported versions are never pruned: this is how they go."""
    cli = state(json_output)
    removed = cli.backend().remove_revision(name, number)
    cli.emit(removed, f"{name}: revision {removed['number']} removed")


def rollback(
    name: EnvName,
    number: Annotated[int, typer.Argument(help="The revision (`codenv revisions`).")],
    json_output: bool = JsonOption,
) -> None:
    """Switch back to revision NUMBER at once, without resolving again."""
    cli = state(json_output)
    backend = cli.backend()
    restored = backend.rollback(name, number)
    message = f"{name}: revision {restored['number']} is active"
    if not cli.json and backend.show(name)["spec_differs"]:
        # Rollback changes only the active revision: the saved spec stays as it was. Off
        # design nodes, specs are not built here: the other versions simply stay.
        if backend.node()["designs_envs"]:
            message += "; the saved spec differs from it (`codenv update` builds the saved spec)"
        else:
            message += f"; the other versions stay usable (`codenv run {name}@N`)"
    cli.emit(restored, message)


def list_builds(
    name: EnvName,
    limit: Limit = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="queued, running, succeeded, failed or cancelled."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="update, init, import or image.")
    ] = None,
    cursor: Cursor = None,
    follow_all: FollowAll = False,
    json_output: bool = JsonOption,
) -> None:
    """The env's builds, newest first (a page at a time with --limit or a filter)."""
    cli = state(json_output)
    query = {"limit": limit, "cursor": cursor, "status": status, "kind": kind}
    if all(value is None for value in query.values()) and not follow_all:
        found = cli.backend().builds(name)
        cli.emit(found, lambda: builds_table(found))
        return
    backend = cli.backend()
    show_pages(cli, lambda asked: backend.build_page(name, asked), query, follow_all, builds_table)


def logs(
    name: EnvName,
    build: Annotated[str | None, typer.Option("--build", help="Default: the latest.")] = None,
    follow_log: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Wait for more until the build ends; exit code 4 if it failed or was cancelled.",
        ),
    ] = False,
    json_output: bool = JsonOption,
) -> None:
    """Print a build's log (append-only; readable while the build runs)."""
    cli = state(json_output)
    backend = cli.backend()
    known = backend.builds(name)
    chosen = next((b for b in known if build is None or b["id"] == build), None)
    if chosen is None:
        raise NotFound(
            f"no build {build!r} of {name!r}" if build else f"{name!r} has no builds", field="build"
        )
    if cli.json:
        _print_log_json(backend, chosen["id"], follow_log)
    elif follow_log:
        for text in follow(backend, chosen["id"], 0.2 if backend.remote else 0.05):
            sys.stdout.write(text)
            sys.stdout.flush()
        outcome(backend.build(chosen["id"]))
    else:
        sys.stdout.write(backend.read_log(chosen["id"], 0)[0])


def _print_log_json(backend: Backend, build_id: str, follow_log: bool) -> None:
    """The build and its log as one JSON document (with --follow, once the build has ended)."""
    if follow_log:
        text = "".join(follow(backend, build_id, 0.2 if backend.remote else 0.05))
    else:
        text = backend.read_log(build_id, 0)[0]
    build = backend.build(build_id)
    print_json({"build": build, "log": text})
    if follow_log:
        outcome(build)


BuildId = Annotated[str, typer.Argument(help="The build (`codenv builds`).")]
CANCELLING = "cancelling: the build stops within a second or so"


def cancel(build_id: BuildId, json_output: bool = JsonOption) -> None:
    """Cancel the queued build BUILD_ID at once, or stop it while it runs (the active revision
    stays)."""
    cli = state(json_output)
    build = cli.backend().cancel(build_id)
    status = "cancelled" if build["status"] == "cancelled" else CANCELLING
    cli.emit(build, f"build {build['id']} of {build['env']}: {status}")


def run_build(build_id: BuildId) -> None:
    """Run one queued build in this process (used by `--no-wait`)."""
    from codenv.services import build_jobs

    cli = state()
    build_jobs.run_build(cli.open("inline"), build_id)


def register(app: typer.Typer) -> None:
    app.command()(installed)
    app.add_typer(revisions_app, name="revisions")
    app.command()(rollback)
    app.command("builds")(list_builds)
    app.command()(logs)
    app.command()(cancel)
    app.command("run-build", hidden=True)(run_build)
