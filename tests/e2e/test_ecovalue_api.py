"""Issue 28's worked example over HTTP: compensation both ways, statements checked by hand, a pledged right alerted.

The demo (``ecovalue/demo.py``) runs the synthetic stack for 2026 (precipitation × 1.08) and 2027 (× 0.70) beside
the seeded 2025 run, and makes two agreements between Jingyuan (640424, upstream) and Yuanzhou (640402): one on
the water conservation of the four townships (Yuanzhou pays), one on a water-quality index at a boundary section
(worse in 2026: Jingyuan pays). Every expected figure below is recomputed here from the runs' published tables
and the readings, not read from the statement.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select, text

import shanhai.cli
from api.downloads import XLSX
from core.audit import AuditEntry, verify_chain
from core.clock import FixedClock
from core.settings import Settings
from ecovalue.demo import DOWNSTREAM, UPSTREAM, DemoIds, demo_password, seed_ecovalue
from tests.conftest import SAMPLES

Login = Callable[[str], dict[str, str]]
WC_TOWNSHIPS = ["SYN-JY-01", "SYN-JY-02", "SYN-JY-03", "SYN-JY-04"]


@pytest.fixture
def demo(app: FastAPI, settings: Settings, clock: FixedClock) -> Iterator[DemoIds]:
    with app.state.session_factory() as session:
        ids = seed_ecovalue(session, raster_dir=SAMPLES / "rasters", data_dir=settings.data_dir, clock=clock)
    assert ids is not None
    yield ids


@pytest.fixture
def county(client: TestClient) -> Callable[[str], dict[str, str]]:
    def _login(username: str) -> dict[str, str]:
        response = client.post("/api/v1/auth/token", data={"username": username, "password": demo_password(username)})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return _login


def rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


def table(client: TestClient, headers: dict[str, str], run_id: int, name: str) -> list[dict[str, str]]:
    response = client.get(f"/api/v1/gep/runs/{run_id}/tables/{name}.csv", headers=headers)
    assert response.status_code == 200, response.text
    return rows(response.text)


def water_conservation_m3(client: TestClient, headers: dict[str, str], run_id: int) -> Decimal:
    lines = table(client, headers, run_id, "physical")
    picked = [r for r in lines if r["indicator_code"] == "water_conservation" and r["region_code"] in WC_TOWNSHIPS]
    assert len(picked) == 4
    return sum((Decimal(r["quantity"]) for r in picked), Decimal(0))


def test_worked_compensation_example_checked_by_hand(
    client: TestClient, login: Login, county: Callable[[str], dict[str, str]], demo: DemoIds
) -> None:
    auditor = login("auditor")
    # GEP agreement: 1 000 000 CNY + 0.05 CNY per m³ more water conserved than in 2025, capped at 5 000 000.
    after, before = (water_conservation_m3(client, auditor, demo.runs[year]) for year in (2026, 2025))
    improvement = after - before
    assert improvement > 0  # the wetter 2026
    expected = min(Decimal(1_000_000) + Decimal("0.05") * improvement, Decimal(5_000_000))
    expected_fen = int(expected.quantize(Decimal("0.01"), ROUND_HALF_UP) * 100)
    water = client.get(f"/api/v1/eco/statements/{demo.statements['JY-YZ-WC']}", headers=auditor).json()
    assert water["amount_fen"] == expected_fen and water["amount_cny"] == f"{Decimal(expected_fen) / 100:.2f}"
    assert water["direction"] == "beneficiaries_pay_providers" and water["benchmark_met"] is True
    terms = {t["name"]: t for t in water["terms"]}
    assert Decimal(terms["value"]["result"]) == after and Decimal(terms["benchmark"]["result"]) == before
    assert terms["value"]["unit"] == "m3" and terms["value"]["source"].startswith(f"gep_run:{demo.runs[2026]}")
    assert terms["raw_amount"]["formula"] == "base + rate × |improvement|"
    assert [(o["payer_region"], o["payee_region"], o["amount_fen"]) for o in water["obligations"]] == [
        (DOWNSTREAM, UPSTREAM, expected_fen)
    ]
    sources = water["record"]["sources"]
    assert {line["line"] for line in sources["value"]["lines"]} and sources["benchmark"]["run_id"] == demo.runs[2025]
    # Water-quality agreement: P index mean 0.85 in 2025 ((0.82 + 0.85 + 0.88 + 0.85) / 4) and 0.93 in 2026
    # ((0.90 + 0.93 + 0.95 + 0.94) / 4); lower is better, so 0.08 worse: 1 000 000 + 20 000 000 × 0.08 =
    # 2 600 000.00 CNY, paid the other way — by Jingyuan to Yuanzhou.
    quality = client.get(f"/api/v1/eco/statements/{demo.statements['JY-YZ-WQ']}", headers=auditor).json()
    assert quality["amount_fen"] == 260_000_000 and quality["amount_cny"] == "2600000.00"
    assert quality["direction"] == "providers_pay_beneficiaries" and quality["benchmark_met"] is False
    assert [(o["payer_region"], o["payee_region"]) for o in quality["obligations"]] == [(UPSTREAM, DOWNSTREAM)]
    assert {t["name"]: t["result"] for t in quality["terms"]}["value"] == "0.9300"
    assert {t["name"]: t["result"] for t in quality["terms"]}["benchmark"] == "0.8500"


def test_both_sides_confirm_or_dispute_and_obligations_follow(
    client: TestClient, login: Login, county: Callable[[str], dict[str, str]], demo: DemoIds, app: FastAPI
) -> None:
    jingyuan, yuanzhou = county("jy-ecology"), county("yz-ecology")
    water_id, quality_id = demo.statements["JY-YZ-WC"], demo.statements["JY-YZ-WQ"]
    # The provincial department wrote the agreements but is not a party: it may not answer for a region.
    refused = client.post(f"/api/v1/eco/statements/{water_id}/confirm", json={}, headers=login("ecology_bureau"))
    assert refused.status_code == 403
    assert client.post(f"/api/v1/eco/statements/{water_id}/confirm", json={}, headers=login("bank")).status_code == 403
    first = client.post(f"/api/v1/eco/statements/{water_id}/confirm", json={"comment": "agreed"}, headers=jingyuan)
    assert first.status_code == 200 and first.json()["status"] == "issued"
    again = client.post(f"/api/v1/eco/statements/{water_id}/confirm", json={}, headers=jingyuan)
    assert again.status_code == 409
    assert client.get("/api/v1/eco/obligations", headers=login("auditor")).json()["items"] == []
    last = client.post(f"/api/v1/eco/statements/{water_id}/confirm", json={}, headers=yuanzhou)
    assert last.status_code == 200 and last.json()["status"] == "confirmed"
    [obligation] = client.get(f"/api/v1/eco/obligations?region_code={UPSTREAM}", headers=jingyuan).json()["items"]
    assert obligation["payer_region"] == DOWNSTREAM and obligation["payee_region"] == UPSTREAM
    assert obligation["amount_fen"] == last.json()["amount_fen"] and obligation["currency"] == "CNY"
    assert obligation["status"] == "due"
    # The payee records the payment; the payer may not.
    paid_body = {"payment_reference": "ICBC 2027-04-01 #4471"}
    path = f"/api/v1/eco/obligations/{obligation['id']}/paid"
    assert client.post(path, json=paid_body, headers=yuanzhou).status_code == 403
    paid = client.post(path, json=paid_body, headers=jingyuan)
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert client.post(path, json=paid_body, headers=jingyuan).status_code == 409
    # A dispute needs a comment; it closes the statement and a new one may be computed for the year.
    no_reason = client.post(f"/api/v1/eco/statements/{quality_id}/dispute", json={"comment": " "}, headers=jingyuan)
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["reason"] == "required-for-dispute"
    agreement_id = demo.agreements["JY-YZ-WQ"]
    twice = client.post(f"/api/v1/eco/agreements/{agreement_id}/statements", json={"year": 2026}, headers=jingyuan)
    assert twice.status_code == 409
    disputed = client.post(
        f"/api/v1/eco/statements/{quality_id}/dispute",
        json={"comment": "the March sample was taken during the dam flush"},
        headers=jingyuan,
    )
    assert disputed.status_code == 200 and disputed.json()["status"] == "disputed"
    assert client.post(f"/api/v1/eco/statements/{quality_id}/confirm", json={}, headers=yuanzhou).status_code == 409
    again = client.post(f"/api/v1/eco/agreements/{agreement_id}/statements", json={"year": 2026}, headers=jingyuan)
    assert again.status_code == 201 and again.json()["record_sha256"] == disputed.json()["record_sha256"]
    outside = client.post(f"/api/v1/eco/agreements/{agreement_id}/statements", json={"year": 2031}, headers=jingyuan)
    assert outside.status_code == 422
    no_readings = client.post(
        f"/api/v1/eco/agreements/{agreement_id}/statements", json={"year": 2027}, headers=jingyuan
    )
    assert no_readings.status_code == 422 and no_readings.json()["errors"][0]["reason"] == "no-readings"
    with app.state.session_factory() as session:
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("eco_%"))))
        assert {
            "eco_statement.confirmed",
            "eco_obligation.created",
            "eco_obligation.paid",
            "eco_statement.disputed",
        } <= set(actions)
        assert verify_chain(session).ok


def test_reports_per_agreement_and_region(
    client: TestClient, login: Login, county: Callable[[str], dict[str, str]], demo: DemoIds
) -> None:
    jingyuan, yuanzhou = county("jy-ecology"), county("yz-ecology")
    water_id = demo.statements["JY-YZ-WC"]
    for headers in (jingyuan, yuanzhou):
        client.post(f"/api/v1/eco/statements/{water_id}/confirm", json={}, headers=headers)
    auditor = login("auditor")
    report = client.get(f"/api/v1/eco/agreements/{demo.agreements['JY-YZ-WC']}/report.csv", headers=auditor)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    [line] = rows(report.text)
    water = client.get(f"/api/v1/eco/statements/{water_id}", headers=auditor).json()
    assert line["amount_cny"] == water["amount_cny"] and line["obligation_status"] == "due"
    assert line["record_sha256"] == water["record_sha256"] and line["benchmark_met"] == "yes"
    region = rows(client.get(f"/api/v1/eco/regions/{UPSTREAM}/report.csv", headers=auditor).text)
    by_code = {r["agreement_code"]: r for r in region}
    assert by_code["JY-YZ-WC"]["receivable_cny"] == water["amount_cny"]
    assert by_code["JY-YZ-WQ"]["payable_cny"] == "2600000.00" and by_code["JY-YZ-WQ"]["status"] == "issued"
    total = by_code["total (confirmed)"]  # the issued water-quality statement is not yet owed
    assert total["net_cny"] == water["amount_cny"] and total["payable_cny"] == "0.00"
    book = client.get(f"/api/v1/eco/regions/{UPSTREAM}/report.xlsx", headers=auditor)
    assert book.status_code == 200 and book.headers["content-type"] == XLSX
    sheet = list(load_workbook(io.BytesIO(book.content), read_only=True)["Region"].iter_rows(values_only=True))
    net = sheet[0].index("net_cny")
    assert Decimal(repr(sheet[-1][net])).quantize(Decimal("0.01")) == Decimal(water["amount_cny"])
    agreement_book = client.get(f"/api/v1/eco/agreements/{demo.agreements['JY-YZ-WQ']}/report.xlsx", headers=auditor)
    assert load_workbook(io.BytesIO(agreement_book.content)).sheetnames == ["About", "Statements"]
    empty = client.get("/api/v1/eco/regions/350102/report.csv", headers=auditor)
    assert empty.status_code == 200 and empty.text.startswith("region_code,")
    assert client.get("/api/v1/eco/agreements/99/report.csv", headers=auditor).status_code == 404


def test_right_pledged_by_the_demo_bank_and_revalued_below_threshold(
    client: TestClient, login: Login, demo: DemoIds, app: FastAPI
) -> None:
    bank, coop, auditor = login("bank"), login("forest_owner"), login("auditor")
    right = client.get(f"/api/v1/eco/rights/{demo.right_id}", headers=bank).json()
    assert right["serial"] == "SH-EPR-640424-2026-000001" and right["status"] == "registered"
    first, second = right["valuations"]
    # By hand: Σ net value of water conservation in townships 1 and 2, floored to the fen.
    for valuation, year in ((first, 2026), (second, 2027)):
        lines = table(client, auditor, demo.runs[year], "monetary")
        picked = [
            Decimal(r["net_yuan"])
            for r in lines
            if r["indicator_code"] == "water_conservation" and r["region_code"] in ("SYN-JY-01", "SYN-JY-02")
        ]
        assert len(picked) == 2
        assert valuation["value_fen"] == int(sum(picked, Decimal(0)).quantize(Decimal("0.01"), ROUND_FLOOR) * 100)
        assert valuation["record"]["run"]["id"] == demo.runs[year] and len(valuation["record_sha256"]) == 64
    assert right["value_fen"] == second["value_fen"] < first["value_fen"]
    assert Decimal(right["area_m2"]) > 0
    [pledge] = client.get("/api/v1/eco/pledges", headers=bank).json()["items"]
    assert pledge["status"] == "active" and pledge["loan_fen"] == round(first["value_fen"] / 2)
    assert Decimal(pledge["ltv"]) > Decimal("0.70")  # past the demo bank's alert level after the drought
    # The alert: an inbox message to the bank and to the cooperative, and the audit entry.
    threshold = -(-pledge["loan_fen"] * 10_000 // 7_000)  # loan ÷ 0.70, rounded up to the fen
    for headers in (bank, coop):
        alerts = [
            m for m in client.get("/api/v1/inbox", headers=headers).json()["items"] if m["kind"] == "eco_pledge.alert"
        ]
        assert len(alerts) == 1 and alerts[0]["subject"] == f"eco_pledge:{pledge['id']}"
        assert alerts[0]["data"]["threshold_value_fen"] == threshold
        assert alerts[0]["data"]["value_fen"] == second["value_fen"] < threshold
    message_id = alerts[0]["id"]
    assert client.post(f"/api/v1/inbox/{message_id}/read", headers=bank).status_code == 404  # the coop's message
    read = client.post(f"/api/v1/inbox/{message_id}/read", headers=coop)
    assert read.status_code == 200 and read.json()["read_at"] is not None
    unread = client.get("/api/v1/inbox?unread=true", headers=coop).json()["items"]
    assert message_id not in [m["id"] for m in unread]
    with app.state.session_factory() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "eco_pledge.alert"))
        assert entry.subject == f"eco_pledge:{pledge['id']}" and entry.payload_value()["alert_ltv"] == "0.7000"


def test_pledge_rules(client: TestClient, login: Login, demo: DemoIds) -> None:
    bank, coop, ecology = login("bank"), login("forest_owner"), login("ecology_bureau")
    pledge_id = demo.pledge_id
    # One open pledge per right; only the owner pledges; the bank named must be a bank.
    body = {"bank_organisation_id": 8, "loan_cny": "1000.00"}
    assert client.post(f"/api/v1/eco/rights/{demo.right_id}/pledges", json=body, headers=coop).status_code == 409
    assert (
        client.post(f"/api/v1/eco/rights/{demo.right_id}/pledges", json=body, headers=login("enterprise")).status_code
        == 403
    )
    assert client.post(f"/api/v1/eco/pledges/{pledge_id}/accept", json={}, headers=bank).status_code == 409
    released = client.post(f"/api/v1/eco/pledges/{pledge_id}/release", json={"comment": "repaid"}, headers=bank)
    assert released.status_code == 200 and released.json()["status"] == "released"
    wrong_bank = client.post(
        f"/api/v1/eco/rights/{demo.right_id}/pledges", json=body | {"bank_organisation_id": 2}, headers=coop
    )
    assert wrong_bank.status_code == 422 and wrong_bank.json()["errors"][0]["reason"] == "not-a-bank"
    # Above the limit: 0.60 × the re-valued right.
    right = client.get(f"/api/v1/eco/rights/{demo.right_id}", headers=coop).json()
    too_much = f"{Decimal(right['value_fen']) * Decimal('0.61') / 100:.2f}"
    big = client.post(f"/api/v1/eco/rights/{demo.right_id}/pledges", json=body | {"loan_cny": too_much}, headers=coop)
    assert big.status_code == 201 and big.json()["status"] == "requested"
    assert client.post(f"/api/v1/eco/pledges/{big.json()['id']}/accept", json={}, headers=bank).status_code == 409
    assert (
        client.post(f"/api/v1/eco/pledges/{big.json()['id']}/decline", json={}, headers=bank).json()["status"]
        == "declined"
    )
    fine = f"{Decimal(right['value_fen']) * Decimal('0.5') / 100:.2f}"
    small = client.post(f"/api/v1/eco/rights/{demo.right_id}/pledges", json=body | {"loan_cny": fine}, headers=coop)
    accepted = client.post(f"/api/v1/eco/pledges/{small.json()['id']}/accept", json={}, headers=bank)
    assert accepted.status_code == 200 and accepted.json()["status"] == "active"
    requested = [
        m for m in client.get("/api/v1/inbox", headers=bank).json()["items"] if m["kind"] == "eco_pledge.requested"
    ]
    assert len(requested) == 3
    enforced = client.post(f"/api/v1/eco/pledges/{small.json()['id']}/enforce", json={}, headers=bank)
    assert enforced.status_code == 200 and enforced.json()["status"] == "enforced"
    after = client.get(f"/api/v1/eco/rights/{demo.right_id}", headers=ecology).json()
    assert after["status"] == "enforced" and after["owner_organisation_id"] == 8
    # Re-valuing needs a newer run.
    older = client.post(f"/api/v1/eco/rights/{demo.right_id}/revaluations",
                        json={"run_id": demo.runs[2026], "valuation_date": "2029-01-01"}, headers=ecology)  # fmt: skip
    assert older.status_code == 422 and older.json()["errors"][0]["reason"] == "not-newer"
    policy = client.put("/api/v1/eco/bank-policy", json={"max_ltv": "0.8", "alert_ltv": "0.7"}, headers=bank)
    assert policy.status_code == 422
    policies = client.get("/api/v1/eco/bank-policies", headers=coop).json()["items"]
    assert policies == [
        {"organisation_id": 8, "max_ltv": "0.6000", "alert_ltv": "0.7000", "updated_at": policies[0]["updated_at"]}
    ]


def test_agreement_problems_are_all_listed(client: TestClient, login: Login, demo: DemoIds) -> None:
    ecology = login("ecology_bureau")
    agreement = client.get(f"/api/v1/eco/agreements/{demo.agreements['JY-YZ-WC']}", headers=ecology).json()
    terms: dict[str, Any] = json.loads(json.dumps(agreement["terms"]))
    assert agreement["terms_sha256"] and len(agreement["terms_sha256"]) == 64
    duplicate = client.post("/api/v1/eco/agreements", json=terms, headers=ecology)
    assert duplicate.status_code == 409
    terms["code"] = "JY-YZ-WC-2"
    terms["parties"][0]["region_code"] = "999999"
    terms["parties"][1]["organisation_id"] = 8  # the bank
    terms["basis"]["benchmark_run_id"] = demo.runs[2026]  # not the benchmark year's
    terms["basis"]["region_codes"] = ["SYN-JY-01", "NOPE"]
    refused = client.post("/api/v1/eco/agreements", json=terms, headers=ecology)
    assert refused.status_code == 422, refused.text
    reasons = {problem["reason"] for problem in refused.json()["errors"]}
    assert {"unknown-division", "not-an-ecology-bureau", "run-of-another-year", "no-line"} <= reasons
    listed = client.get(f"/api/v1/eco/agreements?region_code={DOWNSTREAM}", headers=login("auditor")).json()
    assert [a["code"] for a in listed["items"]] == ["JY-YZ-WC", "JY-YZ-WQ"]
    readings = client.get("/api/v1/eco/readings?section_code=JY-YZ-S01", headers=ecology).json()["items"]
    assert len(readings) == 8
    same_day = {k: readings[0][k] for k in ("section_code", "indicator", "sampled_on", "value", "unit", "method")}
    assert client.post("/api/v1/eco/readings", json=same_day, headers=ecology).status_code == 409


def test_recompute_reproduces_every_statement_hash(
    client: TestClient,
    login: Login,
    demo: DemoIds,
    settings: Settings,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(shanhai.cli, "get_settings", lambda: settings)
    assert shanhai.cli.main(["eco", "recompute"]) == 0
    out = capsys.readouterr().out
    for statement_id in demo.statements.values():
        body = client.get(f"/api/v1/eco/statements/{statement_id}", headers=login("auditor")).json()
        assert f"statement {statement_id}: {body['record_sha256']} ok" in out
        exported = tmp_path / f"statement-{statement_id}.json"
        exported.write_text(json.dumps(body), encoding="utf-8")
        assert shanhai.cli.main(["eco", "recompute", "--record", str(exported)]) == 0
    assert "2 statement(s) recomputed, 0 mismatch(es)" in out
    # A reading changed behind the platform's back, or a run line: the statement is no longer reproduced.
    with app.state.session_factory() as session:
        session.execute(text("UPDATE eco_reading SET value = 0.99 WHERE sampled_on = '2026-02-15'"))
        session.commit()
    assert shanhai.cli.main(["eco", "recompute"]) == 1
    out = capsys.readouterr().out
    water, quality = demo.statements["JY-YZ-WC"], demo.statements["JY-YZ-WQ"]
    verdicts = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("statement ")}
    assert verdicts[f"statement {water}"].endswith(" ok") and "MISMATCH" in verdicts[f"statement {quality}"]
    assert "1 mismatch(es)" in out
    body = client.get(f"/api/v1/eco/statements/{demo.statements['JY-YZ-WQ']}", headers=login("auditor")).json()
    body["record"]["sources"]["value"]["readings"][0]["value"] = "0.9000"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(body), encoding="utf-8")
    assert shanhai.cli.main(["eco", "recompute", "--record", str(tampered)]) == 1


def test_whole_gep_by_value_among_three_regions_and_a_fixed_standard(
    client: TestClient, login: Login, county: Callable[[str], dict[str, str]], demo: DemoIds
) -> None:
    ecology, auditor = login("ecology_bureau"), login("auditor")
    jingyuan = client.get("/api/v1/me", headers=county("jy-ecology")).json()["organisation_id"]
    yuanzhou = client.get("/api/v1/me", headers=county("yz-ecology")).json()["organisation_id"]
    province = client.get("/api/v1/me", headers=ecology).json()["organisation_id"]
    parties = [
        {"region_code": UPSTREAM, "side": "provider", "organisation_id": jingyuan},
        {"region_code": DOWNSTREAM, "side": "beneficiary", "share": "0.75", "organisation_id": yuanzhou},
        {"region_code": "640121", "side": "beneficiary", "share": "0.25", "organisation_id": province},
    ]
    whole = {
        "code": "JY-GEP-3",
        "title": "Whole GEP of townships 1–2, three regions",
        "parties": parties,
        "basis": {"kind": "gep", "region_layer": "jingyuan-townships-synthetic", "region_codes": WC_TOWNSHIPS[:2],
                  "indicator": "gep", "measure": "value", "benchmark_run_id": demo.runs[2025]},
        "benchmark_year": 2025,
        "period_start_year": 2026,
        "period_end_year": 2027,
        "formula": {"base_amount_yuan": "500000", "rate_yuan_per_unit": "0.001", "cap_yuan": "900000",
                    "rounding": "ROUND_HALF_EVEN"},
    }  # fmt: skip
    created = client.post("/api/v1/eco/agreements", json=whole, headers=ecology)
    assert created.status_code == 201, created.text
    statement = client.post(
        f"/api/v1/eco/agreements/{created.json()['id']}/statements", json={"year": 2027}, headers=ecology
    )
    assert statement.status_code == 201, statement.text
    body = statement.json()
    # By hand from the summary tables: the drought year's GEP of townships 1 and 2 against 2025's.
    gep = {
        year: sum(
            (Decimal(r["gep_yuan"]) for r in table(client, auditor, demo.runs[year], "summary")
             if r["region_code"] in WC_TOWNSHIPS[:2]),
            Decimal(0),
        )
        for year in (2025, 2027)
    }  # fmt: skip
    assert gep[2027] < gep[2025]
    owed = min(Decimal(500_000) + Decimal("0.001") * (gep[2025] - gep[2027]), Decimal(900_000))
    amount_fen = int(owed.quantize(Decimal("0.01")) * 100)
    assert body["amount_fen"] == amount_fen and body["direction"] == "providers_pay_beneficiaries"
    split = {(o["payer_region"], o["payee_region"]): o["amount_fen"] for o in body["obligations"]}
    assert sum(split.values()) == amount_fen
    assert abs(split[(UPSTREAM, DOWNSTREAM)] - 3 * split[(UPSTREAM, "640121")]) <= 4  # 0.75 : 0.25, to the fen
    # A fixed standard, and no payment back when it is missed: zero owed, no obligation once confirmed.
    standard = {
        "code": "JY-WQ-STD",
        "title": "P index against the class III standard",
        "parties": [parties[0], {**parties[1], "share": "1"}],
        "basis": {"kind": "monitored", "section_code": "JY-YZ-S01", "indicator": "p_index", "unit": "index",
                  "benchmark_value": "0.9"},
        "benchmark_year": 2025,
        "period_start_year": 2026,
        "period_end_year": 2026,
        "formula": {"base_amount_yuan": "100000", "better": "lower", "pays_back_when_missed": False},
    }  # fmt: skip
    agreement = client.post("/api/v1/eco/agreements", json=standard, headers=ecology).json()
    zero = client.post(f"/api/v1/eco/agreements/{agreement['id']}/statements", json={"year": 2026}, headers=ecology)
    assert zero.status_code == 201 and zero.json()["amount_fen"] == 0 and zero.json()["obligations"] == []
    assert {t["name"]: t["result"] for t in zero.json()["terms"]}["benchmark"] == "0.9"
    for username in ("jy-ecology", "yz-ecology"):
        client.post(f"/api/v1/eco/statements/{zero.json()['id']}/confirm", json={}, headers=county(username))
    confirmed = client.get(f"/api/v1/eco/statements/{zero.json()['id']}", headers=auditor).json()
    assert confirmed["status"] == "confirmed"
    obligations = client.get(f"/api/v1/eco/obligations?region_code={UPSTREAM}", headers=auditor).json()["items"]
    assert obligations == []
