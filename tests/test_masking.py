"""One `mask_secrets` for logs, errors, responses and audit: what it hides, and that it takes
time linear in its input whatever the input (it runs on request paths and 10 MB bodies)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from codenv.builds.logs import BuildLog
from codenv.domain.secrets import mask_secrets
from codenv.services.audit import masked

TOKEN = "cdv_AbC-123_xyz456789abcdefgh"
MB = 1_000_000
# Far above what linear masking takes here (about 0.6 s for the slowest 10 MB input below on
# a loaded 2-core machine), far below what quadratic masking takes on 100 KB (over 10 s).
LIMIT_SECONDS = 2.0


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://bob:s3cret@host/simple", "https://bob:***@host/simple"),
        ("-i https://bob:@host/simple x", "-i https://bob:***@host/simple x"),
        ("--index-url=https://team:p:a:ss@127.0.0.1:8080/simple", "--index-url=https://team:***@127.0.0.1:8080/simple"),
        ("git+https://ghp_abcdef0123456789@github.com/o/r", "git+https://***@github.com/o/r"),
        ("pkg @ git+https://oauth2:TOKEN@host/o/r.git", "pkg @ git+https://oauth2:***@host/o/r.git"),
        (f"see {TOKEN} now", "see cdv_*** now"),
        (f"Authorization: Bearer {TOKEN}", "Authorization: Bearer cdv_***"),
        ("prefix cdv_AbC-123_ stays", "prefix cdv_AbC-123_ stays"),
        ("https://host/simple and plain text", "https://host/simple and plain text"),
        ("https://host/p@th and mail@example.com", "https://host/p@th and mail@example.com"),
        ("https://token@ at the end", "https://token@ at the end"),
        ("a @ https://u:p@h/a.whl\nb @ https://v:q@h/b.whl", "a @ https://u:***@h/a.whl\nb @ https://v:***@h/b.whl"),
        ("", ""),
    ],
)  # fmt: skip
def test_credentials_and_api_tokens_are_masked(text: str, shown: str) -> None:
    assert mask_secrets(text) == shown
    assert mask_secrets(shown) == shown  # masking twice changes nothing


def test_build_logs_mask_api_tokens(tmp_path: Path) -> None:
    log = BuildLog(tmp_path / "build.log")
    log.write(f"curl -H 'Authorization: Bearer {TOKEN}' https://u:pw@host/x")
    log.close()
    written = (tmp_path / "build.log").read_text("utf-8")
    assert TOKEN not in written and "pw@" not in written
    assert "Bearer cdv_***' https://u:***@host/x" in written


def test_audit_details_are_masked_with_the_same_rules() -> None:
    details = {"url": "https://u:p@h/", "note": f"made {TOKEN}", "password": "pw", "n": [TOKEN]}
    assert masked(details) == {
        "url": "https://u:***@h/",
        "note": "made cdv_***",
        "password": "***",
        "n": ["cdv_***"],
    }


def _seconds(text: str, runs: int = 1) -> float:
    """The shortest of `runs` maskings of `text` (the shortest is the least disturbed)."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        mask_secrets(text)
        best = min(best, time.perf_counter() - started)
    return best


# Each repeated to the size: plain runs, schemes without credentials, credentials cut short,
# token prefixes.
ADVERSARIAL = ["a", "a://", "a://b", "a://b:", "a://b:c", "a://b@", "a://b:@", ":@", "cdv_"]


@pytest.mark.parametrize("unit", [*ADVERSARIAL, " cdv_"])
def test_masking_time_grows_linearly_with_the_input(unit: str) -> None:
    # Growing sizes, each under the limit: quadratic masking fails at 100 KB within seconds
    # instead of running for hours on the larger ones.
    for size in (10_000, 100_000):
        assert _seconds(unit * (size // len(unit))) < LIMIT_SECONDS, size
    one = _seconds(unit * (MB // len(unit)), runs=3)
    five = _seconds(unit * (5 * MB // len(unit)), runs=2)
    ten = _seconds(unit * (10 * MB // len(unit)), runs=2)
    assert max(one, five, ten) < LIMIT_SECONDS
    # Linear: 10 MB within 4 times (10 times the 1 MB time), plus room for a scheduling
    # hiccup; quadratic would take 100 times the 1 MB time.
    assert five < 4 * 5 * one + 0.1, (one, five)
    assert ten < 4 * 10 * one + 0.1, (one, ten)


def test_adversarial_inputs_are_still_masked() -> None:
    count = MB // 8
    assert mask_secrets("a://b:c@" * count) == "a://b:***@" * count
    assert mask_secrets("a://b@c" * count) == "a://***@c" * count
    assert mask_secrets(f" {TOKEN}" * count) == " cdv_***" * count
    glued = "cdv_" * count  # one run of token characters: one token
    assert mask_secrets(glued) == "cdv_***"
