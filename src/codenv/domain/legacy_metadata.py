"""A package's metadata read the way pip read it before PEP 440 was enforced.

Releases from before 2019 may declare dependencies that are no PEP 440 requirement, such as
pandas 0.21.1's `Requires-Dist: pytz (>=2011k)`. uv (like pip 24.1 and later) refuses such a
package; the pip of Python 3.6 and 3.7 (packaging 21 and older) installs it: it reads the
clause as a *legacy* specifier and compares both versions with the legacy ordering (digits
padded and compared as text, letters before digits). This module rewrites each such clause
into the PEP 440 clause that selects the same final releases, and says what it did:

- `>=L` / `>L`, where L is a release N followed by letters (`2011k`): `>N` if L sorts after N
  (`pytz>2011`), `>=N` if before; `<=L` / `<L` likewise (`<=N`, `<N`). Only N's own pre-,
  post- and dev-releases may be judged otherwise than pip would.
- `!=L`, and `>=L` / `>L` when L has no leading release (`>=dev`): always true for pip,
  dropped.
- `==L`, `~=L`, `<L` with no leading release, and whatever else cannot be read: no repair;
  the package stays refused, and the reason says so.

A Requires-Python that is no valid specifier is ignored, as pip ignores it (with a warning).
Pure: text in, text out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import HeaderParser

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.utils import canonicalize_name

# packaging 21's legacy version parsing, which the pip of Python 3.6 and 3.7 carries.
_LEGACY_PART = re.compile(r"(\d+|[a-z]+|\.|-)")
_LEGACY_REPLACED = {"pre": "c", "preview": "c", "-": "final-", "rc": "c", "dev": "@"}
_RELEASE = re.compile(r"^\d+(?:\.\d+)*")
# A requirement as old metadata wrote it: `name [extras] (clauses) ; marker`.
_LENIENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?P<extras>\[[^\]]*\])?\s*(?P<clauses>[^;]*?)\s*(?:;\s*(?P<marker>.*?))?\s*$"
)
_CLAUSE = re.compile(r"^\s*(?P<op>===|~=|==|!=|<=|>=|<|>)\s*(?P<version>[^\s,;()]+)\s*$")


def legacy_key(version: str) -> tuple[str, ...]:
    """The key packaging 21's LegacyVersion sorted by (without its epoch of -1)."""
    parts: list[str] = []
    for raw in _LEGACY_PART.split(version.lower()):
        part = _LEGACY_REPLACED.get(raw, raw)
        if not part or part == ".":
            continue
        part = part.zfill(8) if part[0] in "0123456789" else f"*{part}"
        if part.startswith("*"):
            if part < "*final":
                while parts and parts[-1] == "*final-":
                    parts.pop()
            while parts and parts[-1] == "00000000":
                parts.pop()
        parts.append(part)
    while parts and parts[-1] == "00000000":
        parts.pop()
    return (*parts, "*final")


class _Unrepairable(ValueError):
    """A clause that pip's reading cannot turn into a PEP 440 one (its message says why)."""


@dataclass(frozen=True)
class _Clause:
    text: str  # the PEP 440 clause ("" when dropped)
    reason: str  # why, for people ("" when the clause was valid)


def _legacy_clause(op: str, version: str) -> _Clause:
    """The PEP 440 clause that selects the releases pip's legacy `op version` selects."""
    if op == "!=":
        return _Clause("", f"{version} is not a PEP 440 version; pip finds every release different")
    release = _RELEASE.match(version)
    not_pep440 = f"{version} is not a PEP 440 version"
    if release is None:
        if op in (">=", ">"):
            return _Clause("", f"{not_pep440}; pip treats it as older than every release")
        raise _Unrepairable(f"{not_pep440}, and pip treats it as older than every release")
    if op == "~=":
        raise _Unrepairable(f"{not_pep440}, and pip refuses `~=` with it too")
    if op == "==":
        raise _Unrepairable(f"{not_pep440}, and no release equals it for pip either")
    number = release.group()
    legacy, release_key = legacy_key(version), legacy_key(number)
    if legacy == release_key:
        return _Clause(
            f"{op}{number}", f"{not_pep440}; pip's legacy comparison finds it equal to {number}"
        )
    after = legacy > release_key
    strict = after == (op[0] == ">")  # N itself is outside the range
    text = f"{op[0]}{'' if strict else '='}{number}"
    where = "just after" if after else "just before"
    return _Clause(text, f"{not_pep440}; pip's legacy comparison puts it {where} {number}")


def _clause(text: str) -> _Clause:
    try:
        return _Clause(str(Specifier(text)), "")
    except InvalidSpecifier:
        pass
    found = _CLAUSE.match(text)
    if found is None:
        raise _Unrepairable(f"`{text.strip()}` is no version clause")
    return _legacy_clause(found["op"], found["version"])


@dataclass(frozen=True)
class RequirementRepair:
    original: str
    repaired: str | None  # None: pip's reading has no PEP 440 form (the reasons say why)
    reasons: tuple[str, ...]


def repair_requirement(line: str) -> RequirementRepair:
    """`line` read as pip read it."""
    try:
        repaired, reasons = _repaired(line)
    except _Unrepairable as error:
        return RequirementRepair(line.strip(), None, (str(error),))
    return RequirementRepair(line.strip(), repaired, reasons)


def _repaired(line: str) -> tuple[str, tuple[str, ...]]:
    found = _LENIENT.match(line)
    if found is None:
        raise _Unrepairable("it is no requirement")
    clauses_text = found["clauses"]
    if clauses_text.startswith("(") and clauses_text.endswith(")"):
        clauses_text = clauses_text[1:-1]
    clauses = [_clause(part) for part in clauses_text.split(",") if part.strip()]
    kept = ",".join(clause.text for clause in clauses if clause.text)
    marker = f"; {found['marker']}" if found["marker"] else ""
    repaired = f"{found['name']}{found['extras'] or ''}{kept}{marker}"
    try:
        Requirement(repaired)
    except InvalidRequirement as error:
        raise _Unrepairable(str(error)) from error
    return repaired, tuple(clause.reason for clause in clauses if clause.reason)


@dataclass(frozen=True)
class MetadataRepair:
    """A distribution's metadata as pip reads it, and every change that took."""

    name: str
    version: str
    requires_dist: tuple[str, ...]
    requires_python: str | None
    provides_extra: tuple[str, ...]
    changes: tuple[str, ...]  # one sentence per repaired field, for the log and warnings
    failures: tuple[str, ...]  # what could not be repaired: the package stays refused

    @property
    def repaired(self) -> bool:
        return bool(self.changes) and not self.failures


def _valid(line: str) -> bool:
    try:
        Requirement(line)
    except InvalidRequirement:
        return False
    return True


def _requires_dist(label: str, lines: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Requires-Dist as pip reads it: (requirements, changes, failures)."""
    requires: list[str] = []
    changes: list[str] = []
    failures: list[str] = []
    for line in lines:
        if _valid(line):
            requires.append(line.strip())
            continue
        repair = repair_requirement(line)
        if repair.repaired is None:
            failures.append(f"{label}: `{repair.original}` cannot be repaired: {repair.reasons[0]}")
            continue
        requires.append(repair.repaired)
        why = "; ".join(repair.reasons) or "packaging cannot parse it as written"
        changes.append(f"{label}: `{repair.original}` read as `{repair.repaired}`: {why}")
    return requires, changes, failures


def _requires_python(label: str, value: str | None) -> tuple[str | None, list[str]]:
    """Requires-Python as pip reads it: one it cannot parse is ignored (with a warning)."""
    if value is None:
        return None, []
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        return None, [f"{label}: Requires-Python `{value}` ignored: pip ignores it too"]
    return value, []


def repair_metadata(name: str, version: str, text: str) -> MetadataRepair:
    """Repair `text` (a METADATA or PKG-INFO file) of `name` `version`."""
    headers = HeaderParser().parsestr(text)
    label = f"{canonicalize_name(name)} {version}"
    lines = [str(line) for line in headers.get_all("Requires-Dist") or []]
    requires, changes, failures = _requires_dist(label, lines)
    python = headers.get("Requires-Python")
    requires_python, python_changes = _requires_python(
        label, None if python is None else str(python)
    )
    extras = tuple(str(extra).strip() for extra in headers.get_all("Provides-Extra") or [])
    return MetadataRepair(
        canonicalize_name(name),
        version,
        tuple(requires),
        requires_python,
        extras,
        (*changes, *python_changes),
        tuple(failures),
    )
