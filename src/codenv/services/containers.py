"""Container configs (administrators): a base image, the registry and repository images are
pushed to, the env's path in the image, environment variables. Registry passwords are used
by image builds and never shown: views say only whether one is set."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from codenv.domain.containers import (
    DEFAULT_ENV_PATH,
    ContainerConfig,
    parse_env_pairs,
    parse_image_ref,
    parse_registry,
    validate_config_name,
    validate_credentials,
    validate_env_path,
)
from codenv.domain.errors import AlreadyExists, NotFound
from codenv.domain.names import name_key
from codenv.services.actor import Actor, require_admin
from codenv.services.app import Codenv
from codenv.services.audit import record
from codenv.storage.models import ContainerConfigRow


@dataclass(frozen=True)
class NewContainerConfig:
    """What an administrator gives: the CLI's and the API's options, unparsed."""

    name: str
    base: str
    registry: str  # HOST[:PORT]/REPO
    insecure: bool = False
    env: tuple[str, ...] = ()  # K=V
    env_path: str = DEFAULT_ENV_PATH
    username: str = ""
    password: str = ""


@dataclass(frozen=True)
class ContainerConfigInfo:
    name: str
    base: str
    registry: str  # HOST[:PORT]/REPO, as given
    insecure: bool
    env: dict[str, str]
    env_path: str
    resources_path: str
    username: str
    password_set: bool
    created_by: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_config(row: ContainerConfigRow) -> ContainerConfig:
    return ContainerConfig(
        name=row.name,
        base=row.base,
        registry=row.registry_host,
        repository=row.repository,
        insecure=row.insecure,
        env=tuple((str(k), str(v)) for k, v in row.env),
        env_path=row.env_path,
        username=row.username,
        password=row.password,
    )


def _info(row: ContainerConfigRow) -> ContainerConfigInfo:
    config = to_config(row)
    where = f"{row.registry_host}/{row.repository}" if row.repository else row.registry_host
    return ContainerConfigInfo(
        name=row.name,
        base=row.base,
        registry=where,
        insecure=row.insecure,
        env=dict(config.env),
        env_path=row.env_path,
        resources_path=config.resources_path,
        username=row.username,
        password_set=bool(row.password),
        created_by=row.created_by,
        created_at=row.created_at.isoformat(timespec="seconds"),
    )


def _checked(new: NewContainerConfig) -> ContainerConfigRow:
    """The row of a new config; every field validated, each refusal naming its field."""
    validate_config_name(new.name)
    parse_image_ref(new.base)
    host, repository = parse_registry(new.registry)
    pairs = parse_env_pairs(new.env)
    validate_credentials(new.username, new.password)
    return ContainerConfigRow(
        name=new.name,
        name_key=name_key(new.name),
        base=new.base.strip(),
        registry_host=host,
        repository=repository,
        insecure=new.insecure,
        env=[list(pair) for pair in pairs],
        env_path=validate_env_path(new.env_path),
        username=new.username,
        password=new.password,
    )


def add_container_config(app: Codenv, actor: Actor, new: NewContainerConfig) -> ContainerConfigInfo:
    require_admin(actor, "add container configs")
    row = _checked(new)
    row.created_by = actor.name
    try:
        with app.db.session() as session:
            session.add(row)
            session.flush()
            info = _info(row)
    except IntegrityError as error:
        raise AlreadyExists(
            f"a container config named {new.name!r} already exists", field="name"
        ) from error
    details = {k: v for k, v in info.to_dict().items() if k not in ("created_at", "created_by")}
    record(app, actor, "container.add", new.name, details)
    return info


def _all(session: Session) -> list[ContainerConfigRow]:
    return list(session.scalars(select(ContainerConfigRow).order_by(ContainerConfigRow.name_key)))


def list_container_configs(app: Codenv, actor: Actor) -> list[ContainerConfigInfo]:
    """Every config: anyone who may use envs sees them (the env's Containers tab lists them)."""
    with app.db.session() as session:
        return [_info(row) for row in _all(session)]


def config_names(app: Codenv) -> list[str]:
    with app.db.session() as session:
        return [row.name for row in _all(session)]


def _row(session: Session, name: str) -> ContainerConfigRow:
    row = session.scalar(
        select(ContainerConfigRow).where(ContainerConfigRow.name_key == name_key(name))
    )
    if row is None:
        raise NotFound(f"no container config named {name!r}", field="name")
    return row


def container_config(app: Codenv, name: str) -> ContainerConfig:
    """The config with its credentials, for an image build (never for a view)."""
    with app.db.session() as session:
        return to_config(_row(session, name))


def remove_container_config(app: Codenv, actor: Actor, name: str) -> None:
    """Remove a config. Envs that selected it keep it in their selection, flagged as missing;
    images already pushed stay in the registry until their revision or env goes."""
    require_admin(actor, "remove container configs")
    with app.db.session() as session:
        row = _row(session, name)
        shown = row.name
        session.delete(row)
    record(app, actor, "container.remove", shown, {})
