"""Links between the pages of a console list: the same filters, another cursor."""

from __future__ import annotations

from urllib.parse import urlencode

# What a console list shows per page unless the URL says (`limit`, up to listing.MAX_LIMIT).
PAGE_SIZE = 50


def page_url(path: str, **params: str | int | None) -> str:
    """`path` with the non-empty `params` as its query (in the order given)."""
    kept = {key: value for key, value in params.items() if value is not None and value != ""}
    return path + ("?" + urlencode(kept) if kept else "")
