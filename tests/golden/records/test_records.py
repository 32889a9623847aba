"""Records of both schemes re-hash and recompute byte for byte (ADR 033, "Records").

The ``shanhai-json/1`` files were written before revision 0021 and must keep verifying unchanged; the
``rfc8785`` files pin what new records are. ``docs/verify_record.py`` (stdlib + the sibling script) re-hashes both.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic_core import to_jsonable_python

from carbon.methods.base import Tracer, build_result
from carbon.methods.registry import default_registry
from carbon.monitoring_records import check_record, recompute, record_hash
from carbon.parameters.loader import load_parameter_set
from core.canonical import JCS_SCHEME, LEGACY_SCHEME, canonical_hash, jcs_json, sha256_hex
from core.errors import InvalidInput
from gep.legend import load_legend
from gep.prices import load_table
from gep.spec import DEFAULT_INDICATORS
from gep.valuation import valuation_hash, valuation_record
from shanhai.cli import main

HERE = Path(__file__).parent
SCRIPT = HERE.parents[2] / "docs" / "verify_record.py"
SCHEMES = {"shanhai-json-1": LEGACY_SCHEME, "rfc8785": JCS_SCHEME}
CALCULATIONS = [f"{name}.{suffix}.json" for name in ("ccer-14-001", "fj-ticket") for suffix in SCHEMES]
VALUATIONS = [f"gep-valuation.{suffix}.json" for suffix in SCHEMES]


def golden(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((HERE / name).read_text(encoding="utf-8"))
    return loaded


def scheme_of(name: str) -> str:
    return SCHEMES[name.split(".")[1]]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_record", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", CALCULATIONS)
def test_calculation_records_recompute_under_their_own_scheme(name: str) -> None:
    document = golden(name)
    record, scheme = document["record"], scheme_of(name)
    assert record.get("hash_scheme", LEGACY_SCHEME) == scheme
    assert record["parameter_set"].get("hash_scheme", LEGACY_SCHEME) == scheme
    check = check_record(record)
    assert check.hash_scheme == scheme and check.matches and check.parameter_set_sha256_matches
    assert check.recomputed_sha256 == record_hash(record) == document["record_sha256"] == recompute(json.dumps(record))
    spelled = jcs_json(record) if scheme == JCS_SCHEME else None
    assert document["record_sha256"] == (sha256_hex(spelled) if spelled is not None else canonical_hash(record))


@pytest.mark.parametrize("name", CALCULATIONS)
def test_the_offline_tool_recomputes_either_scheme(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / name
    exported.write_text(json.dumps(golden(name)), encoding="utf-8")
    assert main(["carbon", "compute", str(exported)]) == 0
    out = capsys.readouterr().out
    assert f"hash scheme:       {scheme_of(name)}" in out and golden(name)["record_sha256"] in out
    assert "matches" in out


def test_a_new_record_is_rfc8785_and_cannot_be_reread_under_the_old_scheme(tmp_path: Path) -> None:
    new, old = golden("ccer-14-001.rfc8785.json"), golden("ccer-14-001.shanhai-json-1.json")
    stripped = {key: value for key, value in new["record"].items() if key != "hash_scheme"}
    stripped["parameter_set"] = old["record"]["parameter_set"]
    assert stripped == old["record"]  # the schemes agree on what the record is; only the naming differs
    assert record_hash(stripped) == old["record_sha256"] != new["record_sha256"]
    exported = tmp_path / "downgraded.json"
    exported.write_text(json.dumps({"record_sha256": new["record_sha256"], "record": stripped}), encoding="utf-8")
    assert main(["carbon", "compute", str(exported)]) == 1  # a stripped scheme no longer gives the stored hash
    with pytest.raises(InvalidInput):
        check_record({**new["record"], "hash_scheme": "shanhai-json/2"})


def test_a_record_with_an_integer_beyond_2_53_stays_on_the_old_scheme() -> None:
    methodology = default_registry().get("CCER-14-001", "V01")
    parameters = load_parameter_set(*methodology.default_parameter_set)
    inputs = methodology.input_model.model_validate(golden("ccer-14-001.rfc8785.json")["record"]["inputs"])
    fits = build_result(methodology, parameters, inputs, Tracer(parameters), {}, details={"n": 2**53 - 1})
    beyond = build_result(methodology, parameters, inputs, Tracer(parameters), {}, details={"n": 2**53})
    assert fits.hash_scheme == JCS_SCHEME and fits.record()["hash_scheme"] == JCS_SCHEME
    assert beyond.hash_scheme == LEGACY_SCHEME and "hash_scheme" not in beyond.record()
    assert "hash_scheme" not in beyond.record()["parameter_set"]
    assert beyond.sha256 == canonical_hash(beyond.record()) == record_hash(json.loads(beyond.canonical_json()))


@pytest.mark.parametrize("name", VALUATIONS)
def test_valuation_records_and_references_recompute_under_their_own_scheme(name: str) -> None:
    document, scheme = golden(name), scheme_of(name)
    stored = document["valuation"]
    assert stored.get("hash_scheme", LEGACY_SCHEME) == scheme
    assert valuation_hash(stored) == stored["sha256"]
    prices, coefficients = load_table("prices_ganzi_2010"), load_table("coefficients_default")
    again = valuation_record(DEFAULT_INDICATORS, list(stored["unit_values"]), prices, coefficients, scheme)
    assert to_jsonable_python(again) == stored
    assert load_legend("legend_synthetic_jingyuan").reference(scheme) == document["legend"]
    assert prices.reference(scheme) == stored["prices"] and coefficients.reference(scheme) == stored["coefficients"]
    tampered = {**stored, "unit_values": {**stored["unit_values"], "sand_fixation": {}}}
    assert valuation_hash(tampered) != stored["sha256"]


def test_the_third_party_script_rehashes_records_of_both_schemes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_script()
    files = [str(HERE / name) for name in [*CALCULATIONS, *VALUATIONS]]
    assert script.main(["verify_record.py", *files]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {entry["scheme"] for entry in report.values()} == {LEGACY_SCHEME, JCS_SCHEME}
    assert all(entry["ok"] for entry in report.values())
    tampered = golden("fj-ticket.rfc8785.json")
    tampered["record"]["result"]["issuable_units_t"] = "99999"
    mixed = golden("gep-valuation.rfc8785.json")
    mixed["valuation"]["prices"] = golden("gep-valuation.shanhai-json-1.json")["valuation"]["prices"]
    (tmp_path / "tampered.json").write_text(json.dumps(tampered), encoding="utf-8")
    (tmp_path / "mixed.json").write_text(json.dumps(mixed), encoding="utf-8")
    assert script.main(["verify_record.py", str(tmp_path / "tampered.json"), str(tmp_path / "mixed.json")]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report[str(tmp_path / "tampered.json")]["ok"]
    assert any("prices is hashed under shanhai-json/1" in p for p in report[str(tmp_path / "mixed.json")]["problems"])
