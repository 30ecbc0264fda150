"""`python -m contracts.lint > docs/lint-rules.md` writes the published rule catalog."""

from contracts.lint.catalog import render_markdown

print(render_markdown(), end="")
