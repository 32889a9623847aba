"""API routers, one module per resource; every route has a rule in ``api/permissions.py``."""
