"""Requested packages: requirements.txt text, parsed line by line with line numbers.

Option lines (`-r`, `-c`, `--index-url`, ...) are refused here: install options are a separate
setting. Accepted: named requirements (specifiers, extras, markers), `name @ URL`, bare URLs,
local archives and `-e /path/to/src`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from codenv.domain.errors import InvalidSpec

ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_EDITABLE = re.compile(r"^(-e|--editable)(\s+|=)(?P<target>.+)$")
_COMMENT = re.compile(r"(^|\s+)#.*$")


class LineKind(StrEnum):
    NAMED = "named"
    URL = "url"
    ARCHIVE = "archive"
    EDITABLE = "editable"


@dataclass(frozen=True)
class RequirementLine:
    """One logical requirement line as the user wrote it (comments removed)."""

    lineno: int
    text: str
    kind: LineKind
    name: str | None = None
    path: str | None = None

    @property
    def install_line(self) -> str:
        """The line handed to the installer."""
        return f"-e {self.path}" if self.kind is LineKind.EDITABLE else self.text


def is_continued(raw: str) -> bool:
    """pip's rule: a line ending in a backslash continues on the next, unless it is a comment."""
    stripped = raw.rstrip()
    return stripped.endswith("\\") and not stripped.lstrip().startswith("#")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations and strip comments, keeping the first line's number."""
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        stripped = raw.rstrip()
        if is_continued(stripped):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        line = _COMMENT.sub("", "".join(pending)).strip()
        pending = []
        if line:
            result.append((start, line))
    if pending:
        line = _COMMENT.sub("", "".join(pending)).strip()
        if line:
            result.append((start, line))
    return result


def _is_local_path(target: str) -> bool:
    return target.startswith(("/", "./", "../", "~", "file:"))


def _parse_editable(lineno: int, line: str, target: str, field: str) -> RequirementLine:
    path = target.strip().removeprefix("file://")
    if not path.startswith("/"):
        raise InvalidSpec(
            f"line {lineno}: editable installs take an absolute local directory "
            f"(`-e /path/to/src`), got {target!r}",
            field=field,
            line=lineno,
        )
    return RequirementLine(lineno, line, LineKind.EDITABLE, path=path)


def _parse_one(lineno: int, line: str, field: str) -> RequirementLine:
    editable = _EDITABLE.match(line)
    if editable:
        return _parse_editable(lineno, line, editable.group("target"), field)
    if line.startswith("-"):
        option = line.split(maxsplit=1)[0].split("=", maxsplit=1)[0]
        raise InvalidSpec(
            f"line {lineno}: option {option!r} is not allowed in requested packages; "
            "install options are a separate setting",
            field=field,
            line=lineno,
        )
    if _is_local_path(line) or (_URL.match(line) and line.lower().endswith(ARCHIVE_SUFFIXES)):
        path = line.removeprefix("file://")
        if not path.lower().endswith(ARCHIVE_SUFFIXES):
            raise InvalidSpec(
                f"line {lineno}: a local path must be an archive "
                f"({', '.join(ARCHIVE_SUFFIXES)}) or an editable `-e /path`, got {line!r}",
                field=field,
                line=lineno,
            )
        if not path.startswith("/") and not _URL.match(line):
            raise InvalidSpec(
                f"line {lineno}: local archives take an absolute path", field=field, line=lineno
            )
        kind = LineKind.URL if _URL.match(path) else LineKind.ARCHIVE
        return RequirementLine(lineno, line, kind, path=None if kind is LineKind.URL else path)
    if _URL.match(line):
        return RequirementLine(lineno, line, LineKind.URL)
    return _parse_named(lineno, line, field)


def _parse_named(lineno: int, line: str, field: str) -> RequirementLine:
    try:
        requirement = Requirement(line)
    except InvalidRequirement as error:
        detail = str(error).splitlines()[0]
        message = f"line {lineno}: invalid requirement {line!r}: {detail}"
        raise InvalidSpec(message, field=field, line=lineno) from error
    # packaging accepts `===` with no version; uv (and PEP 440) refuse it.
    empty = next((spec.operator for spec in requirement.specifier if not spec.version), None)
    if empty:
        message = (
            f"line {lineno}: invalid requirement {line!r}: {empty} must be followed by a version"
        )
        raise InvalidSpec(message, field=field, line=lineno)
    name = canonicalize_name(requirement.name)
    if requirement.url and requirement.url.startswith("file://"):
        # `pkg @ file:///abs/pkg.whl` is a local archive: checked to exist, digest in the plan.
        path = requirement.url.removeprefix("file://")
        return RequirementLine(lineno, line, LineKind.ARCHIVE, name=name, path=path)
    kind = LineKind.URL if requirement.url else LineKind.NAMED
    return RequirementLine(lineno, line, kind, name=name)


def parse_requested(text: str, *, field: str = "requested") -> tuple[RequirementLine, ...]:
    """Parse requirements.txt text; the first bad line raises InvalidSpec naming its number."""
    return tuple(_parse_one(number, line, field) for number, line in logical_lines(text))


# Parsed again for every env shown (its base packages): the same few lines, kept.
@lru_cache(maxsize=4096)
def requirement_name(line: str) -> str | None:
    """The canonical project name of a named requirement line, or None."""
    try:
        return canonicalize_name(Requirement(line).name)
    except InvalidRequirement:
        return None
