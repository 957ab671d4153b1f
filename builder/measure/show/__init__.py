"""Showing results: text, Markdown and HTML of bench, compare, bisect and tune, rendered from their
published documents (to_json), with one formatter (format.py)."""
