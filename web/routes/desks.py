"""The off-book desks (issue 23, ADR 013): one-way auctions and block trades, as pages.

Auctions are public once announced (terms, state, and after the close the allocations without bidders' names,
``trading.auctions.auction_out``); a trader bids on the auction's page. Block trades are the parties' own: propose
to a named counterparty, confirm or decline, withdraw, with the instrument's session window and price band shown.
Every command calls the service the API's route calls, after the CSRF check; a refusal is the problem page with the
service's message (the services write nothing when they refuse).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from access.permissions import TRADERS
from core.auth import Organisation, Principal
from core.errors import InvalidInput
from trading import auctions, block_trades
from trading.instruments import price_band
from trading.journal import MatcherCache
from trading.market_data import price_cny
from trading.models import InstrumentRow
from web.i18n import N_
from web.pages import CSRF_FIELD, check_csrf, render

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal | None, Depends(authorize)]
Trader = Annotated[Principal, Depends(authorize)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CsrfField = Annotated[str, Form(alias=CSRF_FIELD, max_length=100)]
Price = Annotated[str, Form(max_length=30)]
Quantity = Annotated[str, Form(max_length=30)]
#: The desks' states, translated at render.
STATES = (N_("proposed"), N_("settled"), N_("rejected"),
          N_("withdrawn"), N_("won"), N_("partial"), N_("lost"), N_("uniform"), N_("pay_as_bid"))  # fmt: skip


def _tonnes(text: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise InvalidInput("the quantity must be a whole number of tonnes above 0")
    return int(text)


def _cache(request: Request) -> MatcherCache:
    matchers: MatcherCache = request.app.state.matchers
    return matchers


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def block_rules(row: InstrumentRow) -> dict[str, Any]:
    """An instrument's block desk as shown: the window (Asia/Shanghai), the band around the reference, the minimum."""
    low, high = price_band(row.reference_price_ticks, row.block_band_bp)
    return {"row": row, "window": f"{_hhmm(row.block_open_minute)}–{_hhmm(row.block_close_minute)}",
            "band_percent": row.block_band_bp // 100, "reference_cny": price_cny(row, row.reference_price_ticks),
            "low_cny": price_cny(row, low), "high_cny": price_cny(row, high), "min_t": row.block_min_t}  # fmt: skip


PHASES = {"announced": N_("Announced, not yet open"), "open": N_("Open for bids"),
          "awaiting close": N_("Awaiting its close"), "closed": N_("Closed")}  # fmt: skip
DONE = {"proposed": N_("Block trade %(id)s proposed: your side is held until the counterparty answers."),
        "confirm": N_("Block trade %(id)s confirmed and settled."), "reject": N_("Block trade %(id)s declined."),
        "withdraw": N_("Block trade %(id)s withdrawn.")}  # fmt: skip

# Auctions -------------------------------------------------------------------------------------------------


def _phase(auction: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The auction with its phase: announced (before its window), open, awaiting its close, closed."""
    if auction["status"] == auctions.CLOSED:
        phase = "closed"
    elif now < datetime.fromisoformat(auction["starts_at"]):
        phase = "announced"
    elif now < datetime.fromisoformat(auction["ends_at"]):
        phase = "open"
    else:
        phase = "awaiting close"
    return {**auction, "phase": phase, "phase_label": PHASES[phase]}


@router.get("/auctions", response_class=HTMLResponse)
def page_auctions(request: Request, session: SessionDep, clock: ClockDep, person: Person) -> HTMLResponse:
    """Announced, open and closed auctions with their public results."""
    found = [_phase(a, clock.now()) for a in auctions.list_auctions(session)]
    return render(request, "auctions.html", {"auctions": found}, principal=person)


@router.get("/auctions/{auction_id}", response_class=HTMLResponse)
def page_auction(
    request: Request, session: SessionDep, clock: ClockDep, person: Person, auction_id: RowId
) -> HTMLResponse:
    """One auction: its terms and window, its allocations once closed; for traders a bid and their own bids."""
    auction = _phase(auctions.read_auction(session, auction_id), clock.now())
    trader = person is not None and person.role in TRADERS
    bids = auctions.list_bids(session, auction_id, actor=person) if trader and person is not None else []
    context = {"auction": auction, "trader": trader, "bids": bids,
               "bid_placed": request.query_params.get("bid")}  # fmt: skip
    return render(request, "auction.html", context, principal=person)


@router.post("/auctions/{auction_id}/bids")
def page_auction_bid(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Trader,
    auction_id: RowId,
    price: Price,
    quantity: Quantity,
    csrf_token: CsrfField = "",
) -> Response:
    """Bid in an open auction (the API's ``place_auction_bid`` service: the hold is made, or nothing)."""
    check_csrf(request, settings, csrf_token)
    command = auctions.PlaceBid(price_cny=price.strip(), quantity_t=_tonnes(quantity))
    bid = auctions.place_bid(session, auction_id, command, actor=person, clock=clock)
    return RedirectResponse(f"/auctions/{auction_id}?bid={bid['bid_id']}", status_code=303)


# Block trades ---------------------------------------------------------------------------------------------


def _counterparties(session: Session, person: Principal) -> list[Organisation]:
    return list(session.scalars(
        select(Organisation).where(Organisation.kind.in_(TRADERS), Organisation.id != person.organisation_id)
        .order_by(Organisation.id)
    ))  # fmt: skip


@router.get("/block-trades", response_class=HTMLResponse)
def page_block_trades(request: Request, session: SessionDep, person: Trader) -> HTMLResponse:
    """The organisation's block trades (confirm or decline those proposed to it) and the proposal form."""
    rows = list(session.scalars(select(InstrumentRow).order_by(InstrumentRow.instrument_id)))
    names = {o.id: o.name for o in session.scalars(select(Organisation))}
    context = {"blocks": block_trades.list_blocks(session, actor=person), "rules": [block_rules(r) for r in rows],
               "counterparties": _counterparties(session, person), "names": names,
               "done": _done(request.query_params.get("done", ""))}  # fmt: skip
    return render(request, "block_trades.html", context, principal=person)


def _done(done: str) -> tuple[str, str] | None:
    """The message of the command just done (``?done=confirm-3``), or none."""
    action, _, number = done.partition("-")
    return (DONE[action], number) if action in DONE and number.isascii() and number.isdigit() else None


@router.post("/block-trades")
def page_block_propose(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Trader,
    instrument_id: Annotated[str, Form(max_length=60)],
    side: Annotated[str, Form(pattern="^(buy|sell)$")],
    counterparty: Annotated[int, Form(ge=1, le=2**31 - 1)],
    price: Price,
    quantity: Quantity,
    csrf_token: CsrfField = "",
) -> Response:
    """Propose a block trade (the API's ``propose_block_trade`` service: the proposer's side is held)."""
    check_csrf(request, settings, csrf_token)
    cmd = block_trades.ProposeBlockTrade(
        instrument_id=instrument_id, side=side, counterparty_organisation_id=counterparty,
        quantity_t=_tonnes(quantity), price_cny=price.strip(),
    )  # fmt: skip
    block = block_trades.propose(session, cmd, actor=person, clock=clock, cache=_cache(request))
    return RedirectResponse(f"/block-trades?done=proposed-{block['block_trade_id']}", status_code=303)


@router.post("/block-trades/{block_trade_id}/{action}")
def page_block_answer(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Trader,
    block_trade_id: RowId,
    action: Annotated[str, Path(pattern="^(confirm|reject|withdraw)$")],
    csrf_token: CsrfField = "",
) -> Response:
    """Confirm (settles DvP) or decline a block trade proposed to the organisation, or withdraw its own proposal."""
    check_csrf(request, settings, csrf_token)
    if action == "confirm":
        block_trades.confirm(session, block_trade_id, actor=person, clock=clock, cache=_cache(request))
    elif action == "reject":
        block_trades.reject(session, block_trade_id, actor=person, clock=clock)
    else:
        block_trades.withdraw(session, block_trade_id, actor=person, clock=clock)
    return RedirectResponse(f"/block-trades?done={action}-{block_trade_id}", status_code=303)
