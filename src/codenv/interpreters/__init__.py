"""Discovery and probing of the Python installations on this node."""

from codenv.interpreters.discovery import (
    SOURCES,
    Discovery,
    RefusedInterpreter,
    check_addable,
    discover,
)
from codenv.interpreters.probing import PROBE_TIMEOUT, probe

__all__ = [
    "PROBE_TIMEOUT",
    "SOURCES",
    "Discovery",
    "RefusedInterpreter",
    "check_addable",
    "discover",
    "probe",
]
