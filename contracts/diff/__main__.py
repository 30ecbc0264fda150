"""`python -m contracts.diff > docs/changes.md` writes the published change catalog."""

from contracts.diff.catalog import render_markdown

print(render_markdown(), end="")
