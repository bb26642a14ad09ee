"""Integer parameters of routes (API and console) that name rows: bounded by what the database
can hold (a signed 64-bit integer in SQLite and PostgreSQL), so that a larger one is answered
422 naming it instead of overflowing the database driver (a 500)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ID = 2**63 - 1
# A row's id in a path: a token, a request, a session.
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
# A revision number in a query (None: the active one), an offset into a log or a list.
RevisionQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
