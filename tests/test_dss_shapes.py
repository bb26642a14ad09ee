"""The DSS API's pure translations (api/dss_compat/shapes.py, shapes_input.py), without a
server: what a DSS script reads from codenv's envs, and what its saved settings change (only
what differs from what it was shown, §5.2)."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest

from codenv.api.dss_compat import shapes, shapes_input
from codenv.api.dss_compat.errors import DssError, dss_status
from codenv.domain.errors import InvalidInput, NotFound
from codenv.domain.spec import EnvSpec, SpecChanges
from codenv.services.access_views import EnvPermissions, Grant
from codenv.services.dss_code_envs import EnvSettings
from codenv.services.resources import InitScript
from codenv.services.views import Capabilities, EnvInfo

MASKED_INDEX = "https://reader:***@repo.example/simple"


def info(**spec_fields: Any) -> EnvInfo:
    spec = EnvSpec(
        python="3.11",
        install_jupyter_support=True,
        requested="alpha\n",
        install_options=("--index-url", MASKED_INDEX),
        **spec_fields,
    ).to_dict()
    return EnvInfo(
        name="ml_env",
        owner="alice",
        status="ready",
        spec=spec,
        base_packages=["codenv-runtime==0.1.0", "ipykernel>=6"],
        python="3.11",
        interpreter="/usr/bin/python3.11",
        active_revision=2,
        spec_differs=False,
        size_bytes=10,
        path="/srv/codenv/envs/ml_env",
        created_at=None,
        last_build=None,
        capabilities=Capabilities(True, True, True, False),
    )


def settings(*, script: bool = True, level: str = "manage_users") -> EnvSettings:
    grants = [Grant("data-team", "update"), Grant("readers", "use")]
    return EnvSettings(
        info=info(),
        permissions=EnvPermissions("ml_env", "alice", True, grants, level),
        init_script=InitScript("ml_env", "print(1)\n", True, False) if script else None,
        actual=[
            {"name": "alpha", "version": "1.0"},
            {"name": "codenv-runtime", "version": "0.1.0"},
        ],
        python_version="3.11.9",
        kernel="codenv-ml_env",
    )


@pytest.fixture
def shown() -> dict[str, Any]:
    return shapes.render_settings(settings())


def test_interpreters_map_to_python_versions_both_ways() -> None:
    assert shapes.interpreter_of("3.11") == "PYTHON311"
    assert shapes.interpreter_of("3.6") == "PYTHON36"
    assert shapes.python_of("PYTHON311") == "3.11"
    assert shapes.python_of("python39") == "3.9"
    assert shapes.python_of(None) is None


@pytest.mark.parametrize("old", ["PYTHON27", "PYTHON34", "PYTHON35", "CUSTOM"])
def test_python_2_old_versions_and_custom_interpreters_are_refused_with_400(old: str) -> None:
    with pytest.raises(DssError) as refused:
        shapes.python_of(old)
    assert dss_status(refused.value) == 400
    assert "3.6" in refused.value.message or "custom" in refused.value.message


def test_an_unknown_interpreter_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="PYTHON3X"):
        shapes.python_of("JYTHON")


def test_python_in_any_case_is_accepted_and_r_is_refused() -> None:
    shapes.check_lang("python")
    shapes.check_lang("PYTHON")
    with pytest.raises(DssError, match="Python code envs only") as created:
        shapes.check_lang("R", creating=True)
    assert dss_status(created.value) == 400
    with pytest.raises(NotFound):
        shapes.check_lang("R")


def test_permission_booleans_and_levels_round_trip() -> None:
    levels = ["use", "update", "manage_users"]
    entries = [shapes.dss_permission(Grant(f"g{n}", level)) for n, level in enumerate(levels)]
    assert entries[1] == {"group": "g1", "use": True, "update": True, "manageUsers": False}
    assert shapes.grants_of(entries) == (("g0", "use"), ("g1", "update"), ("g2", "manage_users"))
    # The highest right given wins; an entry that gives none is dropped.
    mixed = [
        {"group": "a", "use": False, "update": False, "manageUsers": True},
        {"group": "b", "use": False, "update": False, "manageUsers": False},
    ]
    assert shapes.grants_of(mixed) == (("a", "manage_users"),)


def test_settings_render_as_design_settings_the_client_reads(shown: dict[str, Any]) -> None:
    assert "versions" not in shown  # it would make the client pick the automation class
    assert shown["envName"] == "ml_env" and shown["envLang"] == "PYTHON"
    assert shown["specPackageList"] == "alpha\n"
    assert shown["actualPackageList"] == "alpha==1.0\ncodenv-runtime==0.1.0"
    assert shown["mandatoryPackageList"] == "codenv-runtime==0.1.0\nipykernel>=6"
    assert shown["desc"]["pythonInterpreter"] == "PYTHON311"
    assert shown["desc"]["installJupyterSupport"] is True
    assert shown["desc"]["envSettings"]["inheritGlobalSettings"] is False
    assert shown["desc"]["envSettings"]["pipInstallExtraOptions"][1] == MASKED_INDEX
    assert shown["permissions"] == shown["desc"]["permissions"]
    assert shown["permissions"][0]["update"] is True
    assert shown["resourcesInitScript"] == "print(1)\n"
    assert shown["kernelSpecName"] == "codenv-ml_env"
    assert shown["info"] == {"pythonVersion": "3.11.9"}
    assert shown["canManageUsersCodeEnv"] is True
    for key in ("allContainerConfs", "containerConfs", "dockerfileAtStart"):
        assert not shown[key]


def test_the_init_script_is_hidden_from_those_who_may_not_change_the_env() -> None:
    shown = shapes.render_settings(settings(script=False, level="use"))
    assert shown["resourcesInitScript"] == ""
    assert shown["canManageUsersCodeEnv"] is False


def test_saving_what_was_shown_changes_nothing(shown: dict[str, Any]) -> None:
    change = shapes_input.settings_change(shown, copy.deepcopy(shown))
    assert change.spec is None
    assert change.script.empty and change.permissions.empty


def test_only_the_edited_package_list_is_saved(shown: dict[str, Any]) -> None:
    edited = copy.deepcopy(shown)
    edited["specPackageList"] = "alpha\nbeta\n"
    change = shapes_input.settings_change(shown, edited)
    assert change.spec == SpecChanges(requested="alpha\nbeta\n")
    assert change.permissions.empty and change.script.empty


def test_the_copy_that_changed_wins_and_two_different_changes_are_refused(
    shown: dict[str, Any],
) -> None:
    edited = copy.deepcopy(shown)
    edited["desc"]["owner"] = "bob"
    edited["usableByAll"] = False
    change = shapes_input.settings_change(shown, edited)
    assert change.permissions.owner == "bob"
    assert change.permissions.usable_by_all is False
    assert change.permissions.grants is None and change.spec is None
    edited["owner"] = "carol"
    with pytest.raises(InvalidInput, match="different values"):
        shapes_input.settings_change(shown, edited)


def test_grants_equal_but_written_differently_are_no_change(shown: dict[str, Any]) -> None:
    edited = copy.deepcopy(shown)
    edited["permissions"] = [
        {"group": "READERS", "use": True},
        {"group": "data-team", "use": False, "update": True, "manageUsers": False},
    ]
    assert shapes_input.settings_change(shown, edited).permissions.empty
    edited["permissions"].append({"group": "ops", "use": True, "update": False})
    grants = shapes_input.settings_change(shown, edited).permissions.grants
    assert grants is not None and ("ops", "use") in grants


def test_install_options_follow_the_single_inherit_flag(shown: dict[str, Any]) -> None:
    edited = copy.deepcopy(shown)
    edited["desc"]["envSettings"]["inheritGlobalSettings"] = True
    change = shapes_input.settings_change(shown, edited)
    assert change.spec == SpecChanges(inherit_install_options=True, inherit_venv_options=True)
    edited = copy.deepcopy(shown)
    edited["desc"]["envSettings"]["pipInstallExtraOptions"].append("--pre")
    change = shapes_input.settings_change(shown, edited)
    assert change.spec == SpecChanges(install_options=("--index-url", MASKED_INDEX, "--pre"))


def test_a_new_masked_credential_is_refused(shown: dict[str, Any]) -> None:
    edited = copy.deepcopy(shown)
    edited["desc"]["envSettings"]["pipInstallExtraOptions"] = [
        "--extra-index-url",
        "https://other:***@mirror.example/simple",
    ]
    with pytest.raises(InvalidInput, match="masked credential"):
        shapes_input.settings_change(shown, edited)


def test_python_core_jupyter_sets_description_and_script_changes(shown: dict[str, Any]) -> None:
    edited = copy.deepcopy(shown)
    edited["desc"]["pythonInterpreter"] = "PYTHON312"
    edited["desc"]["installJupyterSupport"] = False
    edited["codenv"]["packageSets"] = ["visual-ml:cpu"]
    edited["codenv"]["description"] = "for ML"
    edited["resourcesInitScript"] = "print(2)\n"
    edited["codenv"]["runInitScriptOnApiNode"] = False
    change = shapes_input.settings_change(shown, edited)
    assert change.spec == SpecChanges(
        python="3.12",
        install_jupyter_support=False,
        add_sets=("visual-ml:cpu",),
        description="for ML",
    )
    assert change.script.script == "print(2)\n"
    assert change.script.run_on_api_node is False and change.script.run_on_update is None


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("desc", "conda"), True, "conda"),
        (("specCondaEnvironment",), "numpy", "conda"),
        (("desc", "envSettings", "cranMirrorURL"), "https://cran", "CRAN"),
        (("allContainerConfs",), True, "container images"),
        (("desc", "containerConfs"), ["k8s"], "container images"),
        (("dockerfileAtEnd",), "RUN true", "container images"),
        (("versions",), [], "automation versions"),
        (("deploymentMode",), "AUTOMATION_SINGLE", "AUTOMATION_SINGLE"),
        (("desc", "deploymentMode"), "PLUGIN_MANAGED", "PLUGIN_MANAGED"),
        (("desc", "customInterpreter"), "/opt/python", "custom"),
    ],
)
def test_what_codenv_lacks_is_refused_with_400(
    shown: dict[str, Any], path: tuple[str, ...], value: Any, words: str
) -> None:
    edited = copy.deepcopy(shown)
    target = edited
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(DssError, match=words) as refused:
        shapes_input.settings_change(shown, edited)
    assert dss_status(refused.value) == 400


def test_a_create_body_becomes_a_spec() -> None:
    def no_default() -> str:
        raise AssertionError("the body names its Python")

    body = {
        "deploymentMode": "DESIGN_MANAGED",
        "pythonInterpreter": "PYTHON310",
        "installCorePackages": True,
        "installJupyterSupport": True,
        "corePackagesSet": "PANDAS13",
        "conda": False,
        "envName": "ML_ENV",
        "specPackageList": "alpha\n",
        "codenv": {"packageSets": ["visual-ml"], "description": "d"},
    }
    spec = shapes_input.create_spec(body, "python", "ml_env", no_default)
    assert spec.python == "3.10" and spec.install_jupyter_support and spec.install_core_packages
    assert spec.requested == "alpha\n" and [str(ref) for ref in spec.package_sets] == ["visual-ml"]
    bare = shapes_input.create_spec(
        {"deploymentMode": "DESIGN_MANAGED"}, "PYTHON", "x", lambda: "3.12"
    )
    assert bare == EnvSpec(python="3.12")


def test_create_bodies_codenv_cannot_honour_are_refused() -> None:
    with pytest.raises(DssError, match="Python code envs only"):
        shapes_input.create_spec({}, "R", "x", lambda: "3.12")
    with pytest.raises(DssError, match="DESIGN_MANAGED"):
        shapes_input.create_spec({"deploymentMode": "EXTERNAL_CONDA_NAMED"}, "PYTHON", "x", str)
    with pytest.raises(DssError, match="conda"):
        shapes_input.create_spec({"conda": True}, "PYTHON", "x", lambda: "3.12")
    with pytest.raises(InvalidInput, match="envName"):
        shapes_input.create_spec({"envName": "other"}, "PYTHON", "x", lambda: "3.12")
    with pytest.raises(InvalidInput, match="JSON object"):
        shapes_input.create_spec(["x"], "PYTHON", "x", lambda: "3.12")


def test_immediate_results_carry_dss_messages() -> None:
    item = shapes.message("INFO", "Code env already up to date", "revision 2")
    result = shapes.immediate_result("ml_env", [item], upToDate=True)
    assert result["messages"]["error"] is False and result["messages"]["anyMessage"] is True
    assert result["messages"]["maxSeverity"] == "INFO"
    assert result["codenv"]["upToDate"] is True
    aborted = shapes.aborted_result("ml_env", "abc")
    assert aborted["messages"]["error"] is True and aborted["messages"]["fatal"] is True


def test_list_items_carry_what_scripts_read() -> None:
    listed = shapes.list_item(replace(info(), owner="bob"), "codenv-ml_env")
    assert listed["envLang"] == "PYTHON" and listed["envName"] == "ml_env"
    assert listed["deploymentMode"] == "DESIGN_MANAGED" and listed["owner"] == "bob"
    assert listed["pythonInterpreter"] == "PYTHON311"
