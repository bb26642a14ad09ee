"""Pure unit tests: the spec (domain/spec), its validation, base packages and changes."""

from __future__ import annotations

import pytest

from codenv.domain.catalog import Catalog, PackageSet
from codenv.domain.errors import CodenvError, InvalidSpec, NotFound
from codenv.domain.requirements import LineKind
from codenv.domain.spec import (
    CORE_PACKAGE,
    EnvSpec,
    LocalPath,
    SetRef,
    SpecChanges,
    SpecContext,
    apply_changes,
    base_packages,
    jupyter_requirement,
    validate_spec,
)

CORE_VERSION = "1.2.0"
CORE_LINE = "/opt/codenv/wheels/codenv_runtime-1.2.0-py3-none-any.whl"

ML = PackageSet(
    id="ml",
    title="Machine learning",
    description="",
    python_min=(3, 8),
    python_max=(3, 12),
    variants={"cpu": ("numpy>=1.20", "scikit-learn"), "gpu": ("numpy>=1.20", "torch")},
)
LEGACY = PackageSet(
    id="legacy",
    title="Legacy tools",
    description="",
    python_min=(3, 6),
    python_max=(3, 7),
    variants={"default": ("six",)},
)
CATALOG = Catalog((ML, LEGACY))
INSTALLED = ("3.6", "3.9", "3.11", "3.13")
# What the fake node holds: real path → (kind, size); "/srv/pkgs/link" leads outside.
FILES = {
    "/srv/pkgs/local-1.0.whl": ("file", 10),
    "/home/me/src/tool": ("dir", 0),
    "/srv/pkgs/dir-1.0.zip": ("dir", 0),
    "/srv/pkgs/huge-1.0.whl": ("file", 2 << 30),
    "/etc/shadow.zip": ("file", 10),
    "/dev/zero": ("other", 0),
}
LINKS = {"/srv/pkgs/escape-1.0.whl": "/etc/shadow.zip"}
ROOTS = ("/srv/pkgs", "/home/me/src")


def inspect(path: str) -> LocalPath:
    real = LINKS.get(path, path)
    kind, size = FILES.get(real, ("missing", 0))
    return LocalPath(real, kind, size)


def context(installed: tuple[str, ...] = INSTALLED, roots: tuple[str, ...] = ROOTS) -> SpecContext:
    return SpecContext(
        installed_pythons=installed,
        catalog=CATALOG,
        inspect_path=inspect,
        core_version=CORE_VERSION,
        core_line=CORE_LINE,
        local_source_roots=roots,
    )


def refused(spec: EnvSpec, ctx: SpecContext | None = None) -> CodenvError:
    with pytest.raises(CodenvError) as caught:
        validate_spec(spec, ctx or context())
    return caught.value


# --- EnvSpec / SetRef --------------------------------------------------------------------------


def test_spec_round_trips_through_a_dict() -> None:
    spec = EnvSpec(
        python="3.11",
        install_core_packages=False,
        install_jupyter_support=True,
        package_sets=(SetRef("ml", "gpu"), SetRef("legacy")),
        requested="numpy\n# comment\n-e /home/me/src/tool\n",
        description="team env",
    )
    raw = spec.to_dict()
    assert raw["package_sets"] == ["ml:gpu", "legacy"]
    assert EnvSpec.from_dict(raw) == spec


def test_spec_from_minimal_dict_takes_defaults() -> None:
    spec = EnvSpec.from_dict({"python": "3.9"})
    assert spec == EnvSpec(python="3.9")
    assert spec.install_core_packages is True
    assert spec.install_jupyter_support is False
    assert spec.package_sets == ()


@pytest.mark.parametrize(
    ("text", "ref", "rendered"),
    [
        ("ml", SetRef("ml", None), "ml"),
        ("ml:gpu", SetRef("ml", "gpu"), "ml:gpu"),
        ("  ml:cpu ", SetRef("ml", "cpu"), "ml:cpu"),
        ("ml:", SetRef("ml", None), "ml"),
    ],
)
def test_set_ref_parse(text: str, ref: SetRef, rendered: str) -> None:
    assert SetRef.parse(text) == ref
    assert str(SetRef.parse(text)) == rendered


@pytest.mark.parametrize("text", ["", "   ", ":gpu"])
def test_set_ref_parse_refuses_empty_ids(text: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        SetRef.parse(text)
    assert caught.value.field == "sets"


# --- validate_spec: python ---------------------------------------------------------------------


def test_a_valid_spec_returns_its_parsed_lines() -> None:
    spec = EnvSpec(
        python="3.11",
        install_jupyter_support=True,
        package_sets=(SetRef("ml", "gpu"),),
        requested="numpy\n\n/srv/pkgs/local-1.0.whl\n-e /home/me/src/tool\n",
    )
    lines = validate_spec(spec, context())
    assert [(line.lineno, line.kind) for line in lines] == [
        (1, LineKind.NAMED),
        (3, LineKind.ARCHIVE),
        (4, LineKind.EDITABLE),
    ]


def test_python_not_installed_lists_installed_versions_and_mentions_headers() -> None:
    error = refused(EnvSpec(python="3.10"))
    assert isinstance(error, InvalidSpec)
    assert error.field == "python"
    assert "3.10" in error.message
    assert "3.6, 3.9, 3.11, 3.13" in error.message
    assert "development headers" in error.message


def test_python_not_installed_on_a_node_without_interpreters() -> None:
    error = refused(EnvSpec(python="3.11"), context(installed=()))
    assert error.field == "python"
    assert "none" in error.message


@pytest.mark.parametrize("python", ["3", "python3.11", "4.0", "3.11.2", "", "3.x", "2.7"])
def test_malformed_python_is_refused(python: str) -> None:
    error = refused(EnvSpec(python=python))
    assert isinstance(error, InvalidSpec)
    assert error.field == "python"


# --- validate_spec: package sets ---------------------------------------------------------------


def test_unknown_set_is_not_found_and_lists_known_sets() -> None:
    error = refused(EnvSpec(python="3.11", package_sets=(SetRef("nlp"),)))
    assert isinstance(error, NotFound)
    assert error.field == "sets"
    assert "'nlp'" in error.message
    assert "ml" in error.message and "legacy" in error.message


def test_unknown_variant_is_refused_and_lists_variants() -> None:
    error = refused(EnvSpec(python="3.11", package_sets=(SetRef("ml", "tpu"),)))
    assert isinstance(error, InvalidSpec)
    assert error.field == "sets"
    assert "'tpu'" in error.message
    assert "cpu, gpu" in error.message


@pytest.mark.parametrize(
    "refs", [(SetRef("ml"), SetRef("ml")), (SetRef("ml", "cpu"), SetRef("ml", "gpu"))]
)
def test_set_listed_twice_is_refused(refs: tuple[SetRef, ...]) -> None:
    error = refused(EnvSpec(python="3.11", package_sets=refs))
    assert error.field == "sets"
    assert "twice" in error.message


@pytest.mark.parametrize(
    ("python", "set_id", "compatible"),
    [("3.13", "ml", "3.9, 3.11"), ("3.6", "ml", "3.9, 3.11"), ("3.11", "legacy", "3.6")],
)
def test_set_incompatible_with_python_lists_compatible_installed_versions(
    python: str, set_id: str, compatible: str
) -> None:
    error = refused(EnvSpec(python=python, package_sets=(SetRef(set_id),)))
    assert isinstance(error, InvalidSpec)
    assert error.field == "sets"
    assert CATALOG.get(set_id).title in error.message
    assert f"not {python}" in error.message
    assert f"compatible installed versions: {compatible}" in error.message


def test_incompatible_set_with_no_compatible_interpreter_says_none() -> None:
    error = refused(EnvSpec(python="3.13", package_sets=(SetRef("legacy"),)), context(("3.13",)))
    assert error.message.endswith("compatible installed versions: none")


@pytest.mark.parametrize("python", ["3.9", "3.11"])
def test_set_at_the_edges_of_its_range_is_accepted(python: str) -> None:
    validate_spec(EnvSpec(python=python, package_sets=(SetRef("ml", "cpu"),)), context())


# --- validate_spec: requested lines ------------------------------------------------------------


@pytest.mark.parametrize(
    "line", ["/srv/pkgs/missing-1.0.whl", "-e /home/me/src/missing", "file:///srv/pkgs/no.tar.gz"]
)
def test_missing_local_path_is_refused_with_its_line_number(line: str) -> None:
    error = refused(EnvSpec(python="3.11", requested=f"numpy\n# local\n{line}\n"))
    assert error.field == "requested"
    assert error.message.startswith("line 3: ") and error.line == 3
    assert "does not exist" in error.message


def test_local_sources_are_refused_where_no_directory_is_allowed() -> None:
    error = refused(
        EnvSpec(python="3.11", requested="/srv/pkgs/local-1.0.whl\n"), context(roots=())
    )
    assert (error.field, error.line) == ("requested", 1)
    assert "not allowed on this node" in error.message
    assert "codeEnvsSettings.allowedLocalSourceRoots" in error.message


@pytest.mark.parametrize(
    "line",
    [
        "/etc/shadow.zip",  # exists, outside
        "/etc/missing.zip",  # does not exist: the same answer, no oracle
        "x @ file:///dev/zero",
        "/srv/pkgs/escape-1.0.whl",  # a symlink inside that leads outside
        "/srv/pkgs/../../etc/shadow.zip",
    ],
)
def test_local_sources_outside_the_allowed_directories_are_refused(line: str) -> None:
    error = refused(EnvSpec(python="3.11", requested=f"{line}\n"))
    assert "is outside the directories allowed for local sources" in error.message
    assert "/srv/pkgs, /home/me/src" in error.message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/srv/pkgs/dir-1.0.zip", "must be a regular file"),
        ("-e /srv/pkgs/local-1.0.whl", "must be a directory"),
        ("/srv/pkgs/huge-1.0.whl", "is larger than"),
    ],
)
def test_local_sources_must_be_what_they_claim(line: str, expected: str) -> None:
    assert expected in refused(EnvSpec(python="3.11", requested=f"{line}\n")).message


def test_bad_requested_line_is_refused_by_validation() -> None:
    error = refused(EnvSpec(python="3.11", requested="numpy\n--index-url https://x/simple\n"))
    assert error.field == "requested"
    assert error.message.startswith("line 2: ")


@pytest.mark.parametrize(
    "line",
    [
        "codenv-runtime>=9",
        "codenv_runtime<1",
        "Codenv.Runtime==1.1.0",
        "codenv-runtime @ https://example.com/codenv_runtime-9.0-py3-none-any.whl",
    ],
)
def test_conflict_with_the_core_package_is_refused(line: str) -> None:
    spec = EnvSpec(python="3.11", requested=f"numpy\n{line}\n")
    error = refused(spec)
    assert error.field == "requested"
    assert error.message.startswith("line 2: ") and error.line == 2
    assert "base package" in error.message
    # the same line is the user's own business when core packages are off
    validate_spec(EnvSpec(python="3.11", install_core_packages=False, requested=line), context())


@pytest.mark.parametrize(
    "line", [f"codenv-runtime=={CORE_VERSION}", "codenv-runtime>=1,<2", "codenv-runtime"]
)
def test_requested_core_package_compatible_with_the_pin_is_accepted(line: str) -> None:
    lines = validate_spec(EnvSpec(python="3.11", requested=line), context())
    assert lines[0].name == CORE_PACKAGE


def test_jupyter_base_package_cannot_be_replaced_by_a_url() -> None:
    spec = EnvSpec(
        python="3.11",
        install_jupyter_support=True,
        requested="ipykernel @ https://example.com/ipykernel-6.0-py3-none-any.whl",
    )
    assert refused(spec).field == "requested"
    validate_spec(EnvSpec(python="3.11", requested=spec.requested), context())


# --- base packages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("python", "ipykernel"),
    [("3.6", "ipykernel>=5.5,<6"), ("3.7", "ipykernel>=6"), ("3.13", "ipykernel>=6")],
)
def test_base_packages_follow_options_and_python(python: str, ipykernel: str) -> None:
    spec = EnvSpec(python=python, install_jupyter_support=True)
    core, jupyter = base_packages(spec, CORE_VERSION, CORE_LINE)
    assert (core.name, core.requirement, core.pinned_version) == (
        CORE_PACKAGE,
        f"{CORE_PACKAGE}=={CORE_VERSION}",
        CORE_VERSION,
    )
    assert core.line() == CORE_LINE
    assert (jupyter.name, jupyter.requirement, jupyter.line()) == (
        "ipykernel",
        ipykernel,
        ipykernel,
    )
    assert jupyter_requirement((int(python[0]), int(python[2:]))) == ipykernel


@pytest.mark.parametrize(
    ("core", "jupyter", "names"),
    [
        (True, False, [CORE_PACKAGE]),
        (False, True, ["ipykernel"]),
        (False, False, []),
        (True, True, [CORE_PACKAGE, "ipykernel"]),
    ],
)
def test_base_packages_only_for_enabled_options(
    core: bool, jupyter: bool, names: list[str]
) -> None:
    spec = EnvSpec(python="3.11", install_core_packages=core, install_jupyter_support=jupyter)
    assert [package.name for package in base_packages(spec, CORE_VERSION, "")] == names


def test_core_base_package_without_install_line_uses_its_requirement() -> None:
    (core,) = base_packages(EnvSpec(python="3.11"), CORE_VERSION, "")
    assert core.line() == f"{CORE_PACKAGE}=={CORE_VERSION}"


# --- apply_changes -----------------------------------------------------------------------------

BASE_SPEC = EnvSpec(
    python="3.11",
    package_sets=(SetRef("ml", "cpu"), SetRef("legacy")),
    requested="# data\nnumpy>=1.20  # arrays\nMy_Pkg==1.0\n\nscipy\n",
    description="before",
)


def test_no_changes_leave_the_spec_as_it_is() -> None:
    assert apply_changes(BASE_SPEC, SpecChanges()) == BASE_SPEC


def test_add_lines_appends_them() -> None:
    spec = apply_changes(BASE_SPEC, SpecChanges(add=("pandas>=2", "-e /home/me/src/tool")))
    assert spec.requested == BASE_SPEC.requested + "pandas>=2\n-e /home/me/src/tool\n"


def test_add_to_text_without_final_newline_starts_a_new_line() -> None:
    spec = apply_changes(EnvSpec(python="3.11", requested="numpy"), SpecChanges(add=("scipy",)))
    assert spec.requested == "numpy\nscipy\n"
    assert apply_changes(EnvSpec(python="3.11"), SpecChanges(add=("scipy",))).requested == (
        "scipy\n"
    )


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (("numpy",), "# data\nMy_Pkg==1.0\n\nscipy\n"),
        (("my-pkg",), "# data\nnumpy>=1.20  # arrays\n\nscipy\n"),
        (("My_Pkg",), "# data\nnumpy>=1.20  # arrays\n\nscipy\n"),
        (("MY.PKG", "SciPy"), "# data\nnumpy>=1.20  # arrays\n\n"),
    ],
)
def test_remove_by_name_keeps_comments_and_other_lines(
    names: tuple[str, ...], expected: str
) -> None:
    assert apply_changes(BASE_SPEC, SpecChanges(remove=names)).requested == expected


def test_remove_takes_continuation_lines_with_it() -> None:
    spec = EnvSpec(python="3.11", requested="numpy>=1,\\\n    <2  # pinned\nscipy\n")
    changed = apply_changes(spec, SpecChanges(remove=("numpy",)))
    assert changed.requested == "scipy\n"
    assert [line.name for line in validate_spec(changed, context())] == ["scipy"]


def test_remove_every_line_with_that_name() -> None:
    spec = EnvSpec(
        python="3.11",
        requested='six; python_version < "3.8"\nnumpy\nsix>=1.16; python_version >= "3.8"\n',
    )
    assert apply_changes(spec, SpecChanges(remove=("six",))).requested == "numpy\n"


def test_removing_everything_leaves_empty_text() -> None:
    spec = EnvSpec(python="3.11", requested="numpy\n")
    assert apply_changes(spec, SpecChanges(remove=("numpy",))).requested == ""


@pytest.mark.parametrize(
    ("names", "missing"),
    [(("pandas",), "pandas"), (("numpy", "Pandas"), "pandas"), (("scipy", "zz", "aa"), "aa, zz")],
)
def test_removing_an_unknown_name_is_refused(names: tuple[str, ...], missing: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        apply_changes(BASE_SPEC, SpecChanges(remove=names))
    assert caught.value.field == "remove"
    assert caught.value.message == f"no requested package named {missing}"


def test_replace_requested_keeps_comments_then_add_and_remove_apply_to_it() -> None:
    text = "# new list\nrequests  # http\npandas\n"
    assert apply_changes(BASE_SPEC, SpecChanges(requested=text)).requested == text
    changed = apply_changes(
        BASE_SPEC, SpecChanges(requested=text, remove=("pandas",), add=("polars",))
    )
    assert changed.requested == "# new list\nrequests  # http\npolars\n"


def test_add_and_remove_sets() -> None:
    spec = apply_changes(BASE_SPEC, SpecChanges(remove_sets=("ml",), add_sets=("ml:gpu",)))
    assert spec.package_sets == (SetRef("legacy"), SetRef("ml", "gpu"))


def test_removing_a_set_the_env_does_not_have_is_refused() -> None:
    with pytest.raises(InvalidSpec) as caught:
        apply_changes(BASE_SPEC, SpecChanges(remove_sets=("nlp",)))
    assert caught.value.field == "sets"
    assert "nlp" in caught.value.message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (SpecChanges(python="3.13"), {"python": "3.13"}),
        (SpecChanges(install_core_packages=False), {"install_core_packages": False}),
        (SpecChanges(install_jupyter_support=True), {"install_jupyter_support": True}),
        (SpecChanges(description=""), {"description": ""}),
        (
            SpecChanges(install_core_packages=False, install_jupyter_support=False),
            {"install_core_packages": False},
        ),
    ],
)
def test_toggles_change_only_their_part(changes: SpecChanges, expected: dict[str, object]) -> None:
    assert apply_changes(BASE_SPEC, changes).to_dict() == BASE_SPEC.to_dict() | expected
