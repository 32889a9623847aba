"""The operator's desk: instruments, auctions and the trading accounts' cash (issue 25, ADR 044).

``/operator`` lists every instrument (as ``GET /api/v1/instruments``) and each organisation's trading cash
(``trading.cash.balances``); a deposit is recorded with the settlement bank's reference
(``trading.cash.deposit``, as ``POST /api/v1/cash/deposits``, audited ``cash.deposited``). Amounts are typed in
CNY with at most two decimals and become whole fen exactly (``core.money.Fen.from_cny``), never a float.

The operator also lists instruments (``trading.listing.create_instrument``, as ``POST /api/v1/instruments``,
audited ``instrument.listed``): the reference price is CNY text handed on as text (whole ticks, or refused), the
trading hours national or around the clock, the block desk's minimum, band and window. It announces one-way
auctions on a seller's application (``trading.auctions.announce`` with ``seller_organisation_id``; the seller's
tonnes are escrowed at once, audited ``auction.announced``) and closes them after their window
(``trading.auctions.close_as_operator``, as ``POST /api/v1/auctions/{id}/close``: allocate, settle DvP, publish).
Every form checks the CSRF token first; a refusal is the problem page with the service's message, and the
services write nothing when they refuse.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from carbon.ledger import CreditClass
from core.auth import Organisation, Principal
from core.bounds import MAX_QUANTITY_T
from core.errors import InvalidInput
from core.money import Fen, cny_text
from trading import auctions, cash, listing
from trading.allocation import Rule
from trading.block_trades import TRADER_KINDS
from trading.instruments import BLOCK_RULES, MatchingStyle
from trading.journal import MatcherCache
from trading.models import InstrumentRow
from web.i18n import N_
from web.pages import CSRF_FIELD, check_csrf, render
from web.routes.desks import _phase as phase_of

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
#: CNY as typed: whole yuan with at most two decimals (fen), up to 10^12 yuan.
CNY_PATTERN = r"^\d{1,12}(\.\d{1,2})?$"
#: A local time of day, HH:MM; a window may close at 24:00.
HHMM_PATTERN = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"
#: A moment in Beijing time as typed, ``YYYY-MM-DD HH:MM`` (or ISO's ``T``), to the minute or the second.
LOCAL_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$"
BEIJING = ZoneInfo("Asia/Shanghai")
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CsrfField = Annotated[str, Form(alias=CSRF_FIELD, max_length=100)]
#: Credit classes as offered on the listing form: the code and the scheme's name (translated at render).
CLASSES = tuple((c.value, c.name.lower()) for c in CreditClass)
STYLES = {MatchingStyle.PRICE_TIME.value: N_("Price-time priority (continuous)"),
          MatchingStyle.HUBEI_MID.value: N_("Hubei: at the middle of bid, ask and last"),
          MatchingStyle.LISTING_CLICK.value: N_("Listing agreement: click a maker within five levels")}  # fmt: skip
DONE = {"deposited": N_("The deposit was recorded."), "listed": N_("Instrument %(id)s is listed."),
        "announced": N_("Auction %(id)s is announced; the seller's tonnes are escrowed."),
        "closed": N_("Auction %(id)s is closed; its allocations are settled and published.")}  # fmt: skip


@router.get("/operator", response_class=HTMLResponse)
def page_operator(request: Request, session: SessionDep, clock: ClockDep, person: Person) -> HTMLResponse:
    """Instruments and the listing form, auctions with their close and the announcement form, cash and deposits."""
    instruments = list(session.scalars(select(InstrumentRow).order_by(InstrumentRow.instrument_id)))
    organisations = list(session.scalars(select(Organisation).order_by(Organisation.id)))
    accounts = []
    for organisation in organisations:
        available_fen, held_fen = cash.balances(session, organisation.id)
        accounts.append({"organisation": organisation, "available": cny_text(available_fen),
                         "held": cny_text(held_fen)})  # fmt: skip
    done = request.query_params.get("done", "")
    now = clock.now()
    names = {o.id: o.name for o in organisations}
    found = [{**phase_of(a, now), "seller": names.get(a["seller_organisation_id"], "—")}
             for a in auctions.list_auctions(session)]  # fmt: skip
    for auction in found:
        for allocation in auction["results"]["allocations"] if auction["results"] else []:
            allocation["notional_text"] = cny_text(allocation["notional_fen"])
    listed = [{"row": r, "reference_cny": listing.cny_of(r, r.reference_price_ticks)} for r in instruments]
    start = now.astimezone(BEIJING).replace(second=0, microsecond=0, tzinfo=None) + timedelta(minutes=5)
    context = {
        "instruments": listed, "accounts": accounts, "organisations": organisations,
        "done": DONE.get(done), "done_id": request.query_params.get("id", "")[:60], "classes": CLASSES,
        "styles": STYLES, "block": BLOCK_RULES, "auctions": found, "rules": [r.value for r in Rule],
        "sellers": [o for o in organisations if o.kind in TRADER_KINDS], "trader_kinds": sorted(TRADER_KINDS),
        "window": {"starts": start.isoformat(" ", timespec="minutes"),
                   "ends": (start + timedelta(hours=1)).isoformat(" ", timespec="minutes")},
    }  # fmt: skip
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


def _minute(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


@router.post("/operator/instruments")
def page_operator_list_instrument(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    instrument_id: Annotated[str, Form(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")],
    credit_class: Annotated[str, Form(max_length=3)],
    vintage_year: Annotated[int, Form(ge=1990, le=2100)],
    reference_price_cny: Annotated[str, Form(pattern=CNY_PATTERN, max_length=15)],
    hours: Annotated[str, Form(pattern="^(national|always)$")],
    style: Annotated[str, Form(max_length=20)] = MatchingStyle.PRICE_TIME.value,
    province_code: Annotated[str, Form(pattern=r"^(\d{2})?$", max_length=2)] = "",
    resale_next_day: Annotated[str, Form(pattern="^(|on)$", max_length=2)] = "",
    buyer_fee_bp: Annotated[int, Form(ge=0, le=1000)] = 0,
    seller_fee_bp: Annotated[int, Form(ge=0, le=1000)] = 0,
    block_min_t: Annotated[int, Form(gt=0, le=MAX_QUANTITY_T)] = BLOCK_RULES.min_quantity_t,
    block_band_bp: Annotated[int, Form(ge=0, lt=10_000)] = BLOCK_RULES.band_bp,
    block_opens: Annotated[str, Form(pattern=HHMM_PATTERN, max_length=5)] = "13:00",
    block_closes: Annotated[str, Form(pattern=HHMM_PATTERN, max_length=5)] = "15:00",
    csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """List an instrument (the API's ``create_instrument`` service); the reference price stays text to the tick."""
    check_csrf(request, settings, csrf_token)
    command = listing.CreateInstrument(
        instrument_id=instrument_id, credit_class=credit_class, vintage_year=vintage_year,
        reference_price_cny=reference_price_cny, province_code=province_code or None, style=style,
        always_open=hours == "always", resale_next_day=resale_next_day == "on", buyer_fee_bp=buyer_fee_bp,
        seller_fee_bp=seller_fee_bp, block_min_t=block_min_t, block_band_bp=block_band_bp,
        block_open_minute=_minute(block_opens), block_close_minute=_minute(block_closes),
    )  # fmt: skip
    row = listing.create_instrument(session, command, actor=person, clock=clock)
    return RedirectResponse(f"/operator?done=listed&id={row.instrument_id}#instruments", status_code=303)


def _beijing(text: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=BEIJING)
    except ValueError as error:
        raise InvalidInput(f"the {name} time {text!r} is not a date and time") from error


def _tonnes(text: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_QUANTITY_T:
        raise InvalidInput("the quantity must be a whole number of tonnes above 0")
    return int(text)


@router.post("/operator/auctions")
def page_operator_announce_auction(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    instrument_id: Annotated[str, Form(min_length=1, max_length=60)],
    seller_organisation_id: Annotated[int, Form(ge=1, le=2**31 - 1)],
    quantity_t: Annotated[str, Form(max_length=30)],
    reserve_price_cny: Annotated[str, Form(pattern=CNY_PATTERN, max_length=15)],
    starts_at: Annotated[str, Form(pattern=LOCAL_PATTERN, max_length=19)],
    ends_at: Annotated[str, Form(pattern=LOCAL_PATTERN, max_length=19)],
    rule: Annotated[str, Form(pattern="^(uniform|pay_as_bid)$")] = Rule.UNIFORM.value,
    provinces: Annotated[str, Form(max_length=200)] = "",
    kinds: Annotated[list[str] | None, Form(max_length=10)] = None,
    csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Announce a one-way auction on a seller's application (the API's ``announce`` service); tonnes escrowed."""
    check_csrf(request, settings, csrf_token)
    qualification: dict[str, list[str]] = {}
    if codes := [p.strip() for p in provinces.replace("，", ",").split(",") if p.strip()]:
        qualification["provinces"] = codes
    if kinds:
        qualification["kinds"] = kinds
    command = auctions.AnnounceAuction(
        instrument_id=instrument_id, quantity_t=_tonnes(quantity_t), reserve_price_cny=reserve_price_cny,
        starts_at=_beijing(starts_at, "start"), ends_at=_beijing(ends_at, "end"), rule=rule,
        qualification=qualification, seller_organisation_id=seller_organisation_id,
    )  # fmt: skip
    auction = auctions.announce(session, command, actor=person, clock=clock)
    return RedirectResponse(f"/operator?done=announced&id={auction['auction_id']}#auctions", status_code=303)


def _cache(request: Request) -> MatcherCache:
    matchers: MatcherCache = request.app.state.matchers
    return matchers


@router.post("/operator/auctions/{auction_id}/close")
def page_operator_close_auction(
    request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep, person: Person,
    auction_id: RowId, csrf_token: CsrfField = "",
) -> Response:  # fmt: skip
    """Close an auction after its window (the API's ``close_as_operator``): allocate, settle DvP, publish."""
    check_csrf(request, settings, csrf_token)
    auctions.close_as_operator(session, auction_id, actor=person, clock=clock, cache=_cache(request))
    return RedirectResponse(f"/operator?done=closed&id={auction_id}#auctions", status_code=303)
