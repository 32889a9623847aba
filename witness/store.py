"""What a witness keeps on disk: the last checkpoint it cosigned per log, and evidence of refused ones.

Layout under the state directory::

    witness_key.pem                 the witness's Ed25519 key (PKCS#8 PEM, mode 0600)
    logs/<id>.json                  {"origin", "tree_size", "root_hash" (base64), "checkpoint" (signed note)}
    evidence/<id>/<time>-<n>.json   {"origin", "reason", "kept_checkpoint", "submitted", "received_at"}
    lock                            serialises check-and-update across threads and processes

``<id>`` is the hex SHA-256 of the origin (origins are free text). Each state file is replaced atomically
(write a temporary file, ``fsync``, ``rename``) while the lock is held, so comparing the submitted old size with
the kept one and keeping the new checkpoint is one step (c2sp.org/tlog-witness's rollback race).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Kept:
    """The last checkpoint cosigned for one log."""

    origin: str
    tree_size: int
    root_hash: str  # base64, as in the checkpoint
    checkpoint: str  # the whole signed note as submitted


class WitnessStore:
    """The state directory of one witness."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        (directory / "logs").mkdir(parents=True, exist_ok=True)
        (directory / "evidence").mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()

    @staticmethod
    def _id(origin: str) -> str:
        return hashlib.sha256(origin.encode("utf-8")).hexdigest()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the witness's lock (threads of this process, then other processes on the directory)."""
        with self._thread_lock, (self.directory / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def kept(self, origin: str) -> Kept | None:
        """Return the last checkpoint cosigned for ``origin``, or ``None`` before the first."""
        path = self.directory / "logs" / f"{self._id(origin)}.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return Kept(data["origin"], data["tree_size"], data["root_hash"], data["checkpoint"])

    def keep(self, kept: Kept) -> None:
        """Replace the kept checkpoint of ``kept.origin`` atomically (call it holding :meth:`locked`)."""
        path = self.directory / "logs" / f"{self._id(kept.origin)}.json"
        _write_atomically(path, kept.__dict__)

    def keep_evidence(self, origin: str, record: dict[str, Any], stamp: str) -> Path:
        """Write one refused submission as evidence; return its file."""
        folder = self.directory / "evidence" / self._id(origin)
        folder.mkdir(parents=True, exist_ok=True)
        number = len(list(folder.iterdir())) + 1
        path = folder / f"{stamp.replace(':', '')}-{number}.json"
        _write_atomically(path, {"origin": origin, **record})
        return path

    def evidence(self, origin: str) -> list[dict[str, Any]]:
        """Return every evidence record kept for ``origin``, oldest first."""
        folder = self.directory / "evidence" / self._id(origin)
        if not folder.exists():
            return []
        files = sorted(folder.iterdir(), key=lambda path: path.stat().st_mtime_ns)
        return [json.loads(path.read_text(encoding="utf-8")) for path in files]


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
