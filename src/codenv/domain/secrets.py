"""Secrets are used, never shown: the one masking of logs, error messages, responses and audit.

Masked: credentials inside URLs (`scheme://user:secret@` → `scheme://user:***@`, a lone token
`scheme://token@host` → `scheme://***@host`) and API token secrets (`cdv_…` → `cdv_***`).

Masking runs on untrusted text of any size (a request path, a 10 MB description), so its time
is linear in the text. Each pattern starts with a literal ("://", "cdv_"), so positions without
it are refused in O(1) (lookbehinds are fixed-width: O(1) too). At a position with it, every
repetition is one character class and what follows it cannot be in that class, so a failed
attempt backtracks each repetition once: it costs the length of the runs it read. A URL
attempt stops at the first '/', whitespace or '@' after its "://", and the next "://" holds a
'/', so attempts read disjoint stretches; a token attempt reads a whole token, or fails within
20 characters. Hence O(len(text)) in all, whatever the text (tests/test_masking.py times it).
"""

from __future__ import annotations

import re

MASK = "***"
# "://" right after a scheme character (a fixed-width lookbehind placed after the literal, so
# the regex engine can search for the literal).
_AFTER_SCHEME = r"://(?<=[A-Za-z0-9+.-]://)"
# The kept part `://user:` is the split's one group; the password after it is dropped.
_USER_PASSWORD = re.compile(rf"({_AFTER_SCHEME}[^/\s:@]+:)[^/\s@]*@")
_TOKEN_ONLY = re.compile(rf"{_AFTER_SCHEME}[^/\s:@]+@(?=[^/\s@])")
_API_TOKEN = re.compile(r"cdv_(?<=\bcdv_)[A-Za-z0-9_-]{20,}")  # a whole secret, not a prefix


def mask_secrets(text: str) -> str:
    """The text with every URL's password (or lone token) and every API token secret masked."""
    if "://" in text:
        # split + join instead of sub with a group reference: no Python call per match.
        parts = _USER_PASSWORD.split(text)
        parts[1::2] = [kept + MASK + "@" for kept in parts[1::2]]
        text = _TOKEN_ONLY.sub(f"://{MASK}@", "".join(parts))
    if "cdv_" in text:
        text = _API_TOKEN.sub(f"cdv_{MASK}", text)
    return text
