"""What an installed env's check reports, split into what breaks it and what does not.

pip's rule is the one users know: an env is broken when an installed package's dependency is
missing or conflicting. uv's checker also reports wheels whose WHEEL file names other tags
than their file name (some releases of the manylinux2010 era, e.g. xgboost 1.4.2): those run
fine, pip installs them without a word, and codenv only warns about them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Lines about one package; the ones that only concern its tags are warnings.
_PROBLEM = re.compile(r"^The package `[^`]+` ")
_TAGS_ONLY = re.compile(r"^The package `[^`]+` was built for a different platform\b")


@dataclass(frozen=True)
class CheckReport:
    problems: tuple[str, ...]  # the env is broken: the build fails
    warnings: tuple[str, ...]  # shown in the log and with the installed packages


def split_check_report(lines: Iterable[str]) -> CheckReport:
    problems: list[str] = []
    warnings: list[str] = []
    for raw in lines:
        line = raw.strip()
        if _TAGS_ONLY.match(line):
            warnings.append(line)
        elif _PROBLEM.match(line):
            problems.append(line)
    return CheckReport(tuple(problems), tuple(warnings))
