"""A small Python client of the market-data stream (Server-Sent Events), standard library only.

>>> parser = SseParser()
>>> parser.feed("id: 7")
>>> parser.feed("event: update")
>>> parser.feed('data: {"seq": 7}')
>>> parser.feed("")
SseMessage(id='7', event='update', data='{"seq": 7}')

Use::

    with MarketStream("http://127.0.0.1:8000", "FCT-2025") as stream:
        for event in stream:          # a snapshot first, then one update per committed seq
            print(event.seq, event.kind, event.data["trades"] if event.kind == "update" else event.data["book"])

The client checks that update ids are consecutive (the server numbers them with the instrument's journal
sequence): a gap raises :class:`StreamGap` unless ``reconnect`` is on, in which case it reconnects with
``Last-Event-ID`` and the server sends the missing updates from its committed journal. A dropped connection
reconnects the same way. ``timeout`` bounds every read (the server sends a keep-alive comment every 15 s).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPResponse
from types import TracebackType
from typing import Any, Self


@dataclass(frozen=True)
class SseMessage:
    """One dispatched Server-Sent Event."""

    id: str | None
    event: str
    data: str


@dataclass(frozen=True)
class StreamEvent:
    """A market-data event: ``snapshot`` or ``update``, its seq and its JSON data."""

    seq: int
    kind: str
    data: dict[str, Any]


class StreamGap(RuntimeError):
    """An update arrived whose seq is not the one after the last seen."""


class SseParser:
    """The event-stream format, line by line (WHATWG HTML, "Server-sent events", parsing)."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = ""
        self._data: list[str] = []
        self.retry_ms: int | None = None

    def feed(self, line: str) -> SseMessage | None:
        """Take one line without its end of line; return a message when a blank line dispatches one."""
        if line == "":
            if not self._data:
                self._event = ""
                return None
            message = SseMessage(self._id, self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            self._id = value
        elif name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


class MarketStream:
    """Follow one instrument's book and trades; iterate to receive :class:`StreamEvent` in seq order."""

    def __init__(
        self,
        base_url: str,
        instrument_id: str,
        *,
        after_seq: int | None = None,
        depth: int = 5,
        timeout: float = 30.0,
        reconnect: bool = True,
        max_reconnects: int = 5,
    ) -> None:
        self.url = (
            f"{base_url.rstrip('/')}/public/v1/market/instruments/{urllib.parse.quote(instrument_id, safe='')}"
            f"/stream?depth={depth}"
        )
        self.last_seq = after_seq
        self.timeout = timeout
        self.reconnect = reconnect
        self.max_reconnects = max_reconnects
        self.reconnects = 0
        self.closed = False
        self._response: HTTPResponse | None = None

    def _open(self) -> HTTPResponse:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_seq is not None:
            headers["Last-Event-ID"] = str(self.last_seq)
        request = urllib.request.Request(self.url, headers=headers)
        response: HTTPResponse = urllib.request.urlopen(request, timeout=self.timeout)
        return response

    def close(self) -> None:
        """Close the connection and end the iteration (also from another thread)."""
        self.closed = True
        if self._response is not None:
            self._response.close()
            self._response = None

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[StreamEvent]:
        while True:
            try:
                yield from self._follow()
                ended = "the server ended the stream"
            except StreamGap as error:
                if not self.reconnect:
                    raise
                ended = str(error)
            except (OSError, ValueError, AttributeError) as error:
                if self.closed:  # closed by the caller, maybe from another thread, while a read was in flight
                    return
                if not isinstance(error, OSError) or isinstance(error, TimeoutError) or not self.reconnect:
                    raise
                ended = str(error)
            if self.closed or not self.reconnect:
                self.close()
                return
            self._drop()
            self.reconnects += 1
            if self.reconnects > self.max_reconnects:
                raise ConnectionError(f"{ended}; gave up after {self.max_reconnects} reconnects")

    def _follow(self) -> Iterator[StreamEvent]:
        self._response = self._open()
        parser = SseParser()
        while True:
            raw = self._response.readline()
            if not raw:
                return
            message = parser.feed(raw.decode("utf-8").rstrip("\r\n"))
            if message is None or message.id is None or not message.id.isdigit():
                continue
            seq = int(message.id)
            if message.event == "update" and self.last_seq is not None and seq != self.last_seq + 1:
                raise StreamGap(f"expected seq {self.last_seq + 1}, got {seq}")
            self.last_seq = seq
            yield StreamEvent(seq, message.event, json.loads(message.data))
