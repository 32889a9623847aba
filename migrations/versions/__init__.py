"""Dated migration revisions."""
