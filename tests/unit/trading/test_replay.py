"""M17: deterministic replay, snapshots and the state hash."""

from __future__ import annotations

import json
import random

import pytest

from tests.unit.trading.harness import TEN_AM, instrument
from trading.instruments import MatchingStyle
from trading.orders import AmendOrder, CancelOrder, Command, EndOfDay, OrderType, PlaceOrder, Side, TimeInForce
from trading.replay import rebuild, replay


def journal(seed: int, count: int, instrument_id: str) -> list[Command]:
    """A seeded mix of limit/market/IOC/day orders, cancels, amends and an end of day."""
    rng = random.Random(seed)
    commands: list[Command] = []
    for seq in range(1, count + 1):
        common = {"seq": seq, "at": TEN_AM, "instrument_id": instrument_id}
        target = f"o{rng.randrange(1, seq)}" if seq > 1 else "o0"
        roll = rng.random()
        if roll < 0.1:
            commands.append(CancelOrder(**common, order_id=target, account_id=f"acct-{target}"))
        elif roll < 0.2:
            commands.append(
                AmendOrder(**common, order_id=target, account_id=f"acct-{target}", quantity_t=rng.randint(1, 5))
            )
        elif roll < 0.21:
            commands.append(EndOfDay(**common))
        else:
            commands.append(
                PlaceOrder(
                    **common, order_id=f"o{seq}", account_id=f"acct-o{seq}", side=rng.choice(list(Side)),
                    quantity_t=rng.randint(1, 50), price_cny=f"{rng.randint(5700, 6300) / 100:.2f}",
                    time_in_force=rng.choice([TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC]),
                    order_type=OrderType.MARKET if rng.random() < 0.05 else OrderType.LIMIT,
                )
            )  # fmt: skip
    return commands


@pytest.mark.parametrize("style", [MatchingStyle.PRICE_TIME, MatchingStyle.HUBEI_MID])
def test_m17_deterministic_replay(style: MatchingStyle) -> None:
    instruments = [instrument(style)]
    commands = journal(17, 3_000, instruments[0].instrument_id)
    full, events = replay(instruments, commands)
    again, events_again = replay(instruments, commands)
    assert events == events_again and full.state_hash() == again.state_hash()
    assert any(type(e).__name__ == "Fill" for e in events)
    for cut in (0, 1, 1_234, 2_999):
        head, _ = replay(instruments, commands[:cut])
        snapshot = json.loads(json.dumps(head.snapshot()))  # as stored: through JSON and back
        tail_engine, tail_events = replay(instruments, commands[cut:], snapshot=snapshot)
        assert tail_engine.state_hash() == full.state_hash()
        first_tail_seq = commands[cut].seq if cut < len(commands) else None
        assert tail_events == [e for e in events if first_tail_seq is not None and e.seq >= first_tail_seq]
    assert rebuild(instruments, commands[1_234:], snapshot=replay(instruments, commands[:1_234])[0].snapshot(),
                   expected_hash=full.state_hash()).state_hash() == full.state_hash()  # fmt: skip
    with pytest.raises(ValueError):
        rebuild(instruments, commands[:10], snapshot=None, expected_hash=full.state_hash())


def test_snapshot_refuses_other_formats_and_unknown_instruments() -> None:
    instruments = [instrument()]
    engine, _ = replay(instruments, [])
    snapshot = engine.snapshot()
    with pytest.raises(ValueError):
        replay(instruments, [], snapshot={**snapshot, "format": 99})
    with pytest.raises(ValueError):
        replay([], [], snapshot=snapshot)
