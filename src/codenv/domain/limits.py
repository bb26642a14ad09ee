"""How large each input may be: checked before it costs the server anything.

Request bodies and what uploads may add to the disk are node settings (`settings.py`; the
defaults are here); the sizes of fields and resources paths are fixed. Texts are counted in
characters, paths and bodies in bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codenv.domain.errors import InvalidInput, InvalidSpec

if TYPE_CHECKING:
    from codenv.domain.spec import EnvSpec

KIB, MIB, GIB = 1024, 1024**2, 1024**3

# --- node settings' defaults
DEFAULT_MAX_BODY_BYTES = 4 * MIB  # any body but an upload: a spec at every limit below fits
DEFAULT_MAX_UPLOAD_BYTES = GIB  # one uploaded file (or zip), API and console alike
DEFAULT_MAX_UNZIP_BYTES = 2 * GIB  # what one zip unpacks to
DEFAULT_MAX_ZIP_MEMBERS = 100_000
DEFAULT_MAX_BUNDLE_BYTES = 32 * GIB  # one bundle file: a deep-learning env with its wheels fits
DEFAULT_RESOURCES_QUOTA_BYTES = 20 * GIB  # one env's resources dir; 0: no quota

# --- spec fields
MAX_PYTHON_CHARS = 16
MAX_DESCRIPTION_CHARS = 10_000
MAX_REQUESTED_CHARS = 2 * MIB  # a requirements file with hashes for a large stack fits
MAX_SCRIPT_CHARS = MIB
MAX_OPTIONS = 100  # install or venv option tokens
MAX_OPTION_CHARS = 4096  # one token (a URL)
MAX_SETS = 100  # package sets named in one spec or one change
MAX_SET_REF_CHARS = 200
MAX_CHANGED_LINES = 10_000  # requirement lines added or removed by one change
MAX_LINE_CHARS = 64 * KIB  # one requirement line (hashes included)

# --- resources paths (what Linux allows, and a depth no real tree needs)
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_PATH_DEPTH = 32


def size_text(count: int) -> str:
    """`count` bytes in words: 1 MiB, 64 KiB, 1.5 GiB, 100 bytes."""
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"


def check_path_size(rel: str) -> None:
    """Refuse (InvalidInput, field "path") a resources path the disk would refuse, or too deep
    to walk cheaply, before anything touches the disk."""
    problem = ""
    names = [name for name in rel.split("/") if name not in ("", ".")]
    if "\x00" in rel:
        problem = "must not contain a NUL character"
    elif len(rel.encode(errors="surrogateescape")) > MAX_PATH_BYTES:
        problem = f"is longer than {MAX_PATH_BYTES} bytes"
    elif len(names) > MAX_PATH_DEPTH:
        problem = f"is deeper than {MAX_PATH_DEPTH} levels"
    elif any(len(name.encode(errors="surrogateescape")) > MAX_NAME_BYTES for name in names):
        problem = f"has a name longer than {MAX_NAME_BYTES} bytes"
    if problem:
        raise InvalidInput(f"a resources path {problem}", field="path")


_TEXT_LIMITS = (
    ("python", "the Python version", MAX_PYTHON_CHARS),
    ("description", "the description", MAX_DESCRIPTION_CHARS),
    ("requested", "the requested packages", MAX_REQUESTED_CHARS),
    ("resources_init_script", "the init script", MAX_SCRIPT_CHARS),
)


def check_spec_sizes(spec: EnvSpec) -> None:
    """Refuse a field over its limit, before anything else reads it (a spec's fields come
    from users: none may cost more to check, store and show than its limit)."""
    for key, label, limit in _TEXT_LIMITS:
        if len(getattr(spec, key)) > limit:
            raise InvalidSpec(f"{label} is longer than {limit:,} characters", field=key)
    sets = [str(ref) for ref in spec.package_sets]
    if len(sets) > MAX_SETS or any(len(r) > MAX_SET_REF_CHARS for r in sets):
        raise InvalidSpec(
            f"at most {MAX_SETS} package sets, of {MAX_SET_REF_CHARS} characters each",
            field="sets",
        )
    for key in ("install_options", "venv_options"):
        tokens = getattr(spec, key) or ()
        if len(tokens) > MAX_OPTIONS or any(len(token) > MAX_OPTION_CHARS for token in tokens):
            raise InvalidSpec(
                f"at most {MAX_OPTIONS} options, of {MAX_OPTION_CHARS} characters each",
                field=key,
            )
