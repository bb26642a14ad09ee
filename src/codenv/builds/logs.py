"""Append-only build logs: one file per build, readable while the build writes it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from codenv.domain.secrets import mask_secrets


class BuildLog:
    """Writer side. Subprocesses write into the same file through `fileno()`."""

    def __init__(self, path: Path, on_step: Callable[[str], None] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1)
        self._on_step = on_step

    def fileno(self) -> int:
        self._file.flush()
        return self._file.fileno()

    def write(self, text: str) -> None:
        """Append a line; credentials inside URLs never reach the file."""
        text = mask_secrets(text)
        self._file.write(text if text.endswith("\n") else text + "\n")

    def step(self, name: str, detail: str = "") -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
        self.write(f"==> [{stamp}] {name}{': ' + detail if detail else ''}")
        if self._on_step is not None:
            self._on_step(name)

    def close(self) -> None:
        self._file.close()


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
    if limit > 0 and len(data) == limit:
        cut = len(data)
        # Back off over continuation bytes (10xxxxxx) to the start of the last character.
        while cut > 0 and data[cut - 1] & 0xC0 == 0x80:
            cut -= 1
        if cut > 0 and data[cut - 1] >= 0xC0:
            cut -= 1
        data = data[:cut] if cut > 0 else data
    return data.decode("utf-8", errors="replace"), offset + len(data)
