"""One pagination for every list of the API (issue 17 item 3, ADR 030).

Every list answer is a :class:`Page`: ``items``, the ``limit`` that bounded it and ``next``, the relative URL of
the following page (the same path and query with the next ``offset`` or cursor), ``null`` on the last page. A
client follows ``next`` until it is ``null`` and never builds a page URL itself.

Requests take ``limit`` (1 … :data:`MAX_LIMIT`, default :data:`DEFAULT_LIMIT`) and ``offset`` (:data:`PageQuery`);
a list ordered by a growing id may take a cursor instead (the audit log's ``after``, the market's ``before_id``),
which its ``next`` link carries. A page is read with ``limit + 1`` rows: the extra row only says whether there is
a next page. GeoJSON FeatureCollections keep their RFC 7946 shape (ADR 030).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel, Field

from core.bounds import INT32_MAX

ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")
#: The most items a page holds.
MAX_LIMIT = 500
#: Items per page when the request does not say.
DEFAULT_LIMIT = 100


class Page(BaseModel, Generic[ItemT]):
    """One page of a list; follow ``next`` until it is ``null``."""

    items: list[ItemT]
    limit: int = Field(ge=1, description="The most items this page could hold.")
    next: str | None = Field(description="Relative URL of the next page; null on the last page.")


@dataclass(frozen=True)
class PageParams:
    """A page request: at most ``limit`` items from position ``offset``."""

    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX, description="Items to skip (follow `next`).")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageQuery = Annotated[PageParams, Depends(_page_params)]


def next_link(request: Request, **params: int) -> str:
    """Return the relative URL of the request with ``params`` replacing its query parameters of those names."""
    url = request.url.include_query_params(**params)
    return f"{url.path}?{url.query}"


def page_of(request: Request, rows: Sequence[RowT], params: PageParams) -> tuple[list[RowT], str | None]:
    """Return the rows of the page and its ``next`` link from ``rows`` read with ``limit + 1`` at ``offset``."""
    more = len(rows) > params.limit
    following = next_link(request, limit=params.limit, offset=params.offset + params.limit) if more else None
    return list(rows[: params.limit]), following


def slice_of(request: Request, rows: Sequence[RowT], params: PageParams) -> tuple[list[RowT], str | None]:
    """Return the page of an in-memory list (a bounded list the service returns whole) and its ``next`` link."""
    return page_of(request, rows[params.offset : params.offset + params.limit + 1], params)
