"""Pages for people: server-rendered Jinja2 templates, htmx, ES-module islands, Babel catalogs (issue 20)."""
