"""Trading: instruments, the matching engine, escrow, settlement, auctions and block trades.

Imports ``carbon``, ``geodata`` and ``core``; never ``gep``. The matching engine is pure (no database, HTTP,
clock or randomness) and lives in these modules:

- ``instruments``: what is traded, its style, band, sizes and hours; ``calendar``: trading sessions;
- ``orders``: commands in and events out; ``engine``: validation and dispatch, state hash, snapshots;
- ``book``: the order book structure; ``styles``: price-time, Hubei, listing-click and Guangdong matching;
- ``close_price``: open and close rules; ``replay``: rebuilding an engine from a journal.

Around the engine (I/O): ``models`` (instruments, cash, orders, trades, journal), ``cash`` (CNY accounts in fen,
holds, fee account) and ``exchange`` (order entry, holds and escrow, matching under the instrument lock, DvP
settlement; ADR 005 and ADR 012), ``market_data`` (committed L2 book, trades, daily bars, the update feed;
ADR 014) and ``flows`` (the cross-province flows report). Auctions and block trades arrive with issue 8.
"""
