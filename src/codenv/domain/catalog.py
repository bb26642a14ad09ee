"""The package-set catalog: named requirement lists with a supported Python range and variants.

The catalog is data shipped in the package (`package_sets.json`); this module reads and checks it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from codenv.domain.errors import CodenvError, InvalidInput, InvalidSpec, NotFound
from codenv.domain.pythons import format_minor, parse_minor


@dataclass(frozen=True)
class PackageSet:
    id: str
    title: str
    description: str
    python_min: tuple[int, int]
    python_max: tuple[int, int]
    variants: dict[str, tuple[str, ...]]

    @property
    def default_variant(self) -> str:
        return next(iter(self.variants))

    @property
    def python_range(self) -> str:
        return f"{format_minor(self.python_min)}–{format_minor(self.python_max)}"

    def supports(self, python: tuple[int, int]) -> bool:
        return self.python_min <= python <= self.python_max

    def lines(self, variant: str | None = None) -> tuple[str, ...]:
        chosen = variant or self.default_variant
        if chosen not in self.variants:
            raise InvalidSpec(
                f"package set {self.id!r} has no variant {chosen!r}; "
                f"variants: {', '.join(self.variants)}",
                field="sets",
            )
        return self.variants[chosen]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "python_min": format_minor(self.python_min),
            "python_max": format_minor(self.python_max),
            "variants": {name: list(lines) for name, lines in self.variants.items()},
        }


@dataclass(frozen=True)
class Catalog:
    sets: tuple[PackageSet, ...]

    def get(self, set_id: str) -> PackageSet:
        for package_set in self.sets:
            if package_set.id == set_id:
                return package_set
        known = ", ".join(s.id for s in self.sets) or "none"
        raise NotFound(f"no package set {set_id!r}; known sets: {known}", field="sets")


def _package_set(raw: dict[str, Any]) -> PackageSet:
    return PackageSet(
        id=raw["id"],
        title=raw["title"],
        description=raw.get("description", ""),
        python_min=parse_minor(raw["python"]["min"]),
        python_max=parse_minor(raw["python"]["max"]),
        variants={name: tuple(lines) for name, lines in raw["variants"].items()},
    )


def parse_catalog(text: str, *, source: str = "catalog") -> Catalog:
    try:
        return Catalog(tuple(_package_set(raw) for raw in json.loads(text)["sets"]))
    except (ValueError, KeyError, TypeError, CodenvError) as error:
        raise InvalidInput(
            f"{source} is not a valid package-set catalog: {error}", field="catalog"
        ) from error


@cache
def shipped_catalog() -> Catalog:
    text = resources.files("codenv.domain").joinpath("package_sets.json").read_text("utf-8")
    return parse_catalog(text)


def load_catalog(node_text: str | None = None, *, source: str = "catalog") -> Catalog:
    """The shipped catalog plus the node's own sets (which replace shipped ones by id)."""
    shipped = shipped_catalog()
    if not node_text:
        return shipped
    own = parse_catalog(node_text, source=source)
    ids = {package_set.id for package_set in own.sets}
    return Catalog(tuple(s for s in shipped.sets if s.id not in ids) + own.sets)


def sharing_rank(catalog: Catalog) -> dict[str, int]:
    """How many package-set variants ask for each distribution (normalized name): the
    distributions most envs of a node share. An image lays their layers out first, in this
    order, so that images of different envs begin with the same layers (container runtimes
    reuse a layer only under the same layers below it)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    counts: dict[str, int] = {}
    for package_set in catalog.sets:
        for lines in package_set.variants.values():
            names = set()
            for line in lines:
                try:
                    names.add(canonicalize_name(Requirement(line).name))
                except InvalidRequirement:
                    continue
            for name in names:
                counts[name] = counts.get(name, 0) + 1
    return counts
