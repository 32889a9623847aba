"""The HTTP API, Celery tasks and the ``shanhai`` command line; the only composition root.

``api`` may import every package; nothing imports ``api``.
"""
