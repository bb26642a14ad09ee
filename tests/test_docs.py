"""Docs made from the code stay current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current(tmp_path: Path) -> None:
    generated = tmp_path / "cli.md"
    typer = Path(sys.executable).parent / "typer"
    subprocess.run(
        [
            str(typer),
            "codenv.cli.main",
            "utils",
            "docs",
            "--name",
            "codenv",
            "--title",
            "codenv CLI reference",
            "--output",
            str(generated),
        ],
        check=True,
        capture_output=True,
    )
    assert generated.read_text() == (ROOT / "docs" / "cli.md").read_text(), (
        "docs/cli.md is out of date: run scripts/gen-docs"
    )
