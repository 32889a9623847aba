"""The witness's HTTP service: ``POST /add-checkpoint`` (c2sp.org/tlog-witness), ``/health`` and ``/metrics``.

Push, as the specification has it: the log submits each new checkpoint with a consistency proof from the
size the witness last cosigned, so the witness needs no route to the log and any C2SP log or witness can take
part (ADR 033). ``shanhai witness serve`` runs :func:`serve`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from core.metrics import render
from witness.note import LogKey, cosigner_vkey
from witness.service import Witness
from witness.store import WitnessStore

KEY_FILE = "witness_key.pem"
logger = logging.getLogger(__name__)


def load_or_create_key(state_dir: Path) -> Ed25519PrivateKey:
    """Return the witness key kept in ``state_dir``, generating it (mode 0600) the first time."""
    path = state_dir / KEY_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.write_bytes(pem)
    return load_key(path)


def load_key(path: Path) -> Ed25519PrivateKey:
    """Read the witness key from an unencrypted PEM (PKCS#8) file, e.g. a mounted secret."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def build_witness(name: str, state_dir: Path, log_vkeys: list[str], key: Ed25519PrivateKey | None = None) -> Witness:
    """Return the witness ``name`` keeping its state in ``state_dir`` and following the logs of ``log_vkeys``.

    Without ``key``, the key kept in ``state_dir`` (generated there the first time).
    """
    logs: dict[str, list[LogKey]] = {}
    for text in log_vkeys:
        log_key = LogKey.from_vkey(text)
        logs.setdefault(log_key.name, []).append(log_key)
    return Witness(name, key or load_or_create_key(state_dir), logs, WitnessStore(state_dir))


def create_witness_app(witness: Witness) -> FastAPI:
    """Return the witness's HTTP application."""
    app = FastAPI(title=f"Shanhai witness {witness.name}", docs_url=None, redoc_url=None, openapi_url=None)
    vkey = cosigner_vkey(witness.name, witness.key.public_key())

    @app.post("/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        answer = await run_in_threadpool(witness.add_checkpoint, await request.body())
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "name": witness.name, "vkey": vkey}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(render(), media_type="text/plain; version=0.0.4")

    return app


def serve(witness: Witness, *, host: str, port: int) -> None:
    """Serve ``witness`` until interrupted (one process: the store's lock serialises submissions)."""
    logger.info(
        "witness %s (%s) listening on %s:%d",
        witness.name,
        cosigner_vkey(witness.name, witness.key.public_key()),
        host,
        port,
    )
    uvicorn.run(create_witness_app(witness), host=host, port=port, log_config=None)
