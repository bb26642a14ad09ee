"""Request bodies. Responses are the services' views (`to_dict()`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SpecBody(BaseModel):
    """A code env's spec, every field of it."""

    # All of EnvSpec's fields (tests/test_cli_remote.py checks): one left out here would be
    # dropped from what the remote CLI sends.
    python: str = Field(description="Python version, like 3.11")
    install_core_packages: bool = True
    install_jupyter_support: bool = False
    package_sets: list[str] = Field(default_factory=list, description="ID or ID:variant")
    requested: str = Field("", description="requirements.txt text")
    description: str = ""
    resources_init_script: str = ""
    run_init_script_on_update: bool = True
    run_init_script_on_api_node: bool = True
    install_options: list[str] | None = Field(None, description="null: the node's options")
    venv_options: list[str] | None = Field(None, description="null: the node's options")


class CreateEnvBody(SpecBody):
    name: str


class SaveSpecBody(BaseModel):
    """Changes to the saved spec (null or empty: unchanged), and what to do after saving."""

    requested: str | None = None
    add: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    add_sets: list[str] = Field(default_factory=list)
    remove_sets: list[str] = Field(default_factory=list)
    python: str | None = None
    install_core_packages: bool | None = None
    install_jupyter_support: bool | None = None
    description: str | None = None
    resources_init_script: str | None = None
    run_init_script_on_update: bool | None = None
    run_init_script_on_api_node: bool | None = None
    install_options: list[str] | None = None
    inherit_install_options: bool = False
    venv_options: list[str] | None = None
    inherit_venv_options: bool = False
    update: bool = Field(False, description="Save and update")
    upgrade_all: bool = False
    rebuild: bool = False


class UpdateBody(BaseModel):
    upgrade_all: bool = False
    rebuild: bool = False


class RollbackBody(BaseModel):
    revision: int = Field(ge=1)


class InitScriptBody(BaseModel):
    script: str | None = None
    run_on_update: bool | None = None
    run_on_api_node: bool | None = None


class PermissionsBody(BaseModel):
    owner: str | None = None
    usable_by_all: bool | None = None
    grants: list[tuple[str, str]] | None = Field(None, description="[group, level] pairs")


class LoginBody(BaseModel):
    name: str = Field(max_length=256)
    password: str = Field(max_length=1024)


class PathBody(BaseModel):
    path: str = Field(max_length=4096)


class UserBody(BaseModel):
    name: str
    password: str | None = None
    display_name: str = ""
    groups: list[str] = Field(default_factory=list)


class UserChangeBody(BaseModel):
    display_name: str | None = None
    active: bool | None = None


class PasswordBody(BaseModel):
    new_password: str
    current_password: str | None = None


class GroupBody(BaseModel):
    name: str
    administrator: bool = False
    may_create_envs: bool = False
    may_manage_all_envs: bool = False


class GroupRightsBody(BaseModel):
    administrator: bool | None = None
    may_create_envs: bool | None = None
    may_manage_all_envs: bool | None = None


class TokenBody(BaseModel):
    name: str = ""
    expires_at: datetime | None = None
    user: str | None = None


class RequestBody(SpecBody):
    name: str
    message: str = ""


class RejectBody(BaseModel):
    reason: str


class OptionsBody(BaseModel):
    tokens: list[str]


class AllowRequestsBody(BaseModel):
    allow: bool
