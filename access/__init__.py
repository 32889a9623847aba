"""Access rules and principal resolution shared by the JSON API and the web pages (issue 20).

Both ``api`` and ``web`` import this package; it imports neither. It holds the one permissions table (keyed by
action: API route names and page names), the resolution of the caller (bearer token, API key or a person's
session cookie), the request dependencies, the login throttle and the throttled password check.
"""
