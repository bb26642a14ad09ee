"""Credentials inside URLs (`https://user:secret@host/simple`) are used, never shown."""

from __future__ import annotations

import re

# scheme://user:password@  → scheme://user:***@ ; scheme://token@ → scheme://***@
_USER_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^/\s:@]+):[^/\s@]*@")
_TOKEN_ONLY = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+@(?=[^/\s@]+)")


def mask_secrets(text: str) -> str:
    """The text with every URL's password (or lone token) replaced by ***."""
    masked = _USER_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)
    return _TOKEN_ONLY.sub(lambda m: m.group("scheme") + "***@", masked)
