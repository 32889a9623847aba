"""GEP results put to work: eco-compensation between regions, and ecological-product rights banks lend against.

Above ``carbon`` and ``gep`` (ADR 039): ``formula`` and ``serials`` are pure; ``agreements``, ``statements``,
``rights`` and ``reports`` are services over the ``eco_`` tables of ``models``.
"""
