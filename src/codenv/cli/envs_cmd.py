"""`codenv create | save | update | show | list | delete`.

The spec module (and the requirement parser under it) is imported by the commands that build a
spec, not at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from codenv.cli.context import CliState, EnvName, JsonOption, Yes, print_json, state
from codenv.cli.progress import wait_for_build
from codenv.cli.render import envs_table, print_env
from codenv.domain.errors import InvalidInput, InvalidSpec

if TYPE_CHECKING:
    from rich.console import RenderableType

    from codenv.cli.backend import Backend

NoWait = Annotated[bool, typer.Option("--no-wait", help="Print the build id and return.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show the whole build log.")]
UpgradeAll = Annotated[
    bool, typer.Option("--upgrade-all", help="Resolve every package again to its newest version.")
]
Rebuild = Annotated[bool, typer.Option("--rebuild", help="Build even when nothing changed.")]
Description = Annotated[str, typer.Option("--description", help="What the env is for.")]


def _read_requirements(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text("utf-8")
    except OSError as error:
        raise InvalidInput(f"cannot read {path}: {error.strerror}", field="requirements") from error


def _finish_build(cli: CliState, env: str, build_id: str, no_wait: bool, verbose: bool) -> None:
    if no_wait:
        cli.emit({"env": env, "build_id": build_id}, build_id)
        return
    build = wait_for_build(cli.backend(), build_id, cli.err, verbose=verbose)
    cli.emit(build, f"{env}: revision {build['revision']} is active")


def create(
    name: EnvName,
    python: Annotated[
        str, typer.Option("--python", help="Python version, like 3.11 (`codenv pythons`).")
    ],
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Add the package set ID[:VARIANT] (`codenv sets`)."),
    ] = None,
    requirements: Annotated[
        Path | None,
        typer.Option("-r", "--requirements", help="A requirements file: the requested packages."),
    ] = None,
    no_core: Annotated[
        bool, typer.Option("--no-core-packages", help="Leave out the core package.")
    ] = False,
    jupyter: Annotated[
        bool, typer.Option("--jupyter", help="Add Jupyter support (ipykernel and a kernel).")
    ] = False,
    seed: Annotated[
        bool | None,
        typer.Option(
            "--seed-packages/--no-seed-packages",
            help="Add or leave out pip, setuptools and wheel (default: as the node says).",
        ),
    ] = None,
    description: Description = "",
    no_wait: NoWait = False,
    verbose: Verbose = False,
    json_output: bool = JsonOption,
) -> None:
    """Create a code env and build it."""
    from codenv.domain.spec import EnvSpec, SetRef

    cli = state(json_output)
    spec = EnvSpec(
        python=python,
        install_core_packages=not no_core,
        install_jupyter_support=jupyter,
        install_seed_packages=seed,
        package_sets=tuple(SetRef.parse(text) for text in sets or ()),
        requested=_read_requirements(requirements) or "",
        description=description,
    )
    created = cli.backend("detached" if no_wait else "threads").create(name, spec)
    _finish_build(cli, created["env"], created["build_id"], no_wait, verbose)


def save(
    name: EnvName,
    requirements: Annotated[
        Path | None,
        typer.Option(
            "-r",
            "--requirements",
            help="Replace all the requested packages with the lines of this file "
            "(--add and --remove change them one at a time).",
        ),
    ] = None,
    add: Annotated[
        list[str] | None,
        typer.Option("--add", help="Add a requirement line to the requested packages."),
    ] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option("--remove", help="Remove a requested package by name."),
    ] = None,
    add_set: Annotated[
        list[str] | None,
        typer.Option("--add-set", help="Add the package set ID[:VARIANT] (`codenv sets`)."),
    ] = None,
    remove_set: Annotated[
        list[str] | None, typer.Option("--remove-set", help="Remove the package set ID.")
    ] = None,
    python: Annotated[
        str | None, typer.Option("--python", help="Change the Python version, like 3.11.")
    ] = None,
    jupyter: Annotated[
        bool | None, typer.Option("--jupyter/--no-jupyter", help="Add or remove Jupyter support.")
    ] = None,
    core: Annotated[
        bool | None,
        typer.Option(
            "--core-packages/--no-core-packages", help="Add or leave out the core package."
        ),
    ] = None,
    seed: Annotated[
        bool | None,
        typer.Option(
            "--seed-packages/--no-seed-packages",
            help="Add or leave out pip, setuptools and wheel.",
        ),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="What the env is for.")
    ] = None,
    install_options: Annotated[
        bool,
        typer.Option(
            "--install-options",
            help="Override the node's install options with the tokens after --.",
        ),
    ] = False,
    inherit_install: Annotated[
        bool,
        typer.Option("--inherit-install-options", help="Inherit the node install options again."),
    ] = False,
    venv_options: Annotated[
        bool, typer.Option("--venv-options", help="Override the venv options (tokens after --).")
    ] = False,
    inherit_venv: Annotated[
        bool, typer.Option("--inherit-venv-options", help="Inherit the node venv options again.")
    ] = False,
    tokens: Annotated[
        list[str] | None,
        typer.Argument(
            help="After --: the options of --install-options or --venv-options.",
            show_default=False,
        ),
    ] = None,
    containers: Annotated[
        str | None,
        typer.Option(
            "--containers", help="Container images for: none, all, or C1,C2 (`codenv containers`)."
        ),
    ] = None,
    container_resources: Annotated[
        str | None,
        typer.Option(
            "--container-resources",
            help="The images' resources dir: init (run the init script), copy, or none.",
        ),
    ] = None,
    update: Annotated[bool, typer.Option("--update", help="Save and update.")] = False,
    upgrade_all: UpgradeAll = False,
    rebuild: Rebuild = False,
    no_wait: NoWait = False,
    verbose: Verbose = False,
    json_output: bool = JsonOption,
) -> None:
    """Change the saved spec without building (with --update: Save and update)."""
    from codenv.domain.spec import SpecChanges

    cli = state(json_output)
    _check_tokens(install_options, venv_options, tokens)
    changes = SpecChanges(
        requested=_read_requirements(requirements),
        add=_checked_additions(add or ()),
        remove=tuple(remove or ()),
        add_sets=tuple(add_set or ()),
        remove_sets=tuple(remove_set or ()),
        python=python,
        install_core_packages=core,
        install_jupyter_support=jupyter,
        install_seed_packages=seed,
        description=description,
        install_options=tuple(tokens or ()) if install_options else None,
        inherit_install_options=inherit_install,
        venv_options=tuple(tokens or ()) if venv_options else None,
        inherit_venv_options=inherit_venv,
    )
    backend = cli.backend("detached" if no_wait else "threads")
    if containers is not None or container_resources is not None:
        _save_containers(backend, name, containers, container_resources)
        if changes == SpecChanges() and not update:
            cli.emit(backend.images(name), f"{name}: containers saved (`codenv images {name}`)")
            return
    spec = backend.save(name, changes)
    if requirements is not None:
        # -r replaces the list, which a user who meant to add to it would not notice otherwise.
        cli.err.print(
            f"{name}: the requested packages are now those of {requirements} "
            "(--add and --remove change them one at a time)",
            highlight=False,
            markup=False,
        )
    if update:
        _update(cli, name, upgrade_all, rebuild, no_wait, verbose)
    else:
        cli.emit(spec, f"{name}: spec saved (run `codenv update {name}` to build it)")


def _save_containers(
    backend: Backend, name: str, containers: str | None, resources: str | None
) -> None:
    """Either option alone keeps the other as the env has it."""
    if containers is None or resources is None:
        current = backend.images(name)
        containers = current["containers"] if containers is None else containers
        resources = current["resources"] if resources is None else resources
    backend.set_containers(name, containers, resources)


def _checked_additions(values: Sequence[str]) -> tuple[str, ...]:
    """The --add values, each checked alone: an error names the value the user typed, not a
    line of the combined requested packages they never saw."""
    from codenv.domain.requirements import parse_requested

    for value in values:
        try:
            parse_requested(value)
        except InvalidSpec as error:
            reason = error.message.removeprefix("line 1: ")
            raise InvalidSpec(f"--add {value!r}: {reason}", field="add") from error
    return tuple(values)


def _check_tokens(install: bool, venv: bool, tokens: list[str] | None) -> None:
    """Options after -- belong to exactly one of --install-options / --venv-options."""
    if install and venv:
        raise InvalidInput("give --install-options or --venv-options, not both", field="options")
    if tokens and not (install or venv):
        raise InvalidInput(
            "options after -- need --install-options or --venv-options", field="options"
        )


def _update(
    cli: CliState, name: str, upgrade_all: bool, rebuild: bool, no_wait: bool, verbose: bool
) -> None:
    result = cli.backend("detached" if no_wait else "threads").update(name, upgrade_all, rebuild)
    if result["build_id"] is None:
        cli.emit(result, f"{result['env']}: {result['message']}")
        return
    _finish_build(cli, result["env"], result["build_id"], no_wait, verbose)


def update(
    name: EnvName,
    upgrade_all: UpgradeAll = False,
    rebuild: Rebuild = False,
    no_wait: NoWait = False,
    verbose: Verbose = False,
    json_output: bool = JsonOption,
) -> None:
    """Build the saved spec into a new revision (unless it is already up to date)."""
    _update(state(json_output), name, upgrade_all, rebuild, no_wait, verbose)


def show(name: EnvName, json_output: bool = JsonOption) -> None:
    """Spec, base packages, status, active revision, interpreter, disk size."""
    cli = state(json_output)
    info = cli.backend().show(name)
    if cli.json:
        print_json(info)
    else:
        print_env(cli.out, info)


Limit = Annotated[
    int | None, typer.Option("--limit", help="At most N rows (1-500), then a --cursor hint.")
]
Cursor = Annotated[
    str | None, typer.Option("--cursor", help="Go on where the last page said (`more: ...`).")
]
FollowAll = Annotated[bool, typer.Option("--all", help="Every page, one after the other.")]


def list_envs(
    limit: Limit = None,
    owner: Annotated[
        str | None, typer.Option("--owner", help="Only the envs of this user.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only envs in this status: ready, building, failed, 'not built', "
            "'out of date', 'ready · last update failed'.",
        ),
    ] = None,
    python: Annotated[
        str | None, typer.Option("--python", help="Only envs of this Python, like 3.11.")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Only names starting so (any case).")
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option("--sort", help="name (default), -name, created, -created or owner."),
    ] = None,
    cursor: Cursor = None,
    follow_all: FollowAll = False,
    json_output: bool = JsonOption,
) -> None:
    """List the code envs (a page at a time with --limit or a filter)."""
    cli = state(json_output)
    query = {"limit": limit, "cursor": cursor, "owner": owner, "status": status}
    query.update(python=python, prefix=prefix, sort=sort)
    if all(value is None for value in query.values()) and not follow_all:
        found = cli.backend().list_envs()
        cli.emit(found, lambda: envs_table(found))
        return
    show_pages(cli, cli.backend().env_page, query, follow_all, envs_table)


def show_pages(
    cli: CliState,
    fetch: Callable[[dict[str, Any]], dict[str, Any]],
    query: dict[str, Any],
    follow_all: bool,
    table: Callable[[list[dict[str, Any]]], RenderableType],
) -> None:
    """One page and a hint to the next, or (--all) every page's rows; the pages fetched
    one by one, as the server hands them."""
    page = fetch(query)
    items = list(page["items"])
    while follow_all and page["next_cursor"] is not None:
        page = fetch({**query, "cursor": page["next_cursor"]})
        items += page["items"]
    if follow_all:
        cli.emit(items, lambda: table(items))
        return
    cli.emit(page, lambda: table(items))
    if page["next_cursor"] is not None and not cli.json:
        cli.err.print(f"more: --cursor {page['next_cursor']}", highlight=False, markup=False)


def delete(
    name: EnvName,
    yes: Yes = False,
    resources: Annotated[
        bool | None,
        typer.Option("--delete-resources/--keep-resources", help="Also delete its resources."),
    ] = None,
) -> None:
    """Delete a code env, its revisions and (after confirmation) its resources."""
    cli = state()
    backend = cli.backend()
    backend.show(name)
    if not yes:
        typer.confirm(f"Delete code env {name!r} and all its revisions?", abort=True)
    if resources is None:
        resources = not yes and typer.confirm(f"Also delete the resources directory of {name!r}?")
    kept = backend.delete(name, resources)
    cli.say(f"deleted {name}")
    if kept is not None:
        cli.say(
            f"its resources are kept as {kept}, for administrators: "
            f"`codenv resources kept` lists them, `codenv resources adopt {kept} NAME` gives "
            f"them to an env"
        )


def register(app: typer.Typer) -> None:
    app.command()(create)
    app.command()(save)
    app.command()(update)
    app.command()(show)
    app.command("list")(list_envs)
    app.command()(delete)
