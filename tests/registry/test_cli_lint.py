"""`charter lint` for CI: a contract file, a ruleset, three formats, exit codes 0, 1 and 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.registry.support import charter
from tests.samples import as_json, as_yaml, invoice_events, projects

OFFLINE = "http://127.0.0.1:9"  # files only: the registry is never asked
FIXTURES = Path(__file__).resolve().parents[1] / "contracts" / "lint_fixtures"


@pytest.fixture
def warned(tmp_path: Path) -> Path:
    """Only warnings: no owner, a 404 without a problem body."""
    path = tmp_path / "projects.yaml"
    path.write_bytes(as_yaml(projects()))
    return path


@pytest.fixture
def failing(tmp_path: Path) -> Path:
    """One error: an operation without any security requirement."""
    doc = projects()
    del doc["security"]
    doc["info"]["x-owner"] = "delivery"
    path = tmp_path / "projects.json"
    path.write_bytes(as_json(doc))
    return path


def test_warnings_only_exit_zero_with_text(warned: Path) -> None:
    result = charter("lint", str(warned), url=OFFLINE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == "WARNING info-owner  no owning team: set `info.x-owner` (or `x-owner` at the root)  [/info]"
    )
    assert lines[1].startswith("WARNING error-response-problem-json  GET /projects/{projectId}: 404 response")
    assert lines[-1] == "2 findings (2 warnings)"


def test_an_error_exits_one(failing: Path) -> None:
    result = charter("lint", str(failing), url=OFFLINE)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("ERROR   operation-security-defined  GET /projects has no security")
    assert result.stdout.splitlines()[-1] == "3 findings (2 errors, 1 warning)"


def test_clean_asyncapi_says_so(tmp_path: Path) -> None:
    doc = invoice_events()
    doc["info"].update({"contact": {"name": "Finance"}, "x-owner": "finance"})
    path = tmp_path / "events.yaml"
    path.write_bytes(as_yaml(doc))
    result = charter("lint", str(path), url=OFFLINE)
    assert (result.returncode, result.stdout) == (0, "no findings\n")


def test_json_format(failing: Path) -> None:
    result = charter("lint", str(failing), "--format", "json", url=OFFLINE)
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert set(body) == {"findings", "errors", "warnings", "infos"}
    assert (body["errors"], body["warnings"], body["infos"]) == (2, 1, 0)
    assert body["findings"][0] == {
        "rule": "operation-security-defined",
        "severity": "error",
        "message": "GET /projects has no security requirement, nor has the document;"
        " declare one, or `security: []` if it is public",
        "pointer": "/paths/~1projects/get",
        "operation": "GET /projects",
    }


def test_sarif_format(failing: Path) -> None:
    result = charter("lint", str(failing), "--format", "sarif", url=OFFLINE)
    assert result.returncode == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-schema-2.1.0.json")
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "charter"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert rule_ids == ["error-response-problem-json", "operation-security-defined"]
    assert all(rule["shortDescription"]["text"] for rule in driver["rules"])
    assert [r["level"] for r in run["results"]] == ["error", "error", "warning"]
    for result_ in run["results"]:
        assert result_["ruleId"] == rule_ids[result_["ruleIndex"]]
        assert result_["message"]["text"]
        (location,) = result_["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"] == str(failing)
        assert location["logicalLocations"][0]["fullyQualifiedName"].startswith("/paths/")


def test_info_becomes_a_sarif_note(tmp_path: Path, warned: Path) -> None:
    ruleset = tmp_path / "ruleset.json"
    ruleset.write_text(json.dumps({"rules": {"info-owner": "info"}}))
    result = charter("lint", str(warned), "--ruleset", str(ruleset), "--format", "sarif", url=OFFLINE)
    assert result.returncode == 0, result.stderr
    (only,) = json.loads(result.stdout)["runs"][0]["results"]
    assert (only["ruleId"], only["level"]) == ("info-owner", "note")


def test_ruleset_file_and_builtin_name(tmp_path: Path) -> None:
    doc = projects(version="1.0")  # not semver: the team ruleset's custom rule fails it
    path = tmp_path / "projects.yaml"
    path.write_bytes(as_yaml(doc))
    team = charter("lint", str(path), "--ruleset", str(FIXTURES / "team-ruleset.yaml"), url=OFFLINE)
    assert team.returncode == 1, team.stderr
    assert [line.split()[1] for line in team.stdout.splitlines()[:-1]] == [
        "info-owner",  # raised to error by the team
        "semantic-version",
        "error-response-problem-json",
    ]
    minimal = charter("lint", str(path), "--ruleset", "charter:minimal", url=OFFLINE)
    assert (minimal.returncode, minimal.stdout) == (0, "no findings\n")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"openapi: [unclosed", "invalid YAML"),
        (b'{"hello": "world"}', "no `openapi`"),
        (b"", "document is empty"),
    ],
)
def test_unreadable_input_is_one_line_and_exit_two(tmp_path: Path, content: bytes, fragment: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    result = charter("lint", str(bad), url=OFFLINE)
    assert result.returncode == 2
    assert result.stderr.startswith("charter: error:") and result.stderr.count("\n") == 1
    assert fragment in result.stderr
    missing = charter("lint", str(tmp_path / "nope.yaml"), url=OFFLINE)
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_invalid_ruleset_is_one_line_and_exit_two(tmp_path: Path, warned: Path) -> None:
    result = charter("lint", str(warned), "--ruleset", str(FIXTURES / "invalid-ruleset.yaml"), url=OFFLINE)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "unknown rule `operation-id-kebab-case`" in result.stderr
    missing = charter("lint", str(warned), "--ruleset", str(tmp_path / "none.yaml"), url=OFFLINE)
    assert missing.returncode == 2 and "cannot read the ruleset" in missing.stderr
    unknown = charter("lint", str(warned), "--ruleset", "charter:strict", url=OFFLINE)
    assert unknown.returncode == 2 and "charter:strict" in unknown.stderr
    assert charter("lint", str(warned), "--format", "xml", url=OFFLINE).returncode == 2


def test_a_spectral_ruleset_file(tmp_path: Path, warned: Path) -> None:
    ruleset = tmp_path / ".spectral.yaml"
    ruleset.write_text(
        "extends: spectral:oas\n"
        "rules:\n"
        "  info-license: error\n"
        "  operation-tags: off\n"
        "  no-x-headers:\n"
        "    message: '{{property}} {{error}}'\n"
        "    given: $.paths[*][*].parameters[*]\n"
        "    then: {field: name, function: pattern, functionOptions: {notMatch: '/^x-/i'}}\n"
    )
    result = charter("lint", str(warned), "--ruleset", str(ruleset), "--format", "json", url=OFFLINE)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert findings[0] == {
        "rule": "info-license",
        "severity": "error",
        "message": '"license" property must be truthy',
        "pointer": "/info/license",
        "operation": None,
    }
    rules = {f["rule"] for f in findings}
    assert "operation-tags" not in rules
    # Spectral's own JavaScript rules that `recommended` enables are named, as warnings.
    assert {"path-params", "operation-tag-defined"} <= rules
    assert all(f["severity"] == "warning" for f in findings if "is not checked" in f["message"])


def test_a_spectral_ruleset_python_cannot_run_exits_two(tmp_path: Path, warned: Path) -> None:
    ruleset = tmp_path / ".spectral.yaml"
    ruleset.write_text(
        "rules:\n  r:\n    given: $\n    then: {function: pattern, functionOptions: {match: '(?<=a+)b'}}\n"
    )
    result = charter("lint", str(warned), "--ruleset", str(ruleset), url=OFFLINE)
    assert result.returncode == 2
    assert "invalid regular expression" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
