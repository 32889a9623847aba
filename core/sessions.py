"""Server-side sessions of people using the web pages: opened at login, ended by logout, idleness or deactivation.

A session is a random 256-bit token in an HttpOnly cookie; the table keeps only its SHA-256 (as API keys do,
ADR 004), so a copy of the database opens no session. Every page request reads the row and its user — no
cache — so ending a session, or deactivating its user, takes effect on the next request.

Invariants:

* a session is live while ``ended_at`` is null, ``last_seen_at + idle`` and ``created_at + max_age`` are in
  the future, and its user is active;
* ``last_seen_at`` moves forward only, and at most once per :data:`TOUCH_SECONDS` (a page view is not a write
  on every request: on SQLite a write takes the database's one write lock).

>>> digest_of("abc") == digest_of("abc") and len(digest_of("abc")) == 64
True
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import audit
from core.auth import User
from core.clock import Clock
from core.db import Base
from core.sqltypes import UtcDateTime

#: A live session's ``last_seen_at`` is written again only when it is older than this.
TOUCH_SECONDS = 60
#: Why a session ended, as recorded in ``end_reason``.
LOGOUT, IDLE, EXPIRED, DEACTIVATED = "logout", "idle", "expired", "deactivated"


class PersonSession(Base):
    """One login of a person in a browser."""

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives: ``idle`` without a request, ``max_age`` in all."""

    idle: timedelta
    max_age: timedelta


@dataclass(frozen=True)
class LiveSession:
    """A session found live, with its user."""

    id: int
    user: User
    token_sha256: str


def digest_of(token: str) -> str:
    """Return the SHA-256 (hex) under which a session token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(session: Session, user: User, *, address: str, clock: Clock) -> str:
    """Open a session for ``user`` (already authenticated), commit, and return its token (shown only here)."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    row = PersonSession(token_sha256=digest_of(token), user_id=user.id, created_at=now, last_seen_at=now,
                        address=address[:64])  # fmt: skip
    session.add(row)
    session.commit()
    return token


def resolve_session(session: Session, token: str, policy: SessionPolicy, *, clock: Clock) -> LiveSession | None:
    """Return the live session of ``token``, or ``None``; end a session found idle, too old or of an inactive user.

    A live session's ``last_seen_at`` is moved to now when it is older than :data:`TOUCH_SECONDS` (committed).
    """
    row = session.scalars(select(PersonSession).where(PersonSession.token_sha256 == digest_of(token))).first()
    if row is None or row.ended_at is not None:
        return None
    user = session.get(User, row.user_id)
    now = clock.now()
    reason = None
    if user is None or not user.is_active:
        reason = DEACTIVATED
    elif now - row.created_at >= policy.max_age:
        reason = EXPIRED
    elif now - row.last_seen_at >= policy.idle:
        reason = IDLE
    if reason is not None or user is None:
        _end(session, [row.id], reason or DEACTIVATED, now)
        return None
    if (now - row.last_seen_at).total_seconds() >= TOUCH_SECONDS:
        row.last_seen_at = now
        session.commit()
    return LiveSession(id=row.id, user=user, token_sha256=row.token_sha256)


def end_session(session: Session, token: str, *, clock: Clock) -> bool:
    """End the session of ``token`` (logout); return whether a live one was ended."""
    row = session.scalars(select(PersonSession).where(PersonSession.token_sha256 == digest_of(token))).first()
    if row is None or row.ended_at is not None:
        return False
    _end(session, [row.id], LOGOUT, clock.now())
    return True


def deactivate_user(session: Session, user: User, *, actor: str, clock: Clock) -> int:
    """Deactivate ``user`` and end every session of theirs at once, audited; return how many sessions ended."""
    now = clock.now()
    user.is_active = False
    ids = list(session.scalars(select(PersonSession.id).where(
        PersonSession.user_id == user.id, PersonSession.ended_at.is_(None))))  # fmt: skip
    ended = update(PersonSession).where(PersonSession.id.in_(ids)).values(ended_at=now, end_reason=DEACTIVATED)
    if ids:
        session.execute(ended)
    audit.append(
        session,
        actor=actor,
        action="user.deactivated",
        subject=f"user:{user.id}",
        payload={"username": user.username, "sessions_ended": len(ids)},
        clock=clock,
    )
    session.commit()
    return len(ids)


def _end(session: Session, ids: list[int], reason: str, now: datetime) -> None:
    session.execute(update(PersonSession).where(PersonSession.id.in_(ids)).values(ended_at=now, end_reason=reason))
    session.commit()
