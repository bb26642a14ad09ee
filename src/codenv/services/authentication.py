"""Who is calling: password logins (slowed down after failures) and the Actor of a user.

A failed login never says whether the user exists: an unknown name, a wrong password and a
disabled user all answer the same AuthenticationFailed, after the same argon2 work. Failures are
counted per user name and source (client address): after `free_attempts` of them, logins for
that name from that source are refused for `base_delay_seconds`, doubling with each further
failure up to `max_delay_seconds`; a success clears the count. Each source also has a budget
across all names (`SOURCE_POLICY`), so one address cannot guess through many names; it drains
with time, not with a success. No count is per name alone: failures from one address never
lock a user out from another. The source is the TCP peer, or what a proxy the administrator
trusts says (http/auth.py), so a forged header neither resets a count nor blames another
address. The counters are a table, so they hold across server processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from codenv.domain.errors import AuthenticationFailed, TooManyAttempts
from codenv.domain.names import name_key
from codenv.services.accounts import ACCOUNT_NAME, verify_password
from codenv.services.actor import Actor
from codenv.services.app import Codenv
from codenv.services.audit import add_entry
from codenv.services.views import as_utc
from codenv.storage import queries
from codenv.storage.holders import Holder
from codenv.storage.models import LoginFailureRow, UserRow, utcnow

LOGIN_FAILED = "wrong user name or password"
SESSION_ENDED = "your session has ended; log in again"


# The name column of a source's budget across names: never an account's name.
ANY_NAME = "*"


@dataclass(frozen=True)
class LoginPolicy:
    free_attempts: int = 5
    base_delay_seconds: float = 30.0
    max_delay_seconds: float = 900.0
    # A count whose last failure is older than this starts again from zero.
    forget_after_seconds: float = 86400.0
    # When set, one failure is forgotten per this many seconds (a budget that refills).
    drain_seconds: float | None = None

    def delay(self, failures: int) -> float:
        if failures < self.free_attempts:
            return 0.0
        doubled = self.base_delay_seconds * 2.0 ** (failures - self.free_attempts)
        return min(self.max_delay_seconds, doubled)

    def remaining(self, failures: int, since_last: float) -> int:
        """The failures still counted `since_last` seconds after the last one."""
        if since_last > self.forget_after_seconds:
            return 0
        if self.drain_seconds:
            return max(0, failures - int(since_last // self.drain_seconds))
        return failures


DEFAULT_LOGIN_POLICY = LoginPolicy()
# 20 failures from one address across all names, then slowed down; one every 3 minutes is
# forgotten, so a busy office behind one address is not locked out by its typos.
SOURCE_POLICY = LoginPolicy(free_attempts=20, drain_seconds=180.0)


def actor_of(user: UserRow, source: str = "") -> Actor:
    """The rights of `user` as their groups grant them now."""
    return actor_of_holder(Holder.of_user(user), source)


def actor_of_holder(holder: Holder, source: str = "") -> Actor:
    """The rights of a token's or session's holder as their groups grant them now."""
    groups = holder.groups
    admin = any(group.administrator for group in groups)
    return Actor(
        name=holder.name,
        user_id=holder.user_id,
        groups=frozenset(group.name for group in groups),
        is_admin=admin,
        may_create=admin or any(group.may_create_envs for group in groups),
        may_manage_all=admin or any(group.may_manage_all_envs for group in groups),
        source=source,
    )


def load_actor(app: Codenv, user_id: int, *, source: str = "") -> Actor:
    """The Actor of a logged-in user (a browser session), with their rights as of now;
    AuthenticationFailed when the user was disabled or removed meanwhile."""
    with app.db.session() as session:
        user = session.get(UserRow, user_id)
        if user is None or not user.active:
            raise AuthenticationFailed(SESSION_ENDED)
        return actor_of(user, source)


Key = tuple[str, str]


def _name_key(name: str, source: str) -> Key | None:
    """The (name, source) counter; None for a name no account can have (it only counts
    against the source's budget: such a login cannot succeed anyway)."""
    typed = name.strip()
    return (name_key(typed), source[:128]) if ACCOUNT_NAME.fullmatch(typed) else None


def _blocked_for(app: Codenv, keys: list[Key], now: datetime) -> int:
    with app.db.session() as session:
        rows = [session.get(LoginFailureRow, key) for key in keys]
    ends = [as_utc(row.blocked_until) for row in rows if row is not None]
    until = max((end for end in ends if end is not None), default=None)
    if until is None or until <= now:
        return 0
    return max(1, round((until - now).total_seconds() + 0.5))


def _count_failure(app: Codenv, key: Key, now: datetime, policy: LoginPolicy) -> None:
    for _ in range(3):  # two first failures racing for the row: the loser updates it
        try:
            with app.db.session() as session:
                row = session.get(LoginFailureRow, key, with_for_update=True)
                if row is None:
                    row = LoginFailureRow(name_key=key[0], source=key[1], failures=0)
                    session.add(row)
                last = as_utc(row.last_failure_at)
                if last is not None:
                    row.failures = policy.remaining(row.failures, (now - last).total_seconds())
                row.failures += 1
                row.last_failure_at = now
                delay = policy.delay(row.failures)
                row.blocked_until = now + timedelta(seconds=delay) if delay else None
            return
        except IntegrityError:
            continue


def _check_password(app: Codenv, name: str, password: str, source: str) -> Actor | None:
    with app.db.session() as session:
        user = queries.user_by_name(session, name)
        if verify_password(user, password) and user is not None and user.active:
            add_entry(session, user.name, "login.succeeded", user.name, source=source)
            return actor_of(user, source)
    return None


def authenticate_password(
    app: Codenv,
    name: str,
    password: str,
    source: str,
    *,
    policy: LoginPolicy = DEFAULT_LOGIN_POLICY,
    source_policy: LoginPolicy = SOURCE_POLICY,
    now: datetime | None = None,
) -> Actor:
    """The Actor of the user `name` when `password` is theirs and they are active.

    Raises AuthenticationFailed (401) otherwise, and TooManyAttempts (429, with `retry_after`
    seconds) while this name is blocked for this source, or this source for every name."""
    moment = now or utcnow()
    source_key, pair_key = (ANY_NAME, source[:128]), _name_key(name, source)
    wait = _blocked_for(app, [source_key] if pair_key is None else [source_key, pair_key], moment)
    if wait:
        raise TooManyAttempts(
            f"too many failed logins; try again in {wait} seconds", retry_after=wait
        )
    actor = _check_password(app, name, password, source)
    if actor is not None:
        # The source's budget is not refilled by a success: an attacker with an account of
        # their own could otherwise reset it between guesses.
        with app.db.session() as session:
            row = session.get(LoginFailureRow, pair_key) if pair_key else None
            if row is not None:
                session.delete(row)
        return actor
    _count_failure(app, source_key, moment, source_policy)
    if pair_key is not None:
        _count_failure(app, pair_key, moment, policy)
    with app.db.session() as session:
        typed = name.strip()[:64]
        add_entry(session, typed or "?", "login.failed", typed, source=source)
    raise AuthenticationFailed(LOGIN_FAILED)
