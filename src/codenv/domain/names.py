"""Code env names: `^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`, unique per node, compared
case-insensitively."""

from __future__ import annotations

import re

from codenv.domain.errors import InvalidInput

MAX_NAME_CHARS = 64  # env names, and user and group names too
_ECHOED = 256  # characters of a refused name quoted back: enough to see what was sent
# No leading hyphen: a command line would read such a name as an option.
NAME_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9-]{{0,{MAX_NAME_CHARS - 1}}}$")


def validate_env_name(name: str, *, field: str = "name") -> str:
    if not NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= _ECHOED else name[:_ECHOED] + "…"
        raise InvalidInput(
            f"invalid code env name {shown!r}: use 1 to {MAX_NAME_CHARS} characters among "
            "A-Z, a-z, digits and hyphens, not starting with a hyphen",
            field=field,
        )
    return name


def name_key(name: str) -> str:
    """The key names are compared by (case-insensitive uniqueness)."""
    return name.casefold()
