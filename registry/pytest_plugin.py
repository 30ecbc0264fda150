"""pytest plugin: a live deployment's conformance to a contract in the Charter registry, as tests.

    pytest --charter-contract NAME@VERSION --charter-base-url URL [--charter-target-token T]

adds one test per operation of the contract, named `charter[METHOD /path]`, running the checks of
`charter conformance` (see registry/conformance.py: valid requests only, every answer declared).
The registry is --charter-url (default: CHARTER_URL), authenticated by --charter-token or
--charter-client-id/--charter-client-secret (default: CHARTER_TOKEN, CHARTER_CLIENT_ID,
CHARTER_CLIENT_SECRET); --charter-target-* authenticate to the API under test. Results are not
recorded in the registry. Without --charter-contract the plugin does nothing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from registry.conformance import OperationResult, Suite

_SUITE = pytest.StashKey["Suite"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("charter", "conformance to a contract in the Charter registry")
    add = group.addoption
    add("--charter-contract", metavar="NAME@VERSION", help="Test the deployment against this contract.")
    add("--charter-base-url", metavar="URL", help="Base URL of the deployment under test.")
    add("--charter-url", metavar="URL", help="Registry URL (default: CHARTER_URL, else the CLI's default).")
    add("--charter-token", help="Registry bearer token (default: CHARTER_TOKEN).")
    add("--charter-client-id", help="Registry client id (default: CHARTER_CLIENT_ID).")
    add("--charter-client-secret", help="Registry client secret (default: CHARTER_CLIENT_SECRET).")
    add("--charter-target-token", help="Bearer token for the API under test.")
    add("--charter-target-client-id", help="Client id, to fetch a token for the API under test.")
    add("--charter-target-client-secret", help="Client secret for --charter-target-client-id.")
    add(
        "--charter-token-url", help="Token endpoint for the target (default: base URL origin + /oauth/token)."
    )
    add("--charter-max-examples", type=int, default=20, help="Generated cases per operation (default: 20).")


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so that they apply to these items too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    if not config.getoption("charter_contract"):
        return
    suite = _suite(config)
    config.stash[_SUITE] = suite
    for label in suite.operations:
        name = f"charter[{label}]"
        items.append(ConformanceItem.from_parent(session, name=name, nodeid=name, label=label))


def _suite(config: pytest.Config) -> Suite:
    from registry import conformance
    from registry.cli import DEFAULT_URL, CliError, Registry

    option = config.getoption
    base_url = option("charter_base_url")
    if not base_url:
        raise pytest.UsageError("--charter-contract needs --charter-base-url")
    registry = Registry(
        url=option("charter_url") or os.environ.get("CHARTER_URL") or DEFAULT_URL,
        token=option("charter_token") or os.environ.get("CHARTER_TOKEN"),
        client_id=option("charter_client_id") or os.environ.get("CHARTER_CLIENT_ID"),
        client_secret=option("charter_client_secret") or os.environ.get("CHARTER_CLIENT_SECRET"),
    )
    try:
        name, version, document = conformance.fetch_contract(registry, option("charter_contract"))
        target = conformance.Target.connect(
            base_url,
            token=option("charter_target_token"),
            client_id=option("charter_target_client_id"),
            client_secret=option("charter_target_client_secret"),
            token_url=option("charter_token_url"),
            max_examples=option("charter_max_examples"),
        )
        return conformance.Suite(f"{name}@{version}", document, target)
    except (CliError, conformance.ConformanceError) as exc:
        raise pytest.UsageError(f"charter: {exc}") from None


class ConformanceFailed(Exception):
    def __init__(self, result: OperationResult) -> None:
        super().__init__(result.label)
        self.result = result


class ConformanceItem(pytest.Item):
    """One operation of the contract: generated valid requests, every answer checked."""

    def __init__(self, *, label: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label = label

    def runtest(self) -> None:
        result = self.config.stash[_SUITE].run_operation(self.label)
        self.user_properties.append(("test_cases", result.test_cases))
        if not result.passed:
            raise ConformanceFailed(result)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        from contracts.plural import counted
        from registry.conformance import ConformanceError

        if isinstance(excinfo.value, ConformanceFailed):
            result = excinfo.value.result
            checks = sorted({finding.check for finding in result.findings}) or ["could not run"]
            heading = f"{result.label} failed {', '.join(checks)} in {counted(result.test_cases, 'case')}"
            return "\n".join([heading, *result.describe()])
        if isinstance(excinfo.value, ConformanceError):  # missing credentials: the one line says it all
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name
