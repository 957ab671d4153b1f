"""Rendering of bench/compare/bisect results: Markdown for people and PRs, HTML with inline SVG plots."""
