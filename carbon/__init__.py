"""Carbon: projects and their plots, methodologies, monitoring, issuance and retirement.

Imports ``geodata`` and ``core``; never ``gep``.
"""
