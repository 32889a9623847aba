"""Shanhai core: settings, database, units and money, canonical JSON, audit log, errors, auth primitives.

``core`` imports none of the domain packages; every other package may import it.
"""
