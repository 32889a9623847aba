"""Domain errors: a small tree with no HTTP in it.

The API maps each class once to an RFC 9457 problem+json response (``api/problems.py``). Every class
has a stable ``slug``; the problem ``type`` URI is built from it, so clients can switch on it.

::

    ShanhaiError                      core/error
    ├── NotFound                      core/not-found
    ├── Conflict                      core/conflict
    │   ├── IdempotencyConflict       core/idempotency-conflict
    │   ├── DoubleCounting            carbon/double-counting    (conflicts=[...])
    │   ├── InsufficientUnits         carbon/insufficient-units
    │   ├── InsufficientFunds         trading/insufficient-funds
    │   └── BalanceLimit              trading/balance-limit
    ├── AuthenticationFailed          auth/authentication-failed
    ├── TooManyRequests               auth/too-many-requests    (retry_after_seconds)
    ├── PermissionDenied              auth/permission-denied
    ├── InvalidInput                  core/invalid-input        (problems=[...])
    │   ├── InvalidGeometry           geodata/invalid-geometry  (problems=[...])
    │   ├── InvalidCrs                geodata/invalid-crs       (problems=[...])
    │   │   └── CrsMismatch           geodata/crs-mismatch      (problems=[...], candidate zones)
    │   ├── UnreadableFile            geodata/unreadable-file   (problems=[...])
    │   ├── OutsideRegion             geodata/outside-region    (problems=[...])
    │   ├── PayloadTooLarge           core/payload-too-large
    │   ├── UnsupportedMediaType      core/unsupported-media-type (media_type, allowed)
    │   └── OrderRejected             trading/order-rejected    (reason=...)
    ├── ServiceUnavailable            core/service-unavailable
    │   └── AuditLogInconsistent      audit/log-inconsistent    (signed_tree_size, log_tree_size)
    ├── AuditChainBroken              core/audit-chain-broken
    └── InternalError                 core/internal-error       (reference=...)

Errors carry *extension members* (``extensions()``) that the problem renderer copies verbatim;
they must be JSON-serialisable and never contain stack traces or internal state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar


class ShanhaiError(Exception):
    """Base of every domain error.

    Attributes:
        slug: Stable identifier ``domain/name``; never change a published slug.
        title: Short human summary, the same for every occurrence of the class.
        detail: Human explanation of this occurrence.
    """

    slug: ClassVar[str] = "core/error"
    title: ClassVar[str] = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extensions(self) -> dict[str, Any]:
        """Return the problem extension members of this occurrence."""
        return {}

    def headers(self) -> dict[str, str]:
        """Return the HTTP-independent response headers this occurrence asks for (e.g. ``Retry-After``)."""
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable whatever the subclass's __init__ takes: an order-entry answer crosses a process boundary.
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(kind: type[ShanhaiError], args: tuple[Any, ...], state: dict[str, Any]) -> ShanhaiError:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class NotFound(ShanhaiError):
    """A named resource does not exist (or is not visible to the caller)."""

    slug = "core/not-found"
    title = "Not found"


class Conflict(ShanhaiError):
    """The request conflicts with the current state (duplicate, wrong lifecycle state)."""

    slug = "core/conflict"
    title = "Conflict"


class IdempotencyConflict(Conflict):
    """An idempotency key was reused with a different request body."""

    slug = "core/idempotency-conflict"
    title = "Idempotency key reused with a different request"


class DoubleCounting(Conflict):
    """New claims overlap active claims (or each other) for overlapping periods; ``conflicts`` lists each."""

    slug = "carbon/double-counting"
    title = "Double counting"

    def __init__(self, detail: str, conflicts: Sequence[Mapping[str, Any]]) -> None:
        super().__init__(detail)
        self.conflicts = [dict(c) for c in conflicts]

    def extensions(self) -> dict[str, Any]:
        """Return the ``conflicts`` extension member."""
        return {"conflicts": self.conflicts}


class _Shortfall(Conflict):
    """A conflict that carries the figures a client needs (ids, integer fen or tonnes) as extension members."""

    def __init__(self, detail: str, **facts: Any) -> None:
        super().__init__(detail)
        self.facts = facts

    def extensions(self) -> dict[str, Any]:
        """Return the facts (e.g. ``organisation_id``, ``available_fen``) as extension members."""
        return dict(self.facts)


class InsufficientUnits(_Shortfall):
    """The account does not hold enough tonnes in the required state."""

    slug = "carbon/insufficient-units"
    title = "Insufficient units"


class InsufficientFunds(_Shortfall):
    """The cash account does not have enough available fen for the hold an order needs."""

    slug = "trading/insufficient-funds"
    title = "Insufficient funds"


class BalanceLimit(Conflict):
    """The movement would take a balance past what its column holds (``BIGINT``: 2⁶³ − 1); nothing was written."""

    slug = "trading/balance-limit"
    title = "Balance limit reached"


class AuthenticationFailed(ShanhaiError):
    """Missing, invalid or expired credentials."""

    slug = "auth/authentication-failed"
    title = "Authentication required"


class TooManyRequests(ShanhaiError):
    """Too many attempts: a locked-out login, or an API key over its quota; retry after ``retry_after_seconds``."""

    slug = "auth/too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_seconds: int, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.retry_after_seconds = max(1, retry_after_seconds)
        self.extra_headers = dict(headers or {})

    def extensions(self) -> dict[str, Any]:
        """Return the ``retry_after_seconds`` extension member."""
        return {"retry_after_seconds": self.retry_after_seconds}

    def headers(self) -> dict[str, str]:
        """Return ``Retry-After`` (whole seconds, RFC 9110 §10.2.3) and any quota headers."""
        return {**self.extra_headers, "Retry-After": str(self.retry_after_seconds)}


class PermissionDenied(ShanhaiError):
    """The caller is authenticated but its role or organisation may not do this."""

    slug = "auth/permission-denied"
    title = "Permission denied"


class InvalidInput(ShanhaiError):
    """The input is well-formed JSON but violates the domain's rules.

    Args:
        detail: Summary of what is wrong.
        problems: One mapping per defect, each naming where it is (``pointer`` or ``location``).
    """

    slug = "core/invalid-input"
    title = "Invalid input"

    def __init__(self, detail: str, problems: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(detail)
        self.problems = [dict(p) for p in problems]

    def extensions(self) -> dict[str, Any]:
        """Return the ``errors`` extension member."""
        return {"errors": self.problems}


def validation_problems(items: Iterable[Mapping[str, Any]], **context: Any) -> list[dict[str, Any]]:
    """Return pydantic's ``ValidationError.errors()`` as :class:`InvalidInput` problems, each with ``context``.

    ``location`` is the dotted path of the offending field, ``reason`` pydantic's message.
    """
    return [
        {**context, "location": ".".join(str(part) for part in item["loc"]), "reason": item["msg"]} for item in items
    ]


class InvalidGeometry(InvalidInput):
    """One or more features have invalid geometry; ``problems`` names each defect and its location."""

    slug = "geodata/invalid-geometry"
    title = "Invalid geometry"


class InvalidCrs(InvalidInput):
    """The coordinate reference system is missing, unreadable or does not fit the coordinates."""

    slug = "geodata/invalid-crs"
    title = "Invalid coordinate reference system"


class CrsMismatch(InvalidCrs):
    """Projected coordinates fall outside the declared CRS's area of use (e.g. a ``.prj`` of another zone).

    Each problem names the declared CRS, its area of use and ``candidate_crs``: the CRSs (CGCS2000
    Gauss-Krüger zones) whose area of use would contain the coordinates.
    """

    slug = "geodata/crs-mismatch"
    title = "Coordinates outside the declared CRS's area of use"


class UnreadableFile(InvalidInput):
    """An uploaded file is not of its declared format, is corrupt, or breaks the archive rules."""

    slug = "geodata/unreadable-file"
    title = "Unreadable file"


class OutsideRegion(InvalidInput):
    """A plot lies mostly outside its project's province; each problem names where it lies and the share inside."""

    slug = "geodata/outside-region"
    title = "Plot outside the project's region"


class PayloadTooLarge(InvalidInput):
    """The request body exceeds the configured upload limit."""

    slug = "core/payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(InvalidInput):
    """An uploaded file's content (sniffed, not its name) is not a type accepted for what it is declared to be.

    Args:
        detail: What was found and what is accepted.
        media_type: The type the content was recognised as (``None``: not recognised).
        allowed: The media types accepted here.
    """

    slug = "core/unsupported-media-type"
    title = "Unsupported media type"

    def __init__(self, detail: str, *, media_type: str | None, allowed: Iterable[str]) -> None:
        super().__init__(detail, [{"pointer": "/file", "reason": detail}])
        self.media_type = media_type
        self.allowed = sorted(allowed)

    def extensions(self) -> dict[str, Any]:
        """Return ``errors``, the sniffed ``media_type`` and the ``allowed`` types."""
        return {**super().extensions(), "media_type": self.media_type, "allowed": self.allowed}


class OrderRejected(InvalidInput):
    """The matching engine refused an order command; ``reason`` is its stable reason code."""

    slug = "trading/order-rejected"
    title = "Order rejected"

    def __init__(self, detail: str, reason: str, **facts: Any) -> None:
        super().__init__(detail, [{"reason": reason}])
        self.reason = reason
        self.facts = facts

    def extensions(self) -> dict[str, Any]:
        """Return the ``reason`` and ``errors`` extension members, and the refusal's facts (e.g. the band)."""
        return {"reason": self.reason, "errors": self.problems, **self.facts}


class ServiceUnavailable(ShanhaiError):
    """A part of the platform a request needs is not running; the outcome of a command may be unknown."""

    slug = "core/service-unavailable"
    title = "Service unavailable"


class AuditLogInconsistent(ServiceUnavailable):
    """The audit log is not a consistent extension of the last signed tree head: rewritten or truncated.

    Nothing is signed until an operator has looked: the log contradicts a head already given out.
    """

    slug = "audit/log-inconsistent"
    title = "Audit log inconsistent"

    def __init__(self, detail: str, *, signed_tree_size: int, log_tree_size: int) -> None:
        super().__init__(detail)
        self.signed_tree_size = signed_tree_size
        self.log_tree_size = log_tree_size

    def extensions(self) -> dict[str, Any]:
        """Return the sizes of the last signed head and of the log as read."""
        return {"signed_tree_size": self.signed_tree_size, "log_tree_size": self.log_tree_size}


class AuditChainBroken(ShanhaiError):
    """The audit log's hash chain does not verify; ``sequence`` is the first broken entry."""

    slug = "core/audit-chain-broken"
    title = "Audit chain broken"

    def __init__(self, detail: str, sequence: int) -> None:
        super().__init__(detail)
        self.sequence = sequence

    def extensions(self) -> dict[str, Any]:
        """Return the ``sequence`` extension member."""
        return {"sequence": self.sequence}


class InternalError(ShanhaiError):
    """Something failed that should not have (a bug, a crashed worker); never the caller's fault.

    ``reference`` is an opaque id that also appears in the server log entry holding the stack trace,
    so that an operator can find what a client reports; the client sees nothing else.
    """

    slug = "core/internal-error"
    title = "Internal server error"

    def __init__(self, detail: str, reference: str) -> None:
        super().__init__(f"{detail} (reference {reference})")
        self.reference = reference

    def extensions(self) -> dict[str, Any]:
        """Return the ``reference`` extension member."""
        return {"reference": self.reference}
