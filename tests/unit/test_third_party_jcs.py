"""The third-party verifier's own RFC 8785 (``docs/verify_witnessed_head.py``) writes what ``rfc8785`` writes."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_witnessed_head.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_witnessed_head", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VERIFIER = load_script()
SAFE = 2**53 - 1
scalars = (
    st.none() | st.booleans() | st.integers(-SAFE, SAFE) | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
values = st.recursive(scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20)


@given(values)
def test_the_script_canonicalises_as_rfc8785(value: Any) -> None:
    assert VERIFIER.jcs(value).encode("utf-8") == rfc8785.dumps(value)


def test_number_formatting_edges() -> None:
    cases = [0.0, -0.0, 1.0, 1e21, 1e-7, 1.5e-6, 123456789012345680000.0, 5e-324, 1.7976931348623157e308, 0.1]
    for number in cases:
        assert VERIFIER.jcs_number(number) == rfc8785.dumps(number).decode(), number
    assert not math.isnan(float(VERIFIER.jcs_number(2.5)))
    assert VERIFIER.jcs({"\U0001f600": 1, "\uffff": 2}) == rfc8785.dumps({"\U0001f600": 1, "\uffff": 2}).decode()
