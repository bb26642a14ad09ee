"""The kinds of node, as the seed system runs them, and what each allows.

Envs are designed on a *design* node and travel in bundles to *automation* and *API* nodes,
where they are imported, never designed: a spec edited there would no longer be what the
design node built and tested.
"""

from __future__ import annotations

from enum import StrEnum

from codenv.domain.errors import Conflict, InvalidInput

# The key of `config/server.json` that holds the kind (the seed system's name).
NODE_TYPE_KEY = "nodeType"


class NodeKind(StrEnum):
    DESIGN = "design"
    AUTOMATION = "automation"
    API = "api"

    @property
    def designs_envs(self) -> bool:
        """Whether specs are written here (create, save, update, requests, init script)."""
        return self is NodeKind.DESIGN

    @property
    def node_options_may_win(self) -> bool:
        """Whether `preventOverrideFromImportedEnvs` applies: the node's install options then
        replace those an imported env carries from its design node."""
        return self is NodeKind.API

    @property
    def label(self) -> str:
        return "API" if self is NodeKind.API else self.value


def parse_node_kind(value: object) -> NodeKind:
    """The kind `config/server.json` names; absent (None) is a design node."""
    if value is None:
        return NodeKind.DESIGN
    for kind in NodeKind:
        if value == kind.value:
            return kind
    allowed = ", ".join(repr(kind.value) for kind in NodeKind)
    raise InvalidInput(
        f"the node's kind ({NODE_TYPE_KEY} in config/server.json) must be one of {allowed} "
        f"(absent: 'design'), got {value!r}",
        field=NODE_TYPE_KEY,
    )


def refuse_spec_edit(kind: NodeKind, action: str) -> None:
    """Conflict, saying what to do instead, when `action` would write a spec on a node where
    envs are imported, not designed."""
    if kind.designs_envs:
        return
    article = "an" if kind.label[0] in "aeiouAEIOU" else "a"
    raise Conflict(
        f"cannot {action}: this is {article} {kind.label} node: code envs are imported from "
        f"bundles here, not designed (codenv import FILE); design them on a design node",
        field="node",
    )
