"""Credentials in a spec are used, never shown, and not lost when a masked spec is saved back.

`masked_spec` is a stored spec as anyone may see it (owners included): every credential in a
URL of its texts (requested packages, description, init script) and of its options replaced
by `***`. `keep_secrets` is the way back: a line (or option) of a new spec that is exactly the
masked form of a stored one stands for the stored one, so a user who saves what they were
shown, edited around its masked lines, keeps the credentials. A masked line that was changed
is saved as written, `***` included: it names no stored secret any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from codenv.domain.secrets import MASK, mask_secrets
from codenv.domain.spec import EnvSpec

TEXT_FIELDS = ("requested", "description", "resources_init_script")
OPTION_FIELDS = ("install_options", "venv_options")


def masked_spec(raw: dict[str, Any]) -> dict[str, Any]:
    """A stored spec (`EnvSpec.to_dict()`) as it may be shown."""
    shown = dict(raw)
    for key in TEXT_FIELDS:
        if shown.get(key):
            shown[key] = mask_secrets(shown[key])
    for key in OPTION_FIELDS:
        if shown.get(key) is not None:
            shown[key] = [mask_secrets(token) for token in shown[key]]
    return shown


def shown_spec(spec: EnvSpec) -> EnvSpec:
    """`spec` as it may be shown, for callers that render an EnvSpec."""
    return EnvSpec.from_dict(masked_spec(spec.to_dict()))


def _restored(items: Sequence[str], stored: Iterable[str]) -> list[str]:
    originals = {shown: item for item in stored if (shown := mask_secrets(item)) != item}
    return [originals.get(item, item) if MASK in item else item for item in items]


def _text(new: str, stored: str) -> str:
    return "\n".join(_restored(new.split("\n"), stored.split("\n")))


def _options(new: tuple[str, ...] | None, stored: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if new is None else tuple(_restored(new, stored or ()))


def keep_secrets(new: EnvSpec, stored: EnvSpec) -> EnvSpec:
    """`new`, with its lines and options that show a stored one masked put back as stored."""
    return replace(
        new,
        requested=_text(new.requested, stored.requested),
        description=_text(new.description, stored.description),
        resources_init_script=_text(new.resources_init_script, stored.resources_init_script),
        install_options=_options(new.install_options, stored.install_options),
        venv_options=_options(new.venv_options, stored.venv_options),
    )
