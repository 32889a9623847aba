"""The live stream, end to end: a real uvicorn server, a streaming client, orders placed by another client.

The server is a subprocess on a copy of the seeded database; the orders go in through the in-process app
of the test (another process on the same database), so the test also shows that a stream sees commits made
by any process. Every wait has a timeout, and the server is stopped in ``finally``: the test cannot hang.
"""

from __future__ import annotations

import queue
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.stream_client import MarketStream, SseParser, StreamEvent, StreamGap
from carbon.ledger import CreditClass
from core.auth import OrgKind
from core.clock import FixedClock
from core.settings import Settings
from tests.conftest import start_uvicorn, stop_uvicorn, wait_healthy

from .market_helpers import Login, deposit, issue, list_instrument, order

FCT = "FCT-2025"
WAIT_S = 20.0


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """A uvicorn server of the app on the test's database; its URL."""
    process, url, log_path = start_uvicorn(
        settings.resolved_database_url, tmp_path, "uvicorn",
        SHANHAI_MARKET_STREAM_POLL_SECONDS="0.05", SHANHAI_MARKET_STREAM_MAX_SECONDS="60",
    )  # fmt: skip
    try:
        wait_healthy(process, url, log_path)
        yield url
    finally:
        stop_uvicorn(process)


def follow(stream: MarketStream) -> tuple[queue.Queue[StreamEvent | BaseException], threading.Thread]:
    """Read the stream on a daemon thread into a queue (errors too)."""
    events: queue.Queue[StreamEvent | BaseException] = queue.Queue()

    def run() -> None:
        try:
            for event in stream:
                events.put(event)
        except BaseException as error:
            events.put(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return events, thread


def take(events: queue.Queue[StreamEvent | BaseException], count: int) -> list[StreamEvent]:
    taken: list[StreamEvent] = []
    deadline = time.monotonic() + WAIT_S
    while len(taken) < count:
        item = events.get(timeout=max(0.1, deadline - time.monotonic()))
        if isinstance(item, BaseException):
            raise item
        taken.append(item)
    return taken


def test_a_client_sees_orders_of_another_client_in_order(
    server: str, client: TestClient, login: Login, session: Session, clock: FixedClock
) -> None:
    issue(session, clock, 1, "test:stream", CreditClass.FORESTRY_CARBON_TICKET, 1000)
    list_instrument(client, login, FCT, "FCT", "60")
    deposit(client, login, session, OrgKind.ENTERPRISE, 10_000_000)

    stream = MarketStream(server, FCT, timeout=WAIT_S, reconnect=False)
    events, thread = follow(stream)
    try:
        (snapshot,) = take(events, 1)
        assert snapshot.kind == "snapshot" and snapshot.seq == 0
        assert snapshot.data["book"] == {"instrument_id": FCT, "seq": 0, "bids": [], "asks": []}

        order(client, login, "nx-bureau", FCT, "sell", "60.50", 30)
        order(client, login, "nx-bureau", FCT, "sell", "61.00", 10)
        buy = order(client, login, "fj-enterprise", FCT, "buy", "61.00", 35)
        assert buy["filled_t"] == 35
        cancel = client.post(f"/api/v1/orders/{buy['order_id'] - 1}/cancel", headers=login("nx-bureau"))
        assert cancel.status_code == 200, cancel.text

        updates = take(events, 4)
        assert [u.seq for u in updates] == [1, 2, 3, 4]  # one update per committed command, in order
        assert [u.data["command"] for u in updates] == ["PlaceOrder", "PlaceOrder", "PlaceOrder", "CancelOrder"]
        trades = [(t["price_cny"], t["quantity_t"]) for u in updates for t in u.data["trades"]]
        assert trades == [("60.50", 30), ("61.00", 5)]  # price-time: the 60.50 level first
        assert updates[2].data["trades"][0]["seq"] == 3
        # The last update of each delivery carries the book after it; the final one is empty.
        books = [u.data["book"] for u in updates if u.data["book"] is not None]
        assert books and books[-1] == {"instrument_id": FCT, "seq": 4, "bids": [], "asks": []}
        assert all(book["seq"] == u.seq for u in updates if (book := u.data["book"]) is not None)
    finally:
        stream.close()
    thread.join(timeout=WAIT_S)

    # Resume: a new client that saw up to seq 2 gets 3 and 4 from the committed journal, with no snapshot.
    resumed = MarketStream(server, FCT, after_seq=2, timeout=WAIT_S, reconnect=False)
    events, thread = follow(resumed)
    try:
        again = take(events, 2)
        assert [(u.kind, u.seq) for u in again] == [("update", 3), ("update", 4)]
        assert [(t["price_cny"], t["quantity_t"]) for t in again[0].data["trades"]] == [("60.50", 30), ("61.00", 5)]
        assert again[1].data["book"] == {"instrument_id": FCT, "seq": 4, "bids": [], "asks": []}
    finally:
        resumed.close()
    thread.join(timeout=WAIT_S)


def test_the_parser_and_gap_detection() -> None:
    parser = SseParser()
    lines = ["retry: 1000", ": keep-alive", "", "id: 3", "event: update", 'data: {"a":', "data: 1}", ""]
    messages = [m for m in (parser.feed(line) for line in lines) if m is not None]
    assert parser.retry_ms == 1000
    assert [(m.id, m.event, m.data) for m in messages] == [("3", "update", '{"a":\n1}')]

    class Canned(MarketStream):
        def _open(self):  # type: ignore[no-untyped-def]
            import io

            body = b"id: 5\nevent: update\ndata: {}\n\nid: 7\nevent: update\ndata: {}\n\n"
            return io.BufferedReader(io.BytesIO(body))  # type: ignore[return-value]

    stream = Canned("http://unused", FCT, after_seq=4, reconnect=False)
    seen = []
    with pytest.raises(StreamGap, match="expected seq 6, got 7"):
        for event in stream:
            seen.append(event.seq)
    assert seen == [5]


def test_the_client_reconnects_after_the_last_seq() -> None:
    bodies = [
        b"retry: 100\n\nid: 0\nevent: snapshot\ndata: {}\n\nid: 1\nevent: update\ndata: {}\n\n",  # then ends
        b"id: 3\nevent: update\ndata: {}\n\n",  # a gap: reconnect again
        b"id: 2\nevent: update\ndata: {}\n\nid: 3\nevent: update\ndata: {}\n\n",
    ]
    positions: list[int | None] = []

    class Canned(MarketStream):
        def _open(self):  # type: ignore[no-untyped-def]
            import io

            positions.append(self.last_seq)  # what Last-Event-ID would say
            if not bodies:
                raise ConnectionRefusedError("server gone")
            return io.BufferedReader(io.BytesIO(bodies.pop(0)))  # type: ignore[return-value]

    stream = Canned("http://unused", FCT, max_reconnects=3)
    seen = []
    with pytest.raises(ConnectionError, match="gave up after 3 reconnects"):
        for event in stream:
            seen.append((event.kind, event.seq))
    assert seen == [("snapshot", 0), ("update", 1), ("update", 2), ("update", 3)]
    assert positions == [None, 1, 1, 3]


def test_the_stream_carries_the_security_headers_and_is_not_buffered(
    server: str, client: TestClient, login: Login
) -> None:
    # The security headers are a pure ASGI middleware: the snapshot arrives while the stream is still open.
    list_instrument(client, login, FCT, "FCT", "60")
    request = urllib.request.Request(f"{server}/public/v1/market/instruments/{FCT}/stream")
    with urllib.request.urlopen(request, timeout=WAIT_S) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert response.headers["Cache-Control"] == "no-cache"  # public: the route's own value stays
        lines = [response.readline().decode() for _ in range(4)]
    assert "event: snapshot\n" in lines, lines
