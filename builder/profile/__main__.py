"""`python -m builder.profile`: print the README's profile reference table."""

from builder.profile.schema import reference_markdown

print(reference_markdown(), end="")
