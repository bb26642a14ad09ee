"""Docs made from the code stay current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current(tmp_path: Path) -> None:
    generated = tmp_path / "cli.md"
    script = ROOT / "scripts" / "cli_docs.py"
    subprocess.run([sys.executable, str(script), str(generated)], check=True, cwd=ROOT)
    assert generated.read_text() == (ROOT / "docs" / "cli.md").read_text(), (
        "docs/cli.md is out of date: run scripts/gen-docs"
    )


def test_the_cli_reference_reads_as_plain_text() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    assert "&#" not in text and "&amp;" not in text
    cut = [line for line in text.splitlines() if line.startswith("* `") and line.endswith("...")]
    assert cut == []


def test_the_docs_do_not_promise_what_exists_as_future() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "later release" not in operations


def test_the_readme_names_every_env_tab_of_the_console() -> None:
    from codenv.web import env_pages

    readme = (ROOT / "README.md").read_text()
    labels = [label for _key, label, _suffix in env_pages.TABS]
    assert labels and all(label in readme for label in labels), labels
