"""Hypothesis drives the engine and the naive reference book with the same random orders, cancels and amends,
and compares their events and books after every step."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.unit.trading.harness import Harness, instrument
from tests.unit.trading.reference_book import Event as RefEvent
from tests.unit.trading.reference_book import ReferenceBook
from trading.book import check_book
from trading.instruments import MatchingStyle, StpMode
from trading.orders import Accepted, Amended, AmendOrder, Cancelled, Event, Fill, Rejected, Side, TimeInForce

ACCOUNTS = st.sampled_from(["a", "b", "c"])
PRICES = st.integers(5990, 6010)  # ticks: 59.90–60.10, well inside the ±10 % band around 60.00
QUANTITIES = st.integers(1, 30)


def normalise(events: list[Event]) -> list[RefEvent]:
    out: list[RefEvent] = []
    for e in events:
        if isinstance(e, Accepted):
            out.append(("accepted", e.order_id, e.price_ticks, e.quantity_t))
        elif isinstance(e, Fill):
            out.append(("fill", e.taker_order_id, e.maker_order_id, e.price_ticks, e.quantity_t))
        elif isinstance(e, Cancelled):
            out.append(("cancelled", e.order_id, e.remaining_t, e.reason.value))
        elif isinstance(e, Amended):
            out.append(("amended", e.order_id, e.price_ticks, e.quantity_t, e.priority_kept))
        else:
            assert isinstance(e, Rejected)
            out.append(("rejected", e.order_id, e.reason.value))
    return out


class EngineMatchesReference(RuleBasedStateMachine):
    style = MatchingStyle.PRICE_TIME

    def __init__(self) -> None:
        super().__init__()
        self.harness = Harness(instrument(self.style, reference="60.00"))
        self.reference = ReferenceBook(hubei_last=6000 if self.style is MatchingStyle.HUBEI_MID else None)
        self.ids: list[tuple[str, str]] = []  # (order id, account) ever placed

    @rule(
        side=st.sampled_from(["buy", "sell"]),
        price=PRICES,
        quantity=QUANTITIES,
        account=ACCOUNTS,
        tif=st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]),
        stp=st.sampled_from(list(StpMode)),
    )
    def place(self, side: str, price: int, quantity: int, account: str, tif: TimeInForce, stp: StpMode) -> None:
        order_id = f"o{len(self.ids)}"
        self.ids.append((order_id, account))
        h = self.harness

        events = h.place(
            order_id, Side(side), quantity, f"{price / 100:.2f}", account=account, time_in_force=tif, stp=stp
        )
        expected = self.reference.place(h.seq, order_id, account, side, price, quantity, tif.value, stp.value)
        assert normalise(events) == expected

    @precondition(lambda self: self.ids)
    @rule(pick=st.integers(0, 10_000))
    def cancel(self, pick: int) -> None:
        order_id, account = self.ids[pick % len(self.ids)]
        events = self.harness.cancel(order_id, account=account)
        assert normalise(events) == self.reference.cancel(order_id, account)

    @precondition(lambda self: self.ids)
    @rule(pick=st.integers(0, 10_000), quantity=st.none() | QUANTITIES, price=st.none() | PRICES)
    def amend(self, pick: int, quantity: int | None, price: int | None) -> None:
        order_id, account = self.ids[pick % len(self.ids)]
        h = self.harness

        events = h.run(
            AmendOrder(
                **h._next(), order_id=order_id, account_id=account, quantity_t=quantity,
                price_cny=None if price is None else f"{price / 100:.2f}",
            )
        )  # fmt: skip
        assert normalise(events) == self.reference.amend(h.seq, order_id, account, quantity, price)

    @invariant()
    def books_agree(self) -> None:
        assert self.harness.book() == self.reference.book()
        assert check_book(self.harness.engine.states[self.harness.instrument.instrument_id].book) == []


class HubeiMatchesReference(EngineMatchesReference):
    style = MatchingStyle.HUBEI_MID


SETTINGS = settings(
    max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestPriceTimeAgainstReference = EngineMatchesReference.TestCase
TestPriceTimeAgainstReference.settings = SETTINGS
TestHubeiAgainstReference = HubeiMatchesReference.TestCase
TestHubeiAgainstReference.settings = SETTINGS
