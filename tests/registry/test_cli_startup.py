"""`charter diff` of two files starts without the packages only other commands need.

Start-up was most of the time a diff of two large contracts took from a shell: httpx, rich,
openapi-schema-validator (read at import through pydantic-settings) and openapi-spec-validator cost
half a second before any work. Timing is not asserted (the machine may be loaded); what is imported is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.samples import as_json, projects

NOT_FOR_A_LOCAL_DIFF = (
    "httpx",
    "rich",
    "litestar",
    "sqlalchemy",
    "openapi_schema_validator",
    "openapi_spec_validator",
    "jsonschema",
    "yaml",
)
RUN_AND_LIST = """
import json, runpy, sys
sys.argv = ["charter", *sys.argv[1:]]
try:
    runpy.run_module("registry.cli", run_name="__main__")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def modules_after(*argv: str) -> tuple[int, set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, *argv], capture_output=True, text=True, timeout=120, check=False
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], {name.split(".")[0] for name in report["modules"]}, done.stdout


def test_a_diff_of_two_files_fully_validated_imports_no_client_server_or_slow_validator(
    tmp_path: Path,
) -> None:
    base, revision = tmp_path / "base.json", tmp_path / "revision.json"
    base.write_bytes(as_json(projects("1.0.0")))
    changed = projects("1.1.0")
    del changed["paths"]["/projects/{projectId}"]
    revision.write_bytes(as_json(changed))
    code, modules, out = modules_after("diff", "--validity", "full", str(base), str(revision))
    assert code == 0 and "api-path-removed" in out, out
    assert "jsonschema_rs" in modules  # it did validate
    assert modules.isdisjoint(NOT_FOR_A_LOCAL_DIFF), sorted(modules & set(NOT_FOR_A_LOCAL_DIFF))


def test_the_cli_itself_starts_without_them() -> None:
    code, modules, out = modules_after("--help")
    assert code == 0 and "diff" in out
    assert modules.isdisjoint({*NOT_FOR_A_LOCAL_DIFF, "jsonschema_rs"})


def test_a_bad_default_still_loads_the_validator_it_needs(tmp_path: Path) -> None:
    """openapi-schema-validator is imported when a document has a `default` to check, and finds it."""
    document = projects("1.0.0")
    document["components"]["schemas"]["Project"]["properties"]["name"]["default"] = 42
    path = tmp_path / "bad-default.json"
    path.write_bytes(as_json(document))
    done = subprocess.run(
        [sys.executable, "-m", "registry.cli", "diff", str(path), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "/components/schemas/Project/properties/name/default" in done.stderr
    assert "42 is not of type 'string'" in done.stderr
