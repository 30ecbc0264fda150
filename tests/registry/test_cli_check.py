"""`charter check`: the CI step, offline against a base file and online against a live registry."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from tests.registry.support import charter
from tests.samples import as_json, as_yaml, projects, rescoped

OFFLINE = "http://127.0.0.1:9"


def without_get_project(version: str) -> dict:
    doc = projects(version)
    del doc["paths"]["/projects/{projectId}"]
    return doc


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, doc in {
        "base": projects("1.0.0"),
        "minor": projects("1.0.1"),
        "breaking-minor": without_get_project("1.1.0"),
        "breaking-major": without_get_project("2.0.0"),
    }.items():
        out[name] = tmp_path / f"{name}.yaml"
        out[name].write_bytes(as_yaml(doc))
    return out


def check(*args: str, url: str = OFFLINE):
    return charter("check", *args, url=url)


def test_offline_breaking_change_without_a_major_version_fails(files):
    result = check(str(files["breaking-minor"]), "--api", "projects", "--base", str(files["base"]))
    assert result.returncode == 1, result.stderr
    assert "FAIL" in result.stdout and "major" in result.stdout
    assert "impact: not checked (offline)" in result.stdout
    passed = check(str(files["breaking-major"]), "--api", "projects", "--base", str(files["base"]))
    assert passed.returncode == 0, passed.stdout
    assert passed.stdout.rstrip().endswith("PASS")


def test_every_format(files):
    args = [str(files["breaking-minor"]), "--api", "projects", "--base", str(files["base"])]
    body = json.loads(check(*args, "--format", "json").stdout)
    assert (body["passed"], body["required_bump"], body["base_version"], body["version"]) == (
        False,
        "major",
        "1.0.0",
        "1.1.0",
    )
    assert body["changes"][0]["id"] == "api-path-removed-without-deprecation"
    suite = ElementTree.fromstring(check(*args, "--format", "junit").stdout)
    assert suite.tag == "testsuite" and suite.get("tests") == "3" and suite.get("failures") == "1"
    failing = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failing == ["semver"]
    markdown = check(*args, "--format", "markdown").stdout
    assert markdown.startswith("### ❌ `charter check` projects 1.1.0")
    assert "| diff | against 1.0.0:" in markdown


def test_lint_errors_fail_the_check(files, tmp_path):
    ruleset = tmp_path / "ruleset.yaml"
    ruleset.write_text("extends: charter:recommended\nrules:\n  info-contact: error\n")
    doc = projects("1.0.1")
    del doc["info"]["contact"]
    candidate = tmp_path / "candidate.json"
    candidate.write_bytes(as_json(doc))
    result = check(
        str(candidate), "--api", "projects", "--base", str(files["base"]), "--ruleset", str(ruleset)
    )
    assert result.returncode == 1
    assert "lint error" in result.stdout


def test_bad_input_exits_two(files, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: [")
    for args in (
        [str(broken), "--api", "p", "--base", str(files["base"])],
        [str(tmp_path / "nope.yaml"), "--api", "p"],
    ):
        result = check(*args)
        assert result.returncode == 2
        assert result.stderr.startswith("charter: error:") and result.stderr.count("\n") == 1


def test_online_against_the_registry_with_consumers(server, files):
    token = httpx.post(
        f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "admin-secret")
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{server}/api/v1/teams", json={"name": "check-team"}, headers=auth).raise_for_status()
    published = charter(
        "publish", str(files["base"]), "--api", "projects", "--owner", "check-team", url=server
    )
    assert published.returncode == 0, published.stderr
    httpx.post(
        f"{server}/api/v1/apis/projects/consumers",
        json={"consumer": "portal", "team": "check-team", "versions": "^1", "operations": ["getProject"]},
        headers=auth,
    ).raise_for_status()

    ok = check(str(files["breaking-major"]), "--api", "projects", "--format", "json", url=server)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    body = json.loads(ok.stdout)
    assert body["base_version"] == "1.0.0"
    assert [a["consumer"] for a in body["affected"]] == ["portal"]
    strict = check(str(files["breaking-major"]), "--api", "projects", "--fail-on-impact", url=server)
    assert strict.returncode == 1
    assert "affects portal" in strict.stdout
    first = check(str(files["base"]), "--api", "brand-new", url=server)
    assert first.returncode == 0, first.stdout
    assert "a first version" in first.stdout


def test_an_invalid_contract_is_a_policy_failure_that_says_how_to_relax_it(files, tmp_path):
    doc = projects("1.0.1")
    doc["paths"]["/projects"]["post"]["operationId"] = "listProjects"
    invalid = tmp_path / "invalid.yaml"
    invalid.write_bytes(as_yaml(doc))
    refused = check(str(invalid), "--api", "projects", "--base", str(files["base"]))
    assert refused.returncode == 1
    headline, detail = refused.stderr.splitlines()
    assert "1 error (--validity syntax-only skips this check)" in headline
    assert detail.startswith(f"  {invalid}:") and "/paths/~1projects/post/operationId: Operation ID" in detail
    relaxed = check(
        str(invalid), "--api", "projects", "--base", str(files["base"]), "--validity", "syntax-only"
    )
    assert "--validity" not in relaxed.stderr


REMOVED = "api-path-removed-without-deprecation"


def test_a_severity_policy_from_a_file_or_the_registry_judges_the_changes(server, tmp_path):
    files = {}
    for name, doc in {"base": projects("1.0.0"), "breaking-minor": without_get_project("1.1.0")}.items():
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_bytes(as_yaml(rescoped(doc, "policed")))
    breaking = [str(files["breaking-minor"]), "--api", "policed"]
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"severity:\n  {REMOVED}: warning\n")
    offline = check(*breaking, "--base", str(files["base"]), "--policy", str(policy))
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert f"WARNING {REMOVED}  GET /projects/{{projectId}} removed with its path" in offline.stdout
    assert "[error → warning by policy]" in offline.stdout
    policy.write_text("severity:\n  no-such-rule: info\n")
    bad = check(*breaking, "--base", str(files["base"]), "--policy", str(policy))
    assert bad.returncode == 2 and "unknown rule `no-such-rule`" in bad.stderr

    token = httpx.post(
        f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "admin-secret")
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    httpx.post(f"{server}/api/v1/teams", json={"name": "policy-team"}, headers=auth).raise_for_status()
    published = charter(
        "publish", str(files["base"]), "--api", "policed", "--owner", "policy-team", url=server
    )
    assert published.returncode == 0, published.stderr
    assert check(*breaking, url=server).returncode == 1
    httpx.put(
        f"{server}/api/v1/apis/policed/diff-policy", json={"severity": {REMOVED: "warning"}}, headers=auth
    ).raise_for_status()
    online = check(*breaking, "--format", "json", url=server)
    assert online.returncode == 0, online.stdout + online.stderr
    (change,) = json.loads(online.stdout)["changes"]
    assert (change["level"], change["policy"]) == ("warning", "error → warning by policy")


def test_findings_of_a_rule_the_policy_turns_off_are_counted_in_every_format(files, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"severity:\n  {REMOVED}: 'off'\n")
    breaking = [str(files["breaking-minor"]), "--api", "projects", "--base", str(files["base"])]
    text = check(*breaking, "--policy", str(policy))
    assert text.returncode == 0, text.stdout + text.stderr
    assert "1 finding of 1 rule turned off by policy" in text.stdout
    as_json = json.loads(check(*breaking, "--policy", str(policy), "--format", "json").stdout)
    assert as_json["suppressed"] == {REMOVED: 1}
    markdown = check(*breaking, "--policy", str(policy), "--format", "markdown").stdout
    assert "1 finding of 1 rule turned off by policy" in markdown
    junit = ElementTree.fromstring(check(*breaking, "--policy", str(policy), "--format", "junit").stdout)
    assert (
        "1 finding of 1 rule turned off by policy" in junit.find("testcase[@name='semver']/system-out").text
    )
    # Without the policy nothing is suppressed, and the JSON says so.
    assert json.loads(check(*breaking, "--format", "json").stdout)["suppressed"] == {}
