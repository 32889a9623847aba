"""A small driver for engine tests: numbers the commands and stamps them inside a session."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trading.calendar import ALWAYS_OPEN
from trading.engine import MatchingEngine
from trading.instruments import Instrument, MatchingStyle, ModeRules
from trading.orders import (
    AmendOrder,
    CancelOrder,
    ClickOrder,
    EndOfDay,
    Event,
    Fill,
    HaltInstrument,
    PlaceOrder,
    ResumeInstrument,
    Side,
)

INSTRUMENT_ID = "FFCER-2023-35"
#: Wednesday 2026-11-25 10:00 in Shanghai (UTC+8).
TEN_AM = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
OPEN_RULES = ModeRules(band_bp=1_000, min_quantity_t=1, max_quantity_t=99_999, calendar=ALWAYS_OPEN)


def instrument(
    style: MatchingStyle = MatchingStyle.PRICE_TIME,
    *,
    reference: str = "60.00",
    rules: ModeRules = OPEN_RULES,
    **kw: Any,
) -> Instrument:
    return Instrument(
        INSTRUMENT_ID, "FFCER", 2023, int(Decimal(reference) * 100), province_code="35", style=style, rules=rules, **kw
    )


class Harness:
    """An engine with one instrument; every call gets the next sequence number."""

    def __init__(self, inst: Instrument | None = None, *, at: datetime = TEN_AM) -> None:
        self.instrument = inst or instrument()
        self.engine = MatchingEngine([self.instrument])
        self.seq = 0
        self.at = at
        self.events: list[Event] = []

    def _next(self) -> dict[str, Any]:
        self.seq += 1
        return {"seq": self.seq, "at": self.at, "instrument_id": self.instrument.instrument_id}

    def run(self, command: Any) -> list[Event]:
        events = self.engine.handle(command)
        self.events.extend(events)
        return events

    def place(
        self, order_id: str, side: Side, quantity: Any, price: Any = None, account: str | None = None, **kw: Any
    ) -> list[Event]:
        cmd = PlaceOrder(
            **self._next(), order_id=order_id, account_id=account or f"acct-{order_id}", side=side,
            quantity_t=quantity, price_cny=price, **kw,
        )  # fmt: skip
        return self.run(cmd)

    def place_on(self, instrument_id: str, order_id: str) -> list[Event]:
        """A valid-looking buy sent to ``instrument_id``."""
        cmd = PlaceOrder(**self._next(), order_id=order_id, account_id="a", side=Side.BUY, quantity_t=1, price_cny=60)
        return self.run(replace(cmd, instrument_id=instrument_id))

    def buy(self, order_id: str, quantity: Any, price: Any = None, **kw: Any) -> list[Event]:
        return self.place(order_id, Side.BUY, quantity, price, **kw)

    def sell(self, order_id: str, quantity: Any, price: Any = None, **kw: Any) -> list[Event]:
        return self.place(order_id, Side.SELL, quantity, price, **kw)

    def cancel(self, order_id: str, account: str | None = None) -> list[Event]:
        return self.run(CancelOrder(**self._next(), order_id=order_id, account_id=account or f"acct-{order_id}"))

    def amend(self, order_id: str, quantity: Any = None, price: Any = None) -> list[Event]:
        return self.run(
            AmendOrder(
                **self._next(), order_id=order_id, account_id=f"acct-{order_id}", quantity_t=quantity, price_cny=price
            )
        )

    def click(
        self, order_id: str, side: Side, quantity: Any, maker: str | None = None, price: Any = None
    ) -> list[Event]:
        return self.run(
            ClickOrder(
                **self._next(), order_id=order_id, account_id=f"acct-{order_id}", side=side, quantity_t=quantity,
                maker_order_id=maker, price_cny=price,
            )
        )  # fmt: skip

    def halt(self) -> list[Event]:
        return self.run(HaltInstrument(**self._next()))

    def resume(self) -> list[Event]:
        return self.run(ResumeInstrument(**self._next()))

    def end_of_day(self) -> list[Event]:
        return self.run(EndOfDay(**self._next()))

    def book(self) -> dict[str, list[tuple[int, list[tuple[str, int]]]]]:
        """Per side: (price, [(order id, remaining)…]) best level first."""
        snapshot = self.engine.snapshot()["instruments"][self.instrument.instrument_id]["book"]
        return {
            side: [(price, [(rec[0], rec[2]) for rec in records]) for price, records in levels]
            for side, levels in snapshot.items()
        }


def fills(events: list[Event]) -> list[tuple[str, str, int, int]]:
    """(taker, maker, price ticks, quantity) of each fill."""
    return [(e.taker_order_id, e.maker_order_id, e.price_ticks, e.quantity_t) for e in events if isinstance(e, Fill)]


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


__all__ = ["TEN_AM", "Harness", "fills", "instrument", "kinds"]
