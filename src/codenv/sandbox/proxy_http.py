"""The HTTP the box's proxy speaks: the requests it takes (CONNECT for https, absolute-URI
requests for http) and the heads it sends on and answers with. Pure."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

from codenv.sandbox.network import HostPort, Refused, split_authority

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 30.0
END_OF_HEAD = b"\r\n\r\n"
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
# Hop-by-hop headers (RFC 9110 7.6.1) and the proxy's own: never forwarded.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"}
)
# What reading an index takes; no request body is ever forwarded.
_FORWARDED_METHODS = ("GET", "HEAD")
_REASONS = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass(frozen=True)
class ProxyRequest:
    """One request to the proxy. `target` is the (host, port) it goes to; `url` the
    request-target as the box sent it (an authority for CONNECT, an http:// URL otherwise);
    `headers` the box's header lines without hop-by-hop ones."""

    method: str
    target: HostPort
    url: str
    version: str
    headers: tuple[str, ...]

    def head(self, *, origin_form: bool, authorization: str | None = None) -> bytes:
        """The head to send on: to the index itself in origin form (`GET /path`), to the
        node's own proxy as the box sent it, with that proxy's credentials. Plain http
        gets `Connection: close`: one request per connection (nothing more of the box is
        sent on it, so a second request, perhaps for another host, never follows)."""
        target = self.url
        if origin_form:
            url = urlsplit(self.url)
            target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        line = f"{self.method} {target} {self.version}"
        extra = [f"Proxy-Authorization: {authorization}"] if authorization else []
        if self.method != "CONNECT":
            extra.append("Connection: close")
        return "\r\n".join([line, *self.headers, *extra, "", ""]).encode("latin-1")


def parse_request(head: bytes) -> ProxyRequest:
    """The request in `head` (up to and including its blank line); Refused (400) when it
    is not a proxy request codenv forwards."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise Refused("not an HTTP proxy request", 400)
    method, url, version = parts
    headers = [line for line in lines[1:] if line and not _hop_by_hop(line)]
    if method == "CONNECT":
        return ProxyRequest(method, split_authority(url), url, version, tuple(headers))
    parsed = urlsplit(url)
    if method not in _FORWARDED_METHODS or parsed.scheme != "http" or not parsed.netloc:
        raise Refused(
            f"{method[:20]!r} {url[:200]!r}: only CONNECT, or GET and HEAD of http:// URLs", 400
        )
    authority = parsed.netloc.rpartition("@")[2]  # credentials go in headers, never on
    if not any(line.lower().startswith("host:") for line in headers):
        headers.append(f"Host: {authority}")
    return ProxyRequest(method, split_authority(authority, 80), url, version, tuple(headers))


def closing_response_head(head: bytes) -> bytes:
    """A response head with `Connection: close` (see ProxyRequest.head)."""
    lines = [line for line in head.decode("latin-1").split("\r\n") if line]
    kept = [lines[0], *(line for line in lines[1:] if not _hop_by_hop(line))]
    return "\r\n".join([*kept, "Connection: close", "", ""]).encode("latin-1")


def status_line(head: bytes) -> str:
    return head.split(b"\r\n", 1)[0].decode("latin-1")[:200]


def _hop_by_hop(header_line: str) -> bool:
    return header_line.split(":", 1)[0].strip().lower() in _HOP_BY_HOP


def error_response(status: int, message: str) -> bytes:
    body = f"codenv sandbox proxy: {message}\n".encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def read_head(reader: asyncio.StreamReader) -> bytes:
    """A request or response head, within HEAD_TIMEOUT and MAX_HEAD_BYTES (the stream's
    limit: asyncio.LimitOverrunError beyond it)."""
    return await asyncio.wait_for(reader.readuntil(END_OF_HEAD), HEAD_TIMEOUT)
