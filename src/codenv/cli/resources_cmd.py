"""`codenv resources`: the init script and its options, env vars, the file explorer; the
resources of deleted envs (administrators)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codenv.cli.context import EnvName, JsonOption, Yes, state
from codenv.cli.progress import wait_for_build
from codenv.cli.render import entries_table, kept_table, vars_table
from codenv.domain.errors import InvalidInput

ResourcePath = Annotated[
    str, typer.Argument(help="A path in the resources dir.", show_default=False)
]
app = typer.Typer(help="The env's managed resources directory, init script and env vars.")


@app.command("script")
def script(
    name: EnvName,
    set_file: Annotated[Path | None, typer.Option("--set", help="Python file to use.")] = None,
    on_update: Annotated[
        bool | None,
        typer.Option("--run-on-update/--no-run-on-update", help="Run it after each update."),
    ] = None,
    on_api_node: Annotated[
        bool | None,
        typer.Option("--run-on-api-node/--no-run-on-api-node", help="Run it on API nodes too."),
    ] = None,
    json_output: bool = JsonOption,
) -> None:
    """Show or change the resources init script and its two options (Save, no build)."""
    cli = state(json_output)
    backend = cli.backend()
    if set_file is None and on_update is None and on_api_node is None:
        found = backend.get_script(name)
    else:
        text = None
        if set_file is not None:
            try:
                text = set_file.read_text("utf-8")
            except OSError as error:
                raise InvalidInput(
                    f"cannot read {set_file}: {error.strerror}", field="script"
                ) from error
        found = backend.set_script(name, text, on_update, on_api_node)
    human = (
        f"run on update: {'yes' if found['run_on_update'] else 'no'}; "
        f"run on an API node: {'yes' if found['run_on_api_node'] else 'no'}\n"
        + (found["script"] or "(no init script)")
    )
    cli.emit(found, human)


@app.command("init")
def init(name: EnvName, json_output: bool = JsonOption) -> None:
    """Run the resources init script now, in the active revision (a build with a log)."""
    cli = state(json_output)
    backend = cli.backend()
    build = wait_for_build(backend, backend.run_init(name), cli.err)
    cli.emit(build, f"{name}: resources init script done")


@app.command("vars")
def env_vars(name: EnvName, json_output: bool = JsonOption) -> None:
    """The env vars every command using the env gets (paths resolved)."""
    cli = state(json_output)
    found = cli.backend().env_vars(name)
    cli.emit(found, lambda: vars_table(found))


@app.command("ls")
def list_files(
    name: EnvName,
    path: Annotated[str, typer.Argument(help="A directory (default: the top).")] = "",
    json_output: bool = JsonOption,
) -> None:
    """List a directory of the resources dir, with sizes."""
    cli = state(json_output)
    entries = cli.backend().list_files(name, path)
    cli.emit(entries, lambda: entries_table(entries))


@app.command("put")
def put(
    name: EnvName,
    local: Annotated[Path, typer.Argument(help="The file (or zip) to upload.")],
    dest: Annotated[
        str | None,
        typer.Argument(
            help="Where in the resources dir (default: the top, under the same file name)."
        ),
    ] = None,
    unzip: Annotated[bool, typer.Option("--unzip", help="Unpack a zip into DEST.")] = False,
    json_output: bool = JsonOption,
) -> None:
    """Upload a file (or, with --unzip, a zip's contents) into the resources dir."""
    cli = state(json_output)
    entries = cli.backend().put_file(name, local, dest, unzip)
    cli.emit(entries, lambda: entries_table(entries))


@app.command("get")
def get(
    name: EnvName,
    path: ResourcePath,
    local: Annotated[Path, typer.Argument(help="Where to write it.")] = Path(),
) -> None:
    """Download a file of the resources dir."""
    cli = state()
    written = cli.backend().get_file(name, path, local)
    cli.say(str(written))


@app.command("rm")
def remove(name: EnvName, path: ResourcePath) -> None:
    """Delete a file or directory of the resources dir."""
    cli = state()
    cli.backend().remove_file(name, path)
    cli.say(f"removed {path}")


KeptId = Annotated[str, typer.Argument(help="The id `codenv resources kept` lists.")]


@app.command("kept")
def kept(json_output: bool = JsonOption) -> None:
    """Resources and env vars of deleted envs, set aside (administrators)."""
    cli = state(json_output)
    found = cli.backend().kept()
    cli.emit(found, lambda: kept_table(found))


@app.command("adopt")
def adopt(
    kept_id: KeptId,
    name: Annotated[str, typer.Argument(help="A code env with no resources of its own.")],
) -> None:
    """Give the resources (and env vars) kept as KEPT_ID to the code env NAME, which has none
    of its own (administrators)."""
    cli = state()
    cli.backend().adopt_kept(kept_id, name)
    cli.say(f"{name}: its resources are now those kept as {kept_id}")


@app.command("drop")
def drop(
    kept_id: KeptId,
    yes: Yes = False,
) -> None:
    """Delete the resources kept as KEPT_ID for good (administrators)."""
    cli = state()
    backend = cli.backend()
    known = {item["id"]: item for item in backend.kept()}
    # An unknown id is left to the backend's own not-found error, without a question first.
    if not yes and kept_id in known:
        typer.confirm(
            f"Delete the resources of the deleted env {known[kept_id]['env']!r} kept as "
            f"{kept_id} for good?",
            abort=True,
        )
    backend.drop_kept(kept_id)
    cli.say(f"dropped {kept_id}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="resources")
