"""Trading: instruments, the matching engine, escrow, settlement, auctions and block trades.

Imports ``carbon``, ``geodata`` and ``core``; never ``gep``. The matching engine is pure (no database, HTTP,
clock or randomness) and lives in these modules:

- ``instruments``: what is traded, its style, band, sizes and hours; ``calendar``: trading sessions;
- ``orders``: commands in and events out; ``engine``: validation and dispatch, state hash, snapshots;
- ``book``: the order book structure; ``styles``: price-time, Hubei, listing-click and Guangdong matching;
- ``close_price``: open and close rules; ``replay``: rebuilding an engine from a journal.

Where the live book runs and how its results are committed is decided in ADR 005; escrow, settlement,
auctions and block trades arrive with the later trading issues.
"""
