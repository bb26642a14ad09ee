"""How the box's proxy reaches an allowed index: directly, or through the node's own proxy.

A node behind a proxy (the server's HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, minus NO_PROXY,
as any HTTP client of the server reads them) reaches the indexes through it, so the box's
proxy does too; an index named as loopback is on this node and is always reached directly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from codenv.sandbox.network import (
    HostPort,
    Refused,
    Unresolved,
    authority,
    named_as_loopback,
    resolve,
    resolve_allowed,
)
from codenv.sandbox.proxy_http import MAX_HEAD_BYTES, ProxyRequest, read_head, status_line

CONNECT_TIMEOUT = 30.0
_HTTP_PORT = 80
_OK = 200


@dataclass(frozen=True)
class NodeProxy:
    """The node's own proxy: where it listens, and the Proxy-Authorization its URL implies."""

    address: HostPort
    authorization: str | None = None


def node_proxy(request: ProxyRequest) -> NodeProxy | None:
    """The node's proxy for `request`, or None to connect directly."""
    if named_as_loopback(request.target[0]):
        return None
    proxies = urllib.request.getproxies_environment()
    scheme = "https" if request.method == "CONNECT" else "http"
    url = proxies.get(scheme) or proxies.get("all")
    if not url or urllib.request.proxy_bypass(authority(request.target)):
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise Refused(f"the node's {scheme} proxy is not an http:// URL", 502)
    credentials = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        credentials = "Basic " + base64.b64encode(pair.encode()).decode()
    return NodeProxy((parts.hostname, parts.port or _HTTP_PORT), credentials)


async def connect(request: ProxyRequest) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection on which the index of `request` answers: for CONNECT a tunnel to it,
    for http with the request head already sent."""
    via = node_proxy(request)
    if via is None:
        addresses = await asyncio.to_thread(resolve_allowed, request.target)
        reader, writer = await _open_first(addresses, request.target)
        if request.method != "CONNECT":
            writer.write(request.head(origin_form=True))
        return reader, writer
    # Resolvable here to loopback only: refused, as when direct. Unresolvable here: the
    # node's proxy resolves it (nodes behind a proxy often have no DNS of their own).
    with contextlib.suppress(Unresolved):
        await asyncio.to_thread(resolve_allowed, request.target)
    addresses = await asyncio.to_thread(resolve, via.address)
    reader, writer = await _open_first(addresses, via.address)
    writer.write(request.head(origin_form=False, authorization=via.authorization))
    if request.method == "CONNECT":
        answer = status_line(await read_head(reader))
        if answer.split(" ")[1:2] != [str(_OK)]:
            writer.close()
            raise Refused(
                f"the node's proxy answered {answer!r} for {authority(request.target)}", 502
            )
    return reader, writer


async def _open_first(
    addresses: list[HostPort], target: HostPort
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the first of `addresses` (those of `target`) that answers."""
    failure: OSError | TimeoutError | None = None
    for host, port in addresses:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=MAX_HEAD_BYTES), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            failure = exc
    raise Refused(f"could not connect to {authority(target)}: {failure}", 502)
