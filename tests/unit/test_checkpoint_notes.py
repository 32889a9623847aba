"""C2SP formats: the platform's ``core.checkpoint`` and the witness's ``witness.note`` read each other.

Known answers from the specifications (c2sp.org/signed-note: the ``example.com/foo`` vkey and note), and
cross-checks: a checkpoint the platform signs is accepted by the witness's parser, a cosignature the witness
makes verifies with the platform's code, and a tampered line fails in both.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core import checkpoint
from witness import note as wnote

SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)
LOG = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
WITNESS = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ORIGIN = "shanhai.example/audit-log"


def test_the_signed_note_specification_example_verifies_in_both() -> None:
    name, kind, public_key = checkpoint.parse_vkey(SPEC_VKEY)
    assert (name, kind) == ("example.com/foo", checkpoint.ED25519)
    text, lines = checkpoint.open_note(SPEC_NOTE)
    assert checkpoint.verify_log_signature(text, lines, name, public_key)
    assert checkpoint.log_vkey(name, public_key) == SPEC_VKEY
    parsed = wnote.Note.parse(SPEC_NOTE)
    assert parsed.verified_by([wnote.LogKey.from_vkey(SPEC_VKEY)])
    forged = wnote.Note.parse(SPEC_NOTE.replace("example message", "forged message"))
    assert not forged.verified_by([wnote.LogKey.from_vkey(SPEC_VKEY)])


def test_a_platform_checkpoint_is_what_the_witness_reads() -> None:
    root = bytes(range(32))
    signed = checkpoint.sign_checkpoint(LOG, ORIGIN, 42, root)
    parsed = wnote.Note.parse(signed)
    assert parsed.verified_by([wnote.LogKey.from_vkey(checkpoint.log_vkey(ORIGIN, LOG.public_key()))])
    body = wnote.CheckpointBody.parse(parsed.text)
    assert (body.origin, body.size, body.root) == (ORIGIN, 42, root)
    assert wnote.log_vkey(ORIGIN, LOG.public_key()) == checkpoint.log_vkey(ORIGIN, LOG.public_key())


def test_a_witness_cosignature_verifies_with_the_platform_code() -> None:
    text = checkpoint.checkpoint_text(ORIGIN, 42, bytes(32))
    raw = wnote.cosignature_line(WITNESS, "witness.fujian.example/shanhai", text, 1_765_000_000)
    line = checkpoint.parse_signature_line(raw.rstrip("\n"))
    key = checkpoint.witness_key(wnote.cosigner_vkey("witness.fujian.example/shanhai", WITNESS.public_key()))
    assert checkpoint.verify_cosignature(line, text, key) == 1_765_000_000
    assert checkpoint.verify_cosignature(line, text.replace("42", "43"), key) is None
    same = checkpoint.cosign(WITNESS, "witness.fujian.example/shanhai", text, timestamp=1_765_000_000)
    assert same.line() == raw  # Ed25519 is deterministic: both implementations write the same bytes


def test_check_witnessed_counts_k_of_n_and_ignores_unknown_lines() -> None:
    root = bytes(32)
    text = checkpoint.checkpoint_text(ORIGIN, 7, root)
    fujian, ningxia = (
        checkpoint.WitnessKey("fj.example/w", WITNESS.public_key()),
        checkpoint.WitnessKey("nx.example/w", LOG.public_key()),
    )
    note = checkpoint.sign_checkpoint(LOG, ORIGIN, 7, root)
    note += checkpoint.cosign(WITNESS, "fj.example/w", text, timestamp=5).line()
    note += checkpoint.cosign(Ed25519PrivateKey.generate(), "stranger.example/w", text, timestamp=5).line()
    one = checkpoint.check_witnessed(note, (ORIGIN, LOG.public_key()), [fujian, ningxia], 2)
    assert one.cosigned_by == ("fj.example/w",) and not one.ok
    assert checkpoint.check_witnessed(note, (ORIGIN, LOG.public_key()), [fujian, ningxia], 1).ok
    good = note.splitlines()[-2].split(" ")[2]
    blob = base64.b64decode(good)
    bad = note.replace(good, base64.b64encode(blob[:12] + bytes(64)).decode())
    assert "does not verify" in " ".join(
        checkpoint.check_witnessed(bad, (ORIGIN, LOG.public_key()), [fujian], 1).problems
    )


@pytest.mark.parametrize(
    "text",
    ["", "no newline", "a\n\n", "a\n\nnot a signature\n", "a\x07\n\n\u2014 k AAAAAAA=\n", "a\n\n\u2014 k+x AAAAAAA=\n"],
)
def test_malformed_notes_are_refused_by_both(text: str) -> None:
    with pytest.raises(ValueError):
        checkpoint.open_note(text)
    with pytest.raises(ValueError):
        wnote.Note.parse(text)
