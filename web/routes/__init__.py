"""The page routers (each route's name is its action in ``access/permissions.py``)."""
