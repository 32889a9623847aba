"""External registrations of plots and the double-issuance rule (pure).

A plot (sub-compartment, polygon) already registered under another scheme — CCER, VCS or FFCER — for
a period that overlaps the monitoring period cannot be credited again. Fujian's county ticket rules
state it outright (《永春林业碳票管理办法（试行）》, 2024: land registered, or planned to be registered,
under CCER, VCS or another voluntary scheme may not be issued tickets; reference §2.2). The
registrations are an explicit input; looking them up is the service's job.

>>> r = ExternalRegistration(plot_id="XB-1", scheme="CCER", registration_id="C-9",
...                          period_start=date(2020, 1, 1), period_end=date(2039, 12, 31))
>>> [p.rule for p in double_issuance_problems(["XB-1"], [r], date(2022, 1, 1), date(2024, 12, 31), "ticket")]
['ticket: no double issuance']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Literal, Self

from pydantic import Field, model_validator

from carbon.methods.base import EligibilityProblem, InputModel


class ExternalRegistration(InputModel):
    """A registration of a plot under another scheme, as recorded on the plot."""

    plot_id: str = Field(min_length=1)
    scheme: Literal["CCER", "VCS", "FFCER"]
    registration_id: str = Field(min_length=1)
    period_start: date
    period_end: date

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


def double_issuance_problems(
    plot_ids: Iterable[str],
    registrations: Sequence[ExternalRegistration],
    start: date,
    end: date,
    rule_prefix: str,
) -> list[EligibilityProblem]:
    """Return one problem per registration of a listed plot whose period overlaps ``start..end``."""
    wanted = set(plot_ids)
    problems = []
    for index, registration in enumerate(registrations):
        if registration.plot_id in wanted and registration.period_start <= end and start <= registration.period_end:
            problems.append(
                EligibilityProblem(
                    f"{rule_prefix}: no double issuance",
                    f"plot {registration.plot_id} is registered under {registration.scheme} "
                    f"({registration.registration_id}) "
                    f"for {registration.period_start}..{registration.period_end}, which overlaps the monitoring period "
                    f"{start}..{end}: double issuance is refused (永春林业碳票管理办法（试行）2024)",
                    f"/external_registrations/{index}",
                )
            )
    return problems
