"""Pure unit tests: make_plan() and Plan (domain/plan), and the package-set catalog."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from codenv.domain.catalog import Catalog, PackageSet, _package_set, load_catalog, parse_catalog
from codenv.domain.errors import InvalidInput, InvalidSpec, NotFound
from codenv.domain.plan import Plan, make_plan
from codenv.domain.pythons import Interpreter
from codenv.domain.requirements import parse_requested
from codenv.domain.spec import BasePackage, EnvSpec, SetRef, base_packages

ML_RAW: dict[str, Any] = {
    "id": "ml",
    "title": "Machine learning",
    "description": "Classic ML.",
    "python": {"min": "3.8", "max": "3.12"},
    "variants": {"cpu": ["numpy>=1.20", "scikit-learn"], "gpu": ["numpy>=1.20", "torch"]},
}
PLOT_RAW: dict[str, Any] = {
    "id": "plot",
    "title": "Plotting",
    "python": {"min": "3.6", "max": "3.13"},
    "variants": {"default": ["matplotlib"]},
}
CATALOG = Catalog((_package_set(ML_RAW), _package_set(PLOT_RAW)))
PY311 = Interpreter("/usr/bin/python3.11", "3.11.9", "cpython", "system", True)
ARCHIVE = "/srv/pkgs/local-1.0.whl"
SPEC = EnvSpec(
    python="3.11",
    install_jupyter_support=True,
    package_sets=(SetRef("ml", "gpu"), SetRef("plot")),
    requested=f"# mine\nrequests>=2\n{ARCHIVE}\n--editable=/home/me/src/tool\n",
)


def plan_for(
    spec: EnvSpec = SPEC,
    interpreter: Interpreter = PY311,
    digests: dict[str, str] | None = None,
    install_options: tuple[str, ...] = (),
    core_version: str = "1.0.0",
) -> Plan:
    return make_plan(
        spec,
        interpreter,
        CATALOG,
        base_packages(spec, core_version, ""),
        parse_requested(spec.requested),
        {ARCHIVE: "a" * 64} if digests is None else digests,
        install_options,
    )


# --- make_plan ---------------------------------------------------------------------------------


def test_plan_lists_base_then_sets_then_requested() -> None:
    plan = plan_for()
    assert plan.base == ("codenv-runtime==1.0.0", "ipykernel>=6")
    assert plan.sets == ("numpy>=1.20", "torch", "matplotlib")
    assert plan.requested == ("requests>=2", ARCHIVE, "-e /home/me/src/tool")
    assert plan.requirement_lines == plan.base + plan.sets + plan.requested
    assert (plan.python_version, plan.interpreter) == ("3.11.9", "/usr/bin/python3.11")
    assert plan.archive_digests == ((ARCHIVE, "a" * 64),)


def test_plan_uses_the_default_variant_and_set_order() -> None:
    spec = replace(SPEC, package_sets=(SetRef("plot"), SetRef("ml")))
    assert plan_for(spec).sets == ("matplotlib", "numpy>=1.20", "scikit-learn")


def test_base_package_install_line_goes_into_the_plan() -> None:
    base = (BasePackage("codenv-runtime", "codenv-runtime==1.0", "1.0", "/w/codenv_runtime.whl"),)
    plan = make_plan(SPEC, PY311, CATALOG, base, (), {})
    assert plan.base == ("/w/codenv_runtime.whl",)


def test_plan_hash_is_stable_and_hex() -> None:
    first = plan_for()
    assert first.hash == plan_for().hash == first.hash
    assert len(first.hash) == 64
    int(first.hash, 16)


def test_plan_hash_does_not_depend_on_digest_dict_order() -> None:
    one = {"/a.whl": "1" * 64, "/b.whl": "2" * 64, "/c.whl": "3" * 64}
    other = dict(reversed(list(one.items())))
    assert list(one) != list(other)
    assert plan_for(digests=one) == plan_for(digests=other)
    assert plan_for(digests=one).hash == plan_for(digests=other).hash


def test_plan_hash_does_not_depend_on_dict_key_order() -> None:
    plan = plan_for()
    shuffled = dict(reversed(list(plan.to_dict().items())))
    assert Plan.from_dict(shuffled).hash == plan.hash


def test_comments_and_blank_lines_do_not_change_the_plan() -> None:
    spec = replace(SPEC, requested="requests>=2  # http\n\n" + SPEC.requested.split("\n", 2)[2])
    assert plan_for(spec).hash == plan_for().hash


CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("requested line", {"spec": replace(SPEC, requested=SPEC.requested + "scipy\n")}),
    ("requested spec", {"spec": replace(SPEC, requested=SPEC.requested.replace(">=2", ">=2.1"))}),
    ("set variant", {"spec": replace(SPEC, package_sets=(SetRef("ml", "cpu"), SetRef("plot")))}),
    ("jupyter off", {"spec": replace(SPEC, install_jupyter_support=False)}),
    ("core off", {"spec": replace(SPEC, install_core_packages=False)}),
    ("core version", {"core_version": "1.0.1"}),
    ("python path", {"interpreter": replace(PY311, path="/opt/python/3.11/bin/python3")}),
    ("python version", {"interpreter": replace(PY311, version="3.11.10")}),
    ("archive digest", {"digests": {ARCHIVE: "b" * 64}}),
    ("no digest", {"digests": {}}),
    ("install options", {"install_options": ("--index-url", "https://mirror.example/simple")}),
]


@pytest.mark.parametrize(("what", "kwargs"), CHANGES, ids=[what for what, _ in CHANGES])
def test_plan_hash_changes_when_an_input_changes(what: str, kwargs: dict[str, Any]) -> None:
    assert plan_for(**kwargs).hash != plan_for().hash, what


def test_install_option_order_matters() -> None:
    options = ("--index-url", "https://a/simple", "--extra-index-url", "https://b/simple")
    swapped = options[2:] + options[:2]
    assert plan_for(install_options=options).hash != plan_for(install_options=swapped).hash


# --- Plan serialisation and properties ---------------------------------------------------------


def test_plan_round_trips_through_a_dict_and_json() -> None:
    plan = plan_for(install_options=("--only-binary", ":all:"))
    plan = replace(plan, venv_options=("--system-site-packages",))
    assert Plan.from_dict(plan.to_dict()) == plan
    through_json = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert through_json == plan
    assert through_json.hash == plan.hash


def test_plan_from_old_dict_without_options() -> None:
    raw = plan_for().to_dict()
    del raw["install_options"], raw["venv_options"]
    assert Plan.from_dict(raw) == plan_for()


@pytest.mark.parametrize(
    ("requested", "editable"),
    [
        ("-e /home/me/src/tool\n", True),
        ("--editable=/home/me/src/tool\n", True),
        ("numpy\n/srv/pkgs/local-1.0.whl\n", False),
        ("", False),
    ],
)
def test_has_editables(requested: str, editable: bool) -> None:
    assert plan_for(replace(SPEC, requested=requested)).has_editables is editable


@pytest.mark.parametrize(
    ("version", "minor"), [("3.11.9", (3, 11)), ("3.6.15", (3, 6)), ("3.13.0rc1", (3, 13))]
)
def test_python_minor(version: str, minor: tuple[int, int]) -> None:
    plan = plan_for(interpreter=replace(PY311, version=version))
    assert plan.python_minor == minor


# --- catalog -----------------------------------------------------------------------------------


def test_package_set_from_raw_dict() -> None:
    ml = _package_set(ML_RAW)
    assert (ml.id, ml.title, ml.description) == ("ml", "Machine learning", "Classic ML.")
    assert (ml.python_min, ml.python_max) == ((3, 8), (3, 12))
    assert ml.python_range == "3.8–3.12"
    assert ml.default_variant == "cpu"
    assert ml.lines() == ml.lines("cpu") == ("numpy>=1.20", "scikit-learn")
    assert ml.lines("gpu") == ("numpy>=1.20", "torch")
    assert _package_set(PLOT_RAW).description == ""


def test_package_set_to_dict_matches_its_raw_form() -> None:
    assert _package_set(ML_RAW).to_dict() == {
        "id": "ml",
        "title": "Machine learning",
        "description": "Classic ML.",
        "python_min": "3.8",
        "python_max": "3.12",
        "variants": ML_RAW["variants"],
    }


@pytest.mark.parametrize(
    ("python", "supported"),
    [((3, 7), False), ((3, 8), True), ((3, 10), True), ((3, 12), True), ((3, 13), False)],
)
def test_package_set_supports_its_inclusive_range(python: tuple[int, int], supported: bool) -> None:
    assert _package_set(ML_RAW).supports(python) is supported


def test_unknown_variant_is_refused_with_the_variants() -> None:
    with pytest.raises(InvalidSpec) as caught:
        _package_set(ML_RAW).lines("tpu")
    assert caught.value.field == "sets"
    assert "'ml'" in caught.value.message and "cpu, gpu" in caught.value.message


def test_catalog_get() -> None:
    assert CATALOG.get("plot").title == "Plotting"
    with pytest.raises(NotFound) as caught:
        CATALOG.get("nlp")
    assert caught.value.field == "sets"
    assert caught.value.message == "no package set 'nlp'; known sets: ml, plot"


def test_unknown_variant_in_a_plan_is_refused() -> None:
    with pytest.raises(InvalidSpec):
        plan_for(replace(SPEC, package_sets=(SetRef("ml", "tpu"),)))


def test_shipped_catalog_loads_and_every_set_is_usable() -> None:
    catalog = load_catalog()
    assert isinstance(catalog, Catalog)
    ids = [package_set.id for package_set in catalog.sets]
    assert len(ids) == len(set(ids))
    for package_set in catalog.sets:
        assert catalog.get(package_set.id) is package_set
        assert package_set.python_min <= package_set.python_max
        assert package_set.variants
        for variant in package_set.variants:
            parse_requested("\n".join(package_set.lines(variant)), field="catalog")


def test_node_catalog_adds_sets_and_replaces_shipped_ones_by_id() -> None:
    shipped = load_catalog()
    own = dict(ML_RAW, title="Our ML")
    extra = shipped.sets[0].to_dict() if shipped.sets else None
    sets = [own] if extra is None else [own, _raw(extra) | {"title": "Replaced"}]
    catalog = load_catalog(json.dumps({"sets": sets}), source="node catalog")
    assert catalog.get("ml").title == "Our ML"
    assert len(catalog.sets) == len(shipped.sets) + 1
    if extra is not None:
        assert catalog.get(extra["id"]).title == "Replaced"


def _raw(exported: dict[str, Any]) -> dict[str, Any]:
    """The catalog-file form of a PackageSet.to_dict()."""
    return {
        "id": exported["id"],
        "title": exported["title"],
        "description": exported["description"],
        "python": {"min": exported["python_min"], "max": exported["python_max"]},
        "variants": exported["variants"],
    }


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{}",
        '{"sets": [{"id": "x"}]}',
        '{"sets": [{"id": "x", "title": "X", "python": {"min": "3.8"}, "variants": {}}]}',
        '{"sets": 3}',
    ],
)
def test_invalid_catalog_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_catalog(text, source="my.json")
    assert caught.value.field == "catalog"
    assert caught.value.message.startswith("my.json is not a valid package-set catalog")


def test_package_set_is_immutable() -> None:
    package_set: PackageSet = CATALOG.get("ml")
    with pytest.raises(AttributeError):
        package_set.id = "other"  # type: ignore[misc]
