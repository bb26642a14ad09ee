"""Write the CLI reference (Markdown) to the path given: Typer's generator, then plain text
where it HTML-escapes apostrophes and whole first sentences where it cuts each command's
summary at 45 characters. scripts/gen-docs runs it; tests/test_docs.py checks the result."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from codenv.cli.main import app

ITEM = re.compile(r"^\* `([a-z-]+)`: .*\.\.\.$")
HEADING = re.compile(r"^#+ `codenv ?(.*)`$")


def _summaries(command: Any, context: Any, prefix: tuple[str, ...] = ()) -> Iterator[Any]:
    for name in getattr(command, "list_commands", lambda _context: [])(context):
        sub = command.get_command(context, name)
        if sub is None:
            continue
        first = (sub.help or "").strip().split("\n\n")[0]
        yield (*prefix, name), " ".join(first.split())
        yield from _summaries(sub, context, (*prefix, name))


def _plain(text: str) -> str:
    group = typer.main.get_command(app)
    full = dict(_summaries(group, group.make_context("codenv", [], resilient_parsing=True)))
    lines, prefix = [], ()
    for line in html.unescape(text).splitlines():
        heading = HEADING.match(line)
        if heading:
            prefix = tuple(heading.group(1).split())
        item = ITEM.match(line)
        key = (*prefix, item.group(1)) if item else None
        lines.append(f"* `{key[-1]}`: {full[key]}" if key in full else line)
    return "\n".join(lines) + "\n"


def main(output: Path) -> None:
    typer_bin = Path(sys.executable).parent / "typer"
    args = ["codenv.cli.main", "utils", "docs", "--name", "codenv"]
    args += ["--title", "codenv CLI reference", "--output", str(output)]
    subprocess.run([str(typer_bin), *args], check=True, capture_output=True)
    output.write_text(_plain(output.read_text()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
