"""`python -m contracts.lint.spectral > docs/spectral.md` writes the Spectral coverage page."""

from contracts.lint.spectral.docs import render_markdown

print(render_markdown(), end="")
