"""Which hosts a box in `indexes` mode may reach: the allow-list and its rules.

Pure, apart from name resolution in `resolve_allowed`: the proxy (sandbox/proxy.py) asks
these functions about each request the box makes.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

HostPort = tuple[str, int]

PYPI_HOST = "pypi.org"
# PyPI's index pages link every file to this host: an allow-list naming pypi.org alone
# would resolve but never download.
PYPI_FILES: HostPort = ("files.pythonhosted.org", 443)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_PORT = 65535
LOCALHOST = "localhost"
# Where the box's proxy listens, on the box's own loopback: nothing else lives in the box's
# network namespace, so a fixed port is always free and known before the box starts.
PROXY_PORT = 3128
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def proxy_environment() -> dict[str, str]:
    """The variables that send a box's HTTP clients (uv, pip, git, curl) to its proxy, for
    every URL: NO_PROXY empty, so loopback indexes go through the proxy too."""
    url = f"http://127.0.0.1:{PROXY_PORT}"
    names = (*_PROXY_VARIABLES, *(name.lower() for name in _PROXY_VARIABLES))
    return {**dict.fromkeys(names, url), "NO_PROXY": "", "no_proxy": ""}


class Refused(Exception):
    """A request the proxy does not carry out; the message says why, for the build log, and
    `status` is the HTTP status the box gets (403 for a host it may not reach)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


class Unresolved(Refused):
    """A name this node cannot resolve (its own proxy may still reach it)."""


def normalize_host(host: str) -> str:
    """The form hosts are compared in: lower case, no IPv6 brackets, no trailing dot."""
    return host.strip().strip("[]").rstrip(".").lower()


def normalize_allowed(pairs: Iterable[HostPort]) -> tuple[HostPort, ...]:
    """`pairs` checked and normalized, without repeats, in order."""
    allowed: dict[HostPort, None] = {}
    for host, port in pairs:
        name = normalize_host(host)
        if not name or not 0 < port <= _MAX_PORT:
            raise ValueError(f"allowed hosts must be (host, port) pairs, got {(host, port)!r}")
        allowed[(name, port)] = None
    return tuple(allowed)


def allowed_hosts_for(urls: Iterable[str]) -> tuple[HostPort, ...]:
    """The (host, port) pairs a box needs to reach the indexes and find-links `urls`.

    Credentials and paths play no part; `file:` URLs and local paths name no host. When
    pypi.org is among them, files.pythonhosted.org:443 is added (where PyPI's files are).
    Any other index whose pages link files on a second host needs that host named too.
    """
    pairs: list[HostPort] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            continue
        pairs.append((parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme]))
        if normalize_host(parts.hostname) == PYPI_HOST:
            pairs.append(PYPI_FILES)
    return normalize_allowed(pairs)


def split_authority(authority: str, default_port: int | None = None) -> HostPort:
    """`host:port` (or `[v6]:port`) of a proxy request, as a pair; Refused when malformed."""
    host, sep, port = authority.rpartition(":")
    if not sep or host.endswith(":") or (host.startswith("[") != host.endswith("]")):
        host, port = authority, ""  # no port (or a bare IPv6 address)
    if not port and default_port is not None:
        port = str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) <= _MAX_PORT:
        raise Refused(f"{_shown(authority)} is not a host and port", 400)
    return normalize_host(host), int(port)


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified  # 0.0.0.0 and :: reach the node itself


def named_as_loopback(host: str) -> bool:
    if host == LOCALHOST:
        return True
    try:
        return _is_loopback(host)
    except ValueError:
        return False  # a name, not an address


def authority(target: HostPort) -> str:
    """`host:port`, with an IPv6 address in brackets."""
    host, port = target
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_allowed(target: HostPort, allowed: tuple[HostPort, ...]) -> None:
    """Refused unless `target` is one of the `allowed` pairs, host and port exactly."""
    if target not in allowed:
        shown = _shown(authority(target))
        listed = ", ".join(authority(pair) for pair in allowed) or "none"
        raise Refused(f"{shown} is not an index this box may reach (allowed: {listed})")


def resolve(target: HostPort) -> list[HostPort]:
    """The addresses of `target`, resolved here (outside the box); Unresolved if none."""
    host, port = target
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Unresolved(f"{_shown(host)} could not be resolved: {exc}", 502) from exc
    return [(str(info[4][0]), port) for info in infos]


def resolve_allowed(target: HostPort) -> list[HostPort]:
    """The addresses to connect to for an allowed `target`.

    A name that resolves to loopback is refused unless it is named as loopback (an address
    or `localhost`): otherwise an index name pointed at 127.0.0.1 (a DNS answer or an
    /etc/hosts line) would open the server's own ports to the box.
    """
    addresses = resolve(target)
    if named_as_loopback(target[0]):
        return addresses
    public = [address for address in addresses if not _is_loopback(address[0])]
    if not public:
        raise Refused(
            f"{_shown(target[0])} resolves to a loopback address; a loopback index is "
            "reachable only when named by its address or as localhost"
        )
    return public


def _shown(text: str) -> str:
    """Box-chosen text as it may appear in a log: quoted, escaped, bounded."""
    return repr(text[:200])
