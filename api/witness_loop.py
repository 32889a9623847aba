"""Asynchronous witnessing: the Celery task body and, without a broker, a thread of the API process (ADR 033).

With a broker the beat scheduler queues ``shanhai.audit.witness`` every ``SHANHAI_AUDIT_WITNESS_SECONDS``
(:func:`api.worker.create_celery`); the embedded default has no beat, so :class:`WitnessLoop` runs the same
round in a daemon thread of the API process. Either way a request never waits for a witness.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from core.audit_tree import AuditTree
from core.clock import Clock
from core.db import session_scope
from core.errors import ShanhaiError
from core.metrics import timed_job
from core.witnessing import UrllibTransport, WitnessPolicy, WitnessTransport, witness_round

logger = logging.getLogger(__name__)


def run_witness_round(
    session_factory: sessionmaker[Session],
    tree: AuditTree,
    key: Ed25519PrivateKey,
    clock: Clock,
    policy: WitnessPolicy,
    transport: WitnessTransport | None = None,
) -> dict[str, Any]:
    """Run one round in its own session and return a JSON-ready summary (the task's result)."""
    with timed_job("audit_witness"), session_scope(session_factory) as session:
        result = witness_round(session, tree, key, clock, policy, transport or UrllibTransport())
    return {
        "tree_size": result.tree_size,
        "root_hash": result.root_hash,
        "cosignatures": result.cosignatures,
        "witnessed": result.witnessed,
        "outcomes": [outcome.__dict__ for outcome in result.outcomes],
    }


class WitnessLoop:
    """A daemon thread running a witnessing round every ``interval_s`` seconds until :meth:`stop`."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        tree: AuditTree,
        key: Ed25519PrivateKey,
        clock: Clock,
        policy: WitnessPolicy,
        interval_s: float,
    ) -> None:
        self._args = (session_factory, tree, key, clock, policy)
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shanhai-witnessing", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end and wait for the round in progress."""
        self._stopped.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            try:
                run_witness_round(*self._args)
            except ShanhaiError as error:  # the alarm of ADR 028 was raised and logged where it was found
                logger.warning("witnessing round skipped: %s", error)
            except Exception:  # a thread that dies stops witnessing for good: log and go on
                logger.exception("witnessing round failed")
