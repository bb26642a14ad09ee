"""Helpers for a code env's resources directory and its environment variables.

A *resources init script* is a Python file that codenv runs with the env's own interpreter,
from inside the env's resources directory, when an env is updated with "run the resources init
script on update" or by `codenv resources init NAME`. The script downloads what the env needs
(models, data) and declares the environment variables that scripts using the env get::

    from codenv_runtime import resources

    resources.clear_all_env_vars()
    resources.set_env_path("HF_HOME", "huggingface")   # stored relative, resolved at runtime
    resources.set_env_var("TOKENIZERS_PARALLELISM", "false")
    # ... download models into $HF_HOME (already set in this script's os.environ) ...
    resources.grant_permissions("huggingface")         # readable by every user of the env

codenv tells the script where things are with two environment variables:
`CODENV_RESOURCES_DIR` (the resources directory, absolute) and `CODENV_ENV_VARS_FILE` (the JSON
file that holds the env vars; it may not exist yet). Its format::

    {"version": 1, "vars": {"NAME": {"kind": "value", "value": "..."},
                            "HF_HOME": {"kind": "path", "value": "huggingface"}}}

"path" values are relative to the resources directory and become absolute paths at runtime.

`resolve_env_vars` and `load_env_vars_file` need no init script: they are pure readers, used
by codenv itself and by scripts at runtime.

This module runs on every interpreter codenv supports (Python 3.6 and newer): keep it free of
newer syntax and modules, and free of side effects at import.
"""

import contextlib
import json
import os
import posixpath
import re
import stat
from typing import Any, Dict, Optional, Tuple, Union

__all__ = [
    "ENV_VARS_FILE_VARIABLE",
    "FORMAT_VERSION",
    "RESOURCES_DIR_VARIABLE",
    "NotInInitScript",
    "clear_all_env_vars",
    "delete_env_var",
    "get_env_var",
    "grant_permissions",
    "load_env_vars_file",
    "resolve_env_vars",
    "resources_dir",
    "set_env_path",
    "set_env_var",
]

RESOURCES_DIR_VARIABLE = "CODENV_RESOURCES_DIR"
ENV_VARS_FILE_VARIABLE = "CODENV_ENV_VARS_FILE"
FORMAT_VERSION = 1

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KINDS = ("value", "path")


class NotInInitScript(RuntimeError):
    """A helper that needs a resources init script run was called outside of one."""


# --- pure helpers: no init script needed --------------------------------------------------


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            "invalid environment variable name {!r}: use letters, digits and underscores, "
            "not starting with a digit".format(name)
        )
    return name


def _check_value(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(
            "the value of {} must be a string, got {}".format(name, type(value).__name__)
        )
    if "\0" in value:
        raise ValueError("the value of {} must not contain a NUL character".format(name))
    return value


def _normalize_relative(name: str, relative_path: Any) -> str:
    """The normalized, '/'-separated form of a path that must stay inside the resources dir."""
    if not isinstance(relative_path, str):
        try:
            relative_path = os.fspath(relative_path)
        except TypeError:
            raise ValueError(
                "the path of {} must be a string, got {}".format(name, type(relative_path).__name__)
            ) from None
        if not isinstance(relative_path, str):
            raise ValueError("the path of {} must be a text path, not bytes".format(name))
    if not relative_path or "\0" in relative_path:
        raise ValueError("the path of {} must be a non-empty path".format(name))
    if os.path.isabs(relative_path):
        raise ValueError(
            "the path of {} must be relative to the resources directory, got the absolute "
            "path {!r}".format(name, relative_path)
        )
    normalized = posixpath.normpath(relative_path.replace(os.sep, "/"))
    if normalized == ".." or normalized.startswith("../"):
        raise ValueError(
            "the path of {} must stay inside the resources directory, got {!r}".format(
                name, relative_path
            )
        )
    return normalized


def _resolve_path(resources_dir: str, relative_path: str) -> str:
    return os.path.normpath(os.path.join(os.path.abspath(resources_dir), relative_path))


def _check_data(data: Any) -> Dict[str, Dict[str, str]]:
    """The "vars" mapping of an env vars document, checked entry by entry."""
    if not isinstance(data, dict):
        raise ValueError("env vars data must be a JSON object, got {}".format(type(data).__name__))
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ValueError(
            "unsupported env vars format version {!r} (this codenv-runtime reads version "
            "{})".format(version, FORMAT_VERSION)
        )
    entries = data.get("vars", {})
    if not isinstance(entries, dict):
        raise ValueError('"vars" must be a JSON object, got {}'.format(type(entries).__name__))
    for name, entry in entries.items():
        _check_name(name)
        if not isinstance(entry, dict) or entry.get("kind") not in _KINDS:
            raise ValueError(
                'env var {} must be {{"kind": "value" or "path", "value": "..."}}, got {!r}'.format(
                    name, entry
                )
            )
        _check_value(name, entry.get("value"))
        if entry["kind"] == "path":
            _normalize_relative(name, entry["value"])
    return entries


def resolve_env_vars(
    data: Dict[str, Any], resources_dir: "Union[str, os.PathLike[str]]"
) -> Dict[str, str]:
    """Name -> value of an env vars document, "path" values made absolute under `resources_dir`.

    Pure: reads nothing and changes nothing. Raises ValueError on a malformed document.
    """
    directory = os.fspath(resources_dir)
    resolved = {}  # type: Dict[str, str]
    for name, entry in _check_data(data).items():
        if entry["kind"] == "path":
            resolved[name] = _resolve_path(directory, _normalize_relative(name, entry["value"]))
        else:
            resolved[name] = entry["value"]
    return resolved


def _read_data(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {"version": FORMAT_VERSION, "vars": {}}
    if not text.strip():
        return {"version": FORMAT_VERSION, "vars": {}}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError("{} is not valid JSON: {}".format(path, exc)) from None
    _check_data(data)
    return data


def load_env_vars_file(
    path: "Union[str, os.PathLike[str]]", resources_dir: "Union[str, os.PathLike[str]]"
) -> Dict[str, str]:
    """The resolved env vars (name -> value) stored in the JSON file `path`.

    A missing file holds no variables. Raises ValueError on a malformed file.
    """
    return resolve_env_vars(_read_data(os.fspath(path)), os.fspath(resources_dir))


# --- init script helpers ------------------------------------------------------------------


def _context(function: str) -> Tuple[str, str]:
    """(resources dir, env vars file) of the running init script, or NotInInitScript."""
    missing = [v for v in (RESOURCES_DIR_VARIABLE, ENV_VARS_FILE_VARIABLE) if not os.environ.get(v)]
    if missing:
        raise NotInInitScript(
            "codenv_runtime.resources.{}() can only be called from a resources init script "
            'run by codenv (`codenv update` with "run the resources init script on update" '
            "enabled, or `codenv resources init NAME`); {} not set".format(
                function, " and ".join(missing) + (" is" if len(missing) == 1 else " are")
            )
        )
    return (
        os.path.abspath(os.environ[RESOURCES_DIR_VARIABLE]),
        os.path.abspath(os.environ[ENV_VARS_FILE_VARIABLE]),
    )


def _write_data(path: str, entries: Dict[str, Dict[str, str]]) -> None:
    """Replace the file atomically: a temporary file in the same directory, then os.replace."""
    text = json.dumps({"version": FORMAT_VERSION, "vars": entries}, indent=2) + "\n"
    temporary = "{}.{}.{}.tmp".format(path, os.getpid(), os.urandom(4).hex())
    # 0o666 filtered by the umask, like any new file: users of the env read it at runtime.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def resources_dir() -> str:
    """The absolute path of the env's resources directory."""
    return _context("resources_dir")[0]


def clear_all_env_vars() -> None:
    """Remove every env var of the env (and from this script's os.environ).

    Also the way out of a damaged env vars file: an unreadable file is simply replaced.
    """
    _, path = _context("clear_all_env_vars")
    try:
        entries = _read_data(path).get("vars", {})
    except ValueError:
        entries = {}
    _write_data(path, {})
    for name in entries:
        os.environ.pop(name, None)


def set_env_var(name: str, value: str) -> None:
    """Set env var `name` to the string `value`, and in this script's os.environ at once."""
    _, path = _context("set_env_var")
    _check_value(_check_name(name), value)
    entries = _read_data(path).get("vars", {})
    entries[name] = {"kind": "value", "value": value}
    _write_data(path, entries)
    os.environ[name] = value


def set_env_path(name: str, relative_path: "Union[str, os.PathLike[str]]") -> None:
    """Set env var `name` to a path inside the resources directory.

    `relative_path` is relative to the resources directory and may not leave it (no absolute
    path, no escaping `..`). It is stored relative, so the env var follows the resources
    directory, and resolved to an absolute path at runtime; this script's os.environ gets the
    absolute path at once. Nothing is created on disk.
    """
    directory, path = _context("set_env_path")
    relative = _normalize_relative(_check_name(name), relative_path)
    entries = _read_data(path).get("vars", {})
    entries[name] = {"kind": "path", "value": relative}
    _write_data(path, entries)
    os.environ[name] = _resolve_path(directory, relative)


def get_env_var(name: str) -> Optional[str]:
    """The value of env var `name` (an absolute path for a path), or None when it is not set."""
    directory, path = _context("get_env_var")
    _check_name(name)
    return resolve_env_vars(_read_data(path), directory).get(name)


def delete_env_var(name: str) -> None:
    """Remove env var `name` (and from this script's os.environ); no error when it is not set.

    Only variables of the env are touched: deleting a name the env does not define leaves the
    script's own os.environ (PATH, HOME...) alone.
    """
    _, path = _context("delete_env_var")
    _check_name(name)
    entries = _read_data(path).get("vars", {})
    if name in entries:
        del entries[name]
        _write_data(path, entries)
        os.environ.pop(name, None)


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _add_mode(path: str, bits_for_files: int, bits_for_dirs: int) -> None:
    """Add permission bits to a regular file or a directory; symbolic links are left alone."""
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):
        wanted = stat.S_IMODE(mode) | bits_for_dirs
    elif stat.S_ISREG(mode):
        wanted = stat.S_IMODE(mode) | bits_for_files
        if mode & stat.S_IXUSR:
            wanted |= 0o111
    else:
        return
    if wanted != stat.S_IMODE(mode):
        os.chmod(path, wanted)


def grant_permissions(path: "Union[str, os.PathLike[str]]") -> None:
    """Give every user read access to `path`, recursively.

    `path` is relative to the resources directory, or absolute inside it. Files get a+r (and
    a+x when their owner may execute them), directories a+rx; the directories between the
    resources directory (included) and `path` get a+x so that other users can reach it.
    Symbolic links are not followed. Paths outside the resources directory are refused.
    """
    directory, _ = _context("grant_permissions")
    try:
        target = os.fspath(path)
    except TypeError:
        target = None
    if not isinstance(target, str) or not target or "\0" in target:
        raise ValueError("grant_permissions() needs a non-empty text path, got {!r}".format(path))
    root = os.path.realpath(directory)
    resolved = os.path.realpath(os.path.join(directory, target))
    if not _inside(resolved, root):
        raise ValueError(
            "grant_permissions() only works inside the resources directory {}, got {!r}".format(
                directory, target
            )
        )
    if not os.path.exists(resolved):
        raise FileNotFoundError("grant_permissions(): {!r} does not exist".format(target))
    ancestor = os.path.dirname(resolved)
    while _inside(ancestor, root):
        _add_mode(ancestor, 0, 0o111)
        if ancestor == root:
            break
        ancestor = os.path.dirname(ancestor)
    _add_mode(resolved, 0o444, 0o555)
    if os.path.isdir(resolved):
        for current, dirnames, filenames in os.walk(resolved):
            for entry in dirnames + filenames:
                _add_mode(os.path.join(current, entry), 0o444, 0o555)
