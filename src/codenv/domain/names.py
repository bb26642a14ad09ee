"""Code env names: `^[A-Za-z0-9-]{1,64}$`, unique per node, compared case-insensitively."""

from __future__ import annotations

import re

from codenv.domain.errors import InvalidInput

NAME_PATTERN = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def validate_env_name(name: str, *, field: str = "name") -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"invalid code env name {name!r}: use 1 to 64 characters among A-Z, a-z, "
            "digits and hyphens",
            field=field,
        )
    return name


def name_key(name: str) -> str:
    """The key names are compared by (case-insensitive uniqueness)."""
    return name.casefold()
