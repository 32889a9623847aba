"""Field types of the API's answers: money as decimal strings in CNY, instants with an offset (issue 17, ADR 030).

Money goes out as a decimal string in CNY (``"6000.00"``: never a JSON number, which a client would read as a
binary float) with the integer fen beside it where a client computes with it (``notional_fen``). Quantities carry
their unit in the name (``quantity_t``). Instants are RFC 3339 with an offset (:data:`Instant`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from core.money import Fen

#: An amount of money in CNY, two decimals, as a string.
Cny = Annotated[
    str,
    Field(pattern=r"^-?\d+\.\d{2}$", description="CNY as a decimal string (two decimals).", examples=["6000.00"]),
]
#: A price per tonne in CNY as a decimal string (the instrument's tick decides the decimals).
PriceCnyText = Annotated[
    str, Field(pattern=r"^\d+(\.\d+)?$", description="CNY per tonne as a decimal string.", examples=["60.00"])
]
#: An exact decimal quantity (t CO2e, ha…) as a string; the unit is in the field's name.
DecimalText = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["12.345"])]
#: An instant, RFC 3339 with an offset (naive datetimes are refused).
Instant = AwareDatetime


def cny(amount_fen: int) -> str:
    """Return an amount of fen as a CNY decimal string.

    >>> cny(600000), cny(-5), cny(0)
    ('6000.00', '-0.05', '0.00')
    """
    return str(Fen(amount_fen).cny)


def with_cny(data: Any, *names: str) -> Any:
    """Add ``<name>_cny`` beside each ``<name>_fen`` of ``data`` (a service's dict; anything else unchanged).

    >>> with_cny({"held_fen": 603000}, "held")
    {'held_fen': 603000, 'held_cny': '6030.00'}
    """
    if isinstance(data, dict):
        data = {**data, **{f"{name}_cny": cny(data[f"{name}_fen"]) for name in names if f"{name}_fen" in data}}
    return data


#: The canonicalization an audit entry (or record) was hashed under (ADR 033): the platform's own canonical JSON
#: before RFC 8785 was adopted, RFC 8785 after.
HashScheme = Annotated[
    Literal["shanhai-json/1", "rfc8785"],
    Field(
        description="How the hashed object was canonicalized: `shanhai-json/1` (entries before revision 0019) "
        "or `rfc8785` (RFC 8785 JSON Canonicalization Scheme)."
    ),
]


class Answer(BaseModel):
    """Base of the answer models: a member the model does not declare is an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


#: An instant a service already wrote as RFC 3339 text with an offset (kept byte for byte: certificates and
#: audit entries are hashed and signed as written).
InstantText = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
        json_schema_extra={"format": "date-time"},
        examples=["2026-11-25T17:30:00+08:00"],
    ),
]
#: A calendar date as ISO 8601 text (``YYYY-MM-DD``).
DateText = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$", json_schema_extra={"format": "date"})]
