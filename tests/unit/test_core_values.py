"""Units, canonical JSON, clocks, regions, and the error → status table."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.problems import status_for
from core.canonical import canonical_hash, canonical_json
from core.clock import FixedClock, SystemClock
from core.errors import (
    AuditChainBroken,
    AuthenticationFailed,
    Conflict,
    IdempotencyConflict,
    InvalidGeometry,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ShanhaiError,
)
from core.regions import divisions, province_name, validate_division
from core.units import M2_PER_MU, ha_from_m2, m2_from_ha, m2_from_mu, mu_from_m2


def test_mu_is_exactly_one_fifteenth_of_a_hectare() -> None:
    assert M2_PER_MU * 15 == 10_000 and isinstance(M2_PER_MU, Fraction)
    assert m2_from_mu(1500) == 1_000_000.0
    assert mu_from_m2(m2_from_ha(219.74)) == pytest.approx(3296.1)


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
def test_area_conversions_round_trip(area_m2: float) -> None:
    assert m2_from_mu(mu_from_m2(area_m2)) == pytest.approx(area_m2, rel=1e-12, abs=1e-9)
    assert m2_from_ha(ha_from_m2(area_m2)) == pytest.approx(area_m2, rel=1e-12, abs=1e-9)


def test_canonical_json_is_stable_and_strict() -> None:
    assert canonical_json({"b": Decimal("1.10"), "a": date(2026, 1, 2)}) == b'{"a":"2026-01-02","b":"1.10"}'
    assert canonical_json({"名": "山海"}) == '{"名":"山海"}'.encode()
    assert canonical_hash({"x": 1, "y": 2}) == canonical_hash({"y": 2, "x": 1})
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_clocks() -> None:
    fixed = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    fixed.advance(timedelta(hours=1))
    assert fixed.now() == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert SystemClock().now().tzinfo is not None
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 1, 1))


def test_divisions() -> None:
    assert province_name("35") == "福建省" and province_name("99") is None
    assert divisions()["640424"].name_en == "Jingyuan" and divisions()["350205"].name_zh == "海沧区"
    assert validate_division("64", "640121") == []
    assert validate_division("64", None) == []
    assert "unknown province" in validate_division("6", None)[0]
    assert "unknown county" in validate_division("64", "640100")[0]  # a prefecture, not a county
    counties = [d for d in divisions().values() if d.level == "county"]
    assert all(d.code[:2] in ("64", "35", "11") for d in counties)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AuthenticationFailed("x"), 401),
        (PermissionDenied("x"), 403),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (IdempotencyConflict("x"), 409),
        (InvalidInput("x"), 422),
        (InvalidGeometry("x", [{"reason": "r"}]), 422),
        (PayloadTooLarge("x"), 413),
        (AuditChainBroken("x", 3), 409),
        (ShanhaiError("x"), 400),
    ],
)
def test_error_status_table(error: ShanhaiError, status: int) -> None:
    assert status_for(error) == status
    assert "/" in error.slug


def test_error_extensions() -> None:
    assert InvalidGeometry("x", [{"reason": "r"}]).extensions() == {"errors": [{"reason": "r"}]}
    assert AuditChainBroken("x", 7).extensions() == {"sequence": 7}
    assert NotFound("x").extensions() == {}
