"""`charter import-backstage` against a real server: catalog files in, APIs published, nothing fetched."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.registry.support import ADMIN, charter
from tests.samples import as_json, as_yaml, invoice_events, projects

CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: Projects
  title: Projects API
  description: Projects, as Backstage describes them
  tags: [delivery, core]
spec:
  type: openapi
  lifecycle: production
  owner: group:default/platform
  system: delivery-ops
  definition:
    $text: ./specs/projects.yaml
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: invoices
spec:
  type: asyncapi
  lifecycle: experimental
  owner: platform
  definition: |
{inline}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: remote
spec:
  type: openapi
  lifecycle: production
  owner: group:default/platform
  definition:
    $text: https://example.com/openapi.yaml
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: website
spec: {{type: website, lifecycle: production, owner: platform}}
"""
ESCAPING = """\
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: escaping
spec:
  type: openapi
  lifecycle: production
  owner: platform
  definition:
    $text: ../../outside.yaml
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: absolute
spec:
  type: openapi
  lifecycle: production
  owner: platform
  definition:
    $text: {absolute}
"""


def _catalog(root: Path) -> Path:
    folder = root / "catalog"
    (folder / "specs").mkdir(parents=True)
    (folder / "specs" / "projects.yaml").write_bytes(as_yaml(projects("1.2.0")))
    inline = "\n".join("    " + line for line in as_json(invoice_events("0.3.0")).decode().splitlines())
    (folder / "catalog-info.yaml").write_text(CATALOG.format(inline=inline))
    return folder


def test_api_entities_are_published_with_their_definitions_and_team(server, tmp_path):
    folder = _catalog(tmp_path)
    result = charter("import-backstage", str(folder), url=server)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["imported", "projects"] and "1.2.0" in line for line in lines), lines
    assert any(line.split()[:2] == ["imported", "invoices"] and "draft" in line for line in lines), lines
    remote = next(line for line in lines if " remote " in f" {line} ")
    assert remote.split()[0] == "skipped" and "no network" in remote
    assert any("kind 'Component' is not imported" in line for line in lines)
    assert lines[-1] == "2 imported, 0 unchanged, 1 skipped, 0 failed"

    token = httpx.post(f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    api = httpx.get(f"{server}/api/v1/apis/projects", headers=headers).json()
    assert (api["owner"], api["title"], api["domain"]) == ("platform", "Projects API", "delivery-ops")
    assert sorted(api["tags"]) == ["core", "delivery"]
    assert httpx.get(f"{server}/api/v1/apis/remote", headers=headers).status_code == 404

    again = charter("import-backstage", str(folder / "catalog-info.yaml"), url=server)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == "0 imported, 2 unchanged, 1 skipped, 0 failed"


def test_a_definition_outside_the_directory_is_never_read(server, tmp_path):
    secret = tmp_path / "outside.yaml"
    secret.write_bytes(as_yaml(projects("9.9.9")))
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    (folder / "catalog-info.yaml").write_text(ESCAPING.format(absolute=secret))
    result = charter("import-backstage", str(folder), url=server)
    assert result.returncode == 2, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.lstrip().startswith("failed")]
    assert len(failed) == 2 and all("points outside" in line for line in failed), failed
    assert "2 of 2 API entities could not be imported" in result.stderr


def test_bad_input_is_one_line_and_exit_2(server, tmp_path):
    broken = tmp_path / "catalog-info.yaml"
    broken.write_text("kind: API\nmetadata: [unclosed\n")
    result = charter("import-backstage", str(broken), url=server)
    assert result.returncode == 2
    assert "not YAML" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    result = charter("import-backstage", str(empty), url=server)
    assert result.returncode == 2 and "no .yaml or .yml catalog files" in result.stderr
