"""Showing results: text, Markdown and HTML."""
