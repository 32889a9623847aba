"""GEP: ecosystem-service indicators, prices, accounting runs and SEEA-style tables.

Imports ``geodata`` and ``core``; never ``carbon`` or ``trading``. Its contents arrive with the GEP
issue; the package exists now so that the dependency contracts hold from the start.
"""
