"""The auditor's desk and administration through TestClient (issue 25).

``/audit``: entries filtered by kind, organisation and date; the chain's verdict; the head signed now (and kept
in the head store); the downloadable head; a rewritten log shown as the alarm with nothing signed.
``/admin/users``: create (policy applied), deactivate (the open session refused next), reset a password, unlock.
``/settings/api-keys``: create (shown once), list, revoke (the key then gets 401). Every change audited.
"""

from __future__ import annotations

import json
import re
from html import unescape

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import AuditEntry
from core.auth import User
from tests.conftest import PASSWORDS, rewrite_audit_entry
from tests.web.helpers import Login, csrf_of, log_in, make_retirement

ISLAND = re.compile(r'<script type="application/json" id="audit-data">(.*?)</script>', re.S)


def island(html: str) -> dict[str, object]:
    match = ISLAND.search(html)
    assert match
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def last_actions(session: Session, n: int = 3) -> list[str]:
    found = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq.desc()).limit(n)))
    session.rollback()  # on SQLite every transaction holds the write lock (BEGIN IMMEDIATE)
    return found


def test_the_auditor_browses_filters_and_verifies(client: TestClient) -> None:
    assert log_in(client, "auditor").status_code == 303
    page = client.get("/audit")
    assert page.status_code == 200, page.text
    data = island(page.text)
    assert data["head"] and data["head"]["tree_size"] == data["tree_size"] >= 1  # type: ignore[index]
    assert 'id="verify-chain"' in page.text
    logins = client.get("/audit", params={"action": "auth.login_succeeded"})
    entries = island(logins.text)["entries"]
    assert entries and {e["action"] for e in entries} == {"auth.login_succeeded"}  # type: ignore[union-attr]
    nobody = client.get("/audit", params={"from": "2001-01-01", "to": "2001-01-02"})
    assert "No entry matches" in nobody.text or "没有" in nobody.text
    anything = client.get("/audit", params={"action": "", "organisation": "", "from": "", "to": ""})
    assert anything.status_code == 200  # the form's "any"
    assert client.get("/audit", params={"from": "yesterday"}).status_code == 422
    auditors = island(client.get("/audit", params={"organisation": "9"}).text)["entries"]
    assert auditors and all(e["actor"] == "user:9" for e in auditors)  # type: ignore[union-attr]
    verified = client.get("/audit", params={"verify": "true"})
    assert 'data-ok="true"' in verified.text
    kept = client.get("/audit/tree-head.json")
    assert kept.status_code == 200 and "attachment" in kept.headers["content-disposition"]
    assert set(kept.json()) >= {"tree_size", "root_hash", "signature", "key_id", "timestamp"}


def test_a_rewritten_log_shows_the_alarm(client: TestClient, session: Session) -> None:
    assert log_in(client, "auditor").status_code == 303
    size = island(client.get("/audit").text)["tree_size"]
    rewrite_audit_entry(session, int(size) - 1, {"i": "rewritten"})  # type: ignore[call-overload]
    page = client.get("/audit")
    assert page.status_code == 200
    assert 'data-testid="alarm"' in page.text and "history was rewritten" in unescape(page.text)
    data = island(page.text)
    assert data["head"] is None and data["root_hash"]
    assert client.get("/audit/tree-head.json").status_code == 503


def test_the_registry_manages_users(client: TestClient, session: Session) -> None:
    other = TestClient(client.app)
    assert log_in(other, "verifier").status_code == 303
    assert other.get("/").status_code == 200
    assert log_in(client, "registry").status_code == 303
    page = client.get("/admin/users")
    token = csrf_of(page.text)
    weak = client.post("/admin/users", data={"organisation_id": "4", "username": "v2", "display_name": "V",
                                             "password": "short", "csrf_token": token})  # fmt: skip
    assert weak.status_code == 422
    made = client.post("/admin/users", data={"organisation_id": "4", "username": "verifier-2", "display_name": "V2",
                                             "password": "a-long-Passphrase-2026!", "csrf_token": token},
                       follow_redirects=False)  # fmt: skip
    assert made.status_code == 303, made.text
    assert last_actions(session, 1) == ["user.created"]
    verifier_id = session.scalars(select(User.id).where(User.username == "verifier")).one()
    session.rollback()
    reset = client.post(
        f"/admin/users/{verifier_id}/password",
        data={"password": "another-long-Passphrase-2026", "csrf_token": token},
        follow_redirects=False,
    )
    assert reset.status_code == 303 and last_actions(session, 1) == ["user.password_changed"]
    ended = client.post(f"/admin/users/{verifier_id}/deactivate", data={"csrf_token": token}, follow_redirects=False)
    assert ended.status_code == 303 and last_actions(session, 1) == ["user.deactivated"]
    assert other.get("/audit", follow_redirects=False).status_code in (303, 403)  # the open session ends
    organisation = {"name": "宁夏演示林场 (demo)", "kind": "forest_owner", "province_code": "64",
                    "county_code": "640424", "csrf_token": token}  # fmt: skip
    registered = client.post("/admin/organisations", data=organisation, follow_redirects=False)
    assert registered.status_code == 303 and last_actions(session, 1) == ["organisation.created"]
    assert client.post("/admin/organisations", data=organisation).status_code == 409
    wrong = client.post("/admin/organisations", data={**organisation, "name": "x", "county_code": "350205"})
    assert wrong.status_code == 422 and last_actions(session, 1) == ["organisation.created"]
    not_locked = client.post("/admin/unlock", data={"username": "nobody", "csrf_token": token})
    assert not_locked.status_code == 404


def test_a_locked_out_name_is_unlocked(client: TestClient, session: Session) -> None:
    throttle = client.app.state.login_throttle  # type: ignore[attr-defined]
    for _ in range(12):  # failures from elsewhere: the name's lock-out doubles to minutes, this client is not locked
        throttle.record_failure("fj-bank", "198.51.100.7")
    locked = client.post("/api/v1/auth/token", data={"username": "fj-bank", "password": PASSWORDS["fj-bank"]})
    assert locked.status_code == 429
    assert log_in(client, "operator").status_code == 303
    token = csrf_of(client.get("/admin/users").text)
    answer = client.post("/admin/unlock", data={"username": "fj-bank", "csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303 and last_actions(session, 1) == ["auth.unlocked"]
    ok = client.post("/api/v1/auth/token", data={"username": "fj-bank", "password": PASSWORDS["fj-bank"]})
    assert ok.status_code == 200


def test_an_enterprise_creates_and_revokes_an_api_key(client: TestClient, session: Session) -> None:
    assert log_in(client, "fj-enterprise").status_code == 303
    token = csrf_of(client.get("/settings/api-keys").text)
    made = client.post("/settings/api-keys", data={"label": "ERP", "csrf_token": token})
    assert made.status_code == 201
    key = re.search(r'id="new-key">(shk_[^<]+)<', made.text)
    assert key
    plaintext = unescape(key.group(1))
    assert client.get("/api/v1/me", headers={"X-API-Key": plaintext}).status_code == 200
    key_id = re.search(r"/settings/api-keys/(\d+)/revoke", made.text)
    assert key_id
    assert plaintext not in client.get("/settings/api-keys").text  # shown once
    revoked = client.post(f"/settings/api-keys/{key_id.group(1)}/revoke", data={"csrf_token": token},
                          follow_redirects=False)  # fmt: skip
    assert revoked.status_code == 303 and last_actions(session, 1) == ["api_key.revoked"]
    assert client.get("/api/v1/me", headers={"X-API-Key": plaintext}).status_code == 401


def test_the_flows_page_charts_tables_and_exports(client: TestClient, login: Login, session: Session) -> None:
    make_retirement(client, login, session)
    session.rollback()
    assert log_in(client, "auditor").status_code == 303
    page = client.get("/reports/flows")
    assert page.status_code == 200, page.text
    text = unescape(page.text)
    assert 'id="flows-chart"' in text and 'id="by-county"' in text and "泾源县" in text
    chart = json.loads(re.search(r'id="flows-data">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
    assert chart["links"] and all(link["value"] > 0 for link in chart["links"])
    csv = client.get("/reports/flows.csv", params={"kind": "retirement"})
    assert csv.status_code == 200 and csv.text.lstrip("\ufeff").startswith("kind,month")
    assert all(line.startswith("retirement") for line in csv.text.splitlines()[1:])
    xlsx = client.get("/reports/flows.xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert client.get("/reports/flows", params={"start": "soon"}).status_code == 422
    empty = client.get("/reports/flows", params={"origin": "35", "destination": "64"})
    assert empty.status_code == 200 and 'id="flows-chart"' not in empty.text


def test_the_operator_lists_instruments_and_records_a_deposit(
    client: TestClient, login: Login, session: Session
) -> None:
    instrument = {"instrument_id": "FCT-2026", "credit_class": "FCT", "vintage_year": 2026,
                  "reference_price_cny": "60", "always_open": True}  # fmt: skip
    assert client.post("/api/v1/instruments", json=instrument, headers=login("operator")).status_code == 201
    assert log_in(client, "operator").status_code == 303
    page = client.get("/operator")
    assert page.status_code == 200 and 'id="instruments"' in page.text and "FCT-2026" in page.text
    token = csrf_of(page.text)
    form = {"organisation_id": "7", "amount_cny": "12345.67", "reference": "BANK-2026-0001", "csrf_token": token}
    assert client.post("/operator/deposits", data=form, follow_redirects=False).status_code == 303
    assert last_actions(session, 1) == ["cash.deposited"]
    assert "12,345.67" in client.get("/operator").text
    off = client.post("/operator/deposits", data={**form, "amount_cny": "1.234"})
    assert off.status_code == 422 and last_actions(session, 1) == ["cash.deposited"]  # nothing written
