"""Trading: instruments, the matching engine, escrow, settlement, auctions and block trades.

Imports ``carbon``, ``geodata`` and ``core``; never ``gep``. Its contents arrive with the trading
issues; the package exists now so that the dependency contracts hold from the start.
"""
