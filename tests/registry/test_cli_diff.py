"""`charter diff` for CI: files or NAME@VERSION, three formats, exit codes 0, 1 and 2."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.registry.support import charter
from tests.samples import as_json, as_yaml, projects


def without_get_project(version: str) -> dict:
    doc = projects(version)
    del doc["paths"]["/projects/{projectId}"]
    return doc


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    base = tmp_path / "base.yaml"
    base.write_bytes(as_yaml(projects("1.0.0")))
    revision = tmp_path / "revision.json"
    revision.write_bytes(as_json(without_get_project("2.0.0")))
    return base, revision


OFFLINE = "http://127.0.0.1:9"  # files only: the registry is never asked


def test_json_format_is_one_object_with_the_documented_fields(pair):
    base, revision = pair
    result = charter("diff", str(base), str(revision), "--format", "json", url=OFFLINE)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body) == {"breaking", "required_bump", "groups", "changes", "suppressed"}
    assert body["suppressed"] == {}
    assert (body["breaking"], body["required_bump"]) == (True, "major")
    (change,) = body["changes"]
    assert change == {
        "id": "api-path-removed-without-deprecation",
        "level": "error",
        "message": "GET /projects/{projectId} removed with its path",
        "operation": "GET /projects/{projectId}",
        "base_pointer": "/paths/~1projects~1{projectId}/get",
        "revision_pointer": None,
        "detail": None,
        "policy": None,
    }
    (group,) = body["groups"]
    assert group == {
        "id": "api-path-removed-without-deprecation",
        "level": "error",
        "message": "GET /projects/{projectId} removed with its path",
        "base_pointer": "/paths/~1projects~1{projectId}/get",
        "revision_pointer": None,
        "operations": ["GET /projects/{projectId}"],
        "findings": 1,
        "policy": None,
        "place": None,
    }


def test_fail_on_sets_exit_code_one(pair):
    base, revision = pair
    assert charter("diff", str(base), str(revision), "--fail-on", "error", url=OFFLINE).returncode == 1
    same = charter("diff", str(base), str(base), "--fail-on", "warning", url=OFFLINE)
    assert same.returncode == 0
    assert same.stdout.strip() == "no changes; not breaking; required bump: none"


def test_text_and_markdown_formats(pair):
    base, revision = pair
    text = charter("diff", str(base), str(revision), url=OFFLINE).stdout.splitlines()
    assert text[0].startswith("ERROR   api-path-removed-without-deprecation  GET /projects/{projectId}")
    assert text[-1] == "1 change (1 error); breaking; required bump: major"
    markdown = charter("diff", str(base), str(revision), "--format", "markdown", url=OFFLINE).stdout
    assert markdown.startswith("### Contract changes: 1 change (1 error); breaking")
    assert (
        "| 🔴 error | `api-path-removed-without-deprecation` "
        "| GET /projects/{projectId} removed with its path | 1 operation: GET /projects/{projectId} |"
    ) in markdown


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"openapi: [unclosed", "invalid YAML"),
        (b'{"hello": "world"}', "no `openapi`"),
    ],
)
def test_bad_input_is_one_line_and_exit_two(pair, tmp_path, content, fragment):
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    result = charter("diff", str(pair[0]), str(bad), url=OFFLINE)
    assert result.returncode == 2
    assert result.stderr.startswith("charter: error:") and result.stderr.count("\n") == 1
    assert fragment in result.stderr
    missing = charter("diff", str(pair[0]), str(tmp_path / "nope.yaml"), url=OFFLINE)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_name_at_version_reads_from_the_registry(server, pair):
    base, revision = pair
    token = httpx.post(
        f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "admin-secret")
    ).json()["access_token"]
    httpx.post(
        f"{server}/api/v1/teams", json={"name": "diff-team"}, headers={"Authorization": f"Bearer {token}"}
    ).raise_for_status()
    published = charter("publish", str(base), "--api", "projects", "--owner", "diff-team", url=server)
    assert published.returncode == 0, published.stderr

    result = charter(
        "diff", "projects@1.0.0", str(revision), "--format", "json", "--fail-on", "error", url=server
    )
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["required_bump"] == "major"
    assert charter("diff", "projects@latest", str(base), url=server).returncode == 0
    unknown = charter("diff", "projects@9.9.9", str(base), url=server)
    assert unknown.returncode == 2 and "404" in unknown.stderr

    refused = charter("publish", str(revision), "--api", "projects", "--version", "1.1.0", url=server)
    assert refused.returncode == 1 and "incompatible" in refused.stderr.lower()
    forced = charter(
        "publish", str(revision), "--api", "projects", "--version", "1.1.0", "--force", url=server
    )
    assert forced.returncode == 0, forced.stderr


def _invalid(tmp_path: Path) -> Path:
    doc = projects("1.0.1")
    doc["components"]["schemas"]["Project"]["required"] = ["name", "name"]
    path = tmp_path / "invalid.yaml"
    path.write_bytes(as_yaml(doc))
    return path


def test_an_invalid_file_is_refused_with_each_error_placed_and_how_to_relax(pair, tmp_path):
    """Not bad input but the validity level refusing it: exit 1, as --fail-on, and the way to relax it."""
    base, _ = pair
    invalid = _invalid(tmp_path)
    refused = charter("diff", str(base), str(invalid), url=OFFLINE)
    assert refused.returncode == 1, refused.stderr
    headline, *details = refused.stderr.splitlines()
    assert "--validity syntax-only" in headline
    lines = invalid.read_text().splitlines()
    project = lines.index("    Project:")
    line = next(n for n, text in enumerate(lines[project:], project + 1) if "required:" in text)
    column = lines[line - 1].index("required:") + 1
    message = '/components/schemas/Project/required: ["name","name"] has non-unique elements'
    assert details == [f"  {invalid}:{line}:{column}: {message}"]
    assert charter("diff", str(base), str(invalid), "--validity", "syntax-only", url=OFFLINE).returncode == 0


def test_diff_follows_the_validity_level_of_the_api(server, pair, tmp_path):
    base, _ = pair
    invalid = _invalid(tmp_path)
    token = httpx.post(
        f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "admin-secret")
    )
    auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
    httpx.post(f"{server}/api/v1/teams", json={"name": "loose-team"}, headers=auth)
    api = {
        "name": "loose-diff",
        "owner": "loose-team",
        "title": "Loose",
        "layer": "system",
        "validity": "syntax-only",
    }
    httpx.post(f"{server}/api/v1/apis", json=api, headers=auth).raise_for_status()

    assert charter("diff", str(base), str(invalid), "--api", "loose-diff", url=server).returncode == 0
    strict = charter("diff", str(base), str(invalid), "--api", "loose-diff", "--validity", "full", url=server)
    assert strict.returncode == 1
    assert charter("diff", str(base), str(invalid), "--api", "no-such-api", url=server).returncode == 1


def test_a_policy_file_sets_levels_and_shows_them(pair, tmp_path):
    base, revision = pair
    policy = tmp_path / "policy.json"
    policy.write_text('{"severity": {"api-path-removed-without-deprecation": "info"}}')
    result = charter(
        "diff", str(base), str(revision), "--policy", str(policy), "--fail-on", "warning", url=OFFLINE
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("INFO    api-path-removed-without-deprecation")
    assert lines[1].strip() == "error → info by policy"
    assert lines[-1] == "1 change (1 info); not breaking; required bump: patch"
    markdown = charter(
        "diff", str(base), str(revision), "--policy", str(policy), "--format", "markdown", url=OFFLINE
    )
    assert "| 🔵 info (error → info by policy) |" in markdown.stdout
    missing = charter("diff", str(base), str(revision), "--policy", str(tmp_path / "none.yaml"), url=OFFLINE)
    assert missing.returncode == 2 and "cannot read the policy" in missing.stderr


def test_an_oasdiff_severity_levels_file_turns_a_rule_off(pair, tmp_path):
    base, revision = pair
    levels = tmp_path / "severity-levels.txt"
    levels.write_text("# as oasdiff reads it\napi-path-removed-without-deprecation none\n")
    result = charter(
        "diff", str(base), str(revision), "--policy", str(levels), "--fail-on", "warning", url=OFFLINE
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "no changes; not breaking; required bump: none; 1 finding of 1 rule turned off by policy"
    ]
    as_json = charter(
        "diff", str(base), str(revision), "--policy", str(levels), "--format", "json", url=OFFLINE
    )
    body = json.loads(as_json.stdout)
    assert (body["changes"], body["groups"]) == ([], [])
    assert body["suppressed"] == {"api-path-removed-without-deprecation": 1}


def test_an_oasdiff_rule_charter_does_not_have_is_one_line_and_exit_2(pair, tmp_path):
    base, revision = pair
    levels = tmp_path / "severity-levels.txt"
    levels.write_text("api-path-removed-without-deprecation err\nresponse-mediatype-updated warn\n")
    result = charter("diff", str(base), str(revision), "--policy", str(levels), url=OFFLINE)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines()[0] == (
        f"charter: error: {levels}: line 2: unknown rule `response-mediatype-updated`: "
        "rule ids are listed in docs/changes.md"
    )
