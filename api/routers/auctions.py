"""Block trades (大宗协议) and one-way auctions (单向竞价); auction announcements and results are public.

Both settle through the same DvP path as order-book fills (ADR 013); every command answers after it has
committed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from api.deps import ClockDep, CurrentUser, SessionDep
from api.fields import Answer, Cny, InstantText, PriceCnyText, with_cny
from api.pagination import Page, PageQuery, slice_of
from api.params import IdPath
from core.auth import OrgKind
from core.bounds import Id, PriceCny, Text, Tonnes
from core.errors import PermissionDenied
from trading import auctions, block_trades
from trading.journal import MatcherCache
from trading.orders import Side

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


class BlockTradeSettlement(Answer):
    """The trade a settled block trade made: notional and each party's fee (fen), the serials delivered."""

    trade_id: int
    notional_fen: int
    notional_cny: Cny
    buyer_fee_fen: int
    buyer_fee_cny: Cny
    seller_fee_fen: int
    seller_fee_cny: Cny
    serials: list[str]

    @model_validator(mode="before")
    @classmethod
    def _cny(cls, data: Any) -> Any:
        return with_cny(data, "notional", "buyer_fee", "seller_fee")


class BlockTradeOut(Answer):
    """A block trade as its parties see it; ``held_fen``/``escrowed_t`` are what it locks until it settles."""

    block_trade_id: int
    instrument_id: str
    status: Literal["proposed", "settled", "rejected", "withdrawn", "expired"]
    side: Side = Field(description="The proposer's side.")
    proposer_organisation_id: int
    counterparty_organisation_id: int
    buyer_organisation_id: int
    seller_organisation_id: int
    quantity_t: int
    price_cny: PriceCnyText
    reference_price_cny: PriceCnyText
    held_fen: int
    held_cny: Cny
    escrowed_t: int
    expires_at: InstantText
    trade: BlockTradeSettlement | None

    @model_validator(mode="before")
    @classmethod
    def _cny(cls, data: Any) -> Any:
        return with_cny(data, "held")


class ExpiredBlockTrades(Answer):
    """The proposals the expiry sweep closed."""

    expired_block_trade_ids: list[int]


class Allocation(Answer):
    """One allocation of a closed auction (no bidder names)."""

    rank: int
    quantity_t: int
    price_cny: PriceCnyText
    notional_fen: int
    notional_cny: Cny

    @model_validator(mode="before")
    @classmethod
    def _cny(cls, data: Any) -> Any:
        return with_cny(data, "notional")


class AuctionResults(Answer):
    """A closed auction's results."""

    closed_at: InstantText | None
    reserve_met: bool
    allocated_t: int
    unfilled_t: int
    clearing_price_cny: PriceCnyText | None
    allocations: list[Allocation]


class AuctionOut(Answer):
    """An auction as published: terms, state, the number of bids and, once closed, the results."""

    auction_id: int
    instrument_id: str
    seller_organisation_id: int
    quantity_t: int
    reserve_price_cny: PriceCnyText
    rule: Literal["uniform", "pay_as_bid"]
    qualification: dict[str, list[str]] = Field(description="`provinces` and/or `kinds` that may bid (as announced).")
    starts_at: InstantText
    ends_at: InstantText
    status: Literal["announced", "closed"]
    bids: int
    results: AuctionResults | None


class BidOut(Answer):
    """A bid as its bidder sees it; ``held_fen`` is the cash it holds until the auction closes."""

    bid_id: int
    auction_id: int
    organisation_id: int
    price_cny: PriceCnyText
    quantity_t: int
    held_fen: int
    held_cny: Cny
    status: Literal["open", "withdrawn", "won", "partial", "lost"]
    allocated_t: int | None
    paid_price_cny: PriceCnyText | None
    at: InstantText

    @model_validator(mode="before")
    @classmethod
    def _cny(cls, data: Any) -> Any:
        return with_cny(data, "held")


def _cache(request: Request) -> MatcherCache:
    matchers: MatcherCache = request.app.state.matchers
    return matchers


# Block trades ---------------------------------------------------------------------------------------------


@router.post("/block-trades", status_code=201)
def propose_block_trade(body: BlockTradeRequest, request: Request, session: SessionDep, principal: CurrentUser,
                        clock: ClockDep) -> BlockTradeOut:  # fmt: skip
    """Propose a block trade; the proposer's tonnes are escrowed (sell) or its cash held (buy)."""
    cmd = block_trades.ProposeBlockTrade(**body.model_dump())
    return BlockTradeOut.model_validate(
        block_trades.propose(session, cmd, actor=principal, clock=clock, cache=_cache(request))
    )


@router.get("/block-trades")
def list_block_trades(session: SessionDep, principal: CurrentUser, request: Request, page: PageQuery,
                      status: Annotated[str | None, Query(pattern="^(proposed|settled|rejected|withdrawn|expired)$")]
                      = None) -> Page[BlockTradeOut]:  # fmt: skip
    """The block trades the caller's organisation is a party to (the operator: all), newest first."""
    rows, following = slice_of(request, block_trades.list_blocks(session, actor=principal, status=status), page)
    return Page[BlockTradeOut](items=[BlockTradeOut.model_validate(r) for r in rows], limit=page.limit, next=following)


@router.get("/block-trades/{block_trade_id}")
def read_block_trade(block_trade_id: IdPath, session: SessionDep, principal: CurrentUser) -> BlockTradeOut:
    """One block trade of the caller's organisation."""
    return BlockTradeOut.model_validate(block_trades.read_block(session, block_trade_id, actor=principal))


@router.post("/block-trades/{block_trade_id}/confirm")
def confirm_block_trade(block_trade_id: IdPath, request: Request, session: SessionDep, principal: CurrentUser,
                        clock: ClockDep) -> BlockTradeOut:  # fmt: skip
    """Confirm a block trade (the named counterparty only): it settles DvP before the answer."""
    return BlockTradeOut.model_validate(
        block_trades.confirm(session, block_trade_id, actor=principal, clock=clock, cache=_cache(request))
    )


@router.post("/block-trades/{block_trade_id}/reject")
def reject_block_trade(block_trade_id: IdPath, session: SessionDep, principal: CurrentUser,
                       clock: ClockDep) -> BlockTradeOut:  # fmt: skip
    """Decline a block trade (the named counterparty only); the proposer's side is released."""
    return BlockTradeOut.model_validate(block_trades.reject(session, block_trade_id, actor=principal, clock=clock))


@router.post("/block-trades/{block_trade_id}/withdraw")
def withdraw_block_trade(block_trade_id: IdPath, session: SessionDep, principal: CurrentUser,
                         clock: ClockDep) -> BlockTradeOut:  # fmt: skip
    """Withdraw a block trade before confirmation (the proposer only); its side is released."""
    return BlockTradeOut.model_validate(block_trades.withdraw(session, block_trade_id, actor=principal, clock=clock))


@router.post("/block-trades/expire")
def expire_block_trades(session: SessionDep, principal: CurrentUser, clock: ClockDep) -> ExpiredBlockTrades:
    """Expire the proposals whose window has closed and release their holds (operator; idempotent)."""
    if principal.role is not OrgKind.OPERATOR:
        raise PermissionDenied("only the exchange operator runs the expiry sweep")
    return ExpiredBlockTrades(
        expired_block_trade_ids=block_trades.expire_due(session, actor=principal.actor, clock=clock)
    )


# Auctions -------------------------------------------------------------------------------------------------


@router.post("/auctions", status_code=201)
def announce_auction(body: AuctionRequest, session: SessionDep, principal: CurrentUser,
                     clock: ClockDep) -> AuctionOut:  # fmt: skip
    """Announce a one-way auction of the caller's tonnes; they are escrowed at once."""
    fields = body.model_dump(exclude={"qualification"})
    cmd = auctions.AnnounceAuction(**fields, qualification=body.qualification.model_dump())
    return AuctionOut.model_validate(auctions.announce(session, cmd, actor=principal, clock=clock))


@router.post("/auctions/{auction_id}/bids", status_code=201)
def place_auction_bid(auction_id: IdPath, body: BidRequest, session: SessionDep, principal: CurrentUser,
                      clock: ClockDep) -> BidOut:  # fmt: skip
    """Bid in an auction (qualified participants, inside the window); the bid's cash is held."""
    cmd = auctions.PlaceBid(**body.model_dump())
    return BidOut.model_validate(auctions.place_bid(session, auction_id, cmd, actor=principal, clock=clock))


@router.get("/auctions/{auction_id}/bids")
def list_auction_bids(
    auction_id: IdPath, session: SessionDep, principal: CurrentUser, request: Request, page: PageQuery
) -> Page[BidOut]:
    """The caller's bids in an auction (sealed: the operator, and the seller after the close, see all)."""
    rows, following = slice_of(request, auctions.list_bids(session, auction_id, actor=principal), page)
    return Page[BidOut](items=[BidOut.model_validate(r) for r in rows], limit=page.limit, next=following)


@router.post("/auction-bids/{bid_id}/withdraw")
def withdraw_auction_bid(bid_id: IdPath, session: SessionDep, principal: CurrentUser,
                         clock: ClockDep) -> BidOut:  # fmt: skip
    """Withdraw an open bid before the auction's window ends; its hold is released."""
    return BidOut.model_validate(auctions.withdraw_bid(session, bid_id, actor=principal, clock=clock))


@router.post("/auctions/{auction_id}/close")
def close_auction(auction_id: IdPath, request: Request, session: SessionDep, principal: CurrentUser,
                  clock: ClockDep) -> AuctionOut:  # fmt: skip
    """Close an auction after its window (operator; idempotent): allocate, settle, release, publish."""
    return AuctionOut.model_validate(
        auctions.close_as_operator(session, auction_id, actor=principal, clock=clock, cache=_cache(request))
    )


@public.get("/auctions")
def list_public_auctions(session: SessionDep, request: Request, page: PageQuery,
                         status: Annotated[str | None, Query(pattern="^(announced|closed)$")] = None,
                         ) -> Page[AuctionOut]:  # fmt: skip
    """Every auction's terms and, once closed, its results (allocations without bidder names)."""
    rows, following = slice_of(request, auctions.list_auctions(session, status), page)
    return Page[AuctionOut](items=[AuctionOut.model_validate(r) for r in rows], limit=page.limit, next=following)


@public.get("/auctions/{auction_id}")
def read_public_auction(auction_id: IdPath, session: SessionDep) -> AuctionOut:
    """One auction's terms and results."""
    return AuctionOut.model_validate(auctions.read_auction(session, auction_id))
