"""Showing results: text, Markdown and HTML of bench, compare, bisect, tune and doctor, rendered
from their published documents (to_json), with one formatter (format.py)."""
