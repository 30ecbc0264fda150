"""Conformance runs: schemathesis sends generated requests to a live deployment and checks the answers
against the contract stored in the registry. Used by `charter conformance` and the pytest plugin.

Only positive data is generated: the contract declares what *valid* requests get, so every request
is one the contract allows, and every answer must be one it declares (status code, content type,
headers, body schema) and never a server error. Rejecting invalid input is not checked here.
Each operation is driven in-process by hypothesis (`@given`), without pytest.

A run keeps under the target's rate limit: it waits out `RateLimit` (draft-ietf-httpapi-ratelimit-
headers) when no quota remains and `Retry-After` on a 429, then sends the same request again, so a
throttled API is tested rather than reported as answering 429.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
import msgspec

from contracts.index import declared_scopes
from contracts.plural import counted

if TYPE_CHECKING:
    from schemathesis import APIOperation, BaseSchema, Case
    from schemathesis.core.transport import Response

    from registry.cli import Registry

CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
DEFAULT_MAX_EXAMPLES = 20
_SHOWN_LINES = 10
# The longest wait a rate limit may ask for before a request is sent anyway (and its 429 reported),
# and how many times one request is sent again after a 429.
MAX_WAIT_SECONDS = 60.0
MAX_RETRIES = 5


class ConformanceError(Exception):
    """The run cannot start (bad contract, unreachable target, no token): one line."""


class MissingCredentials(ConformanceError):
    """The target refuses the run's requests for want of a token or of its scopes."""


class _Abort(Exception):
    """Stops an operation's run when requests cannot be sent at all."""


@dataclass(frozen=True)
class Finding:
    check: str
    title: str
    message: str


@dataclass
class OperationResult:
    label: str
    test_cases: int = 0
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None  # not testable: unusable schema, no valid data, requests not sent
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.findings and self.error is None

    def describe(self) -> list[str]:
        """Why the operation failed, one block per finding, for humans."""
        lines = [f"error: {self.error}"] if self.error else []
        for finding in self.findings:
            lines.append(f"{finding.check}: {finding.title}")
            detail = [line for line in finding.message.splitlines() if line.strip()]
            lines.extend(f"  {line}" for line in detail[:_SHOWN_LINES])
            if len(detail) > _SHOWN_LINES:
                lines.append(f"  ... ({len(detail) - _SHOWN_LINES} more lines)")
        return lines


@dataclass
class Report:
    contract: str
    target: str
    results: list[OperationResult]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def test_cases(self) -> int:
        return sum(result.test_cases for result in self.results)

    @property
    def failures(self) -> int:
        return sum(len(result.findings) + (result.error is not None) for result in self.results)

    @property
    def failed_operations(self) -> list[str]:
        return [result.label for result in self.results if not result.passed]

    def as_record(self) -> dict[str, Any]:
        """The body of `POST /api/v1/apis/{name}/versions/{version}/conformance`."""
        return {
            "passed": self.passed,
            "target": self.target[:2000],
            "operations": len(self.results),
            "test_cases": self.test_cases,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
            "failed_operations": [label[:500] for label in self.failed_operations],
        }


@dataclass
class Pacer:
    """When the next request may go: after the wait the target's last answer asked for."""

    not_before: float = 0.0
    waited: float = 0.0

    def wait(self) -> None:
        delay = self.not_before - time.monotonic()
        if delay > 0:
            self.waited += delay
            time.sleep(delay)

    def heed(self, status: int, headers: Any) -> bool:
        """Note what the answer says about the quota; True when the request should be sent again."""
        delay = 0.0
        if status == 429:
            delay = _retry_after(_header(headers, "retry-after")) or 1.0
        else:
            delay = _quota_wait(_header(headers, "ratelimit"))
        if delay:
            self.not_before = time.monotonic() + min(delay, MAX_WAIT_SECONDS)
        return status == 429


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, list):  # schemathesis keeps every field line
        return ", ".join(value) if value else None
    return value


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: delay-seconds or an HTTP-date (RFC 9110)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _quota_wait(value: str | None) -> float:
    """Seconds until more quota when a `RateLimit` policy has none left (`r=0`), else 0."""
    if not value:
        return 0.0
    import http_sfv

    policies = http_sfv.List()
    try:
        policies.parse(value.encode())
    except ValueError:  # a malformed field is ignored, as the draft says
        return 0.0
    waits = [
        float(policy.params.get("t", 1))
        for policy in policies
        if isinstance(policy.params.get("r"), int) and policy.params["r"] <= 0
    ]
    return max(waits, default=0.0)


@dataclass
class Target:
    """The deployment under test: its base URL and the headers every request carries."""

    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    max_examples: int = DEFAULT_MAX_EXAMPLES
    pacer: Pacer = field(default_factory=Pacer)

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
        max_examples: int = DEFAULT_MAX_EXAMPLES,
    ) -> Target:
        """Check that the target answers at all, and get a token by client credentials if asked."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConformanceError(f"{base_url}: the base URL must be an absolute http(s) URL")
        try:
            httpx.get(base_url, timeout=httpx.Timeout(10, connect=5))
        except httpx.TransportError as exc:
            raise ConformanceError(f"cannot reach the target at {base_url}: {exc}") from None
        if token is None and (client_id or client_secret):
            if not (client_id and client_secret):
                raise ConformanceError("give both a client id and a client secret for the target")
            token = _client_credentials(
                token_url or f"{parts.scheme}://{parts.netloc}/oauth/token", client_id, client_secret
            )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return cls(base_url=base_url.rstrip("/"), headers=headers, max_examples=max_examples)


def _client_credentials(token_url: str, client_id: str, client_secret: str) -> str:
    try:
        response = httpx.post(
            token_url, data={"grant_type": "client_credentials"}, auth=(client_id, client_secret), timeout=30
        )
    except httpx.TransportError as exc:
        raise ConformanceError(f"cannot reach the token endpoint {token_url}: {exc}") from None
    token = response.json().get("access_token") if _is_json_object(response) else None
    if response.status_code != 200 or not isinstance(token, str):
        raise ConformanceError(
            f"cannot get a token for {client_id} from {token_url}: HTTP {response.status_code}"
        )
    return token


def _is_json_object(response: httpx.Response) -> bool:
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


def fetch_contract(registry: Registry, ref: str) -> tuple[str, str, dict[str, Any]]:
    """(name, version, OpenAPI document) of NAME@VERSION in the registry."""
    from registry.cli import _REGISTRY_REF

    match = _REGISTRY_REF.match(ref)
    if not match:
        raise ConformanceError(f"{ref}: expected NAME@VERSION")
    response = registry.request(
        "GET",
        f"/api/v1/apis/{match['name']}/versions/{match['version']}",
        headers={"Accept": "application/json"},
    )
    document = msgspec.json.decode(response.content)
    if not isinstance(document, dict) or not ("openapi" in document or "swagger" in document):
        raise ConformanceError(f"{ref}: not an OpenAPI document; conformance runs need one")
    return match["name"], match["version"], document


class Suite:
    """The operations of one contract, each runnable against one target."""

    def __init__(self, contract: str, document: dict[str, Any], target: Target) -> None:
        try:
            import http_sfv  # noqa: F401
            import schemathesis
            from schemathesis.core.errors import InvalidSchema
            from schemathesis.core.result import Ok
        except ImportError:
            raise ConformanceError(f"conformance runs need schemathesis: {install_hint()}") from None

        self.contract = contract
        self.target = target
        self.scopes = sorted(declared_scopes(document))
        try:
            self.schema: BaseSchema = schemathesis.openapi.from_dict(document, config=schemathesis.Config())
        except Exception as exc:  # schemathesis's loader errors carry no common base worth naming
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConformanceError(f"{contract}: schemathesis cannot load the contract: {first}") from None
        self.schema.config.update(base_url=target.base_url)
        self.operations: dict[str, APIOperation | InvalidSchema] = {}
        for result in self.schema.get_all_operations():
            operation = result.ok() if isinstance(result, Ok) else result.err()
            self.operations[operation.label] = operation

    def run(self) -> Report:
        started = time.monotonic()
        results = [self.run_operation(label) for label in self.operations]
        return Report(self.contract, self.target.base_url, results, time.monotonic() - started)

    def run_operation(self, label: str) -> OperationResult:
        from hypothesis.errors import HypothesisException
        from schemathesis.core.errors import SchemathesisError

        operation = self.operations[label]
        result = OperationResult(label)
        started = time.monotonic()
        try:
            self._given(operation, result)()
        except _Abort:
            pass
        except (HypothesisException, SchemathesisError) as exc:
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            result.error = f"{type(exc).__name__}: {message.strip().splitlines()[0]}"
        result.seconds = time.monotonic() - started
        return result

    def _given(self, operation: Any, result: OperationResult) -> Any:
        """A hypothesis test over the operation's positive cases, recording what the checks find."""
        import requests
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings
        from schemathesis import GenerationMode
        from schemathesis.core.errors import InvalidSchema

        if isinstance(operation, InvalidSchema):
            raise operation
        checks = _checks()
        target = self.target

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        @settings(
            max_examples=target.max_examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        def run(case: Case) -> None:
            result.test_cases += 1
            for _ in range(MAX_RETRIES + 1):
                target.pacer.wait()
                try:
                    response = case.call(base_url=target.base_url, headers=target.headers)
                except requests.RequestException as exc:
                    result.error = f"request failed: {exc}"
                    raise _Abort from None
                if not target.pacer.heed(response.status_code, response.headers):
                    break
            self._refuse_unless_credentialed(operation, response.status_code)
            _validate(case, response, checks, target.headers, result)

        return run

    def _refuse_unless_credentialed(self, operation: Any, status: int) -> None:
        """A 401 or 403 the contract does not declare means the run lacks credentials or scopes: one
        line saying so, rather than every operation failing on an undocumented status code."""
        declared = operation.definition.raw.get("responses") or {}
        if status not in (401, 403) or {str(status), "4XX", "default"} & set(declared):
            return
        scopes = f" holding {', '.join(self.scopes)}" if self.scopes else ""
        if status == 401 and "Authorization" not in self.target.headers:
            raise MissingCredentials(
                f"{operation.label} answered 401: the API needs credentials; give --target-client-id and"
                f" --target-client-secret of a client{scopes}, or --target-token"
            )
        if status == 403:
            raise MissingCredentials(
                f"{operation.label} answered 403: the target token lacks the operation's scopes; use a"
                f" client{scopes}"
            )


def install_hint() -> str:
    """The command that installs what conformance runs need, into the Python running Charter."""
    source = Path(__file__).resolve().parents[1]
    if (source / "pyproject.toml").is_file():  # a source checkout, as `make run` installs it
        return f"{sys.executable} -m pip install -e '{source}[conformance]'"
    return f"{sys.executable} -m pip install 'schemathesis>=4.32,<5' http-sfv"


def _checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks

    return [not_a_server_error, *(getattr(checks, name) for name in CHECK_NAMES[1:])]


def _validate(
    case: Case, response: Response, checks: list[Any], headers: dict[str, str], result: OperationResult
) -> None:
    """Each check on its own, so that a failure names the check that found it; repeats kept once."""
    from schemathesis.core.failures import FailureGroup

    for check in checks:
        try:
            case.validate_response(response, checks=[check], headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                finding = Finding(check.__name__, failure.title, failure.message)
                if all((f.check, f.title) != (finding.check, finding.title) for f in result.findings):
                    result.findings.append(finding)


def as_text(report: Report) -> str:
    lines = [f"charter conformance {report.contract} against {report.target}"]
    for result in report.results:
        verdict = "PASS" if result.passed else "FAIL"
        lines.append(f"  {verdict} {result.label} ({result.test_cases} cases)")
        lines.extend(f"       {line}" for line in result.describe())
    lines.append(
        f"{counted(len(report.results), 'operation')}, {counted(report.test_cases, 'test case')},"
        f" {counted(report.failures, 'failure')} in {counted(len(report.failed_operations), 'operation')}"
        f" ({report.seconds:.1f} s): {'PASS' if report.passed else 'FAIL'}"
    )
    return "\n".join(lines) + "\n"


def as_junit(report: Report) -> bytes:
    """One testcase per operation: a `failure` per failing check, an `error` when it could not run."""
    suite = ElementTree.Element(
        "testsuite",
        name=f"charter conformance {report.contract}",
        tests=str(len(report.results)),
        failures=str(sum(bool(r.findings) for r in report.results)),
        errors=str(sum(r.error is not None for r in report.results)),
        time=f"{report.seconds:.3f}",
    )
    properties = ElementTree.SubElement(suite, "properties")
    ElementTree.SubElement(properties, "property", name="target", value=report.target)
    for result in report.results:
        case = ElementTree.SubElement(
            suite, "testcase", classname=report.contract, name=result.label, time=f"{result.seconds:.3f}"
        )
        if result.error is not None:
            ElementTree.SubElement(case, "error", message=result.error).text = result.error
        for finding in result.findings:
            failure = ElementTree.SubElement(case, "failure", message=f"{finding.check}: {finding.title}")
            failure.set("type", finding.check)
            failure.text = finding.message
    return ElementTree.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"
