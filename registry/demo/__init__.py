"""Demo contracts of a professional-services firm, listed in manifest.yaml beside this file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

DEMO_DIR = Path(__file__).parent
# The client the demo flows call the simulated systems as: its scopes are the systems' own.
FLOWS_CLIENT = "demo-flows"
FLOWS_CLIENT_SCOPES = ("crm:read", "crm:write", "erp:read", "erp:write", "psa:read", "psa:write", "hcm:read")
FLOWS_CLIENT_TEAM = "integration"


class DemoVersion(msgspec.Struct, frozen=True):
    version: str
    file: str

    @property
    def path(self) -> Path:
        return DEMO_DIR / self.file

    @property
    def media_type(self) -> str:
        return "application/json" if self.file.endswith(".json") else "application/yaml"


class DemoApi(msgspec.Struct, frozen=True):
    name: str
    title: str
    description: str
    owner: str
    layer: str
    domain: str
    tags: tuple[str, ...]
    sla: dict[str, Any]
    versions: tuple[DemoVersion, ...]
    adapter: dict[str, Any] | None = None  # the gateway adapter the demo binds the API to


class _Manifest(msgspec.Struct):
    apis: list[DemoApi]


def demo_apis() -> list[DemoApi]:
    return msgspec.yaml.decode((DEMO_DIR / "manifest.yaml").read_bytes(), type=_Manifest).apis
