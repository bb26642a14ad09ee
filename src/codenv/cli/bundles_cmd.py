"""`codenv export | import`: code envs moved between nodes as bundles, with their exact locks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from codenv.cli.context import JsonOption, state
from codenv.cli.progress import wait_for_build
from codenv.domain.errors import BuildFailed, InvalidInput

IMPORT_MODES = ("INSTALL_IF_MISSING", "FAIL_IF_MISSING", "DO_NOTHING")


def export(
    names: Annotated[
        list[str] | None, typer.Argument(help="The code envs to export (or --all).")
    ] = None,
    all_envs: Annotated[
        bool, typer.Option("--all", help="Every code env you may change, in one bundle.")
    ] = False,
    revision: Annotated[
        int | None,
        typer.Option("--revision", help="Export this revision (one env; default: the active)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="The bundle file (default: NAME.codenv.tar)."),
    ] = None,
    with_wheels: Annotated[
        bool,
        typer.Option("--with-wheels", help="Carry every wheel: the bundle installs offline."),
    ] = False,
    with_resources: Annotated[
        bool, typer.Option("--with-resources", help="Carry the resources directory.")
    ] = False,
    json_output: bool = JsonOption,
) -> None:
    """Write code envs into one bundle file: spec, exact lock (and pylock.toml), installed
    list, init script; wheels and resources on request. No credentials, no local paths."""
    from codenv.domain.bundles import bundle_file_name

    cli = state(json_output)
    if bool(names) == all_envs:
        raise InvalidInput("name the code envs to export, or give --all", field="name")
    out = (output or Path(bundle_file_name(names or []))).absolute()
    result = cli.backend().export_bundle(names or [], revision, with_wheels, with_resources, out)
    count = sum(env["wheels"] for env in result["envs"])
    wheels = f", {count} wheels" if with_wheels else ""
    listed = ", ".join(f"{env['name']} (revision {env['revision']})" for env in result["envs"])
    cli.emit(result, f"wrote {result['path']} ({result['size_bytes']} bytes{wheels}): {listed}")


def import_(
    file: Annotated[Path, typer.Argument(help="The bundle file (`codenv export`).")],
    as_name: Annotated[
        str | None, typer.Option("--as", help="Import its one code env under this name.")
    ] = None,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Never reach the network: bundled wheels or the cache."),
    ] = False,
    mode: Annotated[
        str,
        typer.Option("--mode", help="INSTALL_IF_MISSING, FAIL_IF_MISSING or DO_NOTHING."),
    ] = "INSTALL_IF_MISSING",
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once queued.")] = False,
    json_output: bool = JsonOption,
) -> None:
    """Import a bundle: each env reproduces exactly its exported lock, hashes checked. An env
    that exists gets a new version, unless one of its versions already holds that lock."""
    cli = state(json_output)
    if mode not in IMPORT_MODES:
        raise InvalidInput(f"--mode must be one of {', '.join(IMPORT_MODES)}", field="mode")
    backend = cli.backend("detached" if no_wait else "threads")
    report = backend.import_bundle(file.absolute(), as_name, offline, mode)
    failed = []
    for item in report["envs"]:
        if item["build_id"] and not no_wait:
            item.update(_waited(cli.err, backend, item))
            failed += [item] if item["action"] == "failed" else []
        if not cli.json:
            cli.out.print(f"{item['env']}: {item['message']}", highlight=False, markup=False)
    if cli.json:
        cli.emit(report, "")
    if failed:
        raise BuildFailed("; ".join(f"{item['env']}: {item['message']}" for item in failed))


def _waited(console: Any, backend: Any, item: dict[str, Any]) -> dict[str, Any]:
    try:
        build = wait_for_build(backend, item["build_id"], console)
    except BuildFailed as error:
        return {"action": "failed", "message": error.message}
    version = build["revision"]
    return {"action": "imported", "version": version, "message": f"version {version} is active"}


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_)
