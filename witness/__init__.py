"""A C2SP tlog-witness for the audit log, independent of the platform's code (ADR 033).

It verifies what a log submits with its own note parser (:mod:`witness.note`) and its own RFC 6962/9162
consistency verifier (:mod:`witness.consistency`); it imports nothing of the platform but ``core.metrics``
(for its alarm counter), which an import contract keeps so.
"""
