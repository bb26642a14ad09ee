"""Code env names: `^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$`, unique per node, compared
case-insensitively; and `NAME@N`, revision N of an env (`@` is in no name).

`_` is allowed anywhere, as the seed system allows it (its UI rule is `^[_A-Za-z0-9-]+$`, its API
examples are `my_code_env_name`): its admins' envs keep their names. A name never starts with a
hyphen, never holds `.`, `/` or `@`, and stays safe unquoted in a URL path and a file name."""

from __future__ import annotations

import re

from codenv.domain.errors import InvalidInput

MAX_NAME_CHARS = 64  # env names, and user and group names too
_ECHOED = 256  # characters of a refused name quoted back: enough to see what was sent
# No leading hyphen: a command line would read such a name as an option.
NAME_PATTERN = re.compile(rf"^[A-Za-z0-9_][A-Za-z0-9_-]{{0,{MAX_NAME_CHARS - 1}}}$")


def validate_env_name(name: str, *, field: str = "name") -> str:
    if not NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= _ECHOED else name[:_ECHOED] + "…"
        raise InvalidInput(
            f"invalid code env name {shown!r}: use 1 to {MAX_NAME_CHARS} characters among "
            "A-Z, a-z, digits, underscores and hyphens, not starting with a hyphen",
            field=field,
        )
    return name


def name_key(name: str) -> str:
    """The key names are compared by (case-insensitive uniqueness)."""
    return name.casefold()


VERSION_SEPARATOR = "@"  # never in a name: `NAME@N` is revision N of env NAME
# A revision number: positive, at most what the database holds (a signed 64-bit integer).
_REVISION = re.compile(r"[1-9][0-9]{0,18}")


def split_version(ref: str) -> tuple[str, int | None]:
    """`NAME@N` → (NAME, N); a plain name → (name, None): the active revision."""
    name, separator, number = ref.partition(VERSION_SEPARATOR)
    if not separator:
        return ref, None
    if not _REVISION.fullmatch(number) or int(number) >= 2**63:
        shown = ref if len(ref) <= _ECHOED else ref[:_ECHOED] + "…"
        raise InvalidInput(
            f"{shown!r}: a version is NAME@N, N a revision number (`codenv revisions NAME`)",
            field="name",
        )
    return name, int(number)


def revision_of(ref: str, revision: int | None) -> tuple[str, int | None]:
    """`NAME@N`, or NAME with the revision given apart (an option, a query): (NAME, N)."""
    name, number = split_version(ref)
    if number is not None and revision is not None and number != revision:
        raise InvalidInput(f"{ref!r} and revision {revision} name two revisions", field="revision")
    return name, number if number is not None else revision
