"""The API's dependencies: the typed aliases of :mod:`access.deps`, under the name every router imports.

Session, clock, settings and the caller are resolved in :mod:`access` since the web pages need the same
(issue 20): ``api`` and ``web`` both sit above it, and neither imports the other.
"""

from __future__ import annotations

from access.deps import (
    AuditSigningKeyDep,
    AuditTreeDep,
    CeleryDep,
    ClockDep,
    CurrentUser,
    SessionDep,
    SettingsDep,
    WitnessPolicyDep,
    authorize,
    get_session,
    require_principal,
)

__all__ = [
    "AuditSigningKeyDep",
    "AuditTreeDep",
    "CeleryDep",
    "ClockDep",
    "CurrentUser",
    "SessionDep",
    "SettingsDep",
    "WitnessPolicyDep",
    "authorize",
    "get_session",
    "require_principal",
]
