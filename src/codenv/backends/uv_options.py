"""pip's install options, as uv takes them: arguments, plus variables for what uv only reads
from its environment (proxy, timeout, retries)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from codenv.domain.install_options import Option


@dataclass(frozen=True)
class UvOptions:
    args: tuple[str, ...] = ()
    environ: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


_SAME = {
    "--index-url",
    "--extra-index-url",
    "--find-links",
    "--no-index",
    "--only-binary",
    "--no-binary",
}
_ENVIRON = {
    "--timeout": ("UV_HTTP_TIMEOUT",),
    "--retries": ("UV_HTTP_RETRIES",),
    "--proxy": ("HTTP_PROXY", "HTTPS_PROXY"),
}


def translate(options: Iterable[Option]) -> UvOptions:
    """Parsed (and already checked) install options, as uv takes them."""
    args: list[str] = []
    environ: dict[str, str] = {}
    notes: list[str] = []
    for option in options:
        if option.name in _SAME:
            args.extend(option.tokens())
        elif option.name == "--trusted-host":
            args += ["--allow-insecure-host", option.value or ""]
        elif option.name == "--pre":
            args += ["--prerelease", "allow"]
        elif option.name in _ENVIRON:
            environ.update(dict.fromkeys(_ENVIRON[option.name], option.value or ""))
        elif option.name == "--prefer-binary":
            notes.append(
                "--prefer-binary has no uv equivalent: uv installs a wheel whenever "
                "the version it chose has one"
            )
    return UvOptions(tuple(args), environ, tuple(notes))
