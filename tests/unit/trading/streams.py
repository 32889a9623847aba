"""Seeded random order streams shared by the differential test and ``benchmarks/trading_engine.py``.

The recipe follows registry-trading §5.3: one symbol, limit orders only, prices 95.00–105.00 CNY (here on a
0.10 grid, so that orders meet often), quantities 1–100 t, each order from its own account (pyorderbook has
no self-trade prevention).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

from trading.calendar import ALWAYS_OPEN
from trading.instruments import Instrument, ModeRules
from trading.orders import PlaceOrder, Side

STREAM_INSTRUMENT = Instrument(
    "BENCH-2023",
    "FFCER",
    2023,
    reference_price_ticks=10_000,
    rules=ModeRules(band_bp=1_000, min_quantity_t=1, max_quantity_t=99_999, calendar=ALWAYS_OPEN),
)
STREAM_AT = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def limit_order_stream(seed: int, count: int) -> list[tuple[Side, Decimal, int]]:
    """Return ``count`` random limit orders as ``(side, price in CNY, quantity in t)``."""
    rng = random.Random(seed)
    return [
        (Side.BUY if rng.random() < 0.5 else Side.SELL, Decimal(rng.randint(950, 1050)).scaleb(-1), rng.randint(1, 100))
        for _ in range(count)
    ]


def place_commands(stream: list[tuple[Side, Decimal, int]], first_seq: int = 1, prefix: str = "o") -> list[PlaceOrder]:
    """Return the stream as engine commands; order ``i`` is ``f"{prefix}{i}"`` from account ``f"a{i}"``."""
    return [
        PlaceOrder(
            seq=first_seq + i, at=STREAM_AT, instrument_id=STREAM_INSTRUMENT.instrument_id, order_id=f"{prefix}{i}",
            account_id=f"a{i}", side=side, quantity_t=quantity, price_cny=price,
        )
        for i, (side, price, quantity) in enumerate(stream)
    ]  # fmt: skip
