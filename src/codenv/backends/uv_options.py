"""pip's install options, as uv takes them: arguments, plus variables for what uv only reads
from its environment (proxy, timeout, retries) and for every location, which may carry
credentials (`https://user:secret@host/simple`): those never go on a command line, where any
local user could read them in `ps`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from codenv.domain.install_options import Option


@dataclass(frozen=True)
class UvOptions:
    args: tuple[str, ...] = ()
    environ: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


# Not a pip option (users cannot set it): what an import from a bundle asks when the node
# must not reach any network. uv takes it from its environment, so that a step that adds its
# own `--offline` does not name it twice.
OFFLINE = "--offline"
_SAME = {"--no-index", "--only-binary", "--no-binary"}
_ENVIRON = {
    "--timeout": ("UV_HTTP_TIMEOUT",),
    "--retries": ("UV_HTTP_RETRIES",),
    "--proxy": ("HTTP_PROXY", "HTTPS_PROXY"),
}
# Options that may be given several times: uv's variable, and how it joins the values.
_LISTS = {
    "--index-url": ("UV_INDEX_URL", " "),
    "--extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
    "--find-links": ("UV_FIND_LINKS", ","),
    "--trusted-host": ("UV_INSECURE_HOST", " "),
}


def translate(options: Iterable[Option]) -> UvOptions:
    """Parsed (and already checked) install options, as uv takes them."""
    args: list[str] = []
    environ: dict[str, str] = {}
    notes: list[str] = []
    for option in options:
        if option.name in _SAME:
            args.extend(option.tokens())
        elif option.name in _LISTS:
            variable, separator = _LISTS[option.name]
            joined = [value for value in (environ.get(variable), option.value) if value]
            environ[variable] = separator.join(joined)
        elif option.name == OFFLINE:
            environ["UV_OFFLINE"] = "1"
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
