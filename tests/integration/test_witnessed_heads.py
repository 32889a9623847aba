"""Two provincial witnesses (Fujian, Ningxia) cosign the audit log as it grows, and refuse a rewritten history.

Each witness is its own process (``shanhai witness serve``, the C2SP tlog-witness protocol over HTTP), with its
own key and state directory. On SQLite and PostgreSQL:

* as the log grows, each round submits the newest checkpoint with a consistency proof from the size the witness
  last cosigned; both cosign, and the head is witnessed (2 of 2);
* ``shanhai audit export`` publishes the entries (both canonicalization schemes), the witnessed checkpoint and
  the keys; ``docs/verify_witnessed_head.py`` (standard library and ``cryptography`` only) and ``shanhai audit
  verify --checkpoint`` check them;
* an insider who can also empty the platform's store of signed heads (ADR 028's own check is then blind)
  rewrites an entry, recomputes the chain and lets the log grow: the platform signs and submits; both witnesses
  answer 422, keep the evidence and count the alarm; the platform logs the refusal and its head stays unwitnessed.

And in-process: the embedded default runs rounds in a thread of the API, and ``/api/v1/audit/tree-head``,
``/audit/checkpoint/witnessed``, ``/audit/witnesses`` and ``/public/v1/retirements/{code}/witnessed`` show it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass, IssueBatch, RetireUnits, issue_batch, retire_units
from core import audit, merkle
from core.audit import AuditEntry
from core.audit_export import export_log
from core.audit_tree import AuditTree, Notary
from core.auth import OrgKind, User, principal_of
from core.checkpoint import WitnessKey, check_witnessed, log_vkey
from core.clock import FixedClock
from core.settings import Settings
from core.tree_head import private_key_pem
from core.witnessing import (
    ConfiguredWitness,
    UrllibTransport,
    WitnessPolicy,
    latest_witnessed_size,
    publish_witness_files,
    witness_round,
)
from shanhai.app import create_app
from shanhai.cli import main
from tests.conftest import REPO, free_port, rewrite_audit_entry, seeded_session, stop_uvicorn
from witness.note import cosigner_vkey
from witness.server import load_or_create_key
from witness.store import WitnessStore

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
ORIGIN = "shanhai.test/audit-log"
SCRIPT = REPO / "docs" / "verify_witnessed_head.py"


@dataclass
class RunningWitness:
    name: str
    state_dir: Path
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def key(self) -> WitnessKey:
        return WitnessKey(self.name, load_or_create_key(self.state_dir).public_key())

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            body: bytes = response.read()
        return body.decode()


def start_witness(name: str, state_dir: Path, log_key: Ed25519PrivateKey) -> RunningWitness:
    load_or_create_key(state_dir)
    port = free_port()
    log_path = state_dir / "witness.log"
    environment = os.environ | {"SHANHAI_ENVIRONMENT": "test", "SHANHAI_DATA_DIR": str(state_dir)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shanhai.cli", "witness", "serve", "--name", name, "--state-dir", str(state_dir),
             "--log", log_vkey(ORIGIN, log_key.public_key()), "--port", str(port)],
            cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the witness did not start: {log_path.read_text()}") from None
            time.sleep(0.2)
    return RunningWitness(name, state_dir, url, process, log_path)


@pytest.fixture
def log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def witnesses(tmp_path: Path, log_key: Ed25519PrivateKey) -> Iterator[list[RunningWitness]]:
    running = []
    try:
        for province in ("fujian", "ningxia"):
            running.append(start_witness(f"witness.{province}.test/shanhai", tmp_path / province, log_key))
        yield running
    finally:
        for witness in running:
            stop_uvicorn(witness.process)


def policy_of(witnesses: list[RunningWitness]) -> WitnessPolicy:
    return WitnessPolicy(ORIGIN, tuple(ConfiguredWitness(w.key, w.url) for w in witnesses), quorum=len(witnesses))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, template_db: Path, tmp_path: Path) -> Iterator[Session]:
    with seeded_session(request.param, template_db, tmp_path, AT) as session:
        yield session


def grow(session: Session, n: int, **payload: object) -> None:
    for i in range(n):
        audit.append(session, actor="user:1", action="test.did", subject=f"thing:{i}", payload={"i": i, **payload},
                     clock=FixedClock(AT))  # fmt: skip
    session.commit()


def insider_rewrites_everything(session: Session, seq: int) -> None:
    """Empty the signed-head store (triggers dropped, as a database owner can), rewrite entry ``seq``, rechain."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DROP TRIGGER audit_signed_head_no_change ON audit_signed_head"))
    else:
        session.execute(text("DROP TRIGGER audit_signed_head_no_delete"))
    session.execute(text("DELETE FROM audit_signed_head"))
    session.execute(text("DELETE FROM audit_cosignature"))  # the platform's copy; the witnesses keep theirs
    rewrite_audit_entry(session, seq, {"i": "rewritten"})
    assert audit.verify_chain(session).ok  # the chain alone cannot tell


def test_two_witnesses_cosign_as_the_log_grows_and_refuse_a_rewrite(
    db: Session,
    witnesses: list[RunningWitness],
    log_key: Ed25519PrivateKey,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy, clock, transport = policy_of(witnesses), FixedClock(AT), UrllibTransport()
    tree = AuditTree()
    grow(db, 3, big=2**60)  # an integer RFC 8785 cannot write: these entries stay under shanhai-json/1
    first = witness_round(db, tree, log_key, clock, policy, transport)
    assert first.witnessed and first.cosignatures == 2, first.outcomes
    grow(db, 5)
    second = witness_round(db, tree, log_key, clock, policy, transport)
    assert second.witnessed and second.tree_size == first.tree_size + 5, second.outcomes
    assert [outcome.status for outcome in second.outcomes] == [200, 200]
    again = witness_round(db, tree, log_key, clock, policy, transport)
    assert again.witnessed and [o.detail for o in again.outcomes] == ["already cosigned"] * 2
    assert latest_witnessed_size(db, policy) == second.tree_size
    schemes = set(db.scalars(select(AuditEntry.scheme)))
    assert schemes == {audit.LEGACY_SCHEME, audit.JCS_SCHEME}

    # Published files: the third-party script and the CLI check the witnessed head offline.
    out = tmp_path / "published"
    export_log(db, out, key=log_key, clock=clock)
    db.commit()
    assert publish_witness_files(db, out, log_key, policy) == second.tree_size
    checked = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["tree_size"] == second.tree_size and sorted(report["cosigned_by"]) == sorted(
        w.name for w in witnesses
    )
    assert set(report["schemes"]) == {"rfc8785", "shanhai-json/1"}
    assert main(["audit", "verify", "--checkpoint", str(out / "checkpoint.txt"), "--export", str(out)]) == 0
    note = (out / "checkpoint.txt").read_text()
    assert check_witnessed(note, (ORIGIN, log_key.public_key()), [w.key for w in witnesses], 2).ok

    # A tampered entry in the published files fails the script.
    lines = (out / "entries.jsonl").read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["payload"] = {"i": "forged"}
    (out / "entries.jsonl").write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n")
    tampered = subprocess.run([sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True, check=False)
    assert tampered.returncode == 1

    # The insider rewrites history under the platform, and the log grows on.
    witnessed_before = latest_witnessed_size(db, policy)
    insider_rewrites_everything(db, first.tree_size - 1)
    grow(db, 2)
    with caplog.at_level(logging.ERROR, logger="core.witnessing"):
        forged_round = witness_round(db, AuditTree(), log_key, clock, policy, transport)  # a fresh process
    assert not forged_round.witnessed and forged_round.cosignatures == 0
    assert [outcome.status for outcome in forged_round.outcomes] == [422, 422], forged_round.outcomes
    assert caplog.text.count("refused to cosign") == 2
    assert latest_witnessed_size(db, policy) in (None, witnessed_before)  # the platform's copy was deleted too
    for witness in witnesses:
        [evidence] = WitnessStore(witness.state_dir).evidence(ORIGIN)
        assert evidence["kept_checkpoint"].startswith(f"{ORIGIN}\n{second.tree_size}\n")
        assert f"{ORIGIN}\n{forged_round.tree_size}\n" in evidence["submitted"]
        assert f'shanhai_witness_refusals_total{{origin="{ORIGIN}",reason="inconsistent"}} 1.0' in witness.metrics()
        assert "refuses to cosign" in witness.log_path.read_text()


def test_the_embedded_default_witnesses_in_process_and_publishes_it(
    settings: Settings, witnesses: list[RunningWitness], log_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    key_file = tmp_path / "log_key.pem"
    key_file.write_bytes(private_key_pem(log_key))
    configured = settings.model_copy(
        update={
            "audit_signing_key_file": key_file,
            "audit_log_origin": ORIGIN,
            "audit_witnesses": tuple(f"{w.key.vkey()} {w.url}" for w in witnesses),
            "audit_witness_seconds": 0.2,
        }
    )
    app = create_app(configured, clock=FixedClock(AT))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            code, kept_size = retire_some(app)
            deadline = time.monotonic() + 30
            head = client.get("/api/v1/audit/tree-head").json()
            while not (head["witnessed"] and head["tree_size"] >= kept_size) and time.monotonic() < deadline:
                time.sleep(0.2)
                head = client.get("/api/v1/audit/tree-head").json()
            assert head["witnessed"] and head["cosignatures"] == 2 and head["witnesses_required"] == 2
            assert head["latest_witnessed"]["tree_size"] == head["tree_size"]
            assert head["checkpoint"].startswith(f"{ORIGIN}\n{head['tree_size']}\n")
            note = client.get("/api/v1/audit/checkpoint/witnessed")
            assert note.status_code == 200 and note.text == head["latest_witnessed"]["checkpoint"]
            assert check_witnessed(note.text, (ORIGIN, log_key.public_key()), [w.key for w in witnesses], 2).ok
            current = client.get("/api/v1/audit/checkpoint")
            assert current.status_code == 200 and current.text.startswith(f"{ORIGIN}\n")
            policy = client.get("/api/v1/audit/witnesses").json()
            assert policy["log_vkey"] == log_vkey(ORIGIN, log_key.public_key()) and policy["quorum"] == 2
            assert [w["vkey"] for w in policy["witnesses"]] == [
                cosigner_vkey(w.name, load_or_create_key(w.state_dir).public_key()) for w in witnesses
            ]
            linked = client.get(f"/public/v1/retirements/{code}/witnessed").json()
            assert linked["covered"] and linked["kept_head"]["tree_size"] == kept_size
            proof, witnessed = linked["consistency_proof"], linked["witnessed_head"]
            assert (proof["first"], proof["second"]) == (kept_size, witnessed["tree_size"])
            assert merkle.verify_consistency(
                kept_size, witnessed["tree_size"], bytes.fromhex(linked["kept_head"]["root_hash"]),
                bytes.fromhex(witnessed["root_hash"]), [bytes.fromhex(node) for node in proof["proof"]],
            )  # fmt: skip
            missing = client.get("/public/v1/retirements/NO-SUCH-CODE/witnessed")
            assert missing.status_code == 404
            assert missing.headers["content-type"].startswith("application/problem+json")
    finally:
        app.state.engine.dispose()


def retire_some(app: FastAPI) -> tuple[str, int]:
    """Issue 100 t and retire 10 in the app's database, the head kept in the retirement's transaction."""
    clock = FixedClock(AT)
    with app.state.session_factory() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
        issue_batch(session, IssueBatch(1, "test:witness", CreditClass.FORESTRY_CARBON_TICKET, 2025, 100, 0),
                    actor=who[OrgKind.REGISTRY], clock=clock)  # fmt: skip
        notary = Notary(app.state.audit_tree, app.state.audit_signing_key)
        retirement = retire_units(session, RetireUnits(10, "b", "p", 2025), actor=who[OrgKind.FORESTRY_BUREAU],
                                  clock=clock, notary=notary)  # fmt: skip
        assert retirement.audit_seq is not None
        return retirement.verification_code, retirement.audit_seq


def test_no_witness_configured_means_nothing_is_witnessed(client: TestClient) -> None:
    head = client.get("/api/v1/audit/tree-head").json()
    assert (head["witnessed"], head["witnesses_required"], head["latest_witnessed"]) == (False, 0, None)
    assert client.get("/api/v1/audit/checkpoint/witnessed").status_code == 404
    assert client.get("/api/v1/audit/witnesses").json()["witnesses"] == []
