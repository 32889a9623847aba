"""The composition root: the app factory and the command line, above ``api`` and ``web`` (issue 20)."""
