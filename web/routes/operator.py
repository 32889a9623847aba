"""The operator's desk: the listed instruments and the trading accounts' cash, with the deposit form (issue 25).

``/operator`` lists every instrument (as ``GET /api/v1/instruments``) and each organisation's trading cash
(``trading.cash.balances``); a deposit is recorded with the settlement bank's reference
(``trading.cash.deposit``, as ``POST /api/v1/cash/deposits``, audited ``cash.deposited``). Amounts are typed in
CNY with at most two decimals and become whole fen exactly (``core.money.Fen.from_cny``), never a float.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from core.auth import Organisation, Principal
from core.money import Fen, cny_text
from trading import cash
from trading.models import InstrumentRow
from web.pages import CSRF_FIELD, check_csrf, render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
#: CNY as typed: whole yuan with at most two decimals (fen), up to 10^12 yuan.
CNY_PATTERN = r"^\d{1,12}(\.\d{1,2})?$"


@router.get("/operator", response_class=HTMLResponse)
def page_operator(request: Request, session: SessionDep, person: Person) -> HTMLResponse:
    """Instruments, trading accounts' cash, and the deposit form."""
    instruments = list(session.scalars(select(InstrumentRow).order_by(InstrumentRow.instrument_id)))
    organisations = list(session.scalars(select(Organisation).order_by(Organisation.id)))
    accounts = []
    for organisation in organisations:
        available_fen, held_fen = cash.balances(session, organisation.id)
        accounts.append({"organisation": organisation, "available": cny_text(available_fen),
                         "held": cny_text(held_fen)})  # fmt: skip
    done = request.query_params.get("done") == "deposited"
    context = {"instruments": instruments, "accounts": accounts, "organisations": organisations, "done": done}
    return render(request, "operator.html", context, principal=person)


@router.post("/operator/deposits")
def page_operator_deposit(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    organisation_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    amount_cny: Annotated[str, Form(pattern=CNY_PATTERN, max_length=15)],
    reference: Annotated[str, Form(min_length=1, max_length=100)],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
) -> Response:  # fmt: skip
    """Record money the settlement bank received for an organisation (CNY → whole fen, exactly)."""
    check_csrf(request, settings, csrf_token)
    command = cash.CashMovement(organisation_id=organisation_id, amount_fen=Fen.from_cny(amount_cny).value,
                                reference=reference.strip())  # fmt: skip
    cash.deposit(session, command, actor=person, clock=clock)
    return RedirectResponse("/operator?done=deposited", status_code=303)
