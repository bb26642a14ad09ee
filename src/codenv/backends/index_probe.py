"""After a failed install: ask each index directly, so a refused password is named as such.

uv reports a wrong index password as "not found in the package registry"; a direct request
tells the user which index refused them, and with which status.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from codenv.domain.secrets import mask_secrets


def _request(url: str) -> urllib.request.Request:
    """A request without the credentials in its URL, sending them as basic auth instead."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    request = urllib.request.Request(urlunsplit(parts._replace(netloc=netloc)), method="GET")  # noqa: S310 (index URLs are checked to be http(s))
    if parts.username is not None:
        pair = f"{parts.username}:{parts.password or ''}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    return request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib re-sends every header, credentials included, to wherever a redirect points: the
    probe follows none (a redirect is no refusal of the credentials)."""

    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def refused_index(urls: Iterable[str], timeout: float = 10) -> str | None:
    """A message naming the first index that refuses its credentials, or None."""
    for url in urls:
        if urlsplit(url).hostname is None:
            continue
        try:
            with _OPENER.open(_request(url), timeout=timeout):
                continue
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                return (
                    f"the package index {mask_secrets(url)} refused the credentials "
                    f"(HTTP {error.code} {error.reason}); check the user and password in the "
                    "install options"
                )
        except (urllib.error.URLError, OSError):
            continue
    return None
