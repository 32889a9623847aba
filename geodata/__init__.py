"""Geodata: plot geometry in, validated and measured on the CGCS2000 ellipsoid.

Imports only ``core``. Pure modules (``area``, ``validation``) take and return values; the SQL geometry
type lives in ``sqltypes``.
"""
