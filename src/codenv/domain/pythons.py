"""Which Python interpreters codenv supports, and how an interpreter is described."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from codenv.domain.errors import InvalidSpec

MIN_SUPPORTED = (3, 6)
DEPRECATED_BELOW = (3, 9)
_MINOR = re.compile(r"^3\.(\d{1,2})$")


@dataclass(frozen=True)
class Interpreter:
    """A Python installation found on the node."""

    path: str
    version: str
    implementation: str
    source: str
    has_headers: bool

    @property
    def version_info(self) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", self.version)[:3])

    @property
    def minor(self) -> str:
        major, minor = self.version_info[:2]
        return f"{major}.{minor}"

    @property
    def deprecated(self) -> bool:
        return self.version_info[:2] < DEPRECATED_BELOW

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "deprecated": self.deprecated}


def refusal_reason(implementation: str, version_info: tuple[int, ...]) -> str | None:
    """Why codenv refuses an interpreter, or None when it is supported."""
    if implementation != "cpython":
        return f"{implementation} is not supported: codenv builds envs with CPython only"
    if version_info[:2] < MIN_SUPPORTED:
        found = ".".join(str(part) for part in version_info)
        return f"Python {found} is too old: codenv supports CPython 3.6 and newer"
    return None


def parse_minor(text: str, *, field: str = "python") -> tuple[int, int]:
    """`3.X` → (3, X); anything else is an InvalidSpec naming the field."""
    match = _MINOR.fullmatch(text.strip())
    if not match:
        raise InvalidSpec(
            f"python version must look like 3.X (for example 3.11), got {text!r}", field=field
        )
    return 3, int(match.group(1))


def format_minor(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"
