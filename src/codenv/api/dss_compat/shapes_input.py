"""What DSS clients send, as codenv changes (DSS_API §4.3, §5.2, §6): a create body as a spec,
a saved settings document as what changed against what GET showed (only fields whose value
differs, each part apart so each goes through its own right), and what codenv lacks refused
with a 400 that names it. Pure: nothing here reads the database or the disk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from codenv.api.dss_compat.errors import DssError
from codenv.api.dss_compat.shapes import (
    DOCKERFILE_KEYS,
    LANG,
    as_flag,
    as_text,
    as_text_list,
    check_lang,
    check_mode,
    grant_keys,
    grants_of,
    python_of,
)
from codenv.domain.errors import InvalidInput
from codenv.domain.secrets import MASK
from codenv.domain.spec import EnvSpec, SetRef, SpecChanges
from codenv.services.dss_code_envs import PermissionChange, ScriptChange, SettingsChange

# DSS keys for container images and Spark on Kubernetes: accepted only when they ask for none.
_CONTAINER_FLAGS = ("allContainerConfs", "allSparkKubernetesConfs")
_CONTAINER_LISTS = ("containerConfs", "sparkKubernetesConfs", "predefinedContainerHooks")
_CONDA_SETTINGS = ("condaCreateExtraOptions", "condaInstallExtraOptions", "cranMirrorURL")


# ---- what codenv refuses ------------------------------------------------------------------


def _refuse_conda(doc: Mapping[str, Any], desc: Mapping[str, Any]) -> None:
    if as_flag(desc.get("conda"), "desc.conda") or as_flag(doc.get("conda"), "conda"):
        raise DssError("codenv does not manage conda envs", field="conda")
    for key in ("specCondaEnvironment", "externalCondaEnvName"):
        if doc.get(key) or desc.get(key):
            raise DssError(f"codenv does not manage conda envs ({key})", field=key)
    env_settings = desc.get("envSettings") or {}
    if not isinstance(env_settings, dict):
        raise InvalidInput("desc.envSettings must be an object", field="desc.envSettings")
    for key in _CONDA_SETTINGS:
        if env_settings.get(key):
            raise DssError(f"codenv has no conda or CRAN settings ({key})", field=key)


def _refuse_images(part: Mapping[str, Any], where: str) -> None:
    for key in (*_CONTAINER_FLAGS, *_CONTAINER_LISTS, *DOCKERFILE_KEYS, "yarnPythonBin"):
        if part.get(key):
            raise DssError(
                f"{where}{key}: codenv builds no container images or Spark-on-Kubernetes "
                "setups for DSS; leave it empty",
                field=key,
            )


def refuse_unsupported(doc: Mapping[str, Any]) -> None:
    """What codenv lacks, anywhere in a create body or a settings document: a 400 naming it.
    Keys that ask for nothing (false, empty, null) pass."""
    desc = doc.get("desc") or {}
    if not isinstance(desc, dict):
        raise InvalidInput("desc must be an object", field="desc")
    check_mode(doc.get("deploymentMode"))
    check_mode(desc.get("deploymentMode"))
    if doc.get("versions") is not None:
        raise DssError("codenv keeps no automation versions of a design env", field="versions")
    _refuse_conda(doc, desc)
    if doc.get("customInterpreter") or desc.get("customInterpreter"):
        python_of("CUSTOM", field="customInterpreter")
    _refuse_images(doc, "")
    _refuse_images(desc, "desc.")


# ---- creating ------------------------------------------------------------------------------


def create_spec(body: Any, lang: str, name: str, default_python: Callable[[], str]) -> EnvSpec:
    """§4.3: a create body as a spec; unknown keys are ignored. `default_python` gives the
    version of a body that names none."""
    check_lang(lang, creating=True)
    doc = body if body is not None else {}
    if not isinstance(doc, dict):
        raise InvalidInput("the create body must be a JSON object", field="body")
    refuse_unsupported(doc)
    for key, expected in (("envLang", LANG), ("envName", name)):
        given = doc.get(key)
        if given is not None and str(given).casefold() != expected.casefold():
            raise InvalidInput(f"{key} {str(given)[:80]!r} differs from the path's", field=key)
    extra = doc.get("codenv") or {}
    if not isinstance(extra, dict):
        raise InvalidInput("codenv must be an object", field="codenv")
    sets = as_text_list(extra.get("packageSets") or [], "codenv.packageSets")
    return EnvSpec(
        python=python_of(doc.get("pythonInterpreter")) or default_python(),
        install_core_packages=as_flag(doc.get("installCorePackages", True), "installCorePackages"),
        install_jupyter_support=as_flag(doc.get("installJupyterSupport"), "installJupyterSupport"),
        package_sets=tuple(SetRef.parse(text) for text in sets),
        requested=as_text(doc.get("specPackageList") or "", "specPackageList"),
        description=as_text(extra.get("description") or "", "codenv.description"),
    )


# ---- saving: what changed ------------------------------------------------------------------


def _mirrored(current: Mapping[str, Any], submitted: Mapping[str, Any], key: str) -> Any:
    """A field shown both at the top and in `desc`: the copy that changed wins; both changed
    to different values is refused; None when neither changed."""
    top_now, desc_now = current.get(key), current["desc"].get(key)
    desc = submitted.get("desc") or {}
    top, inner = submitted.get(key, top_now), desc.get(key, desc_now)
    top_changed, desc_changed = top != top_now, inner != desc_now
    if top_changed and desc_changed and top != inner:
        raise InvalidInput(
            f"{key} and desc.{key} were changed to different values; change one of them",
            field=key,
        )
    if top_changed:
        return top
    return inner if desc_changed else None


def _changed(now: Any, new: Any) -> Any:
    return None if new is None or new == now else new


def _permission_change(current: Mapping[str, Any], doc: Mapping[str, Any]) -> PermissionChange:
    owner = _mirrored(current, doc, "owner")
    usable = _mirrored(current, doc, "usableByAll")
    entries = _mirrored(current, doc, "permissions")
    grants = None
    if entries is not None:
        now = grants_of(current["permissions"])
        grants = grants_of(entries)
        if grant_keys(grants) == grant_keys(now):
            grants = None
    return PermissionChange(
        owner=as_text(owner, "owner") if owner is not None else None,
        usable_by_all=as_flag(usable, "usableByAll") if usable is not None else None,
        grants=grants,
    )


def _checked_options(tokens: Any, shown: list[str], field: str) -> tuple[str, ...]:
    """Options as submitted; a masked credential that is not one shown is refused (it would
    store `***`)."""
    items = as_text_list(tokens, field)
    for item in items:
        if f"{MASK}@" in item and item not in shown:
            raise InvalidInput(
                f"{field}: {item!r} holds a masked credential; type the credential again",
                field=field,
            )
    return tuple(items)


def _options_change(current: Mapping[str, Any], desc: Mapping[str, Any]) -> dict[str, Any]:
    now = current["desc"]["envSettings"]
    new = desc.get("envSettings") or {}
    inherit = as_flag(new.get("inheritGlobalSettings", now["inheritGlobalSettings"]), "envSettings")
    pip = new.get("pipInstallExtraOptions", now["pipInstallExtraOptions"])
    venv = new.get("virtualenvCreateExtraOptions", now["virtualenvCreateExtraOptions"])
    pip_opts = _checked_options(pip, now["pipInstallExtraOptions"], "pipInstallExtraOptions")
    venv_opts = _checked_options(
        venv, now["virtualenvCreateExtraOptions"], "virtualenvCreateExtraOptions"
    )
    if inherit != now["inheritGlobalSettings"]:
        if inherit:
            return {"inherit_install_options": True, "inherit_venv_options": True}
        return {"install_options": pip_opts, "venv_options": venv_opts}
    changes: dict[str, Any] = {}
    if list(pip_opts) != now["pipInstallExtraOptions"]:
        changes["install_options"] = pip_opts
    if list(venv_opts) != now["virtualenvCreateExtraOptions"]:
        changes["venv_options"] = venv_opts
    return changes


def _sets_change(now: list[str], new: Any) -> dict[str, Any]:
    if new is None:
        return {}
    wanted = as_text_list(new, "codenv.packageSets")
    if wanted == now:
        return {}
    kept = [ref for ref in now if ref in wanted]
    removed = tuple(ref for ref in now if ref not in wanted)
    added = tuple(ref for ref in wanted if ref not in kept)
    return {"remove_sets": removed, "add_sets": added}


def _spec_change(current: Mapping[str, Any], doc: Mapping[str, Any]) -> SpecChanges | None:
    now_desc, desc = current["desc"], doc.get("desc") or {}
    now_extra, extra = current["codenv"], doc.get("codenv") or {}
    if not isinstance(extra, dict):
        raise InvalidInput("codenv must be an object", field="codenv")
    interpreter = _changed(now_desc["pythonInterpreter"], desc.get("pythonInterpreter"))
    core = _changed(now_desc["installCorePackages"], desc.get("installCorePackages"))
    jupyter = _changed(now_desc["installJupyterSupport"], desc.get("installJupyterSupport"))
    requested = _changed(current["specPackageList"], doc.get("specPackageList"))
    description = _changed(now_extra["description"], extra.get("description"))
    fields: dict[str, Any] = {
        **_options_change(current, desc),
        **_sets_change(now_extra["packageSets"], extra.get("packageSets")),
    }
    if interpreter is not None:
        fields["python"] = python_of(interpreter)
    if core is not None:
        fields["install_core_packages"] = as_flag(core, "desc.installCorePackages")
    if jupyter is not None:
        fields["install_jupyter_support"] = as_flag(jupyter, "desc.installJupyterSupport")
    if requested is not None:
        fields["requested"] = as_text(requested, "specPackageList")
    if description is not None:
        fields["description"] = as_text(description, "codenv.description")
    return SpecChanges(**fields) if fields else None


def _script_change(current: Mapping[str, Any], doc: Mapping[str, Any]) -> ScriptChange:
    now_extra, extra = current["codenv"], doc.get("codenv") or {}
    script = _changed(current["resourcesInitScript"], doc.get("resourcesInitScript"))
    on_update = _changed(now_extra["runInitScriptOnUpdate"], extra.get("runInitScriptOnUpdate"))
    on_api = _changed(now_extra["runInitScriptOnApiNode"], extra.get("runInitScriptOnApiNode"))
    return ScriptChange(
        script=None if script is None else as_text(script, "resourcesInitScript"),
        run_on_update=None if on_update is None else as_flag(on_update, "runInitScriptOnUpdate"),
        run_on_api_node=None if on_api is None else as_flag(on_api, "runInitScriptOnApiNode"),
    )


def settings_change(current: Mapping[str, Any], submitted: Any) -> SettingsChange:
    """§5.2: what a saved settings document changes against `current` (what GET rendered).
    Read-only fields are ignored; what codenv lacks is refused."""
    if not isinstance(submitted, dict):
        raise InvalidInput("the settings must be a JSON object", field="body")
    refuse_unsupported(submitted)
    return SettingsChange(
        spec=_spec_change(current, submitted),
        script=_script_change(current, submitted),
        permissions=_permission_change(current, submitted),
    )
