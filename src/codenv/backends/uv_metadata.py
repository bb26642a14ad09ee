"""Metadata uv cannot read, repaired the way pip reads it and handed back to uv.

uv refuses a distribution whose METADATA holds a requirement that is no PEP 440 one (pandas
0.21.1: `pytz (>=2011k)`); the pip of Python 3.6 and 3.7 installs it. When uv says so, codenv
reads that METADATA (domain/legacy_metadata.py has the rule), writes the repaired metadata as
uv's own `dependency-metadata` setting (static metadata for one name and version) into a
uv.toml that only the resolving command is given (`--config-file`: uv reads no other, with
UV_NO_CONFIG), and resolves again. Nothing is repaired silently: the build log and the
revision's warnings name every change.

uv says it in two ways: an error hint when the refused version was the only one it could use,
and (with RUST_LOG=uv_resolver=warn) a warning when it skipped that version for an older one,
where pip would have taken the newer: codenv repairs both.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from codenv.domain.checks import CheckReport
from codenv.domain.legacy_metadata import MetadataRepair, repair_metadata

# How uv 0.13 reports a distribution whose metadata it cannot parse.
_REFUSED = re.compile(
    r"Metadata for `(?P<name>[^`]+)` \(v(?P<version>[^)\s]+)\) could not be parsed"
)
_SKIPPED = re.compile(r"`(?P<name>[^`=\s]+)==(?P<version>[^`\s]+)` has invalid metadata")
_UNREADABLE_INSTALLED = re.compile(
    r"^The package `[^`]+` is broken or incomplete \(unable to read `METADATA`\)"
    r".* at: (?P<path>\S.*?)\.?$"
)
# uv's tracing filter: the resolver's warnings (skipped versions), nothing else.
RESOLVER_WARNINGS = {"RUST_LOG": "uv_resolver=warn"}
# A METADATA file is a few kB; its long description may make it larger, never this large.
METADATA_LIMIT = 4 * 1024 * 1024
MAX_REPAIRS = 10


def unreadable(output: Iterable[str]) -> list[tuple[str, str]]:
    """(name, version) of the distributions uv could not read, the newest of each name."""
    newest: dict[str, str] = {}
    for line in output:
        for found in (*_REFUSED.finditer(line), *_SKIPPED.finditer(line)):
            name, version = canonicalize_name(found["name"]), found["version"]
            if name not in newest or _newer(version, newest[name]):
                newest[name] = version
    return sorted(newest.items())


def _newer(version: str, than: str) -> bool:
    try:
        return Version(version) > Version(than)
    except InvalidVersion:
        return False


def read_metadata(dist_info: Path) -> str:
    """A dist-info's METADATA, size-limited; OSError when it is missing, a link or too big.
    It may come from a box (a source build): it is read, never followed or run."""
    descriptor = os.open(dist_info / "METADATA", os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(METADATA_LIMIT + 1)
    if len(data) > METADATA_LIMIT:
        raise OSError(f"{dist_info.name}/METADATA is larger than {METADATA_LIMIT} bytes")
    return data.decode("utf-8", errors="replace")


def find_dist_info(target: Path, name: str) -> Path:
    """The dist-info of `name` installed into `target`; OSError when there is none."""
    for dist_info in sorted(target.glob("*.dist-info")):
        project = dist_info.name.removesuffix(".dist-info").rpartition("-")[0]
        if canonicalize_name(project) == canonicalize_name(name):
            return dist_info
    raise OSError(f"no {name} dist-info was installed")


class Repairs:
    """The repairs of one resolution, kept as the uv.toml that the next attempt is given."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.tried: set[tuple[str, str]] = set()
        self.repaired: list[MetadataRepair] = []
        self.notes: list[str] = []  # why what was tried was not repaired

    @property
    def args(self) -> list[str]:
        return ["--config-file", str(self.config)] if self.repaired else []

    def new(self, output: Iterable[str]) -> list[tuple[str, str]]:
        """What uv could not read and was not tried yet, within MAX_REPAIRS in all."""
        found = [key for key in unreadable(output) if key not in self.tried]
        return found[: max(0, MAX_REPAIRS - len(self.tried))]

    def add(self, key: tuple[str, str], repair: MetadataRepair | str) -> None:
        """Record a try: a repair, or why there is none."""
        self.tried.add(key)
        if isinstance(repair, MetadataRepair) and repair.repaired:
            self.repaired.append(repair)
            self.config.write_text(_config_toml(self.repaired), "utf-8")


def _toml_list(values: Iterable[str]) -> str:
    # JSON strings are TOML basic strings (non-ASCII kept as is: TOML has no surrogates).
    return "[" + ", ".join(json.dumps(value, ensure_ascii=False) for value in values) + "]"


def _config_toml(repairs: Iterable[MetadataRepair]) -> str:
    blocks = []
    for repair in repairs:
        lines = [
            "[[dependency-metadata]]",
            f"name = {json.dumps(repair.name)}",
            f"version = {json.dumps(repair.version)}",
            f"requires-dist = {_toml_list(repair.requires_dist)}",
            f"provides-extra = {_toml_list(repair.provides_extra)}",
        ]
        if repair.requires_python is not None:
            lines.append(f"requires-python = {json.dumps(repair.requires_python)}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def read_as_pip(report: CheckReport, env: Path) -> CheckReport:
    """The check's report, where an installed package whose METADATA only uv cannot read is
    no problem: its repair is a warning (resolving used the same repair)."""
    problems: list[str] = []
    warnings = list(report.warnings)
    for line in report.problems:
        repair = _installed_repair(line, env)
        if repair is None or not repair.repaired:
            problems.append(line)
        else:
            warnings.extend(repair.changes)
    return CheckReport(tuple(problems), tuple(warnings))


def _installed_repair(line: str, env: Path) -> MetadataRepair | None:
    found = _UNREADABLE_INSTALLED.match(line)
    if found is None:
        return None
    dist_info = Path(found["path"])
    if not dist_info.resolve().is_relative_to(env.resolve()):
        return None
    name, _, version = dist_info.name.removesuffix(".dist-info").rpartition("-")
    try:
        return repair_metadata(name, version, read_metadata(dist_info))
    except OSError:
        return None
