"""``shanhai user set-password``: the password policy where passwords are set, audited (issue 16.2)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import AuditEntry
from core.auth import User, verify_password
from core.settings import Settings, get_settings
from shanhai.cli import main


def _set_password(monkeypatch: pytest.MonkeyPatch, settings: Settings, username: str, password: str) -> int:
    monkeypatch.setenv("SHANHAI_DATABASE_URL", str(settings.database_url))
    monkeypatch.setenv("SHANHAI_DATA_DIR", str(Path(settings.data_dir)))
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    get_settings.cache_clear()
    try:
        return main(["user", "set-password", username])
    finally:
        get_settings.cache_clear()


def test_a_policy_breaking_password_is_refused_and_nothing_changes(
    app: FastAPI, settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    before = session.scalars(select(User).where(User.username == "auditor")).one().password_hash
    session.rollback()  # end the read: on SQLite it holds the write lock the command needs
    assert _set_password(monkeypatch, settings, "auditor", "password1234") == 1
    error = capsys.readouterr().err
    assert "common (breached) passwords" in error and "at least 3 of" in error
    session.expire_all()
    assert session.scalars(select(User).where(User.username == "auditor")).one().password_hash == before
    session.rollback()
    assert _set_password(monkeypatch, settings, "nobody", "Long-enough-9x") == 1


def test_an_acceptable_password_is_set_and_audited(
    app: FastAPI, settings: Settings, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _set_password(monkeypatch, settings, "auditor", "Tide-Pine-Ledger-42") == 0
    user = session.scalars(select(User).where(User.username == "auditor")).one()
    assert verify_password(user.password_hash, "Tide-Pine-Ledger-42")
    [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "user.password_changed")).all()
    assert entry.subject == f"user:{user.id}" and "Tide" not in entry.payload
