"""The verifiable audit log on SQLite: tree heads, proofs over HTTP, export, and the insider who rewrites.

Proofs served by the API are checked here with a verifier written in this file from RFC 6962 with
``hashlib`` alone, not with ``core.merkle``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core import audit
from core.audit import AuditEntry, AuditHead
from core.audit_export import ENTRIES_FILE, PUBLIC_KEY_FILE, TREE_HEAD_FILE, export_line, write_tree_head
from core.audit_tree import AuditTree, load_signing_key
from core.clock import FixedClock
from core.errors import AuditChainBroken, InvalidInput, NotFound
from core.merkle import MerkleTree
from core.settings import Settings, get_settings
from core.tree_head import SignedTreeHead, load_public_key_pem, public_key_pem, sign_tree_head, verify_tree_head
from shanhai.cli import main
from tests.conftest import rewrite_audit_entry

# --- an independent RFC 6962 verifier (hashlib only) ----------------------------------------------


def h_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def h_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = largest_power_below(len(leaves))
    return h_node(mth(leaves[:k]), mth(leaves[k:]))


def root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    if size == 1:
        return leaf if not path else None
    if not path:
        return None
    k = largest_power_below(size)
    if index < k:
        inner = root_from_path(index, k, leaf, path[:-1])
        return None if inner is None else h_node(inner, path[-1])
    inner = root_from_path(index - k, size - k, leaf, path[:-1])
    return None if inner is None else h_node(path[-1], inner)


def roots_from_consistency(m: int, n: int, proof: list[bytes], old: bytes, whole: bool = True) -> Any:
    if m == n:
        if whole:
            return (old, old) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = largest_power_below(n)
    if m <= k:
        inner = roots_from_consistency(m, k, proof[:-1], old, whole)
        return None if inner is None else (inner[0], h_node(inner[1], proof[-1]))
    inner = roots_from_consistency(m - k, n - k, proof[:-1], old, False)
    return None if inner is None else (h_node(proof[-1], inner[0]), h_node(proof[-1], inner[1]))


def consistent(m: int, n: int, old_root: str, new_root: str, proof: list[str]) -> bool:
    old, new = bytes.fromhex(old_root), bytes.fromhex(new_root)
    return roots_from_consistency(m, n, [bytes.fromhex(p) for p in proof], old) == (old, new)


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def db(app: object, session: Session) -> Session:
    return session


def append_some(session: Session, clock: FixedClock, n: int = 3) -> list[AuditEntry]:
    entries = [
        audit.append(session, actor="user:1", action="test.did", subject=f"thing:{i}", payload={"i": i}, clock=clock)
        for i in range(n)
    ]
    session.commit()
    return entries


def insider_rewrite(session: Session, seq: int, payload: Any) -> None:
    """Rewrite one entry's payload and recompute every later hash and the head: the chain verifies."""
    rewrite_audit_entry(session, seq, payload)


def leaves_in_db(session: Session) -> list[bytes]:
    hashes = list(session.scalars(select(AuditEntry.entry_hash).order_by(AuditEntry.seq)))
    session.rollback()  # end the read: on SQLite every transaction takes the write lock (BEGIN IMMEDIATE)
    return [h_leaf(bytes.fromhex(h)) for h in hashes]


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SHANHAI_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("SHANHAI_DATA_DIR", str(Path(settings.data_dir)))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- API ------------------------------------------------------------------------------------------


def test_tree_head_is_signed_over_the_log_and_verifies_independently(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    append_some(db, clock)
    head = client.get("/api/v1/audit/tree-head").json()
    key = client.get("/api/v1/audit/public-key").json()
    public_key = load_public_key_pem(key["pem"].encode())
    assert key["algorithm"] == "Ed25519" and key["key_id"] == head["key_id"]
    assert bytes.fromhex(key["public_key"]) == public_key.public_bytes_raw()
    leaves = leaves_in_db(db)
    assert head["tree_size"] == len(leaves) and head["root_hash"] == mth(leaves).hex()
    assert head["timestamp"] == clock.now().isoformat()
    assert verify_tree_head(SignedTreeHead.from_dict(head), public_key)


def test_every_inclusion_proof_verifies_independently(client: TestClient, db: Session, clock: FixedClock) -> None:
    append_some(db, clock, 6)
    size = client.get("/api/v1/audit/tree-head").json()["tree_size"]
    leaves = leaves_in_db(db)
    for tree_size in (size - 3, size):
        root = mth(leaves[:tree_size])
        for seq in range(1, tree_size + 1):
            proof = client.get("/api/v1/audit/proofs/inclusion", params={"seq": seq, "tree_size": tree_size}).json()
            entry_hash = bytes.fromhex(proof["entry_hash"])
            assert proof["leaf_index"] == seq - 1 and h_leaf(entry_hash) == leaves[seq - 1]
            path = [bytes.fromhex(p) for p in proof["audit_path"]]
            assert root_from_path(seq - 1, tree_size, h_leaf(entry_hash), path) == root
            assert proof["root_hash"] == root.hex()


def test_proof_requests_out_of_range_are_problems(client: TestClient, db: Session, clock: FixedClock) -> None:
    append_some(db, clock)
    size = client.get("/api/v1/audit/tree-head").json()["tree_size"]
    response = client.get("/api/v1/audit/proofs/inclusion", params={"seq": size + 1})
    assert response.status_code == 404 and response.json()["type"].endswith("core/not-found")
    response = client.get("/api/v1/audit/proofs/inclusion", params={"seq": 1, "tree_size": size + 1})
    assert response.status_code == 422 and response.json()["errors"][0]["pointer"] == "/query/tree_size"
    response = client.get("/api/v1/audit/proofs/consistency", params={"first": 3, "second": 2})
    assert response.status_code == 422 and response.json()["errors"][0]["pointer"] == "/query/first"


def test_insider_rewrite_with_recomputed_chain_fails_against_a_kept_head(
    client: TestClient, db: Session, clock: FixedClock
) -> None:
    append_some(db, clock, 4)
    kept = client.get("/api/v1/audit/tree-head").json()
    append_some(db, clock, 5)
    now = client.get("/api/v1/audit/tree-head").json()
    honest = client.get("/api/v1/audit/proofs/consistency", params={"first": kept["tree_size"]}).json()
    assert honest["second"] == now["tree_size"]
    assert consistent(kept["tree_size"], now["tree_size"], kept["root_hash"], now["root_hash"], honest["proof"])

    insider_rewrite(db, kept["tree_size"] - 1, {"i": "rewritten"})
    assert audit.verify_chain(db).ok  # the chain alone cannot tell
    db.rollback()
    refused = client.get("/api/v1/audit/tree-head")  # the API no longer signs the forged history (ADR 028)
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["type"] == "urn:shanhai:problem:audit/log-inconsistent"
    assert body["signed_tree_size"] == body["log_tree_size"] == now["tree_size"]
    forged_root = mth(leaves_in_db(db)).hex()
    assert forged_root != now["root_hash"]
    # a client holding the kept head also catches it from the proofs alone
    proof = client.get("/api/v1/audit/proofs/consistency", params={"first": kept["tree_size"]}).json()
    assert proof["first_root_hash"] != kept["root_hash"]
    assert consistent(kept["tree_size"], now["tree_size"], proof["first_root_hash"], forged_root, proof["proof"])
    assert not consistent(kept["tree_size"], now["tree_size"], kept["root_hash"], forged_root, proof["proof"])


# --- the tree cache -------------------------------------------------------------------------------


def test_tree_cache_follows_appends_and_rebuilds_after_a_rewrite(db: Session, clock: FixedClock) -> None:
    tree = AuditTree()
    size = tree.sync(db)
    append_some(db, clock, 2)
    assert tree.sync(db) == size + 2
    position = tree.entry_position(db, size + 1)
    assert (position.leaf_index, position.tree_size) == (size, size + 2)
    assert position.root_hash == mth(leaves_in_db(db)).hex()
    insider_rewrite(db, 1, {"rewritten": True})
    assert tree.entry_position(db, 1).root_hash == mth(leaves_in_db(db)).hex()
    with pytest.raises(NotFound):
        tree.entry_position(db, size + 3)
    key = Ed25519PrivateKey.generate()
    position, head = tree.anchor_entry(db, 2, key, clock)
    assert (position.tree_size, position.root_hash) == (head.tree_size, head.root_hash)
    assert verify_tree_head(head, key.public_key())
    with pytest.raises(NotFound):
        tree.anchor_entry(db, 0, key, clock)
    with pytest.raises(InvalidInput):
        tree.consistency_proof(db, 1, size + 3)


def test_tree_cache_refuses_an_entry_that_does_not_verify(db: Session, clock: FixedClock) -> None:
    entries = append_some(db, clock, 2)
    db.execute(update(AuditEntry).where(AuditEntry.seq == entries[1].seq).values(payload='{"i":"forged"}'))
    db.commit()
    tree = AuditTree()
    with pytest.raises(AuditChainBroken) as raised:
        tree.sync(db)
    assert raised.value.sequence == entries[1].seq


def test_tree_head_of_a_broken_log_is_a_409_problem(client: TestClient, db: Session, clock: FixedClock) -> None:
    entries = append_some(db, clock, 2)
    db.execute(update(AuditEntry).where(AuditEntry.seq == entries[0].seq).values(actor="user:2"))
    db.commit()
    response = client.get("/api/v1/audit/tree-head")
    assert response.status_code == 409 and response.json()["sequence"] == entries[0].seq


# --- command line ---------------------------------------------------------------------------------


def test_publish_head_and_verify_against_it(
    cli_env: None, db: Session, clock: FixedClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    append_some(db, clock)
    kept = tmp_path / "kept.json"
    assert main(["audit", "publish-head", "--out", str(kept)]) == 0
    assert main(["audit", "publish-head"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("{") :])["root_hash"] == json.loads(kept.read_text())["root_hash"]
    append_some(db, clock)
    assert main(["audit", "verify", "--tree-head", str(kept)]) == 0
    assert json.loads(capsys.readouterr().out)["tree_head"]["ok"] is True

    insider_rewrite(db, 2, {"i": "rewritten"})
    assert main(["audit", "verify"]) == 0  # chain recomputed: only a kept head can tell
    assert main(["audit", "verify", "--tree-head", str(kept)]) == 1
    assert "history was rewritten" in capsys.readouterr().err


def test_verify_against_a_kept_head_detects_truncation(
    cli_env: None, db: Session, clock: FixedClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = append_some(db, clock, 3)
    kept = tmp_path / "kept.json"
    assert main(["audit", "publish-head", "--out", str(kept)]) == 0
    # Truncate the newest two entries and move the head back: the chain verifies.
    db.execute(delete(AuditEntry).where(AuditEntry.seq >= entries[1].seq))
    db.execute(update(AuditHead).values(seq=entries[0].seq, entry_hash=entries[0].entry_hash))
    db.commit()
    assert main(["audit", "verify"]) == 0
    assert main(["audit", "verify", "--tree-head", str(kept)]) == 1
    assert "entries were removed" in capsys.readouterr().err


def tamper_payload(session: Session, seqs: list[int]) -> int:
    session.execute(update(AuditEntry).where(AuditEntry.seq == seqs[1]).values(payload='{"i":"forged"}'))
    return seqs[1]


def delete_one(session: Session, seqs: list[int]) -> int:
    session.execute(delete(AuditEntry).where(AuditEntry.seq == seqs[1]))
    return seqs[2]  # reported as a sequence gap at the next entry


def truncate_newest(session: Session, seqs: list[int]) -> int:
    session.execute(delete(AuditEntry).where(AuditEntry.seq >= seqs[1]))
    return seqs[1]  # the head no longer matches the last entry


@pytest.mark.parametrize("damage", [tamper_payload, delete_one, truncate_newest])
def test_cli_verify_detects_tampering_deletion_and_truncation(
    cli_env: None, db: Session, clock: FixedClock, damage: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    seqs = [entry.seq for entry in append_some(db, clock, 3)]
    assert main(["audit", "verify"]) == 0
    broken = damage(db, seqs)
    db.commit()
    assert main(["audit", "verify"]) == 1
    assert f"audit chain broken at entry {broken}:" in capsys.readouterr().err


def test_cli_refuses_to_sign_or_export_a_broken_log(
    cli_env: None, db: Session, clock: FixedClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = append_some(db, clock)
    db.execute(update(AuditEntry).where(AuditEntry.seq == entries[1].seq).values(payload='{"i":7}'))
    db.commit()
    assert main(["audit", "publish-head"]) == 1
    assert main(["audit", "export", "--out", str(tmp_path / "export")]) == 1
    assert main(["audit", "verify", "--tree-head", str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert "no tree head signed" in err and "export stopped" in err and "cannot read" in err


@pytest.fixture
def exported(cli_env: None, db: Session, clock: FixedClock, tmp_path: Path) -> tuple[Path, Path]:
    append_some(db, clock, 4)
    kept = tmp_path / "kept.json"
    assert main(["audit", "publish-head", "--out", str(kept)]) == 0
    append_some(db, clock, 2)
    out = tmp_path / "export"
    assert main(["audit", "export", "--out", str(out)]) == 0
    return out, kept


def test_export_verifies_offline_against_a_kept_head(
    exported: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out, kept = exported
    monkeypatch.setenv("SHANHAI_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")  # never opened
    get_settings.cache_clear()
    capsys.readouterr()
    assert main(["audit", "verify", "--export", str(out), "--tree-head", str(kept)]) == 0
    report = json.loads(capsys.readouterr().out)
    lines = (out / ENTRIES_FILE).read_text().splitlines()
    assert report["ok"] and report["entries"] == len(lines)
    leaves = [h_leaf(bytes.fromhex(json.loads(line)["entry_hash"])) for line in lines]
    assert report["root_hash"] == mth(leaves).hex() == json.loads((out / TREE_HEAD_FILE).read_text())["root_hash"]
    key_file = out / PUBLIC_KEY_FILE
    assert main(["audit", "verify", "--export", str(out), "--public-key", str(key_file)]) == 0


def rewrite_lines(path: Path, change: Any) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines = change(lines)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def rechain(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    prev_hash = audit.GENESIS_HASH
    for number, line in enumerate(lines, start=1):
        line["seq"], line["prev_hash"] = number, prev_hash
        fields = {k: line[k] for k in ("seq", "recorded_at", "actor", "action", "subject", "payload", "prev_hash")}
        line["entry_hash"] = prev_hash = audit.entry_hash(**fields, scheme=line.get("scheme", audit.LEGACY_SCHEME))
    return lines


def tamper_row(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines[1]["payload"] = {"forged": True}
    return lines


def delete_row(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return lines[:1] + lines[2:]


def truncate(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return lines[:2]


def rewrite_and_rechain(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines[1]["payload"] = {"forged": True}
    return rechain(lines)


def truncate_and_rechain(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rechain(lines[:2])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (tamper_row, "entry_hash does not match"),
        (delete_row, "sequence gap"),
        (truncate, "does not match its entries"),
        (rewrite_and_rechain, "does not match its entries"),
        (truncate_and_rechain, "entries were removed"),
        (lambda lines: [*lines, {"seq": "x"}], "is not an audit entry"),
    ],
)
def test_tampered_exports_are_detected(
    exported: tuple[Path, Path], change: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, kept = exported
    rewrite_lines(out / ENTRIES_FILE, change)
    capsys.readouterr()
    assert main(["audit", "verify", "--export", str(out), "--tree-head", str(kept)]) == 1
    assert message in capsys.readouterr().err


def test_a_fully_resigned_export_still_fails_the_kept_head(
    exported: tuple[Path, Path], db: Session, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The insider rewrites a row, rechains, and re-exports with the real key: only the kept head objects."""
    _out, kept = exported
    kept_size = json.loads(kept.read_text())["tree_size"]
    insider_rewrite(db, kept_size - 1, {"i": "rewritten"})
    forged = tmp_path / "forged"
    assert main(["audit", "export", "--out", str(forged)]) == 1  # the app refuses to sign it (ADR 028) …
    assert "not a consistent extension of the last signed tree head" in capsys.readouterr().err
    # … so the insider writes the export by hand and signs it with the stolen key
    entries = list(audit.iter_entries(db))
    db.rollback()
    forged_tree = MerkleTree()
    for entry in entries:
        forged_tree.append(bytes.fromhex(entry.entry_hash))
    forged.mkdir(exist_ok=True)
    (forged / ENTRIES_FILE).write_bytes(b"".join(export_line(entry) + b"\n" for entry in entries))
    key = load_signing_key(get_settings())
    head = sign_tree_head(key, tree_size=forged_tree.size, root_hash=forged_tree.root().hex(), timestamp="t")
    write_tree_head(forged / TREE_HEAD_FILE, head)
    (forged / PUBLIC_KEY_FILE).write_text(public_key_pem(key.public_key()), encoding="ascii")
    assert main(["audit", "verify", "--export", str(forged)]) == 0  # self-consistent
    capsys.readouterr()
    assert main(["audit", "verify", "--export", str(forged), "--tree-head", str(kept)]) == 1
    assert "history was rewritten" in capsys.readouterr().err


def test_a_swapped_key_is_caught_by_the_kept_heads_key_id(
    exported: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from core.audit_export import write_tree_head
    from core.tree_head import public_key_pem, sign_tree_head

    out, kept = exported
    rogue = Ed25519PrivateKey.generate()
    head = json.loads((out / TREE_HEAD_FILE).read_text())
    forged = sign_tree_head(
        rogue, tree_size=head["tree_size"], root_hash=head["root_hash"], timestamp=head["timestamp"]
    )
    write_tree_head(out / TREE_HEAD_FILE, forged)
    (out / PUBLIC_KEY_FILE).write_text(public_key_pem(rogue.public_key()))
    assert main(["audit", "verify", "--export", str(out)]) == 0  # a new key alone proves nothing either way
    capsys.readouterr()
    assert main(["audit", "verify", "--export", str(out), "--tree-head", str(kept)]) == 1
    assert "signature does not verify" in capsys.readouterr().err
    (out / TREE_HEAD_FILE).write_text("{}")
    assert main(["audit", "verify", "--export", str(out)]) == 1
    assert main(["audit", "verify", "--export", str(out), "--public-key", str(out / "nope.pem")]) == 1
