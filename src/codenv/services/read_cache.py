"""Answers of reads that depend on the database alone, kept while it is unchanged.

A console left open polls the env list and an env's builds every few seconds, and a team
keeps many open: mostly the same page, for the same person, of unchanged data. Each server
process keeps its latest answers with the data version they were read at
(storage/data_version.py); a read at the same version is answered from here after one small
query, whoever changed the data, from whichever process.

The version is read *before* the answer is computed, so an answer is at least as new as the
version it is kept under: a later read that finds the same version would find nothing newer
in the database. Reads that look at anything else (the live env, files, the clock) are not
kept. Answers are shared between requests: they are frozen views, never changed by readers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TypeVar, cast

from codenv.services.actor import Actor

T = TypeVar("T")
# Pages of up to a few hundred rows: a few MB at most per server process.
ENTRIES = 64


class ReadCache:
    def __init__(self, version: Callable[[], int], entries: int = ENTRIES) -> None:
        self._version = version
        self._entries: OrderedDict[Hashable, tuple[int, object]] = OrderedDict()
        self._size = entries
        self._lock = threading.Lock()

    def read(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`'s answer, or the one kept for `key` at the current data version. What
        `compute` raises is raised each time (refusals and errors are never kept)."""
        version = self._version()
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None and kept[0] == version:
                self._entries.move_to_end(key)
                return cast(T, kept[1])
        answer = compute()
        with self._lock:
            newer = self._entries.get(key)
            if newer is None or newer[0] <= version:  # never over one read at a later version
                self._entries[key] = (version, answer)
                self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return answer


_DERIVED: OrderedDict[tuple[int, str], tuple[object, object]] = OrderedDict()
_DERIVED_LOCK = threading.Lock()


def derived(shared: object, what: str, make: Callable[[], T]) -> T:
    """`make()`, once for each `shared` object: an answer this cache hands every request
    while the data is unchanged, whose JSON or HTML rows adapters would otherwise draw again
    per request. `make` must depend on `shared` alone."""
    key = (id(shared), what)
    with _DERIVED_LOCK:
        kept = _DERIVED.get(key)
    if kept is not None and kept[0] is shared:
        return cast(T, kept[1])
    value = make()
    with _DERIVED_LOCK:
        _DERIVED[key] = (shared, value)  # holding `shared` keeps its id from being reused
        while len(_DERIVED) > ENTRIES:
            _DERIVED.popitem(last=False)
    return value


def reader_key(actor: Actor) -> Actor:
    """What of the actor a read's answer depends on: all but where the call came from."""
    return replace(actor, source="")
