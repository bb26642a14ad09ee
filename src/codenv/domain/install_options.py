"""Install options written the way users write them for pip, checked against an allow-list.

One token per item (`--index-url`, `URL`) or `--option=value`; normalized to pairs. Anything
outside the allow-list (`--target`, `--prefix`, `-r`, …) is refused with the supported list:
options that would install outside the env or read other files have no place here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from codenv.domain.errors import InvalidSpec
from codenv.domain.secrets import mask_secrets

# option → (takes a value, what kind of value)
INSTALL_OPTIONS: dict[str, str | None] = {
    "--index-url": "url",
    "--extra-index-url": "url",
    "--trusted-host": "host",
    "--find-links": "location",
    "--no-index": None,
    "--pre": None,
    "--only-binary": "packages",
    "--no-binary": "packages",
    "--prefer-binary": None,
    "--proxy": "url",
    "--timeout": "number",
    "--retries": "number",
}
VENV_OPTIONS: dict[str, str | None] = {"--system-site-packages": None}
ALIASES = {"-i": "--index-url", "-f": "--find-links"}

_URL = re.compile(r"^https?://[^\s]+$")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$")
_PACKAGES = re.compile(r"^(:all:|:none:|[A-Za-z0-9._-]+)(,(:all:|:none:|[A-Za-z0-9._-]+))*$")


@dataclass(frozen=True)
class Option:
    name: str
    value: str | None = None

    def tokens(self) -> tuple[str, ...]:
        return (self.name,) if self.value is None else (self.name, self.value)


def _check_value(name: str, kind: str, value: str, field: str) -> None:
    valid = {
        "url": lambda: bool(_URL.match(value)),
        "host": lambda: bool(_HOST.match(value)),
        "location": lambda: bool(_URL.match(value) or value.startswith(("/", "file://"))),
        "packages": lambda: bool(_PACKAGES.match(value)),
        "number": lambda: value.replace(".", "", 1).isdigit(),
    }[kind]()
    if not valid:
        expected = {
            "url": "an http(s) URL",
            "host": "a host name (with an optional :port)",
            "location": "an absolute directory or an http(s) URL",
            "packages": ":all:, :none: or package names separated by commas",
            "number": "a number",
        }[kind]
        raise InvalidSpec(f"{name} takes {expected}, got {mask_secrets(value)!r}", field=field)


def _refuse(token: str, allowed: dict[str, str | None], field: str) -> InvalidSpec:
    supported = ", ".join(allowed)
    return InvalidSpec(
        f"option {mask_secrets(token)!r} is not supported here; supported options: {supported}",
        field=field,
    )


def parse_options(
    tokens: Sequence[str],
    allowed: dict[str, str | None] = INSTALL_OPTIONS,
    *,
    field: str = "install_options",
) -> tuple[Option, ...]:
    """Normalize pip-style tokens (`--x=v`, `--x v`, `-i v`) into checked options."""
    options: list[Option] = []
    pending = list(tokens)
    while pending:
        token = pending.pop(0).strip()
        if not token:
            continue
        name, equals, value = token.partition("=")
        name = ALIASES.get(name, name)
        if name not in allowed:
            raise _refuse(token, allowed, field)
        kind = allowed[name]
        if kind is None:
            if equals:
                raise InvalidSpec(f"{name} takes no value", field=field)
            options.append(Option(name))
            continue
        if not equals:
            if not pending or pending[0].startswith("-"):
                raise InvalidSpec(f"{name} needs a value", field=field)
            value = pending.pop(0).strip()
        _check_value(name, kind, value, field)
        options.append(Option(name, value))
    return tuple(options)


def to_tokens(options: Iterable[Option]) -> tuple[str, ...]:
    return tuple(token for option in options for token in option.tokens())


def index_urls(options: Iterable[Option]) -> tuple[str, ...]:
    return tuple(
        o.value for o in options if o.name in ("--index-url", "--extra-index-url") and o.value
    )


def with_default_index(options: tuple[Option, ...], default_index: str) -> tuple[Option, ...]:
    """The options a build uses: the node's default index unless they name one (or none)."""
    if any(option.name in ("--index-url", "--no-index") for option in options):
        return options
    return (Option("--index-url", default_index), *options)
