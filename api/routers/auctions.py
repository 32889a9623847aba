"""Block trades (大宗协议) and one-way auctions (单向竞价); auction announcements and results are public.

Both settle through the same DvP path as order-book fills (ADR 013); every command answers after it has
committed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import ClockDep, CurrentUser, SessionDep
from api.params import IdPath
from core.auth import OrgKind
from core.bounds import Id, PriceCny, Text, Tonnes
from core.errors import PermissionDenied
from trading import auctions, block_trades, exchange

router = APIRouter(prefix="/api/v1", tags=["block trades and auctions"])
public = APIRouter(prefix="/public/v1", tags=["public auctions"])
Price = PriceCny


class BlockTradeRequest(BaseModel):
    """Propose a block trade to a named counterparty; ``side`` is the proposer's side."""

    model_config = ConfigDict(extra="forbid")
    instrument_id: Annotated[Text, Field(max_length=100)]
    side: str = Field(pattern="^(buy|sell)$")
    counterparty_organisation_id: Id
    quantity_t: Tonnes
    price_cny: Price


class Qualification(BaseModel):
    """Who may bid: organisation provinces (GB/T 2260, two digits) and/or kinds; empty = every participant."""

    model_config = ConfigDict(extra="forbid")
    provinces: list[Annotated[str, Field(pattern=r"^\d{2}$")]] = Field(default_factory=list, max_length=40)
    kinds: list[str] = Field(default_factory=list, max_length=10)


class AuctionRequest(BaseModel):
    """Announce a one-way auction of the caller's tonnes."""

    model_config = ConfigDict(extra="forbid")
    instrument_id: Annotated[Text, Field(max_length=100)]
    quantity_t: Tonnes
    reserve_price_cny: Price
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    rule: str = Field(default="uniform", pattern="^(uniform|pay_as_bid)$")
    qualification: Qualification = Field(default_factory=Qualification)


class BidRequest(BaseModel):
    """A bid: price per tonne and quantity."""

    model_config = ConfigDict(extra="forbid")
    price_cny: Price
    quantity_t: Tonnes


def _cache(request: Request) -> exchange.MatcherCache:
    matchers: exchange.MatcherCache = request.app.state.matchers
    return matchers


# Block trades ---------------------------------------------------------------------------------------------


@router.post("/block-trades", status_code=201)
def propose_block_trade(body: BlockTradeRequest, request: Request, session: SessionDep, principal: CurrentUser,
                        clock: ClockDep) -> dict[str, Any]:  # fmt: skip
    """Propose a block trade; the proposer's tonnes are escrowed (sell) or its cash held (buy)."""
    return block_trades.propose(session, block_trades.ProposeBlockTrade(**body.model_dump()), actor=principal,
                                clock=clock, cache=_cache(request))  # fmt: skip


@router.get("/block-trades")
def list_block_trades(session: SessionDep, principal: CurrentUser,
                      status: Annotated[str | None, Query(pattern="^(proposed|settled|rejected|withdrawn|expired)$")]
                      = None) -> list[dict[str, Any]]:  # fmt: skip
    """The block trades the caller's organisation is a party to (the operator: all), newest first."""
    return block_trades.list_blocks(session, actor=principal, status=status)


@router.get("/block-trades/{block_trade_id}")
def read_block_trade(block_trade_id: IdPath, session: SessionDep, principal: CurrentUser) -> dict[str, Any]:
    """One block trade of the caller's organisation."""
    return block_trades.read_block(session, block_trade_id, actor=principal)


@router.post("/block-trades/{block_trade_id}/confirm")
def confirm_block_trade(block_trade_id: IdPath, request: Request, session: SessionDep, principal: CurrentUser,
                        clock: ClockDep) -> dict[str, Any]:  # fmt: skip
    """Confirm a block trade (the named counterparty only): it settles DvP before the answer."""
    return block_trades.confirm(session, block_trade_id, actor=principal, clock=clock, cache=_cache(request))


@router.post("/block-trades/{block_trade_id}/reject")
def reject_block_trade(block_trade_id: IdPath, session: SessionDep, principal: CurrentUser,
                       clock: ClockDep) -> dict[str, Any]:  # fmt: skip
    """Decline a block trade (the named counterparty only); the proposer's side is released."""
    return block_trades.reject(session, block_trade_id, actor=principal, clock=clock)


@router.post("/block-trades/{block_trade_id}/withdraw")
def withdraw_block_trade(block_trade_id: IdPath, session: SessionDep, principal: CurrentUser,
                         clock: ClockDep) -> dict[str, Any]:  # fmt: skip
    """Withdraw a block trade before confirmation (the proposer only); its side is released."""
    return block_trades.withdraw(session, block_trade_id, actor=principal, clock=clock)


@router.post("/block-trades/expire")
def expire_block_trades(session: SessionDep, principal: CurrentUser, clock: ClockDep) -> dict[str, Any]:
    """Expire the proposals whose window has closed and release their holds (operator; idempotent)."""
    if principal.role is not OrgKind.OPERATOR:
        raise PermissionDenied("only the exchange operator runs the expiry sweep")
    return {"expired_block_trade_ids": block_trades.expire_due(session, actor=principal.actor, clock=clock)}


# Auctions -------------------------------------------------------------------------------------------------


@router.post("/auctions", status_code=201)
def announce_auction(body: AuctionRequest, session: SessionDep, principal: CurrentUser,
                     clock: ClockDep) -> dict[str, Any]:  # fmt: skip
    """Announce a one-way auction of the caller's tonnes; they are escrowed at once."""
    fields = body.model_dump(exclude={"qualification"})
    cmd = auctions.AnnounceAuction(**fields, qualification=body.qualification.model_dump())
    return auctions.announce(session, cmd, actor=principal, clock=clock)


@router.post("/auctions/{auction_id}/bids", status_code=201)
def place_auction_bid(auction_id: IdPath, body: BidRequest, session: SessionDep, principal: CurrentUser,
                      clock: ClockDep) -> dict[str, Any]:  # fmt: skip
    """Bid in an auction (qualified participants, inside the window); the bid's cash is held."""
    return auctions.place_bid(session, auction_id, auctions.PlaceBid(**body.model_dump()), actor=principal,
                              clock=clock)  # fmt: skip


@router.get("/auctions/{auction_id}/bids")
def list_auction_bids(auction_id: IdPath, session: SessionDep, principal: CurrentUser) -> list[dict[str, Any]]:
    """The caller's bids in an auction (sealed: the operator, and the seller after the close, see all)."""
    return auctions.list_bids(session, auction_id, actor=principal)


@router.post("/auction-bids/{bid_id}/withdraw")
def withdraw_auction_bid(bid_id: IdPath, session: SessionDep, principal: CurrentUser,
                         clock: ClockDep) -> dict[str, Any]:  # fmt: skip
    """Withdraw an open bid before the auction's window ends; its hold is released."""
    return auctions.withdraw_bid(session, bid_id, actor=principal, clock=clock)


@router.post("/auctions/{auction_id}/close")
def close_auction(auction_id: IdPath, request: Request, session: SessionDep, principal: CurrentUser,
                  clock: ClockDep) -> dict[str, Any]:  # fmt: skip
    """Close an auction after its window (operator; idempotent): allocate, settle, release, publish."""
    return auctions.close_as_operator(session, auction_id, actor=principal, clock=clock, cache=_cache(request))


@public.get("/auctions")
def list_public_auctions(session: SessionDep,
                         status: Annotated[str | None, Query(pattern="^(announced|closed)$")] = None,
                         ) -> list[dict[str, Any]]:  # fmt: skip
    """Every auction's terms and, once closed, its results (allocations without bidder names)."""
    return auctions.list_auctions(session, status)


@public.get("/auctions/{auction_id}")
def read_public_auction(auction_id: IdPath, session: SessionDep) -> dict[str, Any]:
    """One auction's terms and results."""
    return auctions.read_auction(session, auction_id)
