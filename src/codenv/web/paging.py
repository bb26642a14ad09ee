"""Links between the pages of a console list: the same filters, another cursor."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from codenv.services.listing import Page

# What a console list shows per page unless the URL says (`limit`, up to listing.MAX_LIMIT).
PAGE_SIZE = 50


def page_url(path: str, **params: str | int | None) -> str:
    """`path` with the non-empty `params` as its query (in the order given)."""
    kept = {key: value for key, value in params.items() if value is not None and value != ""}
    return path + ("?" + urlencode(kept) if kept else "")


def page_links(
    path: str, page: Page, after: str, size: int | None, **filters: str
) -> dict[str, Any]:
    """A list page's links, with the same filters: the next page, and the first past it."""
    return {
        "next_url": page_url(path, **filters, limit=size, after=page.next_cursor)
        if page.next_cursor
        else None,
        "first_url": page_url(path, **filters, limit=size) if after else None,
    }
