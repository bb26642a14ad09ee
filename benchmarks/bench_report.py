"""The build benchmark's report: medians, ratios measured in the same run, targets."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# A comparison: a heading, its timed lines (label, key) and its ratios (label, over, under).
Comparison = tuple[str, Sequence[tuple[str, str]], Sequence[tuple[str, str, str]]]

COMPARISONS: Sequence[Comparison] = (
    (
        "(a) the same hashed lock, installed offline (neither side asks the index)",
        (
            ("codenv create, resolution reused", "codenv_reuse"),
            ("    of which the build, as codenv reports it", "codenv_reuse_build"),
            ("uv venv + uv pip sync --offline LOCK", "uv_offline"),
        ),
        (("codenv / raw uv", "codenv_reuse", "uv_offline"),),
    ),
    (
        "(b) the user's unpinned requirements, warm cache, both resolve against the index",
        (
            ("codenv create, CODENV_RESOLUTION_TTL=0", "codenv_resolve"),
            ("uv venv + uv pip install -r requirements.txt", "uv_unpinned"),
            ("codenv create, resolution reuse on (= a)", "codenv_reuse"),
        ),
        (
            ("codenv (resolving) / raw uv", "codenv_resolve", "uv_unpinned"),
            ("codenv (reuse on) / raw uv", "codenv_reuse", "uv_unpinned"),
        ),
    ),
    (
        "(c) python -m venv + pip of the same pins from local wheels, no .pyc on either side",
        (
            ("python -m venv + pip install --no-compile", "pip_no_compile"),
            ("python -m venv + pip install, compiling .pyc", "pip_compile"),
            ("codenv create, resolution reused (= a)", "codenv_reuse"),
        ),
        (
            ("venv + pip --no-compile / codenv", "pip_no_compile", "codenv_reuse"),
            ("venv + pip compiling .pyc / codenv", "pip_compile", "codenv_reuse"),
        ),
    ),
    (
        "start-up, unchanged update, rollback",
        (
            ("python -c pass (interpreter floor)", "python_pass"),
            ("codenv --help (CLI start-up, no work)", "codenv_help"),
            ("codenv update NAME, unchanged plan", "update_unchanged"),
            ("    the same, PYTHONDONTWRITEBYTECODE flipped", "update_unchanged_flipped"),
            ("codenv rollback NAME 1", "rollback"),
        ),
        (),
    ),
)

# Targets of issue 2, on the like-for-like figures: (key, label, comparison, threshold).
TARGETS = (
    ("ratio_uv_offline", "(a) codenv / raw uv, same lock", "<=", 1.5),
    ("ratio_uv_resolve", "(b) codenv / raw uv, both resolve", "<=", 1.5),
    ("speedup_vs_pip", "(c) venv + pip --no-compile / codenv", ">=", 20.0),
    ("update_unchanged_s", "codenv update, unchanged (s)", "<", 0.3),
    ("rollback_s", "codenv rollback (s)", "<", 0.5),
    ("disk_ratio", "du of 10 envs / du of 1 env", "<=", 1.15),
)


def summarise(runs: Mapping[str, list[float]], disk: Mapping[str, int]) -> dict[str, Any]:
    """Medians of every series and the figures the targets judge, all from this run."""
    med = {key: statistics.median(values) for key, values in runs.items() if values}
    return {
        "medians": med,
        "results": {
            "ratio_uv_offline": med["codenv_reuse"] / med["uv_offline"],
            "ratio_uv_resolve": med["codenv_resolve"] / med["uv_unpinned"],
            "speedup_vs_pip": med["pip_no_compile"] / med["codenv_reuse"],
            "update_unchanged_s": med["update_unchanged"],
            "rollback_s": med["rollback"],
            "disk_ratio": disk["ten_envs_bytes"] / disk["one_env_bytes"],
        },
    }


def verdicts(results: Mapping[str, float]) -> list[dict[str, Any]]:
    out = []
    for key, label, op, threshold in TARGETS:
        value = results[key]
        ok = {">=": value >= threshold, "<=": value <= threshold, "<": value < threshold}[op]
        out.append(
            {"key": key, "label": label, "value": value, "target": f"{op} {threshold:g}",
             "pass": ok}
        )  # fmt: skip
    return out


def _mb(count: int) -> str:
    return f"{count / 1e6:,.0f} MB"


def _comparison(comparison: Comparison, runs: Mapping[str, list[float]]) -> None:
    heading, lines, ratios = comparison
    print(f"  {heading}")
    for label, key in lines:
        if runs.get(key):
            values = " ".join(f"{value:6.2f}" for value in runs[key])
            print(f"    {label:<48} {statistics.median(runs[key]):7.3f} s  [{values}]")
    for label, over, under in ratios:
        if runs.get(over) and runs.get(under):
            ratio = statistics.median(runs[over]) / statistics.median(runs[under])
            # Paired by round: both sides ran next to each other, so each pair shares the moment.
            paired = " ".join(f"{a / b:6.2f}" for a, b in zip(runs[over], runs[under], strict=True))
            print(f"    -> {label:<45} {ratio:7.2f} x  [{paired}]")
    print()


def header(figures: Mapping[str, Any], args: Any) -> None:
    dwb = "kept (=1)" if args.keep_dont_write_bytecode else "unset"
    print()
    print(
        f"codenv build benchmark - set {args.set}, Python {args.python} "
        f"({figures['interpreter']}), {args.runs} interleaved runs, warm caches, medians"
    )
    print(
        f"  index {args.index_url}; {len(figures['locked_packages'])} locked packages; "
        f"pip {figures['pip_version']}; uv {figures['uv_version']}; {os.cpu_count()} CPUs; "
        f"PYTHONDONTWRITEBYTECODE {dwb}"
    )
    print(f"  codenv {figures['codenv_revision']}")
    load = figures["load_average_1min"]
    print(f"  load average (1 min) at start {load['start']:.1f}, at end {load['end']:.1f}", end="")
    busy = max(load.values()) > (os.cpu_count() or 1)
    print("  - WARNING: the machine was busy; figures are noisier" if busy else "")
    for note in figures["notes"]:
        print(f"  NOTE: {note}")
    print()


def report(figures: Mapping[str, Any], args: Any) -> list[dict[str, Any]]:
    """Print every comparison and the targets; returns the verdicts."""
    runs = figures["runs"]
    disk = figures["disk"]
    header(figures, args)
    for comparison in COMPARISONS:
        _comparison(comparison, runs)
    print(
        f"  disk: one env {_mb(disk['one_env_bytes'])}; ten envs together "
        f"{_mb(disk['ten_envs_bytes'])} (copies would be {_mb(10 * disk['one_env_bytes'])}); "
        f"shared uv cache {_mb(disk['uv_cache_bytes'])}; one pip env {_mb(disk['pip_env_bytes'])}"
    )
    print(f"  first create (warm-up, cache possibly cold): {figures['first_create_s']:.2f} s")
    print()
    checks = verdicts(figures["results"])
    print(f"  {'target':<38} {'measured':>10}  {'wanted':>8}  verdict")
    for check in checks:
        unit = " s" if check["key"].endswith("_s") else "x"
        print(
            f"  {check['label']:<38} {check['value']:>9.3f}{unit:<2} {check['target']:>8}  "
            f"{'PASS' if check['pass'] else 'MISS'}"
        )
    misses = [check["key"] for check in checks if not check["pass"]]
    print()
    print(
        f"  {len(checks) - len(misses)}/{len(checks)} targets met"
        + (f"; MISSED: {', '.join(misses)}" if misses else "")
    )
    return checks


def save(args: Any, figures: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    payload = {
        "set": args.set,
        "python": args.python,
        "runs": args.runs,
        "index_url": args.index_url,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "pythondontwritebytecode": "kept" if args.keep_dont_write_bytecode else "unset",
        "figures": figures,
        "targets": checks,
    }
    args.json_file.parent.mkdir(parents=True, exist_ok=True)
    args.json_file.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
    print(f"  figures saved to {args.json_file}")
