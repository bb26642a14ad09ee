"""Container configs and each env's container selection, above the image builder: the rules a
user relies on (names, "all" versus a config added later, a missing config flagged, an image
failure that leaves the env ready). Real image builds: tests/test_images.py."""

from __future__ import annotations

import re

import pytest

from codenv.domain.containers import (
    REPOSITORY,
    ContainerSelection,
    parse_env_pairs,
    parse_image_ref,
    parse_registry,
    repository_name,
    validate_env_path,
)
from codenv.domain.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied
from codenv.domain.spec import EnvSpec
from codenv.services import builds, containers, envs, images
from codenv.services.actor import Actor
from codenv.services.app import Codenv

SECRET = "hunter2-registry"


def _config(name: str, **changes: object) -> containers.NewContainerConfig:
    values: dict[str, object] = {
        "name": name,
        "base": "oci:/srv/base:latest",
        "registry": "127.0.0.1:5000/team",
        "insecure": True,
    }
    values.update(changes)
    return containers.NewContainerConfig(**values)  # type: ignore[arg-type]


def test_repository_names_are_lowercase_and_never_collide() -> None:
    names = ["ml", "ML", "Ml", "ml-1", "a--b", "x-", "Data-Science", "data-science"]
    mapped = [repository_name(name) for name in names]
    assert len(set(mapped)) == len(names)
    assert all(REPOSITORY.fullmatch(name) for name in mapped)
    assert repository_name("ml") == "ml"  # a valid lowercase name is itself
    assert re.fullmatch(r"ml\.[0-9a-f]{8}", repository_name("ML"))
    assert repository_name("ML") == repository_name("ML")  # deterministic


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "registry"),
        ("http://", "registry"),
        ("host:5000/Upper", "registry"),
        ("a b/c", "registry"),
    ],
)
def test_a_bad_registry_is_refused_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_registry(text)
    assert refused.value.field == field


def test_registry_and_base_references_parse() -> None:
    assert parse_registry("127.0.0.1:5000/team/ml") == ("127.0.0.1:5000", "team/ml")
    hub = parse_image_ref("debian:bookworm")
    assert (hub.registry, hub.repository, hub.tag) == ("docker.io", "library/debian", "bookworm")
    local = parse_image_ref("oci:/srv/layouts/base:v1")
    assert (local.layout, local.tag) == ("/srv/layouts/base", "v1")
    pinned = parse_image_ref("reg.example.com:443/base/py@sha256:" + "a" * 64)
    assert pinned.reference == "sha256:" + "a" * 64
    for bad in ("oci:relative/path", "oci:/a/../b", "host/Repo:tag", "x@sha256:short"):
        with pytest.raises(InvalidInput) as refused:
            parse_image_ref(bad)
        assert refused.value.field == "base"


def test_env_vars_and_env_path_are_checked() -> None:
    assert parse_env_pairs(["A=1", "B=x=y"]) == (("A", "1"), ("B", "x=y"))
    for bad in (["A"], ["1A=2"], ["A=1", "A=2"]):
        with pytest.raises(InvalidInput) as refused:
            parse_env_pairs(bad)
        assert refused.value.field == "env"
    assert validate_env_path("/opt/codenv/env") == "/opt/codenv/env"
    for bad in ("relative/env", "/opt", "/usr/bin/env", "/tmp/x/env", "/opt/../etc/x", "/etc/x/y"):
        with pytest.raises(InvalidInput) as refused:
            validate_env_path(bad)
        assert refused.value.field == "env_path"


def test_selection_parses_none_all_and_names() -> None:
    assert ContainerSelection.parse("all").chosen(["a", "b"]) == ["a", "b"]
    picked = ContainerSelection.parse("b, c,b", "copy")
    assert picked.configs == ("b", "c") and picked.resources == "copy"
    assert picked.chosen(["a", "b"]) == ["b"] and picked.missing(["a", "b"]) == ["c"]
    with pytest.raises(InvalidInput) as refused:
        ContainerSelection.parse("a", "sometimes")
    assert refused.value.field == "container_resources"


def test_only_administrators_manage_configs_and_passwords_stay_hidden(
    app: Codenv, admin: Actor
) -> None:
    with pytest.raises(PermissionDenied):
        containers.add_container_config(app, Actor(name="bob", may_create=True), _config("k8s"))
    added = containers.add_container_config(
        app, admin, _config("k8s", username="pusher", password=SECRET, env=("A=1",))
    )
    assert added.password_set and added.registry == "127.0.0.1:5000/team"
    listed = [c.to_dict() for c in containers.list_container_configs(app, admin)]
    assert SECRET not in repr(listed) and listed[0]["env"] == {"A": "1"}
    with pytest.raises(AlreadyExists):
        containers.add_container_config(app, admin, _config("K8S"))
    with pytest.raises(InvalidInput) as refused:
        containers.add_container_config(app, admin, _config("bad", env_path="/usr/bin/x"))
    assert refused.value.field == "env_path"


def _image_builds(app: Codenv, admin: Actor, env: str) -> list[builds.BuildInfo]:
    return [b for b in builds.list_builds(app, admin, env) if b.kind == "image"]


def test_all_means_the_configs_of_each_build_and_failures_leave_the_env_ready(
    app: Codenv, admin: Actor, newest: str
) -> None:
    containers.add_container_config(app, admin, _config("one"))
    envs.create_env(app, admin, "Demo", EnvSpec(python=newest, requested="alpha\n"))
    images.set_containers(app, admin, "Demo", ContainerSelection.parse("all", "none"))
    builds.request_update(app, admin, "Demo", rebuild=True)
    shown = images.env_images(app, admin, "Demo")
    [image] = shown.images
    # The base image does not exist: the image fails, with the reason; the env does not.
    assert (image.config, image.status) == ("one", "failed")
    assert "/srv/base is not an OCI image layout" in (image.error or "")
    assert envs.show_env(app, admin, "Demo").status == "ready"
    containers.add_container_config(app, admin, _config("two"))
    before = len(_image_builds(app, admin, "Demo"))
    later = images.env_images(app, admin, "Demo")
    assert [(i.config, i.status) for i in later.images] == [("one", "failed"), ("two", "not built")]
    assert len(_image_builds(app, admin, "Demo")) == before  # adding a config builds nothing
    images.build_images(app, admin, "Demo", "two")
    assert len(_image_builds(app, admin, "Demo")) == before + 1


def test_a_removed_config_is_flagged_on_the_envs_that_select_it(
    app: Codenv, admin: Actor, newest: str
) -> None:
    containers.add_container_config(app, admin, _config("gpu"))
    envs.create_env(app, admin, "demo", EnvSpec(python=newest, requested="alpha\n"))
    with pytest.raises(NotFound) as refused:
        images.set_containers(app, admin, "demo", ContainerSelection.parse("nope"))
    assert refused.value.field == "containers"
    images.set_containers(app, admin, "demo", ContainerSelection.parse("gpu"))
    containers.remove_container_config(app, admin, "gpu")
    shown = images.env_images(app, admin, "demo")
    assert shown.missing_configs == ["gpu"] and shown.selected == []
    with pytest.raises(InvalidInput) as refused:
        images.build_images(app, admin, "demo")
    assert refused.value.field == "containers"
