"""Logging: the request id of the running request, and the text or JSON log configuration (ADR 029).

The request id lives in a context variable set by the API's request middleware (``api/observability.py``) for
the duration of one request, so every record logged while it runs — by a route, a service or the access log —
carries it. With ``SHANHAI_LOG_FORMAT=json`` each record is one JSON object per line with ``time``, ``level``,
``logger``, ``message``, ``request_id`` and the record's extras (the access log adds ``method``, ``route``,
``status`` and ``latency_ms``).
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, Literal

from pythonjsonlogger.json import JsonFormatter

#: The id of the request being answered in this context (``None`` outside a request).
request_id_var: ContextVar[str | None] = ContextVar("shanhai_request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
_HANDLER_NAME = "shanhai"


class RequestIdFilter(logging.Filter):
    """Put the current request id (or ``-``) on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id`` unless the record carries one already; keep the record."""
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get() or "-"
        return True


class ShanhaiJsonFormatter(JsonFormatter):
    """One JSON object per record: ``time`` (ISO 8601 UTC), ``level``, ``logger``, ``message`` and the extras."""

    def __init__(self) -> None:
        super().__init__(
            JSON_FIELDS,
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """Return the record's time as RFC 3339 UTC with milliseconds."""
        stamp = logging.Formatter.formatTime(self, record, "%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{int(record.msecs):03d}Z"

    converter = staticmethod(time.gmtime)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Drop the placeholder request id of records logged outside a request."""
        if log_data.get("request_id") == "-":
            log_data["request_id"] = None
        return log_data


def make_formatter(log_format: Literal["text", "json"]) -> logging.Formatter:
    """Return the formatter of ``log_format``."""
    if log_format == "json":
        return ShanhaiJsonFormatter()
    formatter = logging.Formatter(TEXT_FORMAT)
    formatter.converter = time.gmtime
    return formatter


def configure_logging(
    log_format: Literal["text", "json"], level: str = "INFO", *, stream: Any = None
) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) in ``log_format``; return the handler.

    Idempotent: a second call replaces the handler the first one installed (and nothing else).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(make_formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level)
    return handler
