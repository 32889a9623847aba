"""Serial numbers: format/parse round trip, splits, and Verra VCS serials (reference T11, T12)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.serials import CREDIT_CLASSES, SerialBlock, parse_block, parse_vcs
from core.errors import InvalidInput

blocks = st.builds(
    lambda cls, prov, proj, vintage, batch, start, length: SerialBlock(
        cls, prov, proj, vintage, batch, start, start + length
    ),
    st.sampled_from(CREDIT_CLASSES),
    st.sampled_from(["64", "35", "11"]),
    st.integers(1, 999_999),
    st.integers(2000, 2099),
    st.integers(1, 999_999),
    st.integers(1, 900_000_000),
    st.integers(0, 99_999_999),
)


@given(blocks)
def test_format_parse_round_trip(block: SerialBlock) -> None:
    assert parse_block(block.format()) == block
    assert len(block.format()) == 48


@given(blocks, st.data())
def test_split_partitions_the_block(block: SerialBlock, data: st.DataObject) -> None:
    if block.quantity < 2:
        return
    n = data.draw(st.integers(1, block.quantity - 1))
    first, rest = block.split(n)
    assert first.quantity == n and first.quantity + rest.quantity == block.quantity
    assert first.end + 1 == rest.start and not first.overlaps(rest)
    assert first.overlaps(block) and rest.overlaps(block)


@pytest.mark.parametrize(
    "text",
    [
        "SH-XXX-64-000001-2025-000001-000000001-000000010",
        "SH-FCT-64-1-2025-1-1-10",
        "SH-FCT-64-000001-2025-000001-000000010-000000001",
        "",
    ],
)
def test_bad_serials_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_block(text)


def test_vcs_13_fields_t11() -> None:
    text = "9660-115597313-115618057-VCS-VCU-261-VER-US-14-1060-01012019-31122019-0"
    serial = parse_vcs(text)
    assert serial.batch_number == 9660 and serial.quantity == 20_745 and serial.project_id == 1060
    assert serial.project_type == "14" and serial.program_code == "VCS"
    assert (serial.vintage_start, serial.vintage_end) == (date(2019, 1, 1), date(2019, 12, 31))
    assert serial.additional_certification is False and serial.format() == text


def test_vcs_12_fields_t12() -> None:
    text = "8040-449402275-449402275-VCU-042-MER-PE-14-1360-01072013-30062014-1"
    serial = parse_vcs(text)
    assert serial.program_code is None and serial.quantity == 1 and serial.project_id == 1360
    assert serial.additional_certification is True and serial.format() == text


@pytest.mark.parametrize(
    "text", ["1-2-3", "9660-5-4-VCS-VCU-261-VER-US-14-1060-01012019-31122019-0", "a-b-c-d-e-f-g-h-i-j-k-l-m"]
)
def test_bad_vcs_serials(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_vcs(text)
