"""Human output: Rich tables for the read commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from codenv.domain.catalog import Catalog
from codenv.interpreters import Discovery
from codenv.services.views import BuildInfo, EnvInfo, RevisionInfo


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def pythons_table(found: Discovery, show_refused: bool) -> Table:
    table = Table("version", "path", "source", "headers", "note")
    for item in found.found:
        note = "deprecated" if item.deprecated else ""
        table.add_row(
            item.version, item.path, item.source, "yes" if item.has_headers else "no", note
        )
    if show_refused:
        for refused in found.refused:
            table.add_row("-", refused.path, refused.source, "-", f"refused: {refused.reason}")
    return table


def sets_table(catalog: Catalog) -> Table:
    table = Table("id", "title", "python", "variants", "requirements")
    for item in catalog.sets:
        lines = "\n".join(f"[{v}] {line}" for v, ls in item.variants.items() for line in ls)
        table.add_row(item.id, item.title, item.python_range, ", ".join(item.variants), lines)
    return table


def envs_table(envs: Sequence[EnvInfo]) -> Table:
    table = Table("name", "python", "owner", "status", "revision", "size", "last build")
    for env in envs:
        last = env.last_build
        table.add_row(
            env.name,
            env.python,
            env.owner,
            env.status,
            str(env.active_revision or "-"),
            human_size(env.size_bytes),
            f"{last.status} {last.finished_at or last.created_at}" if last else "-",
        )
    return table


def print_env(console: Console, env: EnvInfo) -> None:
    spec = env.spec
    rows: list[tuple[str, Any]] = [
        ("name", env.name),
        ("owner", env.owner),
        ("status", env.status),
        ("python", f"{env.python} ({env.interpreter or 'not built'})"),
        ("active revision", env.active_revision or "none"),
        ("saved spec", "differs from the active revision" if env.spec_differs else "built"),
        ("core packages", "yes" if spec["install_core_packages"] else "no"),
        ("jupyter support", "yes" if spec["install_jupyter_support"] else "no"),
        ("package sets", ", ".join(spec["package_sets"]) or "none"),
        ("disk size", human_size(env.size_bytes)),
        ("location", env.path),
        ("description", spec.get("description") or ""),
    ]
    if env.last_build:
        rows.append(("last build", f"{env.last_build.id} {env.last_build.status}"))
        if env.last_build.error:
            rows.append(("last error", env.last_build.error.splitlines()[0]))
    for key, value in rows:
        console.print(f"[bold]{key:>16}[/bold]  {value}", highlight=False)
    console.print("[bold]   base packages[/bold]  (read-only)")
    for line in env.base_packages:
        console.print(f"                  {line}", highlight=False)
    console.print("[bold]       requested[/bold]")
    for line in spec["requested"].splitlines():
        console.print(f"                  {line}", highlight=False)


def installed_table(packages: Sequence[dict[str, Any]]) -> Table:
    table = Table("name", "version", "editable location")
    for package in sorted(packages, key=lambda p: str(p["name"]).lower()):
        table.add_row(package["name"], package["version"], package.get("editable") or "")
    return table


def revisions_table(revisions: Sequence[RevisionInfo]) -> Table:
    table = Table("revision", "active", "python", "packages", "size", "created", "state")
    for rev in revisions:
        table.add_row(
            str(rev.number),
            "*" if rev.active else "",
            rev.python,
            str(rev.packages),
            human_size(rev.size_bytes),
            rev.created_at or "",
            "pruned" if rev.pruned else "kept",
        )
    return table


def builds_table(builds: Sequence[BuildInfo]) -> Table:
    table = Table("build", "status", "revision", "by", "created", "duration")
    for build in builds:
        duration = f"{build.duration_seconds:.1f} s" if build.duration_seconds is not None else ""
        table.add_row(
            build.id,
            build.status,
            str(build.revision or ""),
            build.requested_by,
            build.created_at or "",
            duration,
        )
    return table
