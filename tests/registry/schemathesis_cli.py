"""The `schemathesis` command, less one crash of schemathesis 4.32.5 that stops a whole run.

While it looks for links in answers, schemathesis splits every string of a 2xx JSON body that
starts with `http://` or `/` as a URL; one that is not a valid URL (`http://[`, a description the
fuzzer wrote and the registry stores and echoes as any text) raises ValueError from `urlsplit`,
and the run ends with "An internal error occurred". Such a string is no link: treat it as none.
"""

from __future__ import annotations

import sys

from schemathesis.cli import schemathesis
from schemathesis.engine import observations

_same_origin_path = observations._same_origin_path


def _no_link_if_unparsable(value: str, origin: tuple[str, str]) -> str | None:
    try:
        return _same_origin_path(value, origin)
    except ValueError:
        return None


observations._same_origin_path = _no_link_if_unparsable

if __name__ == "__main__":
    sys.exit(schemathesis())
