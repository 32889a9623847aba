"""Witness settings: the list, its validation, the quorum, and the beat schedule that runs the rounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker

from api.worker import AUDIT_WITNESS, create_celery
from core.checkpoint import WitnessKey
from core.clock import SystemClock
from core.settings import Settings
from core.witnessing import WitnessPolicy

FUJIAN = WitnessKey("witness.fujian.test/shanhai", Ed25519PrivateKey.generate().public_key())
NINGXIA = WitnessKey("witness.ningxia.test/shanhai", Ed25519PrivateKey.generate().public_key())
LIST = f"{FUJIAN.vkey()} http://fujian:8100, {NINGXIA.vkey()} https://ningxia.example/witness"


def test_witnesses_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHANHAI_AUDIT_WITNESSES", LIST)
    monkeypatch.setenv("SHANHAI_AUDIT_WITNESS_QUORUM", "1")
    settings = Settings(data_dir=tmp_path)
    policy = WitnessPolicy.from_settings(settings)
    assert [w.key.name for w in policy.witnesses] == [FUJIAN.name, NINGXIA.name]
    assert policy.witnesses[1].url == "https://ningxia.example/witness" and policy.quorum == 1
    assert WitnessPolicy.from_settings(Settings(data_dir=tmp_path, audit_witness_quorum=None)).quorum == 2


@pytest.mark.parametrize(
    "changes",
    [
        {"audit_witnesses": ("only-a-vkey",)},
        {"audit_witnesses": (f"{FUJIAN.vkey()} ftp://fujian",)},
        {"audit_witnesses": (f"{FUJIAN.vkey()} http://fujian",), "audit_witness_quorum": 2},
        {"audit_log_origin": "has space"},
        {"audit_log_origin": "has+plus"},
    ],
)
def test_bad_witness_settings_are_refused(changes: dict[str, object], tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, **changes)  # type: ignore[arg-type]


def test_the_beat_runs_witnessing_rounds_only_when_witnesses_are_configured(tmp_path: Path) -> None:
    factory: sessionmaker = sessionmaker()  # type: ignore[type-arg]
    plain = create_celery(Settings(data_dir=tmp_path), factory, SystemClock())
    assert "audit-witness" not in plain.conf.beat_schedule
    configured = Settings(data_dir=tmp_path, audit_witnesses=(f"{FUJIAN.vkey()} http://fujian:8100",))
    celery = create_celery(configured, factory, SystemClock())
    assert celery.conf.beat_schedule["audit-witness"] == {"task": AUDIT_WITNESS, "schedule": 60.0}
    assert AUDIT_WITNESS in celery.tasks
