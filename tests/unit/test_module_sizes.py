"""Issue 18: no module of ``carbon/`` or ``trading/`` grows past about 500 lines (STYLE practice 19).

One exception, stated: ``carbon/methods/ccer_14_001.py`` reads as one equation set of CCER-14-001 in the
standard's order, and splitting it would scatter the equations a reviewer checks against the text.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIMIT = 520
EXCEPTIONS = frozenset({"carbon/methods/ccer_14_001.py"})


def test_no_module_of_carbon_or_trading_is_over_the_limit() -> None:
    sizes = {
        path.relative_to(REPO).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for package in ("carbon", "trading")
        for path in (REPO / package).rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > LIMIT and name not in EXCEPTIONS} == {}
