"""Pure translations between DSS's code-env JSON and codenv's concepts (DSS_API §4, §5, §6).

An env as DSS lists it and shows its settings; interpreter enums ↔ Python versions;
permission booleans ↔ levels; operation results and their messages; the checks of JSON
values. What clients send (create bodies, saved settings) is read by `shapes_input.py`.
Nothing here reads the database or the disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from codenv.api.dss_compat.errors import DssError
from codenv.domain.errors import InvalidInput, NotFound
from codenv.services.access_views import Grant
from codenv.services.dss_code_envs import EnvSettings
from codenv.services.futures import info_messages
from codenv.services.views import EnvInfo

LANG = "PYTHON"
DESIGN_MANAGED = "DESIGN_MANAGED"
_INTERPRETER = re.compile(r"^PYTHON3(\d{1,2})$")
_OLD_INTERPRETERS = {"PYTHON27": "2.7", "PYTHON34": "3.4", "PYTHON35": "3.5"}
DOCKERFILE_KEYS = (
    "dockerfileAtStart",
    "dockerfileBeforePackages",
    "dockerfileAfterCondaPackages",
    "dockerfileAfterPackages",
    "dockerfileAtEnd",
)


# ---- languages, modes, interpreters ----------------------------------------------------


def check_lang(lang: str, *, creating: bool = False) -> None:
    """Python only (any case: dsscli sends `python`). Creating an R env is refused (400);
    elsewhere an R env simply does not exist (404)."""
    if lang.upper() == LANG:
        return
    message = f"codenv manages Python code envs only, not {lang[:40]!r} ones"
    if creating:
        raise DssError(message, field="envLang")
    raise NotFound(message, field="envLang")


def check_mode(mode: Any) -> None:
    if mode is None or mode == DESIGN_MANAGED:
        return
    raise DssError(
        f"deployment mode {str(mode)[:60]!r} is not supported: codenv builds and manages its "
        f"code envs itself ({DESIGN_MANAGED} only; no non-managed, plugin or automation envs)",
        field="deploymentMode",
    )


def interpreter_of(python: str) -> str:
    """`3.11` → `PYTHON311`."""
    major, _, minor = python.partition(".")
    return f"PYTHON{major}{minor}"


def python_of(interpreter: Any, field: str = "pythonInterpreter") -> str | None:
    """`PYTHON311` → `3.11`; None for none given. Python 2, < 3.6 and CUSTOM are refused."""
    if interpreter is None or interpreter == "":
        return None
    text = as_text(interpreter, field).upper()
    if text in _OLD_INTERPRETERS:
        raise DssError(
            f"Python {_OLD_INTERPRETERS[text]} is not supported: codenv builds envs with "
            "CPython 3.6 and newer",
            field=field,
        )
    if text == "CUSTOM":
        raise DssError(
            "custom interpreters are not supported: choose one of the node's Python versions "
            "(PYTHON3X, for example PYTHON311)",
            field=field,
        )
    match = _INTERPRETER.fullmatch(text)
    if not match:
        raise InvalidInput(
            f"unknown interpreter {text[:40]!r}: use PYTHON3X, for example PYTHON311", field=field
        )
    return f"3.{int(match.group(1))}"


# ---- permissions -------------------------------------------------------------------------


def dss_permission(grant: Grant) -> dict[str, Any]:
    """A grant as DSS's booleans (each level includes the ones before)."""
    rank = ("use", "update", "manage_users").index(grant.level) + 1
    return {"group": grant.group, "use": rank >= 1, "update": rank >= 2, "manageUsers": rank >= 3}


def grants_of(entries: Any, field: str = "permissions") -> tuple[tuple[str, str], ...]:
    """DSS permission entries → (group, level): the highest right given; none given: dropped."""
    if not isinstance(entries, list):
        raise InvalidInput("permissions must be a list", field=field)
    grants: list[tuple[str, str]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidInput("each permission must be an object with a group", field=field)
        group = as_text(entry.get("group"), f"{field}.group")
        if as_flag(entry.get("manageUsers"), field):
            grants.append((group, "manage_users"))
        elif as_flag(entry.get("update"), field):
            grants.append((group, "update"))
        elif as_flag(entry.get("use"), field):
            grants.append((group, "use"))
    return tuple(grants)


def grant_keys(grants: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(group.casefold(), level) for group, level in grants}


# ---- reading -----------------------------------------------------------------------------


def list_item(info: EnvInfo, kernel: str | None) -> dict[str, Any]:
    """§4.1: an env as `list_code_envs` gives it."""
    return {
        "envLang": LANG,
        "envName": info.name,
        "deploymentMode": DESIGN_MANAGED,
        "owner": info.owner,
        "pythonInterpreter": interpreter_of(info.python),
        "installJupyterSupport": bool(info.spec.get("install_jupyter_support")),
        "kernelSpecName": kernel,
        "canUpdateCodeEnv": info.capabilities.may_update,
        "codenv": {"status": info.status, "activeRevision": info.active_revision},
    }


def _env_settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    install, venv = spec.get("install_options"), spec.get("venv_options")
    return {
        "inheritGlobalSettings": install is None and venv is None,
        "pipInstallExtraOptions": list(install or []),
        "virtualenvCreateExtraOptions": list(venv or []),
        "condaCreateExtraOptions": [],
        "condaInstallExtraOptions": [],
        "cranMirrorURL": None,
    }


def _no_containers() -> dict[str, Any]:
    return {
        "allContainerConfs": False,
        "containerConfs": [],
        "allSparkKubernetesConfs": False,
        "sparkKubernetesConfs": [],
    }


def _desc(settings: EnvSettings, permissions: list[dict[str, Any]]) -> dict[str, Any]:
    spec = settings.info.spec
    return {
        "deploymentMode": DESIGN_MANAGED,
        "owner": settings.permissions.owner,
        "usableByAll": settings.permissions.usable_by_all,
        "permissions": permissions,
        "conda": False,
        "pythonInterpreter": interpreter_of(spec["python"]),
        "customInterpreter": None,
        "installCorePackages": bool(spec.get("install_core_packages", True)),
        "corePackagesSet": None,
        "installJupyterSupport": bool(spec.get("install_jupyter_support")),
        "yarnPythonBin": None,
        "envSettings": _env_settings(spec),
        "dockerImageResources": "NONE",
        "rebuildDependentCodeStudioTemplates": "NONE",
        **_no_containers(),
    }


def _codenv_part(settings: EnvSettings) -> dict[str, Any]:
    info, spec = settings.info, settings.info.spec
    last = info.last_build
    return {
        "packageSets": list(spec.get("package_sets", [])),
        "description": spec.get("description", ""),
        "runInitScriptOnUpdate": bool(spec.get("run_init_script_on_update", True)),
        "runInitScriptOnApiNode": bool(spec.get("run_init_script_on_api_node", True)),
        "status": info.status,
        "activeRevision": info.active_revision,
        "specDiffers": info.spec_differs,
        "lastBuild": {"id": last.id, "status": last.status} if last else None,
    }


def render_settings(settings: EnvSettings) -> dict[str, Any]:
    """§4.2: design settings, never a `versions` key (it would select DSS's automation
    class). The init script is shown to those who may change the env only."""
    info = settings.info
    permissions = [dss_permission(grant) for grant in settings.permissions.grants]
    level = settings.permissions.caller_level
    script = settings.init_script.script if settings.init_script else ""
    actual = [f"{item['name']}=={item['version']}" for item in settings.actual]
    return {
        "envLang": LANG,
        "envName": info.name,
        "deploymentMode": DESIGN_MANAGED,
        "owner": settings.permissions.owner,
        "usableByAll": settings.permissions.usable_by_all,
        "permissions": permissions,
        "canUpdateCodeEnv": info.capabilities.may_update,
        "canManageUsersCodeEnv": level in ("manage_users", "all"),
        "path": info.path,
        "kernelSpecName": settings.kernel,
        "info": {"pythonVersion": settings.python_version},
        "desc": _desc(settings, permissions),
        **_no_containers(),
        "containerCacheBustingLocation": "AFTER_START_DOCKERFILE",
        **{key: "" for key in DOCKERFILE_KEYS},
        "predefinedContainerHooks": [],
        "specPackageList": info.spec.get("requested", ""),
        "specCondaEnvironment": "",
        "actualPackageList": "\n".join(actual),
        "actualCondaEnvironment": "",
        "mandatoryPackageList": "\n".join(info.base_packages),
        "mandatoryCondaEnvironment": "",
        "resourcesInitScript": script,
        "codenv": _codenv_part(settings),
    }


# ---- operation results ---------------------------------------------------------------------


def message(
    severity: str, title: str, text: str, *, code: str | None = None, details: str = ""
) -> dict[str, Any]:
    """One `DSSInfoMessage`."""
    return {
        "severity": severity,
        "isFatal": severity == "ERROR",
        "code": code,
        "title": title,
        "message": text,
        "details": details,
    }


def immediate_result(env: str, messages: list[dict[str, Any]], **codenv: Any) -> dict[str, Any]:
    """§4.4 for an operation that finished at once (no build, no log)."""
    return {
        "envName": env,
        "logFileName": None,
        "messages": info_messages(messages),
        "codenv": {"buildId": None, **codenv},
    }


def aborted_result(env: str, job_id: str) -> dict[str, Any]:
    """What `wait=True` answers for a build that was cancelled (its future has no result)."""
    text = f"the build {job_id} was cancelled before it ended"
    item = message("ERROR", "Code env update cancelled", text, code="ERR_CODEENV_UPDATE_FAILED")
    return immediate_result(env, [item], status="cancelled")


def log_item(name: str, size: int, modified_ms: int) -> dict[str, Any]:
    return {"name": name, "totalSize": size, "lastModified": modified_ms}


# ---- JSON values ---------------------------------------------------------------------------


def as_flag(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise InvalidInput(f"{field} must be true or false", field=field)


def as_text(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    raise InvalidInput(f"{field} must be a string", field=field)


def as_text_list(value: Any, field: str) -> list[str]:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise InvalidInput(f"{field} must be a list of strings", field=field)
