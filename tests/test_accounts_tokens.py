"""API tokens: shown once, stored hashed, scoped to their user, revocation and expiry at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from codenv.domain.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from codenv.services import accounts, tokens
from codenv.services.actor import Actor, AuthenticationFailed
from codenv.services.app import Codenv
from codenv.storage.models import ApiTokenRow, utcnow
from support.access import opened, user_in
from support.databases import database_url  # noqa: F401

ADMIN = Actor.local_admin()


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Codenv]:  # noqa: F811
    with opened(tmp_path / "home", database_url, "http://127.0.0.1:9/simple") as opened_app:
        yield opened_app


def _refused(app: Codenv, secret: str) -> str:
    with pytest.raises(AuthenticationFailed) as refused:
        tokens.authenticate_token(app, secret)
    assert refused.value.status == 401
    return refused.value.message


def test_a_token_is_shown_once_and_stored_hashed(app: Codenv) -> None:
    alice = user_in(app, ADMIN, "alice", group="makers", may_create_envs=True)
    created = tokens.create_token(app, alice, name="laptop")
    secret = created.secret
    assert secret.startswith("cdv_") and len(secret) >= 40
    assert created.token.prefix == secret[:12] and created.token.status == "active"
    assert created.to_dict()["secret"] == secret

    listed = tokens.list_tokens(app, alice)
    assert [(t.name, t.prefix, t.user) for t in listed] == [("laptop", secret[:12], "alice")]
    assert secret not in str([t.to_dict() for t in listed])
    with app.db.session() as session:
        row = session.scalars(select(ApiTokenRow)).one()
        stored = [str(getattr(row, column.key)) for column in ApiTokenRow.__table__.columns]
    assert not any(secret in value for value in stored)
    assert row.secret_hash == tokens.secret_hash(secret)

    actor = tokens.authenticate_token(app, secret, source="192.0.2.1")
    assert (actor.name, actor.user_id, actor.may_create, actor.is_admin) == (
        "alice",
        alice.user_id,
        True,
        False,
    )
    assert actor.source == "192.0.2.1"
    assert tokens.list_tokens(app, alice)[0].last_used_at is not None


def test_a_token_acts_with_its_users_rights_as_of_now(app: Codenv) -> None:
    bob = user_in(app, ADMIN, "bob", group="team")
    secret = tokens.create_token(app, bob).secret
    assert not tokens.authenticate_token(app, secret).may_create
    accounts.set_group_rights(app, ADMIN, "team", may_create_envs=True)
    assert tokens.authenticate_token(app, secret).may_create
    accounts.disable_user(app, ADMIN, "bob")
    _refused(app, secret)


def test_revocation_takes_effect_at_once(app: Codenv) -> None:
    carol = user_in(app, ADMIN, "carol")
    kept = tokens.create_token(app, carol, name="kept")
    doomed = tokens.create_token(app, carol, name="doomed")
    assert tokens.authenticate_token(app, doomed.secret).name == "carol"

    revoked = tokens.revoke_token(app, carol, doomed.token.id)
    assert revoked.status == "revoked" and revoked.revoked_at is not None
    message = _refused(app, doomed.secret)
    assert tokens.authenticate_token(app, kept.secret).name == "carol"
    # Unknown, malformed, revoked: one message.
    assert message == _refused(app, "cdv_" + "x" * 43) == _refused(app, "garbage")
    statuses = {t.name: t.status for t in tokens.list_tokens(app, carol)}
    assert statuses == {"kept": "active", "doomed": "revoked"}


def test_expiry_takes_effect_at_once(app: Codenv) -> None:
    dave = user_in(app, ADMIN, "dave")
    soon = tokens.create_token(app, dave, expires_at=utcnow() + timedelta(seconds=1))
    later = tokens.create_token(app, dave, expires_at=utcnow() + timedelta(days=30))
    assert tokens.authenticate_token(app, soon.secret).name == "dave"
    time.sleep(1.1)
    _refused(app, soon.secret)
    assert tokens.authenticate_token(app, later.secret).name == "dave"
    future = utcnow() + timedelta(days=31)
    with pytest.raises(AuthenticationFailed):
        tokens.authenticate_token(app, later.secret, now=future)
    statuses = {t.id: t.status for t in tokens.list_tokens(app, dave)}
    assert statuses == {soon.token.id: "expired", later.token.id: "active"}
    with pytest.raises(InvalidInput) as past:
        tokens.create_token(app, dave, expires_at=utcnow() - timedelta(seconds=1))
    assert past.value.field == "expires_at" and past.value.code == "invalid_request"


def test_tokens_belong_to_their_user(app: Codenv) -> None:
    erin = user_in(app, ADMIN, "erin")
    frank = user_in(app, ADMIN, "frank")
    boss = user_in(app, ADMIN, "boss", group="admins", administrator=True)
    token = tokens.create_token(app, erin).token
    assert tokens.list_tokens(app, frank) == []
    with pytest.raises(NotFound):
        tokens.revoke_token(app, frank, token.id)
    with pytest.raises(PermissionDenied):
        tokens.list_tokens(app, frank, user="erin")
    with pytest.raises(PermissionDenied):
        tokens.create_token(app, frank, user="erin")

    assert [t.id for t in tokens.list_tokens(app, boss, user="erin")] == [token.id]
    assert [t.user for t in tokens.list_tokens(app, boss, all_users=True)] == ["erin"]
    assert tokens.revoke_token(app, boss, token.id).status == "revoked"

    # The local administrator has no account: it names the user a token is for.
    with pytest.raises(InvalidInput) as no_account:
        tokens.create_token(app, ADMIN)
    assert no_account.value.field == "user"
    made = tokens.create_token(app, ADMIN, user="frank", name="for the remote CLI")
    assert made.token.user == "frank" and made.token.created_by == ADMIN.name
    assert tokens.authenticate_token(app, made.secret).name == "frank"


def test_an_existing_tokens_expiry_can_be_changed_by_its_owner(app: Codenv) -> None:
    gina = user_in(app, ADMIN, "gina")
    other = user_in(app, ADMIN, "hank")
    token = tokens.create_token(app, gina)
    soon = utcnow() + timedelta(days=1)
    assert tokens.set_token_expiry(app, gina, token.token.id, soon).expires_at is not None
    with pytest.raises(AuthenticationFailed):
        tokens.authenticate_token(app, token.secret, now=soon + timedelta(seconds=1))
    assert tokens.set_token_expiry(app, gina, token.token.id, None).expires_at is None
    assert tokens.authenticate_token(app, token.secret, now=soon + timedelta(days=9)).name == "gina"
    with pytest.raises(NotFound):
        tokens.set_token_expiry(app, other, token.token.id, None)
    tokens.revoke_token(app, gina, token.token.id)
    with pytest.raises(Conflict):
        tokens.set_token_expiry(app, gina, token.token.id, None)
