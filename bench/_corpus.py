"""Where the shared corpus of large real contracts (Stripe's, AsyncAPI examples) is, for benchmarks.

CHARTER_CORPUS names it; otherwise it is the first `shared/corpus` found walking up from this file, so
a main checkout (`/work/main`) and a git worktree (`/work/wt/NAME`) beside it find the same directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def corpus_dir(start: Path | None = None) -> Path:
    """The corpus directory; SystemExit naming CHARTER_CORPUS when there is none."""
    configured = os.environ.get("CHARTER_CORPUS")
    if configured:
        path = Path(configured)
        if not path.is_dir():
            raise SystemExit(f"CHARTER_CORPUS={configured} is not a directory")
        return path
    here = (start or Path(__file__)).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "corpus"
        if candidate.is_dir():
            return candidate
    raise SystemExit(f"no shared/corpus above {here}: set CHARTER_CORPUS to the corpus directory")
