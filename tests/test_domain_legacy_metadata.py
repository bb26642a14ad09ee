"""The repair rule: a requirement that is no PEP 440 one, read as the pip of Python 3.6 and 3.7
read it (packaging 21: legacy versions and legacy specifiers)."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet

from codenv.domain.legacy_metadata import legacy_key, repair_metadata, repair_requirement

# What pip 18.1 (Python 3.6's ensurepip, packaging 18) answers, recorded from
# `SpecifierSet(spec).contains(version, prereleases=True)`.
_CANDIDATES = ("1.0", "2010.1", "2011", "2011.0", "2011.0.1", "2011.1", "2012", "2024.1")
_PIP_ANSWERS = {
    ">=2011k": (False, False, False, False, True, True, True, True),
    ">2011k": (False, False, False, False, True, True, True, True),
    "<2011k": (True, True, True, True, False, False, False, False),
    "<=2011k": (True, True, True, True, False, False, False, False),
    ">=1.0.*": (True, True, True, True, True, True, True, True),
    "<1.0-beta": (False, False, False, False, False, False, False, False),
    "!=2011k": (True, True, True, True, True, True, True, True),
    ">=dev": (True, True, True, True, True, True, True, True),
}


@pytest.mark.parametrize("spec", sorted(_PIP_ANSWERS))
def test_a_legacy_clause_selects_the_final_releases_pip_selects(spec: str) -> None:
    repair = repair_requirement(f"dep ({spec})")
    assert repair.repaired is not None, repair.reasons
    specifier = SpecifierSet(repair.repaired.removeprefix("dep"))
    answers = tuple(specifier.contains(version, prereleases=True) for version in _CANDIDATES)
    assert answers == _PIP_ANSWERS[spec]


def test_legacy_ordering_is_packaging_21s() -> None:
    # Letters sort before digits and after an end; digits compare as numbers.
    assert legacy_key("2011") < legacy_key("2011k") < legacy_key("2011.0.1") < legacy_key("2012")
    assert legacy_key("1.0-SNAPSHOT") > legacy_key("1.0")
    assert legacy_key("1.0.0") == legacy_key("1.0")
    assert legacy_key("dev") < legacy_key("0.0.1")


def test_pandas_pytz_requirement_is_read_as_pip_reads_it() -> None:
    repair = repair_requirement("pytz (>=2011k)")
    assert repair.repaired == "pytz>2011"
    assert repair.reasons == (
        "2011k is not a PEP 440 version; pip's legacy comparison puts it just after 2011",
    )


def test_markers_extras_and_valid_clauses_are_kept() -> None:
    repair = repair_requirement('dep[fast] (>=2011k,<3000) ; python_version < "3.8"')
    assert repair.repaired == 'dep[fast]>2011,<3000; python_version < "3.8"'


def test_an_always_true_clause_is_dropped() -> None:
    assert repair_requirement("dep (!=2011k)").repaired == "dep"
    dropped = repair_requirement("dep (>=dev)")
    assert dropped.repaired == "dep"
    assert dropped.reasons == (
        "dev is not a PEP 440 version; pip treats it as older than every release",
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("dep (==2011k)", "no release equals it for pip either"),
        ("dep (~=2011k)", "pip refuses `~=` with it too"),
        ("dep (<dev)", "pip treats it as older than every release"),
        ("dep (>=2011k) ; os_name ==", "Expected"),
        ("dep >=1.0 <2.0", "no version clause"),
    ],
)
def test_what_has_no_pep_440_reading_is_not_repaired(line: str, reason: str) -> None:
    repair = repair_requirement(line)
    assert repair.repaired is None
    assert reason in repair.reasons[0]


_PANDAS = """\
Metadata-Version: 2.0
Name: pandas
Version: 0.21.1
Requires-Python: >=2.7,!=3.0.*
Requires-Dist: python-dateutil (>=2)
Requires-Dist: pytz (>=2011k)
Requires-Dist: numpy (>=1.9.0)
Provides-Extra: test
Requires-Dist: pytest ; extra == 'test'

pandas: powerful Python data analysis toolkit (the long description, never parsed)
Requires-Dist: not-a-header (>=2011k)
"""


def test_metadata_repair_keeps_everything_else_and_says_what_changed() -> None:
    repair = repair_metadata("Pandas", "0.21.1", _PANDAS)
    assert repair.repaired
    assert repair.name == "pandas"
    assert repair.requires_dist == (
        "python-dateutil (>=2)",
        "pytz>2011",
        "numpy (>=1.9.0)",
        "pytest ; extra == 'test'",
    )
    assert repair.requires_python == ">=2.7,!=3.0.*"
    assert repair.provides_extra == ("test",)
    assert repair.changes == (
        "pandas 0.21.1: `pytz (>=2011k)` read as `pytz>2011`: 2011k is not a PEP 440 version; "
        "pip's legacy comparison puts it just after 2011",
    )


def test_one_unrepairable_requirement_leaves_the_package_refused() -> None:
    text = "Name: old\nVersion: 1.0\nRequires-Dist: a (>=2011k)\nRequires-Dist: b (==2011k)\n\n"
    repair = repair_metadata("old", "1.0", text)
    assert not repair.repaired
    assert repair.failures == (
        "old 1.0: `b (==2011k)` cannot be repaired: 2011k is not a PEP 440 version, and no "
        "release equals it for pip either",
    )


def test_an_invalid_requires_python_is_ignored_as_pip_ignores_it() -> None:
    repair = repair_metadata("old", "1.0", "Name: old\nVersion: 1.0\nRequires-Python: >=2.7k\n\n")
    assert repair.repaired
    assert repair.requires_python is None
    assert repair.changes == ("old 1.0: Requires-Python `>=2.7k` ignored: pip ignores it too",)


def test_valid_metadata_needs_no_repair() -> None:
    repair = repair_metadata("new", "1.0", "Name: new\nVersion: 1.0\nRequires-Dist: a>=1\n\n")
    assert not repair.repaired
    assert repair.changes == repair.failures == ()
