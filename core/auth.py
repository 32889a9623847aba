"""Organisations, users, API keys, and the password/token primitives.

A user's role is the kind of its organisation (:class:`OrgKind`): a verifier's staff act as verifiers,
a registry's staff as the registry, and so on. Separation of duties is enforced by the services, which
compare organisations and users; access per endpoint is the table in ``api/permissions.py``.

Credentials:

* Passwords are hashed with Argon2id (a slow, memory-hard KDF).
* Access and refresh tokens are HS256 JWTs carrying ``sub`` (user id), ``org``, ``role``, ``typ``.
* API keys (enterprises' machine clients) are 256-bit random strings shown once; only their SHA-256 is
  stored and looked up, because a slow KDF on every request would cap throughput and a 256-bit secret
  does not need key stretching.
* A verified caller is remembered per process for ``SHANHAI_AUTH_CACHE_SECONDS`` (:class:`PrincipalCache`,
  default 2 s, 0 = off): the signature and expiry of a token are still checked on every request, but the
  user (and API key) row is read again only after that long, so deactivating a user or revoking a key
  takes effect within that bound (ADR 004).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Enum, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core import audit
from core.clock import Clock
from core.db import Base
from core.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from core.passwords import require_acceptable_password
from core.regions import validate_division
from core.sqltypes import UtcDateTime

API_KEY_PREFIX = "shk_"
JWT_ALGORITHM = "HS256"
_HASHER = PasswordHasher()


class OrgKind(enum.StrEnum):
    """Kinds of organisation; a user's role is its organisation's kind."""

    FORESTRY_BUREAU = "forestry_bureau"
    FOREST_OWNER = "forest_owner"
    ECOLOGY_BUREAU = "ecology_bureau"
    VERIFIER = "verifier"
    REGISTRY = "registry"
    OPERATOR = "operator"
    ENTERPRISE = "enterprise"
    BANK = "bank"
    AUDITOR = "auditor"


def _enum_values(kind: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in kind]


class Organisation(Base):
    """An organisation with its province and (optionally) county, GB/T 2260 codes."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[OrgKind] = mapped_column(
        Enum(OrgKind, name="org_kind", native_enum=False, length=32, values_callable=_enum_values)
    )
    province_code: Mapped[str] = mapped_column(String(2))
    county_code: Mapped[str | None] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    users: Mapped[list[User]] = relationship(back_populates="organisation")

    @property
    def label(self) -> str:
        """Return how messages name the organisation: its name and id, e.g. ``Fujian demo bank (organisation 8)``."""
        return f"{self.name} (organisation {self.id})"


class User(Base):
    """A person who logs in for one organisation."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    organisation: Mapped[Organisation] = relationship(back_populates="users", lazy="joined")


class ApiKey(Base):
    """A machine credential of a user; only the SHA-256 of the key is stored."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    user: Mapped[User] = relationship(lazy="joined")


def hash_password(password: str) -> str:
    """Return the Argon2id hash of ``password``."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Return whether ``password`` matches ``password_hash``."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_api_key() -> tuple[str, str]:
    """Return a fresh ``(plaintext, sha256)`` pair; the plaintext is shown to the user once."""
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return plaintext, api_key_digest(plaintext)


def api_key_digest(plaintext: str) -> str:
    """Return the stored digest of an API key.

    >>> api_key_digest("shk_x")[:16]
    'b06c0860ca1f9e9a'
    """
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, its organisation and role, and how it authenticated."""

    user_id: int
    username: str
    organisation_id: int
    role: OrgKind
    via: str  # "token" | "api_key"

    @property
    def actor(self) -> str:
        """Return the audit-log actor string."""
        return f"user:{self.user_id}"


class PrincipalCache:
    """Callers verified against the database in the last ``ttl_seconds`` (per process, thread-safe).

    Keys are ``("user", user_id)`` for tokens and ``("api_key", sha256)`` for API keys. An entry is used
    for at most ``ttl_seconds`` after its row was read, so a deactivated user or a revoked key is refused
    within that bound; ``ttl_seconds = 0`` reads the row on every request. At most ``max_entries`` are kept
    (the oldest go first).
    """

    def __init__(self, ttl_seconds: float, *, max_entries: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.ttl_seconds, self._max, self._monotonic = ttl_seconds, max_entries, monotonic
        self._entries: dict[tuple[str, object], tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, object]) -> Principal | None:
        """Return the remembered caller, or ``None`` when unknown or older than the TTL."""
        entry = self._entries.get(key)
        if entry is None or self._monotonic() - entry[0] >= self.ttl_seconds:
            return None
        return entry[1]

    def get_or_load(self, key: tuple[str, object], load: Callable[[], Principal]) -> Principal:
        """Return the remembered caller, or ``load()`` it (reading the database) and remember it."""
        principal = self.get(key)
        if principal is None:
            principal = load()
            self.put(key, principal)
        return principal

    def put(self, key: tuple[str, object], principal: Principal) -> None:
        """Remember a caller just verified against the database."""
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= self._max:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (self._monotonic(), principal)

    def clear(self) -> None:
        """Forget every caller (a test, or an operator action that must take effect at once in this process)."""
        with self._lock:
            self._entries.clear()


def issue_token(user: User, *, token_type: str, lifetime: timedelta, key: str, clock: Clock) -> tuple[str, datetime]:
    """Return a signed JWT for ``user`` and its expiry time."""
    issued_at = clock.now()
    expires_at = issued_at + lifetime
    claims: dict[str, Any] = {
        "sub": str(user.id),
        "org": user.organisation_id,
        "role": user.organisation.kind.value,
        "typ": token_type,
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, key, algorithm=JWT_ALGORITHM), expires_at


def decode_token(token: str, *, token_type: str, key: str, clock: Clock) -> dict[str, Any]:
    """Return the verified claims of ``token``.

    Raises:
        AuthenticationFailed: Bad signature, wrong type, or expired at ``clock.now()``.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[JWT_ALGORITHM], options={"verify_exp": False, "require": ["exp", "sub", "typ"]}
        )
    except jwt.PyJWTError as error:
        raise AuthenticationFailed("the token is not valid") from error
    if claims.get("typ") != token_type:
        raise AuthenticationFailed(f"a {token_type} token is required")
    if int(claims["exp"]) <= int(clock.now().timestamp()):
        raise AuthenticationFailed("the token has expired")
    return claims


def principal_of(user: User, via: str) -> Principal:
    """Return the principal acting as ``user``."""
    return Principal(user.id, user.username, user.organisation_id, user.organisation.kind, via)


def authenticate_password(session: Session, username: str, password: str) -> User:
    """Return the active user with these credentials (:func:`find_login_user`, then :func:`check_password`).

    Raises:
        AuthenticationFailed: Unknown user, wrong password or inactive user (one message for all).
    """
    return check_password(find_login_user(session, username), password)


def find_login_user(session: Session, username: str) -> User | None:
    """Return the user named ``username`` (active or not), or ``None``, and end the read transaction.

    The transaction ends before the slow password check: on SQLite every transaction holds the database's
    write lock (``BEGIN IMMEDIATE``), which a login must not keep for the ~0.1 s of an Argon2 check.
    """
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    session.commit()  # nothing was written; only ends the transaction (objects are not expired on commit)
    return user


def check_password(user: User | None, password: str) -> User:
    """Return ``user`` if it is active and ``password`` is its password.

    An unknown user (``None``) costs one Argon2 check against a dummy hash made with the same parameters,
    so the response time does not reveal which user names exist.

    Raises:
        AuthenticationFailed: Unknown user, wrong password or inactive user (one message for all).
    """
    if user is None:
        verify_password(_dummy_hash(), password)
        raise AuthenticationFailed("incorrect user name or password")
    if not verify_password(user.password_hash, password) or not user.is_active:
        raise AuthenticationFailed("incorrect user name or password")
    return user


def record_login(
    session: Session,
    *,
    username: str,
    user: User | None,
    address: str,
    lockouts: Sequence[tuple[str, int, float]] = (),
    clock: Clock,
) -> None:
    """Audit one login attempt, and the lock-outs it started, then commit (MLPS level 3: a trail of logins).

    A success is ``auth.login_succeeded`` by the user; a failure is ``auth.login_failed`` against the user
    name as typed (truncated to 100 characters) by its client address; each lock-out is ``auth.locked_out``
    with ``subject`` like ``user_name:nx-bureau`` or ``address:203.0.113.7``. No password is recorded.

    Args:
        session: A session with no pending work of its own.
        username: The user name as sent.
        user: The authenticated user, ``None`` for a failure.
        address: The client address (behind trusted proxies, the forwarded one).
        lockouts: ``(subject, failures, lockout_seconds)`` of each lock-out this failure started.
        clock: Source of the entries' timestamp.
    """
    name = username[:100]
    if user is not None:
        events = [audit.Event(f"user:{user.id}", "auth.login_succeeded", f"user:{user.id}",
                              {"username": user.username, "address": address})]  # fmt: skip
    else:
        events = [audit.Event(f"address:{address}", "auth.login_failed", f"user_name:{name}",
                              {"username": name, "address": address})]  # fmt: skip
    events += [
        audit.Event(
            "system:login-throttle",
            "auth.locked_out",
            subject,
            {"failures": failures, "lockout_seconds": seconds, "username": name, "address": address},
        )
        for subject, failures, seconds in lockouts
    ]
    audit.append_many(session, events, clock=clock)
    session.commit()


def set_password(session: Session, *, username: str, password: str, actor: str, clock: Clock) -> User:
    """Give ``username`` a new password that meets the policy; audit ``user.password_changed``; commit.

    Raises:
        NotFound: No such user.
        InvalidInput: The password breaks the policy (every broken rule named); nothing is written.
    """
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise NotFound(f"no user is named {username!r}")
    require_acceptable_password(password, username=username)
    user.password_hash = hash_password(password)
    audit.append(session, actor=actor, action="user.password_changed", subject=f"user:{user.id}",
                 payload={"username": user.username}, clock=clock)  # fmt: skip
    session.commit()
    return user


def record_unlock(session: Session, *, principal: Principal, subjects: Sequence[str], clock: Clock) -> None:
    """Audit that ``principal`` lifted the lock-outs of ``subjects`` (``user_name:…``, ``address:…``); commit."""
    audit.append_many(
        session, [audit.Event(principal.actor, "auth.unlocked", subject, {}) for subject in subjects], clock=clock
    )
    session.commit()


def user_for_token(session: Session, claims: dict[str, Any]) -> User:
    """Return the active user named by verified token claims."""
    user = session.get(User, int(claims["sub"]))
    if user is None or not user.is_active:
        raise AuthenticationFailed("the token's user no longer exists or is inactive")
    return user


def user_for_api_key(session: Session, plaintext: str) -> User:
    """Return the active user owning an unrevoked API key."""
    key = session.scalars(select(ApiKey).where(ApiKey.key_sha256 == api_key_digest(plaintext))).one_or_none()
    if key is None or key.revoked_at is not None or not key.user.is_active:
        raise AuthenticationFailed("the API key is not valid")
    return key.user


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("timing-equaliser")


def create_api_key(session: Session, *, principal: Principal, label: str, clock: Clock) -> tuple[ApiKey, str]:
    """Create an API key for the principal's user; return the row and the plaintext (shown once)."""
    plaintext, digest = new_api_key()
    key = ApiKey(
        user_id=principal.user_id, label=label, prefix=plaintext[:10], key_sha256=digest, created_at=clock.now()
    )
    session.add(key)
    session.flush()
    audit.append(
        session,
        actor=principal.actor,
        action="api_key.created",
        subject=f"api_key:{key.id}",
        payload={"label": key.label, "prefix": key.prefix},
        clock=clock,
    )
    session.commit()
    return key, plaintext


def list_api_keys(session: Session, *, principal: Principal) -> list[ApiKey]:
    """Return the principal's own API keys, newest first (revoked ones included, with when)."""
    query = select(ApiKey).where(ApiKey.user_id == principal.user_id).order_by(ApiKey.id.desc())
    return list(session.scalars(query))


def revoke_api_key(session: Session, *, principal: Principal, key_id: int, clock: Clock) -> ApiKey:
    """Revoke one of the principal's own API keys, audited ``api_key.revoked``; commit.

    The caller's process must forget cached callers (:meth:`PrincipalCache.clear`) for it to bite at once.

    Raises:
        NotFound: No such key of the principal's (another user's key is not revealed).
        Conflict: The key is already revoked.
    """
    key = session.get(ApiKey, key_id)
    if key is None or key.user_id != principal.user_id:
        raise NotFound(f"API key {key_id} does not exist")
    if key.revoked_at is not None:
        raise Conflict(f"API key {key_id} is already revoked")
    key.revoked_at = clock.now()
    audit.append(session, actor=principal.actor, action="api_key.revoked", subject=f"api_key:{key.id}",
                 payload={"label": key.label, "prefix": key.prefix}, clock=clock)  # fmt: skip
    session.commit()
    return key


def create_user(
    session: Session, *, organisation_id: int, username: str, display_name: str, password: str, actor: str,
    clock: Clock,
) -> User:  # fmt: skip
    """Create a user of an existing organisation with a password that meets the policy, audited; commit.

    Raises:
        InvalidInput: No such organisation, or the password breaks the policy; nothing is written.
        Conflict: The user name is taken.
    """
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise InvalidInput(
            "no such organisation",
            [{"pointer": "/organisation_id", "reason": f"organisation {organisation_id} does not exist"}],
        )
    username = username.strip()
    if not username or len(username) > 100 or any(c.isspace() for c in username):
        raise InvalidInput("a user name is 1 to 100 characters without spaces",
                           [{"pointer": "/username", "reason": "empty, too long or with spaces"}])  # fmt: skip
    if session.scalars(select(User.id).where(User.username == username)).first() is not None:
        raise Conflict(f"a user named {username!r} exists already")
    require_acceptable_password(password, username=username)
    user = User(organisation_id=organisation.id, username=username, display_name=display_name.strip() or username,
                password_hash=hash_password(password), is_active=True, created_at=clock.now())  # fmt: skip
    session.add(user)
    session.flush()
    audit.append(session, actor=actor, action="user.created", subject=f"user:{user.id}",
                 payload={"username": username, "organisation_id": organisation.id, "role": organisation.kind.value},
                 clock=clock)  # fmt: skip
    session.commit()
    return user


def create_organisation(
    session: Session, *, name: str, kind: OrgKind, province_code: str, county_code: str | None, actor: str,
    clock: Clock,
) -> Organisation:  # fmt: skip
    """Register an organisation (its kind is its users' role), audited ``organisation.created``; commit.

    Raises:
        InvalidInput: An empty name, or an unknown province or county (GB/T 2260); nothing is written.
        Conflict: The name is taken.
    """
    name = name.strip()
    problems = (
        [{"pointer": "/name", "reason": "empty or longer than 200 characters"}] if not 0 < len(name) <= 200 else []
    )
    problems += [{"pointer": "/province_code", "reason": p} for p in validate_division(province_code, county_code)]
    if problems:
        raise InvalidInput("the organisation cannot be registered so", problems)
    if session.scalars(select(Organisation.id).where(Organisation.name == name)).first() is not None:
        raise Conflict(f"an organisation named {name!r} exists already")
    organisation = Organisation(name=name, kind=kind, province_code=province_code, county_code=county_code,
                                created_at=clock.now())  # fmt: skip
    session.add(organisation)
    session.flush()
    audit.append(session, actor=actor, action="organisation.created", subject=f"organisation:{organisation.id}",
                 payload={"name": name, "kind": kind.value, "province_code": province_code,
                          "county_code": county_code}, clock=clock)  # fmt: skip
    session.commit()
    return organisation
