"""The state hash and the events of a fixed journal are pinned to the values the engine gave before its hot path
was rewritten (issue: engine ≥ 2× pyorderbook): a snapshot or journal written by one version must replay to the
same hash in the next (ADR 005), so a change that moves these values needs a new snapshot format and an ADR."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from core.canonical import canonical_hash
from tests.unit.trading.harness import TEN_AM, instrument
from trading.instruments import MatchingStyle, StpMode
from trading.orders import (
    AmendOrder,
    CancelOrder,
    ClickOrder,
    Command,
    EndOfDay,
    HaltInstrument,
    OrderType,
    PlaceOrder,
    ResumeInstrument,
    Side,
    TimeInForce,
    event_record,
)
from trading.replay import replay


def mixed_journal(seed: int, count: int, instrument_id: str) -> list[Command]:
    """Orders of every type and time in force with every STP mode, clicks, cancels, amends, halts, days."""
    rng = random.Random(seed)
    commands: list[Command] = []
    placed: list[tuple[str, str]] = []
    for seq in range(1, count + 1):
        common = {"seq": seq, "at": TEN_AM, "instrument_id": instrument_id}
        account = rng.choice(["a", "b", "c", "d"])
        price = rng.randint(5950, 6050)
        price_cny = f"{price / 100:.2f}" if rng.random() < 0.5 else Decimal(price).scaleb(-2)
        roll = rng.random()
        if roll < 0.08 and placed:
            order_id, owner = rng.choice(placed[-30:])
            commands.append(CancelOrder(**common, order_id=order_id, account_id=owner))
        elif roll < 0.16 and placed:
            order_id, owner = rng.choice(placed[-30:])
            commands.append(
                AmendOrder(**common, order_id=order_id, account_id=owner,
                           quantity_t=rng.choice([None, rng.randint(1, 40)]),
                           price_cny=rng.choice([None, price_cny]))
            )  # fmt: skip
        elif roll < 0.165:
            commands.append(EndOfDay(**common))
        elif roll < 0.17:
            commands.append(HaltInstrument(**common))
        elif roll < 0.19:
            commands.append(ResumeInstrument(**common))
        elif roll < 0.27:
            maker = rng.choice(placed[-20:])[0] if placed and rng.random() < 0.6 else None
            commands.append(
                ClickOrder(**common, order_id=f"k{seq}", account_id=account, side=rng.choice(list(Side)),
                           quantity_t=rng.randint(1, 20), maker_order_id=maker,
                           price_cny=None if maker or rng.random() < 0.5 else price_cny)
            )  # fmt: skip
        else:
            order_id = f"o{seq}"
            placed.append((order_id, account))
            commands.append(
                PlaceOrder(**common, order_id=order_id, account_id=account, side=rng.choice(list(Side)),
                           quantity_t=rng.randint(1, 60), price_cny=price_cny,
                           order_type=OrderType.MARKET if rng.random() < 0.07 else OrderType.LIMIT,
                           time_in_force=rng.choice([TimeInForce.GTC] * 4 + [TimeInForce.DAY, TimeInForce.IOC,
                                                                               TimeInForce.FOK]),
                           stp=rng.choice([None, *StpMode]))
            )  # fmt: skip
    return commands


PINNED = {
    MatchingStyle.PRICE_TIME: (
        "4409edf563a0785b5a5f88e8c51037e135a32e79a373ea27e63a45137d97bc35",
        "d0b701b7cdc58cc0cecc279efad0fe44f046c94565784f34d8e63deb082570de",
    ),
    MatchingStyle.HUBEI_MID: (
        "51f4e544cd7927785cc04f35d1ef84a460087fe5a2f5a08ea8635be44b04ec9e",
        "9a344909369107d0951b52c43745e1da0261224e1d4747715a2ef457fa8cb231",
    ),
    MatchingStyle.LISTING_CLICK: (
        "dc2bc85c01131fb7fa05cdd85e9f869333e0e2718ddf278994abddd5cbe48d31",
        "4df4f88e42d228c4b6d62068c2b30a940cb6ab665e94b18ae5b60bda4a41d855",
    ),
    MatchingStyle.GUANGDONG_CLICK: (
        "aa2daf37c21a7d4d983df25b2b02fccde1e54a58bed2522d07c8161a23771351",
        "6ae6a98ba14d1b124a80eecd249a262667d6710644f09280901b5400558f7d95",
    ),
}


@pytest.mark.parametrize("style", list(MatchingStyle))
def test_state_hash_and_events_are_pinned(style: MatchingStyle) -> None:
    instruments = [instrument(style)]
    engine, events = replay(instruments, mixed_journal(35, 2_000, instruments[0].instrument_id))
    assert engine.snapshot()["instruments"][instruments[0].instrument_id]["day_trades"] or style.is_click
    assert (engine.state_hash(), canonical_hash([event_record(e) for e in events])) == PINNED[style]
