"""`codenv containers add | list | remove` (administrators) and `codenv images [build] NAME`:
containerized execution, an OCI image of each env per container config."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from codenv.cli.context import EnvName, JsonOption, ListByDefault, plural, state

if TYPE_CHECKING:
    from rich.table import Table

containers_app = typer.Typer(
    no_args_is_help=True,
    help="Container configs (administrators): a base image, the registry images are pushed "
    "to, the env's path in the image.",
)
images_app = typer.Typer(
    cls=ListByDefault,
    no_args_is_help=True,
    help="The env's container images: `codenv images NAME` lists them (config, reference with "
    "tag and digest, status, size); `codenv images build NAME [--config C]` builds them again.",
)


@containers_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The config's name.", show_default=False)],
    base: Annotated[
        str,
        typer.Option("--base", help="Base image: host[:port]/repo[:tag][@digest] or oci:/path."),
    ],
    registry: Annotated[str, typer.Option("--registry", help="Where images go: HOST[:PORT]/REPO.")],
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Plain HTTP (a registry on loopback).")
    ] = False,
    env: Annotated[
        list[str] | None, typer.Option("--env", help="K=V, set in every image (repeat).")
    ] = None,
    env_path: Annotated[
        str, typer.Option("--env-path", help="Where the env lives in the image.")
    ] = "/opt/codenv/env",
    username: Annotated[str, typer.Option("--username", help="Registry user.")] = "",
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the registry password from stdin."),
    ] = False,
    json_output: bool = JsonOption,
) -> None:
    """Add a container config. The registry password is read from stdin (never an option:
    command lines are visible to every user of the machine) and never shown again."""
    cli = state(json_output)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else ""
    config: dict[str, Any] = {
        "name": name,
        "base": base,
        "registry": registry,
        "insecure": insecure,
        "env": tuple(env or ()),
        "env_path": env_path,
        "username": username,
        "password": password,
    }
    added = cli.backend().add_container(config)
    cli.emit(added, f"container config {added['name']} added: images go to {added['registry']}")


@containers_app.command("list")
def list_configs(json_output: bool = JsonOption) -> None:
    """The container configs."""
    cli = state(json_output)
    found = cli.backend().containers()
    cli.emit(found, lambda: _configs_table(found))


@containers_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="The config's name.", show_default=False)],
) -> None:
    """Remove a config. Envs that selected it show it as missing; pushed images stay until
    their revision or env goes."""
    cli = state()
    cli.backend().remove_container(name)
    cli.say(f"container config {name} removed")


@images_app.command("list")
def list_images(name: EnvName, json_output: bool = JsonOption) -> None:
    """The env's images, newest revision first."""
    cli = state(json_output)
    found = cli.backend().images(name)
    cli.emit(found, lambda: _images_table(found))


@images_app.command("build")
def build(
    name: EnvName,
    config: Annotated[
        str | None, typer.Option("--config", help="Only this config (default: all of the env's).")
    ] = None,
    json_output: bool = JsonOption,
) -> None:
    """Build the active revision's images again (a failed one, or for a config added since).
    With a server (--url) it returns at once; locally it returns when the builds end. Follow
    them with `codenv images NAME` or `codenv logs NAME --build ID`."""
    cli = state(json_output)
    ids = cli.backend().build_images(name, config)
    cli.emit(
        {"build_ids": ids}, f"{name}: {plural(len(ids), 'image build')} queued: " + " ".join(ids)
    )


def _configs_table(found: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table("name", "base", "registry", "env path", "user", box=None)
    for c in found:
        user = c["username"] + (" (password set)" if c["password_set"] else "")
        insecure = " (http)" if c["insecure"] else ""
        table.add_row(c["name"], c["base"], c["registry"] + insecure, c["env_path"], user)
    return table


def _images_table(found: dict[str, Any]) -> Table:
    from rich.table import Table

    title = (
        f"{found['env']}: containers {found['containers']}, resources {found['resources']} "
        f"(repository name {found['repository_name']})"
    )
    if found["missing_configs"]:
        title += f"; missing configs: {', '.join(found['missing_configs'])}"
    table = Table("config", "rev", "status", "image", "size", title=title, box=None)
    for i in found["images"]:
        reference = i["reference"] or f"{i['repository']}:{i['tag']}"
        size = f"{i['size_bytes'] / 1e6:.1f} MB" if i["size_bytes"] else ""
        status = i["status"] + (f": {i['error'].splitlines()[0]}" if i["error"] else "")
        table.add_row(i["config"], str(i["revision"]), status, reference, size)
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(containers_app, name="containers")
    app.add_typer(images_app, name="images")
