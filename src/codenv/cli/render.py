"""Human output: Rich tables for the read commands.

Rich is imported when a table is made, not with this module: `--json` and one-line answers
never pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table


def _table(*headers: str) -> Table:
    from rich.table import Table

    return Table(*headers)


def _id_table(*headers: str) -> Table:
    """A table whose first column is an id to copy into a command: never cut, while the other
    columns fold when the screen is narrow (80 columns in a pipe)."""
    table = _table(*headers)
    for column in table.columns[1:]:
        column.overflow = "fold"
    table.columns[0].no_wrap = True
    return table


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def pythons_table(found: dict[str, Any], show_refused: bool) -> Table:
    table = _table("version", "path", "source", "headers", "note")
    for item in found["interpreters"]:
        note = "deprecated" if item["deprecated"] else ""
        headers = "yes" if item["has_headers"] else "no"
        table.add_row(item["version"], item["path"], item["source"], headers, note)
    if show_refused:
        for refused in found["refused"]:
            table.add_row(
                "-", refused["path"], refused["source"], "-", f"refused: {refused['reason']}"
            )
    return table


def sets_text(sets: Sequence[dict[str, Any]]) -> str:
    """The catalog as plain lines that fit 80 columns: a heading per set, then each variant
    (cpu, gpu, …) labelled with the --set value that picks it, above its requirement lines."""
    blocks = []
    for item in sets:
        python = f"{item['python_min']}–{item['python_max']}"
        lines = [f"{item['id']}: {item['title']} (Python {python})"]
        for number, (variant, requirements) in enumerate(item["variants"].items()):
            default = ", the default" if number == 0 else ""
            lines.append(f"  {variant} variant (--set {item['id']}:{variant}{default})")
            lines.extend(f"    {line}" for line in requirements)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def envs_table(envs: Sequence[dict[str, Any]]) -> Table:
    table = _table("name", "python", "owner", "status", "revision", "size", "last build")
    for env in envs:
        last = env["last_build"]
        table.add_row(
            env["name"],
            env["python"],
            env["owner"],
            env["status"],
            str(env["active_revision"] or "-"),
            human_size(env["size_bytes"]),
            f"{last['status']} {last['finished_at'] or last['created_at']}" if last else "-",
        )
    return table


def print_env(console: Console, env: dict[str, Any]) -> None:
    spec, last = env["spec"], env["last_build"]
    rows: list[tuple[str, Any]] = [
        ("name", env["name"]),
        ("owner", env["owner"]),
        ("status", env["status"]),
        ("python", f"{env['python']} ({env['interpreter'] or 'not built'})"),
        ("active revision", env["active_revision"] or "none"),
        ("saved spec", "differs from the active revision" if env["spec_differs"] else "built"),
        ("core packages", "yes" if spec["install_core_packages"] else "no"),
        ("jupyter support", "yes" if spec["install_jupyter_support"] else "no"),
        ("package sets", ", ".join(spec["package_sets"]) or "none"),
        ("install options", _options(spec.get("install_options"))),
        ("disk size", human_size(env["size_bytes"])),
        ("location", env["path"]),
        ("description", spec.get("description") or ""),
    ]
    if env.get("options_source"):
        rows.append(("options source", env["options_source"]["described"]))
    if env.get("drift"):
        rows.append(("live env", drift_text(env["drift"])))
    if last:
        rows.append(("last build", f"{last['id']} {last['status']}"))
        if last["error"]:
            rows.append(("last error", last["error"].splitlines()[0]))
    for key, value in rows:
        console.print(f"[bold]{key:>16}[/bold]  {value}", highlight=False)
    console.print("[bold]   base packages[/bold]  (read-only)")
    for line in env["base_packages"]:
        console.print(f"                  {line}", highlight=False)
    console.print("[bold]       requested[/bold]")
    for line in spec["requested"].splitlines():
        console.print(f"                  {line}", highlight=False, markup=False)


def _options(options: list[str] | None) -> str:
    return "inherited from the node" if options is None else " ".join(options) or "(none)"


def drift_text(drift: dict[str, Any]) -> str:
    counts = [f"{len(drift[key])} {key}" for key in ("added", "removed", "changed") if drift[key]]
    return f"drifted by hand ({', '.join(counts)}): the next update drops the difference"


def installed_view(found: dict[str, Any]) -> RenderableType:
    """The packages, then what the check warned about and how the live env drifted."""
    from rich.console import Group
    from rich.text import Text

    notes = [f"warning: {warning} (it runs)" for warning in found.get("warnings") or []]
    drift = found.get("drift")
    if drift and any(drift[key] for key in ("added", "removed", "changed")):
        notes.append(f"live env {drift_text(drift)}")
        notes += [f"  + {p['name']} {p['version']}" for p in drift["added"]]
        notes += [f"  - {p['name']} {p['version']}" for p in drift["removed"]]
        notes += [f"  ~ {c['name']} {c['before']} -> {c['after']}" for c in drift["changed"]]
    return Group(installed_table(found["packages"]), *(Text(note) for note in notes))


def installed_table(packages: Sequence[dict[str, Any]]) -> Table:
    table = _table("name", "version", "editable location")
    for package in sorted(packages, key=lambda p: str(p["name"]).lower()):
        table.add_row(package["name"], package["version"], package.get("editable") or "")
    return table


def origin_text(origin: dict[str, Any] | None) -> str:
    """Where a revision came from: "built here", or its bundle, source revision and import."""
    if origin is None:
        return "built here"
    source = f"{origin['source_env']} revision {origin['source_revision']}"
    return f"{origin['bundle']} ({source}, imported {_moment(origin['imported_at'])})"


def revisions_table(revisions: Sequence[dict[str, Any]]) -> Table:
    table = _id_table(
        "revision", "active", "python", "packages", "size", "created", "state", "origin"
    )
    for rev in revisions:
        table.add_row(
            str(rev["number"]),
            "*" if rev["active"] else "",
            rev["python"],
            str(rev["packages"]),
            human_size(rev["size_bytes"]),
            _moment(rev["created_at"]),
            "pruned" if rev["pruned"] else "kept",
            origin_text(rev.get("origin")),
        )
    return table


def builds_table(builds: Sequence[dict[str, Any]]) -> Table:
    table = _table("build", "status", "revision", "by", "created", "duration", "worker")
    for build in builds:
        seconds = build["duration_seconds"]
        duration = f"{seconds:.1f} s" if seconds is not None else ""
        table.add_row(
            build["id"],
            build["status"],
            str(build["revision"] or ""),
            build["requested_by"],
            build["created_at"] or "",
            duration,
            build.get("worker") or "",  # "celery@host-a"; none before a worker claimed it
        )
    return table


def entries_table(entries: Sequence[dict[str, Any]]) -> Table:
    table = _table("path", "kind", "size")
    for entry in entries:
        slash = "/" if entry["kind"] == "dir" else ""
        table.add_row(entry["path"] + slash, entry["kind"], human_size(entry["size"]))
    return table


def vars_table(found: dict[str, str]) -> Table:
    table = _table("name", "value")
    for key, value in found.items():
        table.add_row(key, value)
    return table


def _moment(iso: str | None) -> str:
    """An ISO time of the services (UTC) to the second, for a narrow table."""
    return iso[:19].replace("T", " ") if iso else ""


def kept_table(kept: Sequence[dict[str, Any]]) -> Table:
    table = _id_table("id", "env", "kept at", "size", "env vars")
    for item in kept:
        env_vars = "yes" if item["env_vars"] else "no"
        size = human_size(item["size_bytes"])
        table.add_row(item["id"], item["env"], _moment(item["kept_at"]), size, env_vars)
    return table


def sessions_table(sessions: Sequence[dict[str, Any]]) -> Table:
    table = _table("session", "user", "source", "user agent", "started", "last seen", "ends")
    for item in sessions:
        moments = (item["created_at"], item["last_seen_at"], item["expires_at"])
        texts = (str(item["id"]), item["user"], item["source"], item["user_agent"])
        table.add_row(*texts, *(_moment(moment) for moment in moments))
    return table
