"""Append-only build logs: one file per build, readable while the build writes it.

Every byte goes through `BuildLog.write`, which masks credentials: subprocess output too (the
backends read it from a pipe and write it line by line), and no raw file descriptor is handed
out. So the file, and the database copy made of it (services/log_store.py), hold masked text
only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from codenv.domain.secrets import mask_secrets


class BuildLog:
    """Writer side, in the process running the build."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1)

    def write(self, text: str) -> None:
        """Append a line; credentials inside URLs never reach the file."""
        text = mask_secrets(text)
        self._file.write(text if text.endswith("\n") else text + "\n")

    def step(self, name: str, detail: str = "") -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
        self.write(f"==> [{stamp}] {name}{': ' + detail if detail else ''}")

    def close(self) -> None:
        self._file.close()


def whole_characters(data: bytes) -> int:
    """The length of `data` without a UTF-8 character cut at its end (all of it when none is)."""
    cut = len(data)
    # Back off over continuation bytes (10xxxxxx) to the start of the last character.
    while cut > 0 and data[cut - 1] & 0xC0 == 0x80:
        cut -= 1
    if cut > 0 and data[cut - 1] >= 0xC0:
        lead = data[cut - 1]
        needed = 4 if lead >= 0xF0 else 3 if lead >= 0xE0 else 2
        # The last character is whole when all its continuation bytes are there.
        return len(data) if len(data) - cut + 1 >= needed else cut - 1
    return len(data)


def read_from(path: Path, offset: int = 0, limit: int = -1) -> tuple[str, int]:
    """The text appended since `offset` (at most `limit` bytes), and the new offset.

    A chunk never ends inside a UTF-8 character: the offset stays on a character boundary.
    """
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(limit)
    except FileNotFoundError:
        return "", offset
    return decode_chunk(data, offset, limit)


def decode_chunk(data: bytes, offset: int, limit: int) -> tuple[str, int]:
    """`data` read from `offset` (at most `limit` bytes) as text, and the offset after it;
    a character the limit cut is left for the next read."""
    if limit > 0 and len(data) == limit:
        data = data[: whole_characters(data) or len(data)]
    return data.decode("utf-8", errors="replace"), offset + len(data)
